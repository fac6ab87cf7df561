//! Consul's status endpoints, and enough of `/v1/agent/self` for clients that probe
//! it: the leader and the voters are the Raft leader and members, named by the
//! addresses they advertise (Concord's HTTP addresses: there is no Consul server
//! port). Open like `/v1/status/*` on Consul, unless tokens are required.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::AppState;
use crate::api::access;
use crate::api::error::ApiError;
use crate::state::auth::Role;

/// `GET /v1/status/leader`: the leader's address, `""` when none is known.
pub async fn leader(State(app): State<AppState>) -> Result<Response, ApiError> {
    access::need(Role::Read)?;
    let metrics = app.raft.metrics().borrow().clone();
    let address = metrics.current_leader.and_then(|id| metrics.membership_config.membership().get_node(&id).map(|node| node.addr.clone()));
    Ok(Json(address.unwrap_or_default()).into_response())
}

/// `GET /v1/status/peers`: the voters' addresses.
pub async fn peers(State(app): State<AppState>) -> Result<Response, ApiError> {
    access::need(Role::Read)?;
    let metrics = app.raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    let voters: Vec<String> = membership.voter_ids().filter_map(|id| membership.get_node(&id).map(|node| node.addr.clone())).collect();
    Ok(Json(voters).into_response())
}

/// `GET /v1/agent/self`: this node as an agent (a server of datacenter `dc1`).
pub async fn agent_self(State(app): State<AppState>) -> Result<Response, ApiError> {
    access::need(Role::Read)?;
    let metrics = app.raft.metrics().borrow().clone();
    let address = metrics.membership_config.membership().get_node(&app.node_id).map(|node| node.addr.clone()).unwrap_or_default();
    let (host, port) = address.rsplit_once(':').map_or((address.as_str(), 0), |(host, port)| (host, port.parse().unwrap_or(0)));
    let name = format!("concord-{}", app.node_id);
    Ok(Json(json!({
        "Config": {
            "Datacenter": "dc1",
            "NodeName": name,
            "NodeID": app.node_id.to_string(),
            "Server": true,
            "Version": env!("CARGO_PKG_VERSION"),
        },
        "Member": { "Name": name, "Addr": host, "Port": port, "Status": 1, "Tags": { "role": "concord" } },
    }))
    .into_response())
}
