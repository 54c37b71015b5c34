//! Durations as written in the file: a whole number followed by a unit (`"50ms"`, `"300s"`,
//! `"10m"`, `"2h"`, `"30d"`).

use std::time::Duration;

const UNITS: [(&str, u64); 5] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Parses `"300s"` and friends. The error is a complete sentence for a diagnostic.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration {text:?}: expected a whole number followed by a unit \
             (ms, s, m, h, d), e.g. \"30s\""
        )
    };
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    if number.is_empty() {
        return Err(bad());
    }
    let Some(&(_, millis_per_unit)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(bad());
    };
    let number: u64 = number.parse().map_err(|_| bad())?;
    let millis = number
        .checked_mul(millis_per_unit)
        .ok_or_else(|| format!("duration {text:?} is too large"))?;
    Ok(Duration::from_millis(millis))
}

/// Renders a duration with the largest unit that represents it exactly (`"10m"`, `"50ms"`).
pub(crate) fn format(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return "0s".to_owned();
    }
    for (name, per_unit) in UNITS.iter().rev() {
        let per_unit = u128::from(*per_unit);
        if millis.is_multiple_of(per_unit) {
            return format!("{}{name}", millis / per_unit);
        }
    }
    format!("{millis}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(parse("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_malformed() {
        for text in [
            "",
            "s",
            "10",
            "10 s",
            "1.5s",
            "-1s",
            "10S",
            "10sec",
            "99999999999999999999d",
        ] {
            assert!(parse(text).is_err(), "{text:?} should be rejected");
        }
        assert!(parse("10").unwrap_err().contains("e.g. \"30s\""));
    }

    #[test]
    fn formats_with_largest_exact_unit() {
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(Duration::from_millis(50)), "50ms");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format(Duration::from_secs(90)), "90s");
        assert_eq!(format(Duration::from_secs(600)), "10m");
        assert_eq!(format(Duration::from_secs(7200)), "2h");
        assert_eq!(format(Duration::from_secs(30 * 86_400)), "30d");
        for text in ["50ms", "29s", "10m", "2h", "3650d"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
