//! Durations written as `200ms`, `30s`, `10m`, `1h` or combinations such as `1m30s`, as used by
//! `spec.upgrade.timeout` and by the command-line flags.

use std::time::Duration;

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration \"{input}\": {why}; write it like \"200ms\", \"30s\", \"10m\" or \"1h30m\""
)]
pub struct DurationError {
    input: String,
    why: &'static str,
}

/// Parses a duration: one or more `<digits><unit>` parts, unit `ms`, `s`, `m` or `h`.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |why| DurationError {
        input: input.chars().take(64).collect(),
        why,
    };
    if input.is_empty() {
        return Err(err("it is empty"));
    }
    let bytes = input.as_bytes();
    let mut total = Duration::ZERO;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(err("expected a number"));
        }
        let number: u64 = input[start..i]
            .parse()
            .map_err(|_| err("the number is too large"))?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let millis_per_unit: u64 = match &input[unit_start..i] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "" => return Err(err("a unit (ms, s, m or h) is missing")),
            _ => return Err(err("the unit must be ms, s, m or h")),
        };
        let millis = number
            .checked_mul(millis_per_unit)
            .ok_or_else(|| err("it is too large"))?;
        total = total
            .checked_add(Duration::from_millis(millis))
            .ok_or_else(|| err("it is too large"))?;
    }
    Ok(total)
}

/// Formats a duration the way [`parse_duration`] reads it (`1h30m`, `200ms`).
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_with_a_clear_message() {
        for bad in [
            "",
            "10",
            "m",
            "10x",
            "1.5s",
            "-1s",
            "10 m",
            "99999999999999999999h",
        ] {
            let e = parse_duration(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad:?} was accepted"));
            assert!(e.to_string().contains("write it like"), "{e}");
        }
    }

    #[test]
    fn format_round_trips() {
        for ms in [1u64, 200, 1_000, 59_999, 60_000, 5_400_000, 3_723_004] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }
}
