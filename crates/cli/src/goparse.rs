//! The value parsers behind docker's typed flags, with Go's and go-units' error texts:
//! `strconv.ParseInt` (base 0, as pflag's int flags), `time.ParseDuration`, go-units'
//! `RAMInBytes` and `ParseUlimit`, and docker's `ParseCPUs`.

/// Go's `strconv.ParseInt(s, 0, bits)` (or `ParseUint` when `unsigned`), with its errors:
/// `strconv.ParseInt: parsing "x": invalid syntax` / `value out of range`.
fn parse_go_int(s: &str, bits: u32, unsigned: bool) -> Result<i128, String> {
    let func = if unsigned { "ParseUint" } else { "ParseInt" };
    let syntax = || format!("strconv.{func}: parsing {s:?}: invalid syntax");
    let range = || format!("strconv.{func}: parsing {s:?}: value out of range");
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') if !unsigned => (true, &s[1..]),
        Some(b'+') if !unsigned => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower.clone())
    };
    // underscores only with a base prefix, between digits
    let digits = if radix != 10 && lower.len() > 1 {
        digits.replace('_', "")
    } else {
        digits
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(syntax());
    }
    let mut v: i128 = 0;
    for c in digits.chars() {
        v = v * radix as i128 + c.to_digit(radix).expect("digit") as i128;
        if v > u64::MAX as i128 {
            return Err(range());
        }
    }
    let v = if neg { -v } else { v };
    let (min, max) = if unsigned {
        (0, (1i128 << bits) - 1)
    } else {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    };
    if v < min || v > max {
        return Err(range());
    }
    Ok(v)
}

pub fn parse_i64(s: &str) -> Result<i64, String> {
    parse_go_int(s, 64, false).map(|v| v as i64)
}

pub fn parse_u16(s: &str) -> Result<u16, String> {
    parse_go_int(s, 16, true).map(|v| v as u16)
}

pub fn check_i64(s: &str) -> Result<(), String> {
    parse_i64(s).map(drop)
}

pub fn check_u16(s: &str) -> Result<(), String> {
    parse_u16(s).map(drop)
}

pub fn check_u64(s: &str) -> Result<(), String> {
    parse_go_int(s, 64, true).map(drop)
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." {
            return Err(invalid());
        }
        let value: f64 = num.parse().map_err(|_| invalid())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let mult: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            u => return Err(format!("time: unknown unit {u:?} in duration {s:?}")),
        };
        total += value * mult;
    }
    if total > i64::MAX as f64 {
        return Err(invalid());
    }
    let v = total.round() as i64;
    Ok(if neg { -v } else { v })
}

pub fn check_duration(s: &str) -> Result<(), String> {
    parse_duration(s).map(drop)
}

/// Go's `strconv.ParseFloat` error text for a value that is no number.
fn parse_float(s: &str) -> Result<f64, String> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    match s.parse::<f64>() {
        Ok(v) if ok => Ok(v),
        _ => Err(format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
    }
}

