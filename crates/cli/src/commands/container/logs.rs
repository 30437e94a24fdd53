//! `logs`: the container's log stream, split into stdout and stderr unless it has a tty.

use super::lifecycle::container_path;
use super::start::inspect;
use super::stream::{copy_raw, demux};
use crate::args::{bool_flag, value_flag, Count, Parsed};
use crate::commands::{fail, Ctx, Def, Result};
use crate::goparse::parse_duration;
use crate::http::Body;
use crate::units;

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An RFC 3339-like time (`2013-01-02`, `2013-01-02T13:23`, `2013-01-02T13:23:37.5Z`,
/// `...+02:00`), local times read as UTC: (seconds, nanoseconds).
fn parse_time(value: &str) -> Option<(i64, u32)> {
    let (date, rest) = value.split_at(value.len().min(10));
    let mut it = date.split('-');
    let y: i64 = it.next()?.parse().ok()?;
    let mo: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if date.len() != 10 || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    // the zone: Z, or +hh:mm / -hh:mm at the end
    let (clock, offset) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if rest.len() >= 6 && matches!(&rest.as_bytes()[rest.len() - 6], b'+' | b'-') {
        let (c, z) = rest.split_at(rest.len() - 6);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let h: i64 = z[1..3].parse().ok()?;
        let m: i64 = z[4..6].parse().ok()?;
        (c, sign * (h * 3600 + m * 60))
    } else {
        (rest, 0)
    };
    let (mut h, mut mi, mut s, mut nanos) = (0u32, 0u32, 0u32, 0u32);
    if let Some(t) = clock.strip_prefix('T') {
        let (hms, frac) = t.split_once('.').unwrap_or((t, ""));
        let parts: Vec<&str> = hms.split(':').collect();
        h = parts.first()?.parse().ok()?;
        mi = parts.get(1).map_or(Some(0), |v| v.parse().ok())?;
        s = parts.get(2).map_or(Some(0), |v| v.parse().ok())?;
        if !frac.is_empty() {
            nanos = format!("{:0<9}", &frac[..frac.len().min(9)]).parse().ok()?;
        }
    } else if !clock.is_empty() {
        return None;
    }
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86400 + (h * 3600 + mi * 60 + s) as i64 - offset;
    Some((secs, nanos))
}

/// docker's `GetTimestamp`: a duration before `now`, an RFC 3339-like time, or a Unix
/// timestamp passed through, as the API's `seconds[.nanoseconds]`.
pub fn get_timestamp(value: &str, now: i64) -> std::result::Result<String, String> {
    if value != "0" {
        if let Ok(d) = parse_duration(value) {
            return Ok((now - d.div_euclid(1_000_000_000)).to_string());
        }
    }
    if let Some((s, n)) = parse_time(value) {
        return Ok(format!("{s}.{n:09}"));
    }
    if value.contains('-') {
        // Go's range errors for a date that has the layout's shape
        let nums: Vec<u32> = value
            .get(..10)
            .unwrap_or("")
            .split('-')
            .filter_map(|n| n.parse().ok())
            .collect();
        let why = match nums.as_slice() {
            [_, m, _] if !(1..=12).contains(m) => "month out of range".to_string(),
            [_, _, d] if !(1..=31).contains(d) => "day out of range".to_string(),
            _ => format!("cannot parse {value:?} as a time"),
        };
        return Err(format!("parsing time {value:?}: {why}"));
    }
    let (sec, frac) = value.split_once('.').unwrap_or((value, "0"));
    if sec.parse::<i64>().is_err() || frac.parse::<i64>().is_err() {
        return Err(format!("failed to parse value as time or duration: {value:?}"));
    }
    Ok(value.to_string())
}

fn run_logs(ctx: &Ctx, p: &Parsed) -> Result {
    let c = inspect(ctx, &p.args[0])?;
    let tty = c
        .pointer("/Config/Tty")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let now = units::now_unix();
    let mut q = vec![("stdout", "1".to_string()), ("stderr", "1".to_string())];
    for key in ["since", "until"] {
        if let Some(v) = p.value(key).filter(|v| !v.is_empty()) {
            let ts = get_timestamp(v, now).map_err(|e| fail(format!("invalid value for {key:?}: {e}")))?;
            q.push((key, ts));
        }
    }
    if p.bool("timestamps") {
        q.push(("timestamps", "1".into()));
    }
    if p.bool("details") {
        q.push(("details", "1".into()));
    }
    if p.bool("follow") {
        q.push(("follow", "1".into()));
    }
    q.push(("tail", p.value("tail").unwrap_or("all").to_string()));
    let resp = ctx
        .api
        .request("GET", &container_path(&p.args[0], "/logs", &q), &[], Body::Empty)?;
    let mut body = resp.body;
    let mut out = ctx.stdout.borrow_mut();
    if tty {
        copy_raw(&mut body, &mut **out)?;
    } else {
        demux(&mut body, &mut **out, &mut std::io::stderr())?;
    }
    Ok(())
}

pub const LOGS: Def = Def {
    name: "logs",
    args: "[OPTIONS] CONTAINER",
    desc: "Fetch the logs of a container",
    aliases: "berth container logs, berth logs",
    options: "      --details        Show extra details provided to logs
  -f, --follow         Follow log output
      --since string   Show logs since timestamp (e.g.
                       \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\"
                       for 42 minutes)
  -n, --tail string    Number of lines to show from the end of the logs
                       (default \"all\")
  -t, --timestamps     Show timestamps
      --until string   Show logs before a timestamp (e.g.
                       \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\"
                       for 42 minutes)
",
    flags: &[
        bool_flag(None, "details"),
        bool_flag(Some('f'), "follow"),
        value_flag(None, "since"),
        value_flag(Some('n'), "tail"),
        bool_flag(Some('t'), "timestamps"),
        value_flag(None, "until"),
    ],
    count: Count::Exact(1),
    run: run_logs,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_like_docker() {
        let now = 1_700_000_000;
        assert_eq!(get_timestamp("42m", now).unwrap(), (now - 42 * 60).to_string());
        assert_eq!(get_timestamp("1h30m", now).unwrap(), (now - 5400).to_string());
        assert_eq!(
            get_timestamp("2013-01-02T13:23:37Z", now).unwrap(),
            "1357133017.000000000"
        );
        assert_eq!(get_timestamp("2013-01-02", now).unwrap(), "1357084800.000000000");
        assert_eq!(
            get_timestamp("2013-01-02T13:23:37.5+01:00", now).unwrap(),
            "1357129417.500000000"
        );
        assert_eq!(get_timestamp("1357133017", now).unwrap(), "1357133017");
        assert_eq!(get_timestamp("0", now).unwrap(), "0");
        assert_eq!(get_timestamp("1357133017.25", now).unwrap(), "1357133017.25");
        assert_eq!(
            get_timestamp("yesterday", now).unwrap_err(),
            "failed to parse value as time or duration: \"yesterday\""
        );
        assert_eq!(
            get_timestamp("2013-13-01", now).unwrap_err(),
            "parsing time \"2013-13-01\": month out of range"
        );
    }
}
