//! RFC 3339 timestamps (image configs, API answers) without a calendar library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Seconds since the epoch of an RFC 3339 time (`2024-01-02T03:04:05.5Z`, `...+02:00`).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' => 0,
        c @ (b'+' | b'-') => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = oh * 3600 + om * 60;
            if *c == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset)
}

/// Nanoseconds since the epoch of an RFC 3339 time, fraction included.
pub fn parse_rfc3339_nanos(s: &str) -> Option<i128> {
    let secs = parse_rfc3339(s)?;
    let mut frac: i128 = 0;
    if s.as_bytes().get(19) == Some(&b'.') {
        let digits: String = s[20..].chars().take_while(|c| c.is_ascii_digit()).collect();
        let mut d = digits.clone();
        d.truncate(9);
        while d.len() < 9 {
            d.push('0');
        }
        frac = d.parse().ok()?;
    }
    Some(secs as i128 * 1_000_000_000 + frac)
}

/// A time given in nanoseconds as RFC 3339 with all nine fraction digits (docker's
/// `RFC3339NanoFixed`, used by `logs --timestamps`).
pub fn format_rfc3339_fixed(nanos: i128) -> String {
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let frac = nanos.rem_euclid(1_000_000_000) as u32;
    let s = format_rfc3339_nanos(secs, 0);
    format!("{}.{frac:09}Z", s.trim_end_matches('Z'))
}

/// docker's time filters (`since`, `until`): a Unix time with an optional fraction
/// (`1700000000.5`), an RFC 3339 time, or a duration back from now (`10m`, `1h30m`, `90s`).
pub fn parse_filter_time(s: &str) -> Option<i128> {
    if s.is_empty() {
        return None;
    }
    if let Ok(f) = s.parse::<f64>() {
        return Some((f * 1e9) as i128);
    }
    if let Some(t) = parse_rfc3339_nanos(s) {
        return Some(t);
    }
    let mut total: f64 = 0.0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            1e-3
        } else {
            match c {
                'h' => 3600.0,
                'm' => 60.0,
                's' => 1.0,
                _ => return None,
            }
        };
        total += num.parse::<f64>().ok()? * unit;
        num.clear();
    }
    if !num.is_empty() || total == 0.0 {
        return None;
    }
    Some(now_nanos() - (total * 1e9) as i128)
}

/// RFC 3339 in UTC with nanoseconds, as Go's `time.RFC3339Nano` prints.
pub fn format_rfc3339_nanos(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Now, as RFC 3339.
pub fn now_rfc3339() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format_rfc3339_nanos(d.as_secs() as i64, d.subsec_nanos())
}

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanos_and_fixed_format() {
        let t = parse_rfc3339_nanos("2026-11-25T10:00:00.1234Z").unwrap();
        assert_eq!(t % 1_000_000_000, 123_400_000);
        assert_eq!(format_rfc3339_fixed(t), "2026-11-25T10:00:00.123400000Z");
        assert_eq!(parse_filter_time("1700000000.5"), Some(1_700_000_000_500_000_000));
        let ago = now_nanos() - parse_filter_time("1m30s").unwrap();
        assert!((89_000_000_000..=91_000_000_000).contains(&ago));
        assert_eq!(parse_filter_time("5x"), None);
    }

    #[test]
    fn round_trips() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-05-19T20:19:27.123456789Z"), Some(1684527567));
        assert_eq!(parse_rfc3339("2023-05-19T22:19:27+02:00"), Some(1684527567));
        assert_eq!(parse_rfc3339("2000-02-29T12:00:00Z"), Some(951825600));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(format_rfc3339_nanos(1684527567, 0), "2023-05-19T20:19:27Z");
        assert_eq!(
            format_rfc3339_nanos(951825600, 500_000_000),
            "2000-02-29T12:00:00.5Z"
        );
    }
}
