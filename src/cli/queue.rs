//! `concord queue ...`: durable work queues through `concord::client`.

use std::io::Read;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use concord::client::{QueueMessage, QueueSettings, ReceiveOptions};
use serde_json::json;

use super::client::{Connection, fail, not_found, print_json};
use super::out;

#[derive(Args, Debug)]
pub struct QueueArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: QueueCommand,
}

#[derive(Subcommand, Debug)]
pub enum QueueCommand {
    /// Create a queue or change its settings (unset ones take the defaults).
    Configure {
        /// The queue's name.
        queue: String,
        /// How long a received message stays invisible by default.
        #[arg(long, value_name = "MS")]
        visibility_ms: Option<u64>,
        /// Deliveries without an ack before a message moves to --dead-letter-queue.
        #[arg(long, requires = "dead_letter_queue")]
        max_deliveries: Option<u32>,
        /// Where a message goes after --max-deliveries deliveries without an ack.
        #[arg(long, requires = "max_deliveries")]
        dead_letter_queue: Option<String>,
        /// Most messages the queue holds; an enqueue beyond is refused.
        #[arg(long)]
        max_length: Option<u64>,
        /// Largest message the queue accepts.
        #[arg(long, value_name = "BYTES")]
        max_message_bytes: Option<u64>,
    },
    /// Enqueue a message (the argument, or stdin when it is `-`); prints its id.
    Send {
        /// The queue's name (created on first use).
        queue: String,
        /// The message, or `-` to read it from standard input.
        message: String,
        /// Visible only after MS.
        #[arg(long, value_name = "MS", default_value_t = 0)]
        delay_ms: u64,
    },
    /// Receive messages; prints `<receipt> <payload>` per message.
    Receive {
        /// The queue's name.
        queue: String,
        /// Take up to this many messages (1 to 100).
        #[arg(long, default_value_t = 1)]
        max: u32,
        /// Keep them invisible to others for MS (default: the queue's setting) unless acked.
        #[arg(long, value_name = "MS")]
        visibility_ms: Option<u64>,
        /// Wait up to MS for a message when none is visible.
        #[arg(long, value_name = "MS", default_value_t = 0)]
        wait_ms: u64,
    },
    /// Delete the message of an in-flight delivery.
    Ack {
        /// The queue's name.
        queue: String,
        /// The receipt `receive` printed (`<id>.<delivery>`).
        receipt: String,
    },
    /// Give a delivery back, visible again after --delay-ms.
    Nack {
        /// The queue's name.
        queue: String,
        /// The receipt `receive` printed.
        receipt: String,
        /// Visible again only after MS.
        #[arg(long, value_name = "MS", default_value_t = 0)]
        delay_ms: u64,
    },
    /// Keep a delivery in flight for MS more.
    Extend {
        /// The queue's name.
        queue: String,
        /// The receipt `receive` printed.
        receipt: String,
        /// How long from now it stays invisible to others, in ms.
        visibility_ms: u64,
    },
    /// Show a queue's counters and settings.
    Stats {
        /// The queue's name.
        queue: String,
    },
    /// List queues.
    List {
        /// Start after this name (for paging).
        #[arg(long)]
        after: Option<String>,
    },
    /// Delete a queue and its messages.
    Delete {
        /// The queue's name.
        queue: String,
    },
}

fn message_json(message: &QueueMessage) -> serde_json::Value {
    let (payload, encoding) = concord::api::kv::value_json(&message.payload);
    json!({
        "id": message.id,
        "receipt": message.receipt,
        "delivery": message.delivery,
        "payload": payload,
        "encoding": encoding,
        "in_flight_until_ms": message.in_flight_until_ms,
    })
}

fn done(text: String) -> ExitCode {
    out!("{text}");
    ExitCode::SUCCESS
}

