//! The nemesis: faults scheduled at random (from the run's seed), each recorded in
//! the history when it starts and when it is healed.
//!
//! Faults: network partitions by packet drop (random halves, the leader isolated,
//! majorities-ring where each node sees a different majority, and bridge where one
//! node sees both halves), kill -9 of a random node or the leader (restarted on its
//! data at heal), SIGSTOP of a random node or the leader (SIGCONT at heal), and
//! delay plus loss on every link (`tc netem`), and membership changes (a node removed
//! and a fresh one, with a new id and no data, joining on its host). The schedule alternates a healthy
//! stretch and a fault; everything is healed before the run's final phase.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::history::{History, Op, Process, Type};
use crate::net::Net;
use crate::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    Partition,
    Kill,
    Pause,
    Netem,
    /// Remove a node from the membership and add a fresh one (new id, no data) on
    /// its host.
    Membership,
}

/// What is broken right now, so heal knows what to undo.
#[derive(Default)]
struct Broken {
    partition: bool,
    netem: bool,
    processes: bool,
}

fn record(history: &History, kind: Type, f: &str, value: Value) {
    history.record(Op { process: Process::Nemesis, kind, f: f.into(), key: Value::Null, value, time: 0, node: None, error: None });
}

/// Each node's view in a partition: who it still hears.
fn partition_plan(rng: &mut Rng, n: u64, leader: Option<u64>) -> (String, Vec<Vec<u64>>) {
    let all: Vec<u64> = (1..=n).collect();
    let mut shuffled = all.clone();
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let halves = |a: &[u64], b: &[u64]| -> Vec<Vec<u64>> { all.iter().map(|x| if a.contains(x) { a.to_vec() } else { b.to_vec() }).collect() };
    match rng.below(4) {
        0 => {
            let cut = (n / 2) as usize;
            ("random-halves".into(), halves(&shuffled[..cut], &shuffled[cut..]))
        }
        1 => {
            let lonely = leader.unwrap_or(shuffled[0]);
            let rest: Vec<u64> = all.iter().copied().filter(|x| *x != lonely).collect();
            ("isolate-leader".into(), halves(&[lonely], &rest))
        }
        2 => {
            // Node x hears itself and its nearest ring neighbours, a bare majority:
            // every node is in a majority, and no two see the same one (with 3 nodes
            // the cut is one-way: x hears x+1, which does not hear x).
            let others = n / 2;
            let (left, right) = (others / 2, others - others / 2);
            let views = all
                .iter()
                .map(|&x| {
                    let mut view = vec![x];
                    view.extend((1..=right).map(|d| (x - 1 + d) % n + 1));
                    view.extend((1..=left).map(|d| (x - 1 + n - d) % n + 1));
                    view
                })
                .collect();
            ("majorities-ring".into(), views)
        }
        _ => {
            // One node (the bridge) hears both halves; the halves do not hear each other.
            let bridge = shuffled[0];
            let cut = ((n - 1) / 2) as usize + 1;
            let (a, b) = (&shuffled[1..cut], &shuffled[cut..]);
            let views = all
                .iter()
                .map(|x| {
                    if *x == bridge {
                        all.clone()
                    } else if a.contains(x) {
                        a.iter().copied().chain([bridge]).collect()
                    } else {
                        b.iter().copied().chain([bridge]).collect()
                    }
                })
                .collect();
            ("bridge".into(), views)
        }
    }
}

pub struct Nemesis {
    pub faults: Vec<Fault>,
    pub rng: Rng,
    broken: Broken,
}

impl Nemesis {
    pub fn new(faults: Vec<Fault>, rng: Rng) -> Self {
        Self { faults, rng, broken: Broken::default() }
    }

