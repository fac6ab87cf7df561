//! A lock that protects a resource even from a holder that stalls: fencing tokens.
//!
//! Two workers compete for the lock `example/report`. The first takes it with a short
//! lease, writes, and then "pauses" (a GC pause, a stopped VM): it stops renewing its
//! lease. The lease expires, the lock passes to the second worker with a larger
//! token, and when the first worker wakes up and writes again, its write carries its
//! old token in `Concord-Fence` and is rejected: nothing is overwritten.
//!
//! Start a cluster first (`make dev`), then `cargo run --example fenced_lock`.

use std::time::Duration;

use concord::client::{Client, ClientError, WriteOptions};

fn fenced(token: u64) -> WriteOptions {
    WriteOptions { fence: Some(("example/report".to_string(), token)), ..Default::default() }
}

#[tokio::main]
async fn main() -> Result<(), ClientError> {
    let endpoints = std::env::var("CONCORD_ENDPOINTS").unwrap_or_else(|_| "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003".into());
    let client = Client::new(endpoints.split(',').map(String::from).collect());

    // Worker 1: a 2 s lease, the lock, one fenced write.
    let lease_1 = client.lease_grant(2000).await?;
    let grant_1 = client.lock_acquire("example/report", lease_1.id, 0).await?;
    client.put_with("example/report/body", "written by worker 1", &fenced(grant_1.token)).await?;
    println!("worker 1 holds the lock with token {}", grant_1.token);

    // Worker 2 waits in line (up to 10 s) while worker 1 stalls without renewing.
    let lease_2 = client.lease_grant(30_000).await?;
    println!("worker 1 pauses; worker 2 waits for the lock...");
    let grant_2 = client.lock_acquire("example/report", lease_2.id, 10_000).await?;
    println!("worker 2 got the lock with token {} once worker 1's lease expired", grant_2.token);
    client.put_with("example/report/body", "written by worker 2", &fenced(grant_2.token)).await?;

    // Worker 1 wakes up, unaware, and writes with its old token: refused.
    tokio::time::sleep(Duration::from_millis(100)).await;
    match client.put_with("example/report/body", "late write by worker 1", &fenced(grant_1.token)).await {
        Err(e) if e.code() == Some("fence_rejected") => println!("worker 1's late write was rejected: {e}"),
        Err(e) => return Err(e),
        Ok(_) => return Err(ClientError::Protocol("worker 1's late write was accepted: fencing did not hold".into())),
    }
    match client.get("example/report/body").await?.value {
        Some(kv) => println!("the resource still holds worker 2's write: \"{}\"", String::from_utf8_lossy(&kv.value)),
        None => println!("the resource is empty"),
    }

    client.lock_release("example/report", grant_2.token).await?;
    client.lease_revoke(lease_2.id).await?;
    Ok(())
}
