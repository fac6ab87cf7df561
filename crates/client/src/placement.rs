//! Consistent hashing: the one definition of which ring members own a key.
//!
//! Fixed and documented so any client can compute the same answer (test vectors in
//! `docs/ring-vectors.json`, checked by a unit test):
//! - `hash(s)` = FNV-1a 64 over the UTF-8 bytes of `s`, then the splitmix64 finalizer
//!   (`z ^= z >> 30; z *= 0xbf58476d1ce4e5b9; z ^= z >> 27; z *= 0x94d049bb133111eb;
//!   z ^= z >> 31`, wrapping). FNV alone spreads similar strings poorly; the finalizer
//!   mixes every input bit into every output bit.
//! - each member of weight `w` owns `w * VNODES_PER_WEIGHT` points on a 64-bit circle,
//!   at `hash("{member}#{i}")` for `i` in `0..w * VNODES_PER_WEIGHT`;
//! - key `k` lives at `hash(k)`; its owners are the first `n` *distinct* members met
//!   walking clockwise from there (the first point `>= hash(k)`, wrapping past the
//!   top); points that collide are ordered by member name.
//!
//! Adding a member moves only the keys whose first owner becomes the new member (about
//! 1/(N+1) of them) and never moves a key between two members that stayed. 1024 points
//! per unit of weight keep every member within about ±10% of its fair share.

/// Points per unit of weight.
pub const VNODES_PER_WEIGHT: u32 = 1024;

pub fn hash(text: &str) -> u64 {
    let fnv = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3));
    let mut z = fnv;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The circle of one ring at one epoch.
pub struct Placement {
    /// (point, member index), sorted.
    points: Vec<(u64, u32)>,
    members: Vec<String>,
}

impl Placement {
    /// Builds the circle for `(member, weight)` pairs.
    pub fn new<'a>(members: impl IntoIterator<Item = (&'a str, u32)>) -> Self {
        let mut names = Vec::new();
        let mut points = Vec::new();
        for (index, (member, weight)) in members.into_iter().enumerate() {
            names.push(member.to_string());
            for i in 0..weight.saturating_mul(VNODES_PER_WEIGHT) {
                points.push((hash(&format!("{member}#{i}")), index as u32));
            }
        }
        // Ties (astronomically rare) break by member name, not by arrival order.
        points.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| names[a.1 as usize].cmp(&names[b.1 as usize])));
        Self { points, members: names }
    }

    /// How many points the circle has.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The first `replicas` distinct owners of `key`, in order (fewer if the ring is smaller).
    pub fn owners(&self, key: &str, replicas: usize) -> Vec<&str> {
        let wanted = replicas.min(self.members.len());
        let mut owners: Vec<&str> = Vec::with_capacity(wanted);
        if wanted == 0 {
            return owners;
        }
        let start = self.points.partition_point(|(point, _)| *point < hash(key));
        for step in 0..self.points.len() {
            let (_, member) = self.points[(start + step) % self.points.len()];
            let name = self.members[member as usize].as_str();
            if !owners.contains(&name) {
                owners.push(name);
                if owners.len() == wanted {
                    break;
                }
            }
        }
        owners
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(names: &[String]) -> Placement {
        Placement::new(names.iter().map(|n| (n.as_str(), 1)))
    }

    #[test]
    fn adding_a_member_moves_about_its_share_and_nothing_between_stayers() {
        let before: Vec<String> = (0..9).map(|i| format!("node-{i}")).collect();
        let mut after = before.clone();
        after.push("node-new".into());
        let (old, new) = (ring(&before), ring(&after));
        let keys = 20_000;
        let mut moved = 0;
        for k in 0..keys {
            let key = format!("key-{k}");
            let (was, is) = (old.owners(&key, 1)[0], new.owners(&key, 1)[0]);
            if was != is {
                assert_eq!(is, "node-new", "{key} moved from {was} to {is}, between two members that stayed");
                moved += 1;
            }
        }
        let share = moved as f64 / keys as f64;
        assert!((share - 0.1).abs() < 0.03, "moved {share:.3} of keys, expected about 1/10");
    }

    #[test]
    fn equal_weights_get_a_fair_share_within_ten_percent() {
        let names: Vec<String> = (0..10).map(|i| format!("10.0.0.{i}:7000")).collect();
        let placement = ring(&names);
        let keys = 100_000;
        let mut load = std::collections::HashMap::new();
        for k in 0..keys {
            *load.entry(placement.owners(&format!("user/{k}"), 1)[0]).or_insert(0) += 1;
        }
        let fair = keys as f64 / names.len() as f64;
        for (member, count) in load {
            let off = (count as f64 - fair).abs() / fair;
            assert!(off <= 0.10, "{member} has {count} keys, {:.1}% off its fair share", off * 100.0);
        }
    }

    #[test]
    fn weight_scales_the_share_and_replicas_are_distinct() {
        let placement = Placement::new([("big", 3), ("small", 1)]);
        let big = (0..20_000).filter(|k| placement.owners(&format!("k{k}"), 1)[0] == "big").count();
        assert!((14_000..16_000).contains(&big), "weight 3 of 4 got {big} of 20000");
        assert_eq!(placement.owners("k", 5).len(), 2, "no more owners than members");
        let owners = placement.owners("k", 2);
        assert_ne!(owners[0], owners[1]);
        assert!(Placement::new(std::iter::empty()).owners("k", 3).is_empty());
    }

    #[test]
    fn the_documented_test_vectors_hold() {
        let vectors: serde_json::Value = serde_json::from_str(include_str!("../../../docs/ring-vectors.json")).expect("vectors are JSON");
        for (text, expected) in vectors["hashes"].as_object().expect("hashes") {
            assert_eq!(format!("{:016x}", hash(text)), expected.as_str().unwrap_or_default(), "hash({text:?})");
        }
        for case in vectors["lookups"].as_array().expect("lookups") {
            let members: Vec<(String, u32)> = case["members"]
                .as_array()
                .expect("members")
                .iter()
                .map(|m| (m["name"].as_str().unwrap_or_default().to_string(), m["weight"].as_u64().unwrap_or(1) as u32))
                .collect();
            let placement = Placement::new(members.iter().map(|(n, w)| (n.as_str(), *w)));
            let replicas = case["replicas"].as_u64().unwrap_or(1) as usize;
            for (key, owners) in case["owners"].as_object().expect("owners") {
                let expected: Vec<&str> = owners.as_array().expect("list").iter().filter_map(|o| o.as_str()).collect();
                assert_eq!(placement.owners(key, replicas), expected, "owners of {key:?}");
            }
        }
    }
}