pub async fn run(args: QueueArgs) -> ExitCode {
    let client = args.connection.client();
    let json = args.connection.json;
    match args.command {
        QueueCommand::Configure { queue, visibility_ms, max_deliveries, dead_letter_queue, max_length, max_message_bytes } => {
            let settings = QueueSettings { visibility_ms, max_deliveries, dead_letter_queue, max_length, max_message_bytes };
            match client.queue_configure(&queue, &settings).await {
                Err(e) => fail(e),
                Ok(answer) if json => {
                    print_json(&answer);
                    ExitCode::SUCCESS
                }
                Ok(answer) => done(format!("OK {queue:?}: {}", serde_json::to_string(&answer.settings).unwrap_or_default())),
            }
        }
        QueueCommand::Send { queue, message, delay_ms } => {
            let payload = if message == "-" {
                let mut bytes = Vec::new();
                if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
                    eprintln!("error: cannot read the message from standard input: {e}");
                    return ExitCode::from(super::EXIT_USAGE);
                }
                bytes
            } else {
                message.into_bytes()
            };
            match client.enqueue(&queue, payload, delay_ms).await {
                Err(e) => fail(e),
                Ok(id) if json => {
                    print_json(&json!({ "queue": queue, "id": id }));
                    ExitCode::SUCCESS
                }
                Ok(id) => done(id.to_string()),
            }
        }
        QueueCommand::Receive { queue, max, visibility_ms, wait_ms } => match client.receive(&queue, ReceiveOptions { max, visibility_ms, wait_ms }).await {
            Err(e) => fail(e),
            Ok(messages) if json => {
                print_json(&json!({ "queue": queue, "messages": messages.iter().map(message_json).collect::<Vec<_>>() }));
                ExitCode::SUCCESS
            }
            Ok(messages) => {
                if messages.is_empty() {
                    eprintln!("(no message was visible within {wait_ms} ms)");
                }
                for message in &messages {
                    out!("{} {}", message.receipt, String::from_utf8_lossy(&message.payload));
                }
                ExitCode::SUCCESS
            }
        },
        QueueCommand::Ack { queue, receipt } => match client.ack(&queue, &receipt).await {
            Err(e) => fail(e),
            Ok(()) => done(format!("OK acked {receipt}")),
        },
        QueueCommand::Nack { queue, receipt, delay_ms } => match client.nack(&queue, &receipt, delay_ms).await {
            Err(e) => fail(e),
            Ok(true) => done(format!("OK {receipt} given back: it was the last delivery allowed, moved to the dead-letter queue")),
            Ok(false) => done(format!("OK {receipt} given back")),
        },
        QueueCommand::Extend { queue, receipt, visibility_ms } => match client.extend(&queue, &receipt, visibility_ms).await {
            Err(e) => fail(e),
            Ok(until_ms) => done(format!("OK {receipt} in flight until {until_ms} ms (replicated clock)")),
        },
        QueueCommand::Stats { queue } => match client.queue_stats(&queue).await {
            Err(e) => fail(e),
            Ok(None) => not_found("queue_not_found", format!("queue {queue:?} does not exist")),
            Ok(Some(stats)) if json => {
                print_json(&json!({
                    "name": stats.name, "visible": stats.visible, "in_flight": stats.in_flight, "delayed": stats.delayed,
                    "length": stats.length, "dead_lettered": stats.dead_lettered, "oldest_age_ms": stats.oldest_age_ms,
                }));
                ExitCode::SUCCESS
            }
            Ok(Some(s)) => done(format!(
                "{:?}: {} visible, {} in flight, {} delayed, {} dead-lettered; oldest message {} ms old",
                s.name,
                s.visible,
                s.in_flight,
                s.delayed,
                s.dead_lettered,
                s.oldest_age_ms.map_or("-".to_string(), |ms| ms.to_string())
            )),
        },
        QueueCommand::List { after } => match client.queues(after.as_deref()).await {
            Err(e) => fail(e),
            Ok(page) if json => {
                print_json(&page);
                ExitCode::SUCCESS
            }
            Ok(page) => {
                for item in &page.items {
                    out!("{} {}", item.name, item.length);
                }
                ExitCode::SUCCESS
            }
        },
        QueueCommand::Delete { queue } => match client.queue_delete(&queue).await {
            Err(e) => fail(e),
            Ok(n) => done(format!("OK deleted {queue:?} and {n} messages")),
        },
    }
}
