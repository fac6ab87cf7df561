//! A service registry on a consistent-hash ring: members join with leases, clients
//! route keys through the ring, and a member that stops renewing drops out by itself.
//!
//! Three cache servers join ring `example/cache`, each attached to a lease it keeps
//! alive (a health check Concord runs for you). A client looks up which server owns
//! each user's data. Then one server "crashes" (stops its keep-alives): its lease
//! expires, it leaves the ring, the epoch moves, and only its keys move elsewhere.
//!
//! Start a cluster first (`make dev`), then `cargo run --example service_registry`.

use concord::client::RingJoin;
use std::collections::BTreeMap;
use std::time::Duration;

use concord::client::{Client, ClientError};

async fn routes(client: &Client, users: &[&str]) -> Result<(u64, BTreeMap<String, String>), ClientError> {
    let mut owners = BTreeMap::new();
    let mut epoch = 0;
    for user in users {
        let lookup = client.ring_lookup("example/cache", user, 1).await?;
        epoch = lookup.epoch;
        owners.insert(user.to_string(), lookup.owners.first().map(|m| m.name.clone()).unwrap_or_default());
    }
    Ok((epoch, owners))
}

#[tokio::main]
async fn main() -> Result<(), ClientError> {
    let endpoints = std::env::var("CONCORD_ENDPOINTS").unwrap_or_else(|_| "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003".into());
    let client = Client::new(endpoints.split(',').map(String::from).collect());

    // Each server registers with its own 2 s lease.
    let mut leases = Vec::new();
    for (i, name) in ["cache-a", "cache-b", "cache-c"].into_iter().enumerate() {
        let lease = client.lease_grant(2000).await?;
        client
            .ring_join("example/cache", name, &RingJoin { address: &format!("10.0.0.{}:11211", i + 1), weight: 1, metadata: "", lease: Some(lease.id) })
            .await?;
        leases.push((name, lease.id));
    }
    let users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"];
    let (epoch, before) = routes(&client, &users).await?;
    println!("at epoch {epoch}:");
    for (user, owner) in &before {
        println!("  {user:<6} -> {owner}");
    }

    // cache-b crashes: the others keep renewing, it does not.
    println!("cache-b stops renewing its lease...");
    for _ in 0..8 {
        for (name, lease) in &leases {
            if *name != "cache-b" {
                client.lease_keep_alive(*lease).await?;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (epoch, after) = routes(&client, &users).await?;
    println!("at epoch {epoch}, after cache-b's lease expired:");
    for (user, owner) in &after {
        let moved = if before[user] != *owner { "  (moved)" } else { "" };
        println!("  {user:<6} -> {owner}{moved}");
    }
    assert!(after.values().all(|owner| owner != "cache-b"));

    for (_, lease) in leases.iter().filter(|(name, _)| *name != "cache-b") {
        client.lease_revoke(*lease).await?;
    }
    Ok(())
}