/// go-units `RAMInBytes`: `64m`, `1.5GiB`, `100` (binary multiples, case-insensitive).
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(format!("invalid size: '{s}'"));
    };
    let (num, sfx) = if s.as_bytes()[sep] != b' ' {
        (&s[..=sep], &s[sep + 1..])
    } else {
        (&s[..sep], &s[sep + 1..])
    };
    let size = parse_float(num)?;
    if size < 0.0 {
        return Err(format!("invalid size: '{s}'"));
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad = || format!("invalid suffix: '{}'", sfx.to_lowercase());
    if sfx.len() > 3 {
        return Err(format!("invalid suffix: '{sfx}'"));
    }
    let l = sfx.to_lowercase();
    let b = l.as_bytes();
    if b[0] == b'b' {
        return if b.len() > 1 { Err(bad()) } else { Ok(size as i64) };
    }
    let mul: f64 = match b[0] {
        b'k' => 1024.0,
        b'm' => 1024.0 * 1024.0,
        b'g' => 1024f64.powi(3),
        b't' => 1024f64.powi(4),
        b'p' => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    if (b.len() == 2 && b[1] != b'b') || (b.len() == 3 && &l[1..] != "ib") {
        return Err(bad());
    }
    Ok((size * mul) as i64)
}

pub fn check_ram(s: &str) -> Result<(), String> {
    ram_in_bytes(s).map(drop)
}

/// docker's `MemSwapBytes`: `-1` (unlimited) or a size.
pub fn check_swap(s: &str) -> Result<(), String> {
    if s == "-1" {
        return Ok(());
    }
    check_ram(s)
}

pub fn swap_bytes(s: &str) -> Result<i64, String> {
    if s == "-1" {
        return Ok(-1);
    }
    ram_in_bytes(s)
}

/// docker's `ParseCPUs`: a decimal number of CPUs as nano CPUs (exactly, no rounding).
pub fn parse_cpus(s: &str) -> Result<i64, String> {
    let bad = || format!("failed to parse {s} as a rational number");
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    // big.Rat also takes "a/b" and exponents; decimals are what people pass
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 9 {
        return Err("value is too precise".into());
    }
    let int_v: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let frac_v: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    let v = int_v.saturating_mul(1_000_000_000).saturating_add(frac_v);
    Ok(if neg { -v } else { v })
}

pub fn check_cpus(s: &str) -> Result<(), String> {
    parse_cpus(s).map(drop)
}

/// A ulimit: (name, soft, hard).
pub type Ulimit = (String, i64, i64);

const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

fn go_atoi64(s: &str) -> Result<i64, String> {
    // strconv.ParseInt(s, 10, 64)
    if s.is_empty()
        || !s
            .trim_start_matches(['-', '+'])
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        return Err(format!("strconv.ParseInt: parsing {s:?}: invalid syntax"));
    }
    s.parse()
        .map_err(|_| format!("strconv.ParseInt: parsing {s:?}: value out of range"))
}

/// go-units `ParseUlimit`: `name=soft[:hard]`.
pub fn parse_ulimit(val: &str) -> Result<Ulimit, String> {
    let Some((name, limits)) = val.split_once('=') else {
        return Err(format!("invalid ulimit argument: {val}"));
    };
    if !ULIMIT_NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let parts: Vec<&str> = limits.split(':').collect();
    let (soft, hard) = match parts.as_slice() {
        [s] => {
            let s = go_atoi64(s)?;
            (s, s)
        }
        [s, h] => {
            let h = go_atoi64(h)?;
            (go_atoi64(s)?, h)
        }
        _ => {
            return Err(format!(
                "too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
            ))
        }
    };
    if hard != -1 {
        if soft == -1 {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: {hard}"
            ));
        }
        if soft > hard {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            ));
        }
    }
    Ok((name.to_string(), soft, hard))
}

pub fn check_ulimit(s: &str) -> Result<(), String> {
    parse_ulimit(s).map(drop)
}

/// Go's `csv.Reader.Read` of the first record of `s` (default settings: `,` separated,
/// `"` quoting with `""` for a quote, no trimming), with its errors: `EOF` for nothing,
/// `parse error on line 1, column N: bare " in non-quoted-field`.
pub fn csv_record(s: &str) -> Result<Vec<String>, String> {
    let line = s.split('\n').next().unwrap_or("");
    let line = line.strip_suffix('\r').unwrap_or(line);
    if s.is_empty() {
        return Err("EOF".into());
    }
    let err = |col: usize, what: &str| format!("parse error on line 1, column {col}: {what}");
    let bytes = line.as_bytes();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let mut field = Vec::new();
        if bytes.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return Err(err(i + 1, "extraneous or missing \" in quoted-field")),
                    Some(b'"') if bytes.get(i + 1) == Some(&b'"') => {
                        field.push(b'"');
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        match bytes.get(i) {
                            None | Some(b',') => break,
                            Some(_) => return Err(err(i + 1, "extraneous or missing \" in quoted-field")),
                        }
                    }
                    Some(&b) => {
                        field.push(b);
                        i += 1;
                    }
                }
            }
        } else {
            while let Some(&b) = bytes.get(i) {
                if b == b',' {
                    break;
                }
                if b == b'"' {
                    return Err(err(i + 1, "bare \" in non-quoted-field"));
                }
                field.push(b);
                i += 1;
            }
        }
        fields.push(String::from_utf8_lossy(&field).into_owned());
        if bytes.get(i) == Some(&b',') {
            i += 1;
            continue;
        }
        return Ok(fields);
    }
}

/// pflag's `StringSlice` value: "" is no values, anything else a CSV record.
pub fn string_slice(s: &str) -> Result<Vec<String>, String> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    csv_record(s)
}