    /// Starts one random fault.
    pub async fn strike(&mut self, net: &Net, cluster: &mut Cluster, history: &History, http: &reqwest::Client) -> Result<(), String> {
        if self.faults.is_empty() {
            return Ok(());
        }
        let fault = *self.rng.pick(&self.faults);
        let n = cluster.nodes.len() as u64;
        // Faults act on hosts; the leader is reported by its Raft id.
        let leader = cluster.leader(http).await.and_then(|id| cluster.host_of(id));
        let target = |rng: &mut Rng| if rng.chance(50) { leader.unwrap_or(1 + rng.below(n)) } else { 1 + rng.below(n) };
        match fault {
            Fault::Partition => {
                let (name, views) = partition_plan(&mut self.rng, n, leader);
                record(history, Type::Invoke, "start-partition", json!({ "kind": name, "hears": views }));
                net.partition(&|id| views[(id - 1) as usize].clone())?;
                self.broken.partition = true;
                record(history, Type::Ok, "start-partition", json!({ "kind": name }));
            }
            Fault::Kill => {
                let id = target(&mut self.rng);
                record(history, Type::Invoke, "kill", json!(id));
                cluster.kill(id);
                self.broken.processes = true;
                record(history, Type::Ok, "kill", json!(id));
            }
            Fault::Pause => {
                let id = target(&mut self.rng);
                record(history, Type::Invoke, "pause", json!(id));
                cluster.pause(id);
                self.broken.processes = true;
                record(history, Type::Ok, "pause", json!(id));
            }
            Fault::Membership => {
                let host = 1 + self.rng.below(n);
                let via_host = (host % n) + 1;
                let (old, via) = (cluster.nodes[(host - 1) as usize].id, cluster.nodes[(via_host - 1) as usize].url());
                record(history, Type::Invoke, "replace-member", json!({ "host": host, "remove": old }));
                let removed = http.delete(format!("{via}/v1/cluster/members/{old}")).timeout(std::time::Duration::from_secs(15)).send().await;
                match removed {
                    Ok(answer) if answer.status().is_success() => {
                        let added = cluster.replace(host, via)?;
                        record(history, Type::Ok, "replace-member", json!({ "host": host, "removed": old, "added": added }));
                    }
                    Ok(answer) => {
                        let status = answer.status();
                        record(history, Type::Fail, "replace-member", json!({ "host": host, "error": status.as_u16() }));
                    }
                    Err(e) => record(history, Type::Info, "replace-member", json!({ "host": host, "error": e.to_string() })),
                }
            }
            Fault::Netem => {
                let (delay, loss) = (5 + self.rng.below(50), 1 + self.rng.below(10));
                record(history, Type::Invoke, "start-netem", json!({ "delay_ms": delay, "loss_percent": loss }));
                let how = net.slow(delay, delay / 2, loss)?;
                self.broken.netem = true;
                record(history, Type::Ok, "start-netem", json!({ "delay_ms": delay, "loss_percent": loss, "how": how }));
            }
        }
        Ok(())
    }

    /// Undoes every fault in place.
    pub fn heal(&mut self, net: &Net, cluster: &mut Cluster, history: &History) -> Result<(), String> {
        if self.broken.partition {
            record(history, Type::Invoke, "stop-partition", Value::Null);
            net.heal_partition()?;
            record(history, Type::Ok, "stop-partition", Value::Null);
        }
        if self.broken.netem {
            record(history, Type::Invoke, "stop-netem", Value::Null);
            net.heal_links()?;
            record(history, Type::Ok, "stop-netem", Value::Null);
        }
        if self.broken.processes {
            record(history, Type::Invoke, "restart-and-resume", Value::Null);
            cluster.heal()?;
            record(history, Type::Ok, "restart-and-resume", Value::Null);
        }
        self.broken = Broken::default();
        Ok(())
    }

    /// How long the next healthy stretch and fault last.
    pub fn durations(&mut self) -> (Duration, Duration) {
        (Duration::from_millis(2000 + self.rng.below(3000)), Duration::from_millis(4000 + self.rng.below(6000)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_plans_are_symmetric_and_cut_something() {
        for seed in 0..200 {
            let mut rng = Rng::new(seed);
            for n in [3, 5] {
                let (name, views) = partition_plan(&mut rng, n, Some(1));
                for (i, view) in views.iter().enumerate() {
                    let me = i as u64 + 1;
                    assert!(view.contains(&me), "{name}: node {me} hears itself");
                    for other in view.iter().filter(|_| name != "majorities-ring") {
                        assert!(views[(*other - 1) as usize].contains(&me), "{name}: {me} hears {other} but not back");
                    }
                }
                assert!(views.iter().any(|v| v.len() < n as usize), "{name} with {n} nodes cuts nothing");
                if name == "majorities-ring" {
                    assert!(views.iter().all(|v| v.len() as u64 == n / 2 + 1), "every node in a bare majority: {views:?}");
                    let distinct: std::collections::HashSet<Vec<u64>> = views
                        .iter()
                        .map(|v| {
                            let mut v = v.clone();
                            v.sort();
                            v
                        })
                        .collect();
                    assert_eq!(distinct.len(), n as usize, "no two nodes see the same majority");
                }
            }
        }
    }
}
