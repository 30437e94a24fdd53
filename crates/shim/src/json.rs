//! JSON strings written the way docker's json-file logger writes them (Go's encoding rules): bytes
//! taken as UTF-8, each invalid byte as U+FFFD, `"` and `\` escaped, `\n` and `\r` short, the other
//! control characters and `<`, `>`, `&` as `\u00XX`, U+2028/U+2029 as `\u2028`/`\u2029`.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a quoted JSON string to `out`.
pub fn push_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let mut rest = s;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                push_valid(out, valid);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                // `valid_up_to` makes `good` valid UTF-8.
                push_valid(out, std::str::from_utf8(good).unwrap_or_default());
                // Go replaces every byte of an invalid sequence with its own U+FFFD, as
                // `utf8.DecodeRune` returns size 1 for each; `error_len` may cover several bytes.
                let n = e.error_len().unwrap_or(bad.len());
                for _ in 0..n {
                    out.extend_from_slice(b"\\ufffd");
                }
                rest = &bad[n..];
            }
        }
    }
    out.push(b'"');
}

fn push_valid(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let short: Option<&[u8]> = match c {
            '"' => Some(b"\\\""),
            '\\' => Some(b"\\\\"),
            '\n' => Some(b"\\n"),
            '\r' => Some(b"\\r"),
            _ => None,
        };
        let needs =
            short.is_some() || (c as u32) < 0x20 || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}');
        if !needs {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match short {
            Some(s) => out.extend_from_slice(s),
            None => {
                let v = c as u32;
                out.extend_from_slice(b"\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(HEX[((v >> shift) & 0xf) as usize]);
                }
            }
        }
        start = i + c.len_utf8();
    }
    out.extend_from_slice(&bytes[start..]);
}

/// `s` as a quoted JSON string.
pub fn string(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    push_str(&mut out, s.as_bytes());
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(b: &[u8]) -> String {
        let mut v = Vec::new();
        push_str(&mut v, b);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escapes_like_go() {
        assert_eq!(esc(b"hello\n"), r#""hello\n""#);
        assert_eq!(esc(b"a\"b\\c\r\t\x01\x1f"), r#""a\"b\\c\r\u0009\u0001\u001f""#);
        assert_eq!(esc(b"<a & b>"), r#""\u003ca \u0026 b\u003e""#);
        assert_eq!(esc("x\u{2028}y\u{2029}".as_bytes()), r#""x\u2028y\u2029""#);
        assert_eq!(esc("é€😀\x7f".as_bytes()), "\"é€😀\x7f\"");
        assert_eq!(esc(b""), r#""""#);
    }

    #[test]
    fn invalid_utf8_is_one_replacement_per_byte() {
        // A lone continuation byte, a truncated 3-byte sequence at the end, an overlong encoding.
        assert_eq!(esc(b"a\x80b"), r#""a\ufffdb""#);
        assert_eq!(esc(b"a\xe2\x82"), r#""a\ufffd\ufffd""#);
        assert_eq!(esc(b"\xc0\xafz"), r#""\ufffd\ufffdz""#);
        assert_eq!(esc(b"\xff\xfe\n"), r#""\ufffd\ufffd\n""#);
        // A surrogate encoded in UTF-8 is invalid in Go as well: three replacements.
        assert_eq!(esc(b"\xed\xa0\x80"), r#""\ufffd\ufffd\ufffd""#);
    }

    #[test]
    fn output_is_valid_json_for_arbitrary_bytes() {
        let all: Vec<u8> = (0..=255u8).collect();
        let s = esc(&all);
        assert!(std::str::from_utf8(s.as_bytes()).is_ok());
        assert!(!s[1..s.len() - 1].contains(|c: char| (c as u32) < 0x20));
        assert_eq!(string("a\"b"), r#""a\"b""#);
    }
}
