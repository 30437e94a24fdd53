//! Sizes and durations for people, exactly as github.com/docker/go-units prints them
//! (`HumanSize`, `HumanSizeWithPrecision`, `BytesSize`, `HumanDuration`), and Go's `%g`.

const DECIMAL: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

fn size_and_unit(mut size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// go-units `HumanSizeWithPrecision`: decimal units, `%.*g`.
pub fn human_size_precision(size: f64, precision: usize) -> String {
    let (s, unit) = size_and_unit(size, 1000.0, &DECIMAL);
    format!("{}{unit}", go_g(s, precision))
}

/// go-units `HumanSize` (precision 4).
pub fn human_size(size: f64) -> String {
    human_size_precision(size, 4)
}

/// go-units `BytesSize`: binary units, `%.4g`.
pub fn bytes_size(size: f64) -> String {
    let (s, unit) = size_and_unit(size, 1024.0, &BINARY);
    format!("{}{unit}", go_g(s, 4))
}

/// Go's `fmt` verb `%.<precision>g`: shortest of fixed and exponent notation with
/// `precision` significant digits, trailing zeros removed.
pub fn go_g(v: f64, precision: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let p = precision.max(1);
    let sci = format!("{:.*e}", p - 1, v);
    let (mantissa, exp) = sci.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    if exp < -4 || exp >= p as i32 {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// go-units `HumanDuration`, for a duration in seconds (negative counts as zero).
pub fn human_duration(secs: f64) -> String {
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (secs / 3600.0) as i64 / 24 / 365)
}

/// "N units ago" for a Unix timestamp, as docker's `CreatedSince`.
pub fn since(unix: i64, now: i64) -> String {
    format!("{} ago", human_duration((now - unix) as f64))
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Civil date and time (UTC) of a Unix timestamp: (year, month, day, hour, minute, second).
pub fn civil(unix: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = unix.div_euclid(86400);
    let rem = unix.rem_euclid(86400);
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// Go's `time.Unix(t, 0).String()` in UTC: `2024-01-02 03:04:05 +0000 UTC`.
pub fn go_time_string(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} +0000 UTC")
}

/// Go's `time.Time.String()` of an RFC 3339 time from the API (`2024-01-02 03:04:05.5 +0000
/// UTC`); the zero time for a missing or bad one, as Go's decoder leaves it.
pub fn go_time_text(rfc: &str) -> String {
    let zero = "0001-01-01 00:00:00 +0000 UTC".to_string();
    let Some((date, rest)) = rfc.split_once('T') else {
        return zero;
    };
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    if date.len() != 10 || hms.len() != 8 || zone.is_empty() {
        return zero;
    }
    let frac = frac.trim_end_matches('0');
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    let zone = match zone {
        "Z" | "z" => "+0000 UTC".to_string(),
        z => {
            let off = z.replace(':', "");
            format!("{off} {off}")
        }
    };
    format!("{date} {hms}{frac} {zone}")
}

/// RFC 3339 in UTC: `2024-01-02T03:04:05Z`.
pub fn rfc3339(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_size_matches_go_units() {
        // go-units size_test.go
        assert_eq!(human_size(1000.0), "1kB");
        assert_eq!(human_size(1024.0), "1.024kB");
        assert_eq!(human_size(1_000_000.0), "1MB");
        assert_eq!(human_size(1_048_576.0), "1.049MB");
        assert_eq!(human_size(2.0 * 1_000_000.0), "2MB");
        assert_eq!(human_size(3.42 * 1e9), "3.42GB");
        assert_eq!(human_size(5.372 * 1e12), "5.372TB");
        assert_eq!(human_size(2.22 * 1e15), "2.22PB");
        assert_eq!(human_size(1e21), "1ZB");
        assert_eq!(human_size(1e28), "1e+04YB");
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size_precision(4_260_000.0, 3), "4.26MB");
        assert_eq!(human_size_precision(1_240_000_000.0, 3), "1.24GB");
        assert_eq!(human_size_precision(799_000.0, 3), "799kB");
        assert_eq!(human_size_precision(1850.0, 3), "1.85kB");
        assert_eq!(human_size_precision(4_261_550.0, 3), "4.26MB");
        assert_eq!(human_size_precision(999_999.0, 3), "1e+03kB");
    }

    #[test]
    fn bytes_size_matches_go_units() {
        assert_eq!(bytes_size(1024.0), "1KiB");
        assert_eq!(bytes_size(1024.0 * 1024.0), "1MiB");
        assert_eq!(bytes_size(1_048_576.0 * 1.5), "1.5MiB");
        assert_eq!(bytes_size(25_197_486_080.0), "23.47GiB");
        assert_eq!(bytes_size(0.0), "0B");
    }

    #[test]
    fn go_g_forms() {
        assert_eq!(go_g(1.0, 3), "1");
        assert_eq!(go_g(123.456, 3), "123");
        assert_eq!(go_g(1234.5, 3), "1.23e+03");
        assert_eq!(go_g(0.0001234, 3), "0.000123");
        assert_eq!(go_g(0.00001234, 3), "1.23e-05");
    }

    #[test]
    fn human_duration_matches_go_units() {
        let m = 60.0;
        let h = 3600.0;
        let d = 24.0 * h;
        assert_eq!(human_duration(0.0), "Less than a second");
        assert_eq!(human_duration(1.0), "1 second");
        assert_eq!(human_duration(2.0), "2 seconds");
        assert_eq!(human_duration(47.0), "47 seconds");
        assert_eq!(human_duration(m), "About a minute");
        assert_eq!(human_duration(3.0 * m), "3 minutes");
        assert_eq!(human_duration(35.0 * m), "35 minutes");
        assert_eq!(human_duration(35.0 * m + 40.0), "35 minutes");
        assert_eq!(human_duration(h), "About an hour");
        assert_eq!(human_duration(h + 45.0 * m), "2 hours");
        assert_eq!(human_duration(3.0 * h), "3 hours");
        assert_eq!(human_duration(3.0 * h + 59.0 * m), "4 hours");
        assert_eq!(human_duration(3.0 * h + 60.0 * m), "4 hours");
        assert_eq!(human_duration(24.0 * h), "24 hours");
        assert_eq!(human_duration(36.0 * h), "36 hours");
        assert_eq!(human_duration(48.0 * h), "2 days");
        assert_eq!(human_duration(7.0 * d), "7 days");
        assert_eq!(human_duration(13.0 * d + 5.0 * h), "13 days");
        assert_eq!(human_duration(14.0 * d), "2 weeks");
        assert_eq!(human_duration(15.0 * d), "2 weeks");
        assert_eq!(human_duration(30.0 * d), "4 weeks");
        assert_eq!(human_duration(60.0 * d), "2 months");
        assert_eq!(human_duration(90.0 * d), "3 months");
        assert_eq!(human_duration(365.0 * d), "12 months");
        assert_eq!(human_duration(400.0 * d), "13 months");
        assert_eq!(human_duration(2.0 * 365.0 * d), "2 years");
        assert_eq!(human_duration(10.0 * 365.0 * d), "10 years");
        assert_eq!(human_duration(-5.0), "Less than a second");
    }

    #[test]
    fn times() {
        assert_eq!(go_time_string(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(since(100, 100 + 7200), "2 hours ago");
    }

    #[test]
    fn go_time_of_api_times() {
        assert_eq!(
            go_time_text("2024-01-02T03:04:05.120000000Z"),
            "2024-01-02 03:04:05.12 +0000 UTC"
        );
        assert_eq!(
            go_time_text("2024-01-02T03:04:05Z"),
            "2024-01-02 03:04:05 +0000 UTC"
        );
        assert_eq!(
            go_time_text("2024-01-02T03:04:05.5+01:00"),
            "2024-01-02 03:04:05.5 +0100 +0100"
        );
        assert_eq!(go_time_text(""), "0001-01-01 00:00:00 +0000 UTC");
    }
}
