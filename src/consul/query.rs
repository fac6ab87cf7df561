//! A Consul request's query string, read as Consul reads it: a flag (`recurse`,
//! `keys`, `raw`, `stale`, `consistent`) is true when present, whatever its value;
//! numbers are unsigned decimals; durations are Go's (`10s`, `1m30s`, `250ms`).
//! Parameters this door does not use (`dc`, `pretty`, `ns`, ...) are ignored, as
//! Consul ignores what it does not know.

use std::time::Duration;

use crate::api::error::ApiError;

/// The parameters of one query string, in order.
pub struct Flags(Vec<(String, String)>);

impl Flags {
    pub fn parse(query: Option<&str>) -> Self {
        Self(form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect())
    }

    /// Whether `name` is present (Consul's reading of a flag).
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(key, _)| key == name)
    }

    /// The value of `name`, the first if repeated.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// `name` as an unsigned number, if present; `400 Invalid <name>` if not one.
    pub fn number(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.value(name)
            .map(|text| text.parse::<u64>().map_err(|_| ApiError::bad_request("invalid_query", format!("Invalid {name}: {text:?} is not an unsigned number"))))
            .transpose()
    }

    /// `name` as a Go duration, if present; `400 Invalid <name>` if not one.
    pub fn duration(&self, name: &str) -> Result<Option<Duration>, ApiError> {
        self.value(name)
            .map(|text| go_duration(text).ok_or_else(|| ApiError::bad_request("invalid_query", format!("Invalid {name} time: {text:?}"))))
            .transpose()
    }
}

/// A Go duration (`300ms`, `10s`, `1m30s`, `2h`; a bare number is seconds, as
/// Consul's `wait` also takes it).
pub fn go_duration(text: &str) -> Option<Duration> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if text.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').filter(|at| *at > 0)?;
        let amount: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total = total.checked_add(Duration::try_from_secs_f64(amount * unit).ok()?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_true_when_present_and_numbers_and_durations_read_as_consul_reads_them() {
        let flags = Flags::parse(Some("recurse&keys=false&index=42&wait=1m30s&separator=%2F&token=t"));
        assert!(flags.has("recurse") && flags.has("keys") && !flags.has("raw"), "present means true, whatever the value");
        assert_eq!(flags.number("index").unwrap(), Some(42));
        assert_eq!(flags.duration("wait").unwrap(), Some(Duration::from_secs(90)));
        assert_eq!((flags.value("separator"), flags.value("token")), (Some("/"), Some("t")));
        for (text, read) in [("250ms", Some(250)), ("10s", Some(10_000)), ("2h", Some(7_200_000)), ("7", Some(7_000)), ("1.5s", Some(1_500))] {
            assert_eq!(go_duration(text).map(|d| d.as_millis() as u64), read, "{text}");
        }
        for text in ["", "s", "10x", "-1s", "1s2"] {
            assert_eq!(go_duration(text), None, "{text:?}");
        }
        assert!(Flags::parse(Some("index=-1")).number("index").is_err());
        assert!(Flags::parse(Some("wait=soon")).duration("wait").is_err());
    }
}