pub fn check_string_slice(s: &str) -> Result<(), String> {
    string_slice(s).map(drop)
}

/// The values of a repeated `StringSlice` flag, each split as pflag does (the values were
/// checked while parsing).
pub fn slice_values(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| string_slice(v).unwrap_or_default())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_like_pflag() {
        assert_eq!(parse_i64("512"), Ok(512));
        assert_eq!(parse_i64("-1"), Ok(-1));
        assert_eq!(parse_i64("0x10"), Ok(16));
        assert_eq!(parse_i64("010"), Ok(8));
        assert_eq!(
            parse_i64("x"),
            Err("strconv.ParseInt: parsing \"x\": invalid syntax".into())
        );
        assert_eq!(
            parse_i64("99999999999999999999"),
            Err("strconv.ParseInt: parsing \"99999999999999999999\": value out of range".into())
        );
        assert_eq!(parse_u16("1000"), Ok(1000));
        assert_eq!(
            parse_u16("70000"),
            Err("strconv.ParseUint: parsing \"70000\": value out of range".into())
        );
        assert_eq!(
            parse_u16("-1"),
            Err("strconv.ParseUint: parsing \"-1\": invalid syntax".into())
        );
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_duration("5s"), Ok(5_000_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("-2s"), Ok(-2_000_000_000));
        assert_eq!(parse_duration("x"), Err("time: invalid duration \"x\"".into()));
        assert_eq!(
            parse_duration("5"),
            Err("time: missing unit in duration \"5\"".into())
        );
        assert_eq!(
            parse_duration("5y"),
            Err("time: unknown unit \"y\" in duration \"5y\"".into())
        );
    }

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(ram_in_bytes("64m"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("1.5g"), Ok(1536 << 20));
        assert_eq!(ram_in_bytes("100"), Ok(100));
        assert_eq!(ram_in_bytes("100b"), Ok(100));
        assert_eq!(ram_in_bytes("32 kb"), Ok(32 << 10));
        assert_eq!(ram_in_bytes("5x"), Err("invalid suffix: 'x'".into()));
        assert_eq!(ram_in_bytes("5mx"), Err("invalid suffix: 'mx'".into()));
        assert_eq!(ram_in_bytes("x"), Err("invalid size: 'x'".into()));
        assert_eq!(ram_in_bytes("-5m"), Err("invalid size: '-5m'".into()));
        assert_eq!(swap_bytes("-1"), Ok(-1));
    }

    #[test]
    fn cpus_and_ulimits() {
        assert_eq!(parse_cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_cpus("0.01"), Ok(10_000_000));
        assert_eq!(parse_cpus("-1"), Ok(-1_000_000_000));
        assert_eq!(parse_cpus("0.0000000001"), Err("value is too precise".into()));
        assert_eq!(
            parse_cpus("abc"),
            Err("failed to parse abc as a rational number".into())
        );
        assert_eq!(
            parse_ulimit("nofile=1024:2048"),
            Ok(("nofile".into(), 1024, 2048))
        );
        assert_eq!(parse_ulimit("nproc=10"), Ok(("nproc".into(), 10, 10)));
        assert_eq!(
            parse_ulimit("nofile"),
            Err("invalid ulimit argument: nofile".into())
        );
        assert_eq!(parse_ulimit("bogus=1"), Err("invalid ulimit type: bogus".into()));
        assert_eq!(
            parse_ulimit("nofile=20:10"),
            Err("ulimit soft limit must be less than or equal to hard limit: 20 > 10".into())
        );
    }

    #[test]
    fn csv_like_go() {
        assert_eq!(
            csv_record("a,b=c,,d"),
            Ok(vec!["a".into(), "b=c".into(), "".into(), "d".into()])
        );
        assert_eq!(
            csv_record("\"x,y\",\"a\"\"b\""),
            Ok(vec!["x,y".into(), "a\"b".into()])
        );
        assert_eq!(csv_record(""), Err("EOF".into()));
        assert_eq!(
            csv_record("a\"b"),
            Err("parse error on line 1, column 2: bare \" in non-quoted-field".into())
        );
        assert_eq!(string_slice(""), Ok(vec![]));
        assert_eq!(slice_values(&["a,b".into(), "c".into()]), ["a", "b", "c"]);
    }
}
