//! docker's `formatter.Context`: a `--format` value (`table`, `table TEMPLATE`, `json`,
//! `TEMPLATE`) applied to rows (JSON objects whose keys are the context's fields), tables
//! aligned by the tabwriter with their header line.

use crate::tabwriter::TabWriter;
use crate::template::{Options, Template};
use serde_json::Value;

#[derive(Debug, PartialEq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub const JSON_FORMAT: &str = "{{json .}}";

/// The rows of one table, ready to format.
pub struct Rows<'a> {
    /// field name -> column header (`ID` -> `IMAGE ID`)
    pub headers: &'a [(&'a str, &'a str)],
    pub rows: Vec<Value>,
}

/// Resolves docker's format keywords: "" and "table" -> the default table, "json" -> `{{json .}}`.
pub fn resolve<'a>(format: &'a str, default_table: &'a str) -> &'a str {
    match format {
        "" | "table" => default_table,
        "json" => JSON_FORMAT,
        f => f,
    }
}

/// docker's `preFormat`: strips `table`, trims spaces, turns `\t` and `\n` into characters.
fn pre_format(format: &str) -> (bool, String) {
    let is_table = format.starts_with("table");
    let body = if is_table { &format[5..] } else { format };
    let body = body.trim_matches(' ').replace("\\t", "\t").replace("\\n", "\n");
    (is_table, body)
}

pub fn render(format: &str, rows: &Rows<'_>) -> Result<String, Error> {
    let (is_table, body) = pre_format(format);
    let tmpl = Template::parse(&body).map_err(|e| Error(format!("template parsing error: {e}")))?;
    let opts = Options {
        strict: true,
        header: false,
        escape_html_root: true,
    };
    let mut out = String::new();
    for row in &rows.rows {
        let line = tmpl
            .execute(row, opts)
            .map_err(|e| Error(format!("template parsing error: {e}")))?;
        out.push_str(&line);
        out.push('\n');
    }
    if !is_table {
        return Ok(out);
    }
    let header_obj: serde_json::Map<String, Value> = rows
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let hopts = Options {
        strict: false,
        header: true,
        escape_html_root: false,
    };
    let header = tmpl
        .execute(&Value::Object(header_obj), hopts)
        .map_err(|e| Error(format!("template parsing error: {e}")))?;
    Ok(TabWriter::docker_table().format(&format!("{header}\n{out}")))
}

/// `render` of rows under these headers.
pub fn table(format: &str, headers: &[(&str, &str)], rows: Vec<Value>) -> Result<String, Error> {
    render(format, &Rows { headers, rows })
}

/// A row from (field, value) pairs, keeping their order.
pub fn row(fields: &[(&str, String)]) -> Value {
    Value::Object(
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
            .collect(),
    )
}

/// The `sortorder.NaturalLess` docker sorts names with: runs of digits compare as numbers
/// (fewer leading zeros first when equal), digits before other bytes.
pub fn natural_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da != db {
            return da;
        }
        if !da {
            if a[i] != b[j] {
                return a[i] < b[j];
            }
            i += 1;
            j += 1;
            continue;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (nz_a, nz_b) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let (na, nb) = (&a[nz_a..i], &b[nz_b..j]);
        if na.len() != nb.len() {
            return na.len() < nb.len();
        }
        if na != nb {
            return na < nb;
        }
        if nz_a != nz_b {
            return nz_a < nz_b;
        }
    }
    a.len() < b.len()
}

/// `natural_less` as an ordering.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    if natural_less(a, b) {
        std::cmp::Ordering::Less
    } else if natural_less(b, a) {
        std::cmp::Ordering::Greater
    } else {
        std::cmp::Ordering::Equal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADERS: &[(&str, &str)] = &[("ID", "IMAGE ID"), ("Size", "SIZE")];

    fn rows() -> Rows<'static> {
        Rows {
            headers: HEADERS,
            rows: vec![
                row(&[("ID", "3f57d9401f8d".into()), ("Size", "4.26MB".into())]),
                row(&[("ID", "aaaaaaaaaaaa".into()), ("Size", "0B".into())]),
            ],
        }
    }

    #[test]
    fn table_and_plain() {
        let t = render("table {{.ID}}\\t{{.Size}}", &rows()).unwrap();
        assert_eq!(
            t,
            "IMAGE ID       SIZE\n3f57d9401f8d   4.26MB\naaaaaaaaaaaa   0B\n"
        );
        let p = render("{{.ID}}: {{.Size}}", &rows()).unwrap();
        assert_eq!(p, "3f57d9401f8d: 4.26MB\naaaaaaaaaaaa: 0B\n");
        let j = render(resolve("json", ""), &rows()).unwrap();
        assert_eq!(
            j.lines().next().unwrap(),
            r#"{"ID":"3f57d9401f8d","Size":"4.26MB"}"#
        );
        let e = render("{{.Nope}}", &rows()).unwrap_err();
        assert!(e.0.starts_with("template parsing error: "), "{e}");
        let empty = Rows {
            headers: HEADERS,
            rows: vec![],
        };
        assert_eq!(
            render("table {{.ID}}\t{{.Size}}", &empty).unwrap(),
            "IMAGE ID   SIZE\n"
        );
    }

    #[test]
    fn natural_order() {
        assert!(natural_less("net2", "net10"));
        assert!(!natural_less("net10", "net2"));
        assert!(natural_less("a", "b") && natural_less("a", "ab"));
        assert!(natural_less("1x", "x"));
        assert!(natural_less("v01", "v001") && !natural_less("v1", "v1"));
    }
}
