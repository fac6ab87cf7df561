//! Using Concord from Rust: write, read, compare-and-swap, list, delete.
//!
//! Start a cluster first (`make dev`), then:
//!
//! ```sh
//! cargo run --example kv_basics                          # the dev cluster's endpoints
//! CONCORD_ENDPOINTS=10.0.0.1:7001 cargo run --example kv_basics
//! ```
//!
//! The client fails over between endpoints, retries what is safe to retry, and gives
//! every write an idempotency key so a retried write applies once.

use concord::client::{Client, ClientError, Precondition, WriteOptions};

#[tokio::main]
async fn main() -> Result<(), ClientError> {
    let endpoints = std::env::var("CONCORD_ENDPOINTS").unwrap_or_else(|_| "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003".into());
    let client = Client::new(endpoints.split(',').map(String::from).collect());

    let put = client.put("example/config", "v1").await?;
    let node = put.node.map_or("an unnamed node".to_string(), |id| format!("node {id}"));
    println!("wrote example/config at revision {} (served by {node})", put.value.mod_revision);

    // A compare-and-swap that only succeeds if nobody changed the key since we read it.
    let current = client.get("example/config").await?.value.expect("just written");
    let swap = WriteOptions { precondition: Precondition::ModRevision(current.mod_revision), ..Default::default() };
    client.put_with("example/config", "v2", &swap).await?;
    // The same swap again fails: the key has moved on.
    match client.put_with("example/config", "v3", &swap).await {
        Err(e) if e.status() == Some(412) => println!("second swap refused, as expected: {e}"),
        Err(e) => return Err(e),
        Ok(_) => return Err(ClientError::Protocol("the second swap was accepted: compare-and-swap did not hold".into())),
    }

    for i in 0..3 {
        client.put(&format!("example/items/{i}"), format!("item {i}")).await?;
    }
    let page = client.list("example/items/", None, Some(10)).await?;
    for kv in &page.items {
        println!("{} = {}", kv.key, String::from_utf8_lossy(&kv.value));
    }

    client.delete("example/config").await?;
    let gone = client.get("example/config").await?.value.is_none();
    println!("deleted example/config; it is {}", if gone { "gone" } else { "still there (unexpected)" });
    Ok(())
}
