//! Linearizability checking: a Wing–Gong–Lowe search with memoization (the algorithm
//! Knossos and Porcupine use), for any sequential model.
//!
//! Each operation is a call (at its invocation time) and a return (at its completion
//! time); an operation with unknown outcome (`info`) has no return: it may take
//! effect at any point after its call, or never. The search walks the events in time
//! order and tries to linearize each call (apply it to the model) before the first
//! return it has not yet passed; when a return is reached whose operation is not
//! linearized, it backtracks. A (set of linearized operations, model state) pair
//! seen before is not explored again. The history is linearizable when every
//! completed operation has been linearized. A search that runs past its deadline is
//! `Unknown`, never a pass.

use std::collections::HashSet;
use std::hash::Hash;
use std::time::Instant;

/// A sequential specification.
pub trait Model {
    type State: Clone + Eq + Hash;
    type Op;
    /// The state after `op`, or `None` if `op` cannot happen in `state` (e.g. a read
    /// that saw another value).
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;
}

pub struct Entry<O> {
    pub op: O,
    pub call_ns: u64,
    /// `None` for an operation whose outcome is unknown.
    pub return_ns: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// No order works. `stuck` is the operation whose return the deepest attempt
    /// could not pass, `linearized` how many operations that attempt had placed.
    Invalid {
        stuck: usize,
        linearized: usize,
    },
    Unknown,
}

#[derive(Clone, Copy)]
struct Event {
    entry: usize,
    is_call: bool,
    /// For a call: its return event, if any.
    partner: Option<usize>,
    prev: usize,
    next: usize,
}

/// The events as a doubly linked list (index 0 is the head sentinel).
struct Events {
    events: Vec<Event>,
}

impl Events {
    fn new<O>(entries: &[Entry<O>]) -> Self {
        let mut timed: Vec<(u64, bool, usize)> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            timed.push((entry.call_ns, true, i));
            if let Some(ret) = entry.return_ns {
                timed.push((ret, false, i));
            }
        }
        // At equal times calls come first: overlapping is the permissive reading.
        timed.sort_by_key(|&(t, is_call, i)| (t, !is_call, i));
        let sentinel = Event { entry: usize::MAX, is_call: false, partner: None, prev: 0, next: usize::MAX };
        let mut events = vec![sentinel];
        let mut return_of = vec![None; entries.len()];
        for (position, &(_, is_call, entry)) in timed.iter().enumerate() {
            let index = position + 1;
            events.push(Event { entry, is_call, partner: None, prev: index - 1, next: if position + 1 < timed.len() { index + 1 } else { usize::MAX } });
            if !is_call {
                return_of[entry] = Some(index);
            }
        }
        events[0].next = if timed.is_empty() { usize::MAX } else { 1 };
        for event in events.iter_mut().skip(1) {
            if event.is_call {
                event.partner = return_of[event.entry];
            }
        }
        Events { events }
    }

    fn unlink(&mut self, index: usize) {
        let Event { prev, next, .. } = self.events[index];
        self.events[prev].next = next;
        if next != usize::MAX {
            self.events[next].prev = prev;
        }
    }

    fn relink(&mut self, index: usize) {
        let Event { prev, next, .. } = self.events[index];
        self.events[prev].next = index;
        if next != usize::MAX {
            self.events[next].prev = index;
        }
    }

    /// Takes a call (and its return) out of the list.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        if let Some(ret) = self.events[call].partner {
            self.unlink(ret);
        }
    }

    /// Puts them back (in the reverse order of `lift`).
    fn unlift(&mut self, call: usize) {
        if let Some(ret) = self.events[call].partner {
            self.relink(ret);
        }
        self.relink(call);
    }
}

pub fn check<M: Model>(model: &M, initial: M::State, entries: &[Entry<M::Op>], deadline: Instant) -> Verdict {
    let mut events = Events::new(entries);
    let words = entries.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut count = 0usize;
    let mut state = initial;
    let mut seen: HashSet<(Vec<u64>, M::State)> = HashSet::new();
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut returns_left = entries.iter().filter(|e| e.return_ns.is_some()).count();
    let mut deepest = (0usize, usize::MAX);
    let mut node = events.events[0].next;
    let mut steps = 0u64;
    while returns_left > 0 {
        steps += 1;
        if steps.is_multiple_of(4096) && Instant::now() > deadline {
            return Verdict::Unknown;
        }
        if node == usize::MAX {
            // Only calls left before the end, yet returns remain: cannot happen with
            // a well-formed list; report it rather than loop.
            return Verdict::Unknown;
        }
        let event = events.events[node];
        if event.is_call {
            if let Some(next_state) = model.step(&state, &entries[event.entry].op) {
                let (word, bit) = (event.entry / 64, 1u64 << (event.entry % 64));
                linearized[word] |= bit;
                if seen.insert((linearized.clone(), next_state.clone())) {
                    stack.push((node, std::mem::replace(&mut state, next_state)));
                    count += 1;
                    events.lift(node);
                    if event.partner.is_some() {
                        returns_left -= 1;
                    }
                    node = events.events[0].next;
                    continue;
                }
                linearized[word] &= !bit;
            }
            node = event.next;
        } else {
            if count >= deepest.0 {
                deepest = (count, event.entry);
            }
            let Some((call, previous)) = stack.pop() else {
                return Verdict::Invalid { stuck: deepest.1, linearized: deepest.0 };
            };
            let entry = events.events[call].entry;
            linearized[entry / 64] &= !(1u64 << (entry % 64));
            count -= 1;
            state = previous;
            events.unlift(call);
            if events.events[call].partner.is_some() {
                returns_left += 1;
            }
            node = events.events[call].next;
        }
    }
    Verdict::Valid
}

