//! Redis's glob patterns (`KEYS`, `SCAN ... MATCH`): `*` any run of bytes, `?` any one
//! byte, `[abc]`, `[^abc]` and `[a-z]` one byte of (or not of) a class, and `\x` the
//! byte `x` itself, as Redis's `stringmatchlen` reads them.
//!
//! A `*` is matched by backtracking only to the last star seen (the classic two-index
//! walk), so matching takes at most pattern length times text length steps, whatever
//! the pattern: a client cannot make a node spin with one.

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: the pattern after it, and the text it has taken up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p + 1, t));
            p += 1;
            continue;
        }
        if let Some(next) = one(pattern, p, text[t]) {
            p = next;
            t += 1;
            continue;
        }
        match star {
            Some((after_star, taken)) => {
                p = after_star;
                t = taken + 1;
                star = Some((after_star, taken + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|byte| *byte == b'*')
}

/// If the token at `pattern[p]` matches `byte`: where the next token starts.
fn one(pattern: &[u8], p: usize, byte: u8) -> Option<usize> {
    match pattern.get(p)? {
        b'?' => Some(p + 1),
        b'[' => class(pattern, p + 1, byte),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == byte).then_some(p + 2),
        literal => (*literal == byte).then_some(p + 1),
    }
}

/// A class starting at `pattern[p]` (after its `[`): whether `byte` is in it, and
/// where the pattern goes on. An unclosed class runs to the end of the pattern, as
/// in Redis.
fn class(pattern: &[u8], mut p: usize, byte: u8) -> Option<usize> {
    let negated = pattern.get(p) == Some(&b'^');
    if negated {
        p += 1;
    }
    let mut found = false;
    while p < pattern.len() && pattern[p] != b']' {
        if pattern[p] == b'\\' && p + 1 < pattern.len() {
            found |= pattern[p + 1] == byte;
            p += 2;
        } else if p + 2 < pattern.len() && pattern[p + 1] == b'-' && pattern[p + 2] != b']' {
            let (low, high) = (pattern[p].min(pattern[p + 2]), pattern[p].max(pattern[p + 2]));
            found |= (low..=high).contains(&byte);
            p += 3;
        } else {
            found |= pattern[p] == byte;
            p += 1;
        }
    }
    let next = if p < pattern.len() { p + 1 } else { p };
    (found != negated).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns_match_as_in_redis() {
        let yes = [
            ("*", ""),
            ("*", "anything"),
            ("user:*", "user:42"),
            ("h?llo", "hello"),
            ("h*llo", "heeeello"),
            ("h[ae]llo", "hallo"),
            ("h[^e]llo", "hallo"),
            ("h[a-b]llo", "hbllo"),
            ("h[b-a]llo", "hallo"),
            ("a\\*b", "a*b"),
            ("*a*b*", "xxaxxbxx"),
            ("[\\]]", "]"),
        ];
        for (pattern, text) in yes {
            assert!(matches(pattern.as_bytes(), text.as_bytes()), "{pattern} ~ {text}");
        }
        let no = [("user:*", "users"), ("h?llo", "hllo"), ("h[^e]llo", "hello"), ("h[a-b]llo", "hcllo"), ("a\\*b", "axb"), ("abc", "abcd"), ("", "a")];
        for (pattern, text) in no {
            assert!(!matches(pattern.as_bytes(), text.as_bytes()), "{pattern} !~ {text}");
        }
    }

    #[test]
    fn many_stars_against_a_long_text_end_without_a_match() {
        // A pattern that makes naive recursion try every split (exponentially many).
        let pattern = "*a".repeat(1000) + "b";
        assert!(!matches(pattern.as_bytes(), "a".repeat(5000).as_bytes()));
        assert!(matches(pattern.as_bytes(), ("a".repeat(1000) + "b").as_bytes()));
    }
}
