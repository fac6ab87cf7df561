//! A work queue that survives a worker dying mid-job: at-least-once delivery.
//!
//! A producer enqueues 20 jobs; three workers receive, process and acknowledge them.
//! Worker 2 "dies" (a crash, a kill -9) right after receiving a job, before
//! acknowledging it. Nobody has to notice: the job stays in flight until its
//! visibility timeout (2 s here) and is then delivered again, to a live worker,
//! whose receipt names the new delivery. Every job is done; the one that was
//! redelivered shows delivery 2.
//!
//! Start a cluster first (`make dev`), then `cargo run --example work_queue`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use concord::client::{Client, ClientError, QueueSettings, ReceiveOptions};

const JOBS: usize = 20;

/// Job number → (worker that finished it, delivery number).
type Done = Arc<Mutex<BTreeMap<String, (usize, u32)>>>;

async fn worker(client: Arc<Client>, queue: String, number: usize, dies_on_job: Option<usize>, done: Done, stop: Arc<AtomicBool>) -> Result<(), ClientError> {
    let mut received = 0;
    while !stop.load(Ordering::Relaxed) {
        let options = ReceiveOptions { max: 1, visibility_ms: None, wait_ms: 1000 };
        for message in client.receive(&queue, options).await? {
            received += 1;
            let job = String::from_utf8_lossy(&message.payload).into_owned();
            if dies_on_job == Some(received) {
                println!("worker {number} dies holding {job} (delivery {}, receipt {})", message.delivery, message.receipt);
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await; // the work
            client.ack(&queue, &message.receipt).await?;
            done.lock().unwrap_or_else(|p| p.into_inner()).insert(job, (number, message.delivery));
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), ClientError> {
    let endpoints = std::env::var("CONCORD_ENDPOINTS").unwrap_or_else(|_| "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003".into());
    let client = Arc::new(Client::new(endpoints.split(',').map(String::from).collect()));
    let queue = format!("example-jobs-{}", std::process::id());
    let dead = format!("{queue}.dead");
    let settings = QueueSettings { visibility_ms: Some(2000), max_deliveries: Some(5), dead_letter_queue: Some(dead.clone()), ..QueueSettings::default() };
    client.queue_configure(&queue, &settings).await?;
    for i in 1..=JOBS {
        client.enqueue(&queue, format!("job-{i:02}"), 0).await?;
    }
    println!("enqueued {JOBS} jobs on queue {queue}; 3 workers start, worker 2 will die on its 3rd job");

    let done: Done = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (1..=3).map(|n| tokio::spawn(worker(client.clone(), queue.clone(), n, (n == 2).then_some(3), done.clone(), stop.clone()))).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while done.lock().unwrap_or_else(|p| p.into_inner()).len() < JOBS && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for handle in workers {
        handle.await.map_err(|e| ClientError::Transport(e.to_string()))??;
    }

    let done = done.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for (job, (worker, delivery)) in done.iter().filter(|(_, (_, delivery))| *delivery > 1) {
        println!("{job} was redelivered after the crash and finished by worker {worker} (delivery {delivery})");
    }
    match client.queue_stats(&queue).await? {
        Some(stats) => println!("{} of {JOBS} jobs done; {} left in the queue, {} dead-lettered", done.len(), stats.length, stats.dead_lettered),
        None => println!("{} of {JOBS} jobs done; the queue is gone", done.len()),
    }
    client.queue_delete(&queue).await?;
    client.queue_delete(&dead).await?;
    if done.len() == JOBS { Ok(()) } else { Err(ClientError::Protocol(format!("only {} of {JOBS} jobs finished in 30 s", done.len()))) }
}