/// A read/write/compare-and-swap register over unique values (`None`: absent).
pub struct Register;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOp {
    Read(Option<i64>),
    Write(i64),
    Cas { expected: i64, new: i64 },
}

impl Model for Register {
    type State = Option<i64>;
    type Op = RegisterOp;
    fn step(&self, state: &Option<i64>, op: &RegisterOp) -> Option<Option<i64>> {
        match op {
            RegisterOp::Read(seen) => (seen == state).then_some(*state),
            RegisterOp::Write(value) => Some(Some(*value)),
            RegisterOp::Cas { expected, new } => (*state == Some(*expected)).then_some(Some(*new)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(op: RegisterOp, call_ns: u64, return_ns: Option<u64>) -> Entry<RegisterOp> {
        Entry { op, call_ns, return_ns }
    }

    fn far() -> Instant {
        Instant::now() + std::time::Duration::from_secs(10)
    }

    #[test]
    fn sequential_and_concurrent_histories() {
        use RegisterOp::*;
        // write 1, then read 1: fine.
        let ok = [entry(Write(1), 0, Some(10)), entry(Read(Some(1)), 20, Some(30))];
        assert_eq!(check(&Register, None, &ok, far()), Verdict::Valid);
        // A read after a completed write sees the old value: not linearizable.
        let stale = [entry(Write(1), 0, Some(10)), entry(Write(2), 20, Some(30)), entry(Read(Some(1)), 40, Some(50))];
        assert!(matches!(check(&Register, None, &stale, far()), Verdict::Invalid { stuck: 2, .. }));
        // The same read concurrent with the second write: fine.
        let concurrent = [entry(Write(1), 0, Some(10)), entry(Write(2), 20, Some(45)), entry(Read(Some(1)), 40, Some(50))];
        assert_eq!(check(&Register, None, &concurrent, far()), Verdict::Valid);
        // An unknown write may have happened (read sees it) ...
        let maybe = [entry(Write(1), 0, Some(10)), entry(Write(2), 20, None), entry(Read(Some(2)), 100, Some(110))];
        assert_eq!(check(&Register, None, &maybe, far()), Verdict::Valid);
        // ... or not (read does not), but not both in a row.
        let flip = [entry(Write(1), 0, Some(10)), entry(Write(2), 20, None), entry(Read(Some(2)), 100, Some(110)), entry(Read(Some(1)), 120, Some(130))];
        assert!(matches!(check(&Register, None, &flip, far()), Verdict::Invalid { .. }));
        // CAS from the right value only.
        let cas = [entry(Write(1), 0, Some(10)), entry(Cas { expected: 1, new: 3 }, 20, Some(30)), entry(Read(Some(3)), 40, Some(50))];
        assert_eq!(check(&Register, None, &cas, far()), Verdict::Valid);
        let bad_cas = [entry(Write(1), 0, Some(10)), entry(Cas { expected: 2, new: 3 }, 20, Some(30))];
        assert!(matches!(check(&Register, None, &bad_cas, far()), Verdict::Invalid { .. }));
        // Reads of the initial absence.
        assert_eq!(check(&Register, None, &[entry(Read(None), 0, Some(1))], far()), Verdict::Valid);
    }

    #[test]
    fn an_exhausted_budget_is_unknown_not_valid() {
        use RegisterOp::*;
        // Many concurrent unknown writes and reads that rule most orders out.
        let mut entries: Vec<Entry<RegisterOp>> = (0..60).map(|i| entry(Write(i), 0, None)).collect();
        entries.extend((0..60).map(|i| entry(Read(Some(59 - i)), 1000 + i as u64 * 10, Some(1005 + i as u64 * 10))));
        let past = Instant::now();
        assert_eq!(check(&Register, None, &entries, past), Verdict::Unknown);
    }
}
