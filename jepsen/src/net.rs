//! The hosts: one network namespace per node, joined by a bridge, and the faults the
//! network can have (partitions by packet drop, delay and loss).
//!
//! Node `i` lives in namespace `cj<run>n<i>` with address `10.77.<run>.<10+i>` on its
//! `eth0`, a veth whose other end is on the bridge `cj<run>br` (address
//! `10.77.<run>.1`) in the root namespace, where the clients run. There is no default
//! route anywhere: nothing leaves the machine. A partition is `iptables -j DROP` in
//! the receiving node's namespace for packets from the nodes on the other side, so
//! connections hang as on a real network instead of being reset; clients (from the
//! bridge address) are never cut off, as in Jepsen. Everything made here is removed
//! by `Net::teardown`, by name, and `Drop` calls it.

use std::process::Command;

/// Runs a command, failing with its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program).args(args).output().map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() { Ok(()) } else { Err(format!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim())) }
}

pub struct Host {
    pub id: u64,
    pub namespace: String,
    pub ip: String,
}

pub struct Net {
    pub hosts: Vec<Host>,
    pub bridge: String,
    pub bridge_ip: String,
    forward_rule: Vec<String>,
    torn_down: bool,
    /// The kernel has the `netem` qdisc (some sandboxed kernels do not).
    netem: bool,
}

/// Why the suite cannot run here, if it cannot (it needs root and `ip`, `iptables`, `tc`).
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("the Jepsen suite needs root (network namespaces, iptables, tc)".into());
    }
    for tool in ["ip", "iptables", "tc"] {
        if Command::new(tool).arg("-V").output().is_err() && Command::new(tool).arg("-h").output().is_err() {
            return Some(format!("the Jepsen suite needs `{tool}` (apt-get install iproute2 iptables)"));
        }
    }
    None
}

impl Net {
    /// Creates the bridge and `nodes` hosts under the first free run number from
    /// `first` on (1..=250). Creating the bridge is the claim: it fails when another
    /// run has that number, and every run creates its bridge before anything else, so
    /// namespaces found under a number just claimed are leftovers of a run that was
    /// killed outright, and are removed.
    pub fn setup(first: u8, nodes: u64) -> Result<Net, String> {
        for offset in 0..250u16 {
            let run = ((u16::from(first) + offset - 1) % 250 + 1) as u8;
            let bridge = format!("cj{run}br");
            if self::run("ip", &["link", "add", &bridge, "type", "bridge"]).is_err() {
                continue;
            }
            let bridge_ip = format!("10.77.{run}.1");
            let hosts = (1..=nodes).map(|id| Host { id, namespace: format!("cj{run}n{id}"), ip: format!("10.77.{run}.{}", 10 + id) }).collect();
            let forward_rule = ["FORWARD", "-i", &bridge, "-o", &bridge, "-j", "ACCEPT"].map(String::from).to_vec();
            let mut net = Net { hosts, bridge, bridge_ip, forward_rule, torn_down: false, netem: false };
            net.remove_hosts();
            net.create().inspect_err(|_| net.teardown())?;
            net.netem = net.in_namespace(1, "tc", &["qdisc", "replace", "dev", "eth0", "root", "netem", "delay", "1ms"]).is_ok();
            net.heal_links()?;
            return Ok(net);
        }
        Err("every run number (1 to 250) is taken: remove stale cj*br bridges".into())
    }

