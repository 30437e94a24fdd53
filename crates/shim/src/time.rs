//! Timestamps as Go's `time.RFC3339Nano` in UTC (what docker writes in json-file logs and
//! `FinishedAt`): `2026-11-25T10:00:00.123456789Z`, trailing zeros of the fraction dropped.
//! (berth-runtime's `state::format_rfc3339` is the same formatter; the shim does not link the runtime
//! crate, whose dependencies it does not need.)

use std::time::{SystemTime, UNIX_EPOCH};

/// The civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Seconds and nanoseconds since the epoch, formatted.
pub fn format(secs: i64, nanos: u32) -> String {
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let mut out = format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// The time now.
pub fn now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format(d.as_secs() as i64, d.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go_rfc3339nano() {
        assert_eq!(format(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format(1_795_600_800, 123_456_789),
            "2026-11-25T10:00:00.123456789Z"
        );
        assert_eq!(format(951_782_400, 500_000_000), "2000-02-29T00:00:00.5Z");
        assert_eq!(format(4_107_542_399, 10), "2100-02-28T23:59:59.00000001Z");
        assert_eq!(format(-1, 0), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn now_is_well_formed() {
        let n = now();
        assert!(
            n.ends_with('Z') && n.len() >= 20 && &n[4..5] == "-" && &n[10..11] == "T",
            "{n}"
        );
    }
}
