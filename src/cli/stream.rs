//! `concord topic ...` and `concord watch`: topics and key watches through
//! `concord::client`. Streams print one line per event until interrupted.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use concord::client::TopicSettings;
use serde_json::json;

use super::client::{Connection, fail, not_found, print_json};
use super::out;

#[derive(Args, Debug)]
pub struct TopicArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: TopicCommand,
}

#[derive(Subcommand, Debug)]
pub enum TopicCommand {
    /// Create a topic or change its retention (unset ones take the defaults).
    Configure {
        /// The topic's name.
        topic: String,
        /// Keep at most this many messages (the oldest go first).
        #[arg(long)]
        max_messages: Option<u64>,
        /// Keep at most this many bytes of messages.
        #[arg(long, value_name = "BYTES")]
        max_bytes: Option<u64>,
        /// Drop messages older than MS.
        #[arg(long, value_name = "MS")]
        max_age_ms: Option<u64>,
        /// Largest message the topic accepts.
        #[arg(long, value_name = "BYTES")]
        max_message_bytes: Option<u64>,
    },
    /// Publish a message; prints its offset.
    Publish {
        /// The topic's name (created on first use).
        topic: String,
        /// The message, as text.
        message: String,
    },
    /// Read messages from an offset; prints `<offset> <payload>` per message.
    Read {
        /// The topic's name.
        topic: String,
        /// First offset (default: the oldest retained).
        #[arg(long)]
        from: Option<u64>,
        /// At most this many messages.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Wait up to MS for a message at --from.
        #[arg(long, value_name = "MS", default_value_t = 0)]
        wait_ms: u64,
    },
    /// Follow a topic from an offset (default: what is published from now on).
    Subscribe {
        /// The topic's name.
        topic: String,
        /// First offset (default: what is published from now on).
        #[arg(long)]
        from: Option<u64>,
    },
    /// Show a topic's offsets and retention.
    Stats {
        /// The topic's name.
        topic: String,
    },
    /// Delete a topic and its messages.
    Delete {
        /// The topic's name.
        topic: String,
    },
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Watch keys starting with this.
    #[arg(default_value = "")]
    pub prefix: String,
    /// Start at this revision (default: changes from now on).
    #[arg(long)]
    pub from_revision: Option<u64>,
}

fn done(text: String) -> ExitCode {
    out!("{text}");
    ExitCode::SUCCESS
}

pub async fn run_topic(args: TopicArgs) -> ExitCode {
    let client = args.connection.client();
    let json = args.connection.json;
    match args.command {
        TopicCommand::Configure { topic, max_messages, max_bytes, max_age_ms, max_message_bytes } => {
            let settings = TopicSettings { max_messages, max_bytes, max_age_ms, max_message_bytes };
            match client.topic_configure(&topic, &settings).await {
                Err(e) => fail(e),
                Ok(answer) if json => {
                    print_json(&answer);
                    ExitCode::SUCCESS
                }
                Ok(answer) => done(format!("OK {topic:?}: {}", serde_json::to_string(&answer.settings).unwrap_or_default())),
            }
        }
        TopicCommand::Publish { topic, message } => match client.publish(&topic, message).await {
            Err(e) => fail(e),
            Ok(offset) => done(offset.to_string()),
        },
        TopicCommand::Read { topic, from, limit, wait_ms } => match client.topic_read(&topic, from, limit, wait_ms).await {
            Err(e) => fail(e),
            Ok(page) if json => {
                let messages: Vec<_> = page.messages.iter().map(|m| json!({ "offset": m.offset, "payload": String::from_utf8_lossy(&m.payload) })).collect();
                print_json(&json!({ "topic": topic, "messages": messages, "next_offset": page.next_offset }));
                ExitCode::SUCCESS
            }
            Ok(page) => {
                for message in &page.messages {
                    out!("{} {}", message.offset, String::from_utf8_lossy(&message.payload));
                }
                ExitCode::SUCCESS
            }
        },
        TopicCommand::Subscribe { topic, from } => {
            let mut stream = match client.subscribe(&topic, from).await {
                Ok(stream) => stream,
                Err(e) => return fail(e),
            };
            loop {
                match stream.next_message().await {
                    Ok(Some(message)) => out!("{} {}", message.offset, String::from_utf8_lossy(&message.payload)),
                    Ok(None) => return ExitCode::SUCCESS,
                    Err(e) => return fail(e),
                }
            }
        }
        TopicCommand::Stats { topic } => match client.topic_stats(&topic).await {
            Err(e) => fail(e),
            Ok(None) => not_found("topic_not_found", format!("topic {topic:?} does not exist")),
            Ok(Some(stats)) => {
                print_json(&stats);
                ExitCode::SUCCESS
            }
        },
        TopicCommand::Delete { topic } => match client.topic_delete(&topic).await {
            Err(e) => fail(e),
            Ok(n) => done(format!("OK deleted {topic:?} and {n} messages")),
        },
    }
}

pub async fn run_watch(args: WatchArgs) -> ExitCode {
    let client = args.connection.client();
    let mut stream = match client.watch(&args.prefix, args.from_revision).await {
        Ok(stream) => stream,
        Err(e) => return fail(e),
    };
    loop {
        match stream.next_change().await {
            Ok(Some(change)) if args.connection.json => {
                // The API's event shape: binary values as base64, a delete has no value.
                let event = match &change.value {
                    Some(value) => {
                        let (value, encoding) = concord::api::kv::value_json(value);
                        json!({ "type": "put", "revision": change.revision, "key": change.key, "value": value, "encoding": encoding })
                    }
                    None => json!({ "type": "delete", "revision": change.revision, "key": change.key }),
                };
                out!("{event}");
            }
            Ok(Some(change)) => match &change.value {
                Some(value) => out!("{} PUT {} {}", change.revision, change.key, String::from_utf8_lossy(value)),
                None => out!("{} DELETE {}", change.revision, change.key),
            },
            Ok(None) => return ExitCode::SUCCESS,
            Err(e) => return fail(e),
        }
    }
}