    fn create(&self) -> Result<(), String> {
        // The bridge exists: `setup` created it to claim the run number.
        let bridge = self.bridge.as_str();
        run("ip", &["addr", "add", &format!("{}/24", self.bridge_ip), "dev", bridge])?;
        run("ip", &["link", "set", bridge, "up"])?;
        // Bridged packets may pass the root namespace's FORWARD chain (br_netfilter);
        // make sure a DROP policy there does not cut the nodes off from each other.
        let mut insert = vec!["-I"];
        insert.extend(self.forward_rule.iter().map(String::as_str));
        run("iptables", &insert)?;
        for host in &self.hosts {
            let veth = self.veth(host.id);
            run("ip", &["netns", "add", &host.namespace])?;
            run("ip", &["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &host.namespace])?;
            run("ip", &["link", "set", &veth, "master", bridge, "up"])?;
            run("ip", &["-n", &host.namespace, "addr", "add", &format!("{}/24", host.ip), "dev", "eth0"])?;
            run("ip", &["-n", &host.namespace, "link", "set", "eth0", "up"])?;
            run("ip", &["-n", &host.namespace, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// Removes everything `setup` made (what is already gone is skipped).
    pub fn teardown(&mut self) {
        if self.torn_down {
            return;
        }
        self.torn_down = true;
        self.remove_hosts();
        let _ = run("ip", &["link", "del", &self.bridge]);
        let mut delete = vec!["-D"];
        delete.extend(self.forward_rule.iter().map(String::as_str));
        while run("iptables", &delete).is_ok() {}
    }

    /// Removes the hosts' namespaces and links (those that exist).
    fn remove_hosts(&self) {
        for host in &self.hosts {
            // The veth pair goes with its root end at once; a namespace lingers in the
            // kernel while sockets of it wait out TIME_WAIT, and then goes by itself.
            let _ = run("ip", &["link", "del", &self.veth(host.id)]);
            let _ = run("ip", &["netns", "del", &host.namespace]);
        }
    }

    /// The root-namespace end of node `id`'s link.
    fn veth(&self, id: u64) -> String {
        format!("{}v{id}", &self.bridge[..self.bridge.len() - 2])
    }

    fn host(&self, id: u64) -> &Host {
        &self.hosts[(id - 1) as usize]
    }

    fn in_namespace(&self, id: u64, program: &str, args: &[&str]) -> Result<(), String> {
        let mut full = vec!["netns", "exec", &self.host(id).namespace, program];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Cuts the network so that each node hears only the nodes `hears(node)` lists
    /// (besides itself and the clients). Replaces any earlier partition.
    pub fn partition(&self, hears: &dyn Fn(u64) -> Vec<u64>) -> Result<(), String> {
        self.heal_partition()?;
        for host in &self.hosts {
            let heard = hears(host.id);
            for other in self.hosts.iter().filter(|o| o.id != host.id && !heard.contains(&o.id)) {
                self.in_namespace(host.id, "iptables", &["-A", "INPUT", "-s", &other.ip, "-j", "DROP"])?;
            }
        }
        Ok(())
    }

    pub fn heal_partition(&self) -> Result<(), String> {
        for host in &self.hosts {
            self.in_namespace(host.id, "iptables", &["-F", "INPUT"])?;
        }
        Ok(())
    }

    /// Delay (with jitter) and loss on every node's link, with `tc netem`; where the
    /// kernel has no netem, loss alone, by random drops in iptables. Says which.
    pub fn slow(&self, delay_ms: u64, jitter_ms: u64, loss_percent: u64) -> Result<&'static str, String> {
        for host in &self.hosts {
            if self.netem {
                let (delay, jitter, loss) = (format!("{delay_ms}ms"), format!("{jitter_ms}ms"), format!("{loss_percent}%"));
                self.in_namespace(host.id, "tc", &["qdisc", "replace", "dev", "eth0", "root", "netem", "delay", &delay, &jitter, "loss", &loss])?;
            } else {
                let rule = self.loss_rule(loss_percent);
                let mut add = vec!["-A"];
                add.extend(rule.iter().map(String::as_str));
                self.in_namespace(host.id, "iptables", &add)?;
            }
        }
        Ok(if self.netem { "netem delay and loss" } else { "loss only (this kernel has no netem)" })
    }

    fn loss_rule(&self, loss_percent: u64) -> Vec<String> {
        let probability = format!("{:.2}", loss_percent.max(1) as f64 / 100.0);
        ["INPUT", "-m", "statistic", "--mode", "random", "--probability", &probability, "-j", "DROP"].map(String::from).to_vec()
    }

    pub fn heal_links(&self) -> Result<(), String> {
        for host in &self.hosts {
            // Absent when never slowed: not an error.
            let _ = self.in_namespace(host.id, "tc", &["qdisc", "del", "dev", "eth0", "root"]);
            // Random-drop rules, whatever their probability.
            let _ = self.in_namespace(host.id, "sh", &["-c", "iptables -S INPUT | grep -- '-m statistic' | sed 's/^-A/-D/' | xargs -r -L1 iptables"]);
        }
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.teardown();
    }
}
