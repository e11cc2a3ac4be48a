//! `xs:duration` values (`PT1H2M3.5S`), as seconds.

/// Seconds in an `xs:duration` (`P[nY][nM][nD][T[nH][nM][n.nS]]`). Years and months have no
/// fixed length; they are taken as 365 and 30 days. `None` when it does not parse or is negative.
pub fn parse_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    if date.is_empty() && time.is_none_or(str::is_empty) {
        return None;
    }
    let mut total = 0.0;
    let mut parse = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        let mut next_unit = 0;
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
                continue;
            }
            let at = units[next_unit..].iter().position(|(u, _)| *u == c)? + next_unit;
            let n: f64 = num.parse().ok()?;
            total += n * units[at].1;
            num.clear();
            next_unit = at + 1;
        }
        num.is_empty().then_some(())
    };
    parse(date, &[('Y', 365.0 * 86400.0), ('M', 30.0 * 86400.0), ('W', 7.0 * 86400.0), ('D', 86400.0)])?;
    if let Some(t) = time {
        if t.is_empty() {
            return None;
        }
        parse(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    total.is_finite().then_some(total)
}

/// `secs` as an `xs:duration` (`PT12.345S`), to the millisecond.
pub fn format_duration(secs: f64) -> String {
    let ms = (secs.max(0.0) * 1000.0).round() as u64;
    format!("PT{}.{:03}S", ms / 1000, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT1H2M3.5S"), Some(3723.5));
        assert_eq!(parse_duration("PT0S"), Some(0.0));
        assert_eq!(parse_duration("P1DT1S"), Some(86401.0));
        assert_eq!(parse_duration("P0Y0M0DT0H3M30.000S"), Some(210.0));
        assert_eq!(parse_duration("PT634.566S"), Some(634.566));
        for bad in ["", "P", "PT", "1H", "PT1X", "PT1S2M", "-PT1S", "PT1.2.3S", "PTS"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(format_duration(3723.5), "PT3723.500S");
        assert_eq!(parse_duration(&format_duration(12.3456)), Some(12.346));
    }
}
