//! The subset of Go's `text/template` that docker's `--format` flags use, over JSON values:
//! text, `{{.Field.Path}}`, `{{.}}`, pipelines with `|`, string and number literals,
//! parenthesized pipelines, `$` (the root), `{{range}}`, `{{if}}`/`{{else}}`, `{{with}}`,
//! `{{end}}`, `{{- -}}` trimming, and docker's template functions (`json`, `join`, `split`,
//! `lower`, `upper`, `title`, `pad`, `truncate`, `println`) plus `index`, `len`, `eq`, `ne`,
//! `not`, `and`, `or`, `print`. Anything else is a parse error, never a silent wrong output.
//!
//! Values print as Go prints the values `encoding/json` decodes: strings raw, arrays as
//! `[a b]`, objects as `map[k:v]` (sorted keys), null as `<nil>`.

use serde_json::Value;
use std::fmt;

#[derive(Debug, PartialEq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone)]
enum Arg {
    /// `.A.B` on dot; `$.A.B` on the root when `root` is set
    Field {
        root: bool,
        path: Vec<String>,
    },
    Str(String),
    Num(serde_json::Number),
    Bool(bool),
    Ident(String),
    Pipe(Box<Pipeline>),
}

#[derive(Debug, Clone)]
struct Command {
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
struct Pipeline {
    cmds: Vec<Command>,
    text: String,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    If(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

/// How fields and functions behave while executing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// a missing key is an error (`missingkey=error`, docker's typed contexts and inspect)
    pub strict: bool,
    /// header mode: the value functions (`json`, `upper`, ...) return their argument
    pub header: bool,
    /// `json .` escapes `<`, `>` and `&` (the `MarshalJSON` of docker's format contexts)
    pub escape_html_root: bool,
}

const FUNCS: &[&str] = &[
    "json", "join", "split", "lower", "upper", "title", "pad", "truncate", "println", "print", "index",
    "len", "eq", "ne", "not", "and", "or",
];

fn perr(msg: impl Into<String>) -> Error {
    Error(format!("template: :1: {}", msg.into()))
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, Error> {
        let items = split_actions(src)?;
        let mut pos = 0;
        let (nodes, end) = parse_nodes(&items, &mut pos)?;
        if let Some(e) = end {
            return Err(perr(format!("unexpected {{{{{e}}}}}")));
        }
        Ok(Template { nodes })
    }

    pub fn execute(&self, data: &Value, opts: Options) -> Result<String, Error> {
        let mut out = String::new();
        let ex = Exec { root: data, opts };
        ex.nodes(&self.nodes, data, &mut out)?;
        Ok(out)
    }
}

enum Item {
    Text(String),
    Action(String),
}

fn split_actions(src: &str) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[start + 2..];
        let (inner_start, trim_prev) = if after.starts_with("- ") || after.starts_with("-\t") {
            (1, true)
        } else {
            (0, false)
        };
        if trim_prev {
            text = text.trim_end();
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let end = after.find("}}").ok_or_else(|| perr("unclosed action"))?;
        let mut inner = &after[inner_start..end];
        trim_next = false;
        if inner.ends_with(" -") || inner.ends_with("\t-") {
            inner = &inner[..inner.len() - 1];
            trim_next = true;
        }
        let inner = inner.trim();
        if inner.starts_with("/*") {
            // comment
        } else {
            items.push(Item::Action(inner.to_string()));
        }
        rest = &after[end + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    if !text.is_empty() {
        items.push(Item::Text(text.to_string()));
    }
    Ok(items)
}

/// Parses nodes until `{{end}}` or `{{else}}` (returned as the second value).
fn parse_nodes(items: &[Item], pos: &mut usize) -> Result<(Vec<Node>, Option<String>), Error> {
    let mut nodes = Vec::new();
    while *pos < items.len() {
        let item = &items[*pos];
        *pos += 1;
        match item {
            Item::Text(t) => nodes.push(Node::Text(t.clone())),
            Item::Action(a) => {
                let (kw, rest) = match a.split_once(char::is_whitespace) {
                    Some((k, r)) => (k, r.trim()),
                    None => (a.as_str(), ""),
                };
                match kw {
                    "end" | "else" => {
                        if !rest.is_empty() {
                            return Err(perr(format!("unsupported {{{{{a}}}}}")));
                        }
                        return Ok((nodes, Some(kw.to_string())));
                    }
                    "range" | "if" | "with" => {
                        if rest.contains(":=") || rest.contains(" = ") {
                            return Err(perr(format!("variables are not supported in {{{{{a}}}}}")));
                        }
                        let pipe = parse_pipeline(rest)?;
                        let (body, end) = parse_nodes(items, pos)?;
                        let else_body = match end.as_deref() {
                            Some("end") => Vec::new(),
                            Some("else") => match parse_nodes(items, pos)? {
                                (b, Some(e)) if e == "end" => b,
                                _ => return Err(perr(format!("missing {{{{end}}}} for {kw}"))),
                            },
                            _ => return Err(perr(format!("unexpected EOF in {kw}"))),
                        };
                        nodes.push(match kw {
                            "range" => Node::Range(pipe, body, else_body),
                            "if" => Node::If(pipe, body, else_body),
                            _ => Node::With(pipe, body, else_body),
                        });
                    }
                    "define" | "template" | "block" | "break" | "continue" => {
                        return Err(perr(format!("{{{{{kw}}}}} is not supported")));
                    }
                    _ => {
                        if a.is_empty() {
                            return Err(perr("missing value for command"));
                        }
                        if a.contains(":=") || a.starts_with('$') && a.contains('=') {
                            return Err(perr(format!("variables are not supported: {{{{{a}}}}}")));
                        }
                        nodes.push(Node::Action(parse_pipeline(a)?));
                    }
                }
            }
        }
    }
    Ok((nodes, None))
}

#[derive(Debug, PartialEq, Clone)]
enum Tok {
    Field(bool, Vec<String>),
    Str(String),
    Num(String),
    Ident(String),
    Pipe,
    Open,
    Close,
}

fn lex(s: &str) -> Result<Vec<Tok>, Error> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut toks = Vec::new();
    let ident_char = |ch: char| ch.is_alphanumeric() || ch == '_';
    let field_path = |i: &mut usize| -> Vec<String> {
        let mut path = Vec::new();
        while *i < c.len() && c[*i] == '.' {
            let start = *i + 1;
            let mut j = start;
            while j < c.len() && ident_char(c[j]) {
                j += 1;
            }
            if j == start {
                *i = j;
                break;
            }
            path.push(c[start..j].iter().collect());
            *i = j;
        }
        path
    };
    while i < c.len() {
        let ch = c[i];
        match ch {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            '(' => {
                toks.push(Tok::Open);
                i += 1;
            }
            ')' => {
                toks.push(Tok::Close);
                i += 1;
            }
            '.' => {
                let p = field_path(&mut i);
                toks.push(Tok::Field(false, p));
            }
            '$' => {
                i += 1;
                if i < c.len() && ident_char(c[i]) {
                    return Err(perr("variables other than $ are not supported"));
                }
                let p = field_path(&mut i);
                toks.push(Tok::Field(true, p));
            }
            '"' => {
                let mut j = i + 1;
                let mut lit = String::from("\"");
                while j < c.len() && c[j] != '"' {
                    if c[j] == '\\' && j + 1 < c.len() {
                        lit.push(c[j]);
                        j += 1;
                    }
                    lit.push(c[j]);
                    j += 1;
                }
                if j >= c.len() {
                    return Err(perr("unterminated quoted string"));
                }
                lit.push('"');
                let v: String =
                    serde_json::from_str(&lit).map_err(|_| perr(format!("bad string literal {lit}")))?;
                toks.push(Tok::Str(v));
                i = j + 1;
            }
            '`' => {
                let start = i + 1;
                let end = c[start..]
                    .iter()
                    .position(|&x| x == '`')
                    .ok_or_else(|| perr("unterminated raw quoted string"))?;
                toks.push(Tok::Str(c[start..start + end].iter().collect()));
                i = start + end + 1;
            }
            _ if ch.is_ascii_digit() || ch == '-' => {
                let start = i;
                i += 1;
                while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.') {
                    i += 1;
                }
                toks.push(Tok::Num(c[start..i].iter().collect()));
            }
            _ if ident_char(ch) => {
                let start = i;
                while i < c.len() && ident_char(c[i]) {
                    i += 1;
                }
                let name: String = c[start..i].iter().collect();
                if i < c.len() && c[i] == '.' {
                    return Err(perr(format!("unsupported field access on {name}")));
                }
                toks.push(Tok::Ident(name));
            }
            _ => return Err(perr(format!("unexpected {ch:?} in command"))),
        }
    }
    Ok(toks)
}

fn parse_pipeline(s: &str) -> Result<Pipeline, Error> {
    let toks = lex(s)?;
    let mut pos = 0;
    let p = pipeline_from(&toks, &mut pos, s)?;
    if pos != toks.len() {
        return Err(perr(format!("unexpected ) in {s}")));
    }
    Ok(p)
}

fn pipeline_from(toks: &[Tok], pos: &mut usize, text: &str) -> Result<Pipeline, Error> {
    let mut cmds = Vec::new();
    let mut args = Vec::new();
    while *pos < toks.len() {
        let t = toks[*pos].clone();
        *pos += 1;
        match t {
            Tok::Close => {
                *pos -= 1;
                break;
            }
            Tok::Pipe => {
                if args.is_empty() {
                    return Err(perr("missing command before |"));
                }
                cmds.push(Command {
                    args: std::mem::take(&mut args),
                });
            }
            Tok::Open => {
                let inner = pipeline_from(toks, pos, text)?;
                if toks.get(*pos) != Some(&Tok::Close) {
                    return Err(perr("unclosed left paren"));
                }
                *pos += 1;
                args.push(Arg::Pipe(Box::new(inner)));
            }
            Tok::Field(root, path) => args.push(Arg::Field { root, path }),
            Tok::Str(s) => args.push(Arg::Str(s)),
            Tok::Num(n) => {
                let v: serde_json::Number =
                    n.parse().map_err(|_| perr(format!("bad number syntax: {n:?}")))?;
                args.push(Arg::Num(v));
            }
            Tok::Ident(name) => match name.as_str() {
                "true" | "false" => args.push(Arg::Bool(name == "true")),
                "nil" => return Err(perr("nil is not a command")),
                _ if FUNCS.contains(&name.as_str()) => args.push(Arg::Ident(name)),
                _ => return Err(perr(format!("function {name:?} not defined"))),
            },
        }
    }
    if args.is_empty() {
        return Err(perr(format!("missing value for command in {text:?}")));
    }
    cmds.push(Command { args });
    Ok(Pipeline {
        cmds,
        text: text.to_string(),
    })
}

struct Exec<'a> {
    root: &'a Value,
    opts: Options,
}

/// A value during execution: `None` is Go's "no value" (a missing map key).
type Val = Option<Value>;

impl Exec<'_> {
    fn nodes(&self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<(), Error> {
        for n in nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(p, dot)?;
                    out.push_str(&print_val(&v));
                }
                Node::If(p, body, els) => {
                    let v = self.pipeline(p, dot)?;
                    self.nodes(if truthy(&v) { body } else { els }, dot, out)?;
                }
                Node::With(p, body, els) => {
                    let v = self.pipeline(p, dot)?;
                    match v {
                        Some(v) if truthy(&Some(v.clone())) => self.nodes(body, &v, out)?,
                        _ => self.nodes(els, dot, out)?,
                    }
                }
                Node::Range(p, body, els) => {
                    let v = self.pipeline(p, dot)?;
                    let items: Vec<Value> = match v {
                        Some(Value::Array(a)) => a,
                        Some(Value::Object(m)) => {
                            let mut keys: Vec<&String> = m.keys().collect();
                            keys.sort();
                            keys.into_iter().map(|k| m[k].clone()).collect()
                        }
                        None | Some(Value::Null) => Vec::new(),
                        Some(other) => {
                            return Err(self.exec_err(
                                &p.text,
                                &format!("range can't iterate over {}", print_val(&Some(other))),
                            ))
                        }
                    };
                    if items.is_empty() {
                        self.nodes(els, dot, out)?;
                    }
                    for it in &items {
                        self.nodes(body, it, out)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn exec_err(&self, at: &str, msg: &str) -> Error {
        Error(format!("template: :1: executing \"\" at <{at}>: {msg}"))
    }

    fn pipeline(&self, p: &Pipeline, dot: &Value) -> Result<Val, Error> {
        let mut prev: Option<Val> = None;
        for cmd in &p.cmds {
            prev = Some(self.command(cmd, dot, prev, &p.text)?);
        }
        Ok(prev.expect("non-empty pipeline"))
    }

    fn arg(&self, a: &Arg, dot: &Value, at: &str) -> Result<Val, Error> {
        match a {
            Arg::Field { root, path } => {
                let mut cur: Val = Some(if *root { self.root } else { dot }.clone());
                for (i, key) in path.iter().enumerate() {
                    cur = match cur {
                        Some(Value::Object(mut m)) => match m.remove(key) {
                            Some(v) => Some(v),
                            None if self.opts.strict => {
                                return Err(self.exec_err(at, &format!("map has no entry for key {key:?}")))
                            }
                            None => None,
                        },
                        Some(Value::Null) | None => {
                            return Err(self
                                .exec_err(at, &format!("nil pointer evaluating interface {{}}.{}", path[i])))
                        }
                        Some(other) => {
                            return Err(self.exec_err(
                                at,
                                &format!("can't evaluate field {key} in type {}", go_type(&other)),
                            ))
                        }
                    };
                }
                Ok(cur)
            }
            Arg::Str(s) => Ok(Some(Value::String(s.clone()))),
            Arg::Num(n) => Ok(Some(Value::Number(n.clone()))),
            Arg::Bool(b) => Ok(Some(Value::Bool(*b))),
            Arg::Pipe(p) => self.pipeline(p, dot),
            Arg::Ident(name) => Err(self.exec_err(at, &format!("{name} is not a value"))),
        }
    }

    fn command(&self, cmd: &Command, dot: &Value, prev: Option<Val>, at: &str) -> Result<Val, Error> {
        let first = &cmd.args[0];
        let Arg::Ident(name) = first else {
            if cmd.args.len() > 1 || prev.is_some() {
                return Err(self.exec_err(at, "can't give argument to non-function"));
            }
            return self.arg(first, dot, at);
        };
        let mut args = Vec::new();
        let mut raw_root = Vec::new();
        for a in &cmd.args[1..] {
            raw_root.push(matches!(a, Arg::Field { root, path } if path.is_empty() && (*root || std::ptr::eq(dot, self.root))));
            args.push(self.arg(a, dot, at)?);
        }
        if let Some(p) = prev {
            raw_root.push(false);
            args.push(p);
        }
        self.call(name, args, raw_root.first().copied().unwrap_or(false), at)
    }

    fn call(&self, name: &str, args: Vec<Val>, first_is_root: bool, at: &str) -> Result<Val, Error> {
        let want = |n: usize| -> Result<(), Error> {
            if args.len() != n {
                Err(self.exec_err(
                    at,
                    &format!("wrong number of args for {name}: want {n} got {}", args.len()),
                ))
            } else {
                Ok(())
            }
        };
        let s = |v: &Val| print_val(v);
        let int = |v: &Val| -> Result<i64, Error> {
            v.as_ref()
                .and_then(|v| v.as_i64())
                .ok_or_else(|| self.exec_err(at, &format!("{name}: expected an integer")))
        };
        let string = |x: String| Ok(Some(Value::String(x)));
        if self.opts.header {
            if let "json" | "join" | "split" | "lower" | "upper" | "title" | "pad" | "truncate" = name {
                return Ok(args.into_iter().next().flatten());
            }
        }
        match name {
            "json" => {
                want(1)?;
                let v = args[0].clone().unwrap_or(Value::Null);
                let mut text = serde_json::to_string(&v).map_err(|e| Error(e.to_string()))?;
                if self.opts.escape_html_root && first_is_root {
                    text = escape_html(&text);
                }
                string(text)
            }
            "join" => {
                want(2)?;
                let sep = s(&args[1]);
                match &args[0] {
                    Some(Value::Array(a)) => string(
                        a.iter()
                            .map(|x| print_val(&Some(x.clone())))
                            .collect::<Vec<_>>()
                            .join(&sep),
                    ),
                    Some(Value::Null) | None => string(String::new()),
                    other => string(s(other)),
                }
            }
            "split" => {
                want(2)?;
                let parts = s(&args[0])
                    .split(&s(&args[1]))
                    .map(|x| Value::String(x.to_string()))
                    .collect();
                Ok(Some(Value::Array(parts)))
            }
            "lower" => {
                want(1)?;
                string(s(&args[0]).to_lowercase())
            }
            "upper" => {
                want(1)?;
                string(s(&args[0]).to_uppercase())
            }
            "title" => {
                want(1)?;
                let mut out = String::new();
                let mut prev_letter = false;
                for ch in s(&args[0]).chars() {
                    if !prev_letter {
                        out.extend(ch.to_uppercase());
                    } else {
                        out.push(ch);
                    }
                    prev_letter = ch.is_alphanumeric() || ch == '_' || ch == '\'';
                }
                string(out)
            }
            "pad" => {
                want(3)?;
                let (b, a) = (int(&args[1])?.max(0) as usize, int(&args[2])?.max(0) as usize);
                string(format!("{}{}{}", " ".repeat(b), s(&args[0]), " ".repeat(a)))
            }
            "truncate" => {
                want(2)?;
                let n = int(&args[1])?.max(0) as usize;
                string(s(&args[0]).chars().take(n).collect())
            }
            "println" => string(args.iter().map(s).collect::<Vec<_>>().join(" ") + "\n"),
            "print" => string(args.iter().map(s).collect::<Vec<_>>().join("")),
            "index" => {
                if args.is_empty() {
                    return Err(self.exec_err(at, "wrong number of args for index"));
                }
                let mut cur = args[0].clone();
                for k in &args[1..] {
                    cur = match (cur, k) {
                        (Some(Value::Object(mut m)), Some(Value::String(key))) => match m.remove(key) {
                            Some(v) => Some(v),
                            None if self.opts.strict => {
                                return Err(self.exec_err(
                                    at,
                                    &format!("error calling index: map has no entry for key {key:?}"),
                                ))
                            }
                            None => None,
                        },
                        (Some(Value::Array(a)), Some(Value::Number(n))) => {
                            let i = n.as_u64().unwrap_or(u64::MAX) as usize;
                            match a.get(i) {
                                Some(v) => Some(v.clone()),
                                None => {
                                    return Err(self.exec_err(
                                        at,
                                        &format!("error calling index: index out of range: {n}"),
                                    ))
                                }
                            }
                        }
                        (Some(Value::Null) | None, _) => None,
                        _ => return Err(self.exec_err(at, "error calling index: cannot index")),
                    };
                }
                Ok(cur)
            }
            "len" => {
                want(1)?;
                let n = match &args[0] {
                    Some(Value::Array(a)) => a.len(),
                    Some(Value::Object(m)) => m.len(),
                    Some(Value::String(t)) => t.len(),
                    Some(Value::Null) => 0,
                    _ => return Err(self.exec_err(at, "error calling len: len of this type")),
                };
                Ok(Some(Value::from(n)))
            }
            "eq" | "ne" => {
                if args.len() < 2 {
                    return Err(self.exec_err(at, &format!("missing argument for {name}")));
                }
                let eq = args[1..].iter().any(|b| values_equal(&args[0], b));
                Ok(Some(Value::Bool(if name == "eq" { eq } else { !eq })))
            }
            "not" => {
                want(1)?;
                Ok(Some(Value::Bool(!truthy(&args[0]))))
            }
            "and" | "or" => {
                let mut last = None;
                for a in args {
                    let t = truthy(&a);
                    last = a;
                    if (name == "and" && !t) || (name == "or" && t) {
                        break;
                    }
                }
                Ok(last)
            }
            _ => Err(perr(format!("function {name:?} not defined"))),
        }
    }
}

fn values_equal(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn truthy(v: &Val) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
    }
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Number(_) => "float64",
        Value::Bool(_) => "bool",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
        Value::Null => "interface {}",
    }
}

/// Go's `fmt.Sprint` of a value decoded by `encoding/json` (numbers as written).
pub fn print_val(v: &Val) -> String {
    match v {
        None => "<no value>".into(),
        Some(v) => print_value(v),
    }
}

fn print_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(print_value).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", print_value(&m[k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// `encoding/json`'s HTML escaping of `<`, `>`, `&`, U+2028 and U+2029.
pub fn escape_html(s: &str) -> String {
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &str, v: &Value) -> String {
        Template::parse(t)
            .unwrap()
            .execute(v, Options::default())
            .unwrap()
    }

    #[test]
    fn fields_and_text() {
        let v = json!({"Id": "sha256:abc", "Config": {"Env": ["A=1", "B=2"], "Labels": {"b": "2", "a": "1"}}, "Size": 4261550, "Nil": null});
        assert_eq!(run("{{.Id}}", &v), "sha256:abc");
        assert_eq!(run("id={{ .Id }}\t!", &v), "id=sha256:abc\t!");
        assert_eq!(run("{{.Config.Env}}", &v), "[A=1 B=2]");
        assert_eq!(run("{{.Config.Labels}}", &v), "map[a:1 b:2]");
        assert_eq!(run("{{.Size}}", &v), "4261550");
        assert_eq!(run("{{.Nil}}", &v), "<nil>");
        assert_eq!(run("{{.Missing}}", &v), "<no value>");
        assert_eq!(run("{{json .Config.Env}}", &v), r#"["A=1","B=2"]"#);
        assert_eq!(run("{{.Config.Env | json}}", &v), r#"["A=1","B=2"]"#);
        assert_eq!(run("{{join .Config.Env \",\"}}", &v), "A=1,B=2");
        assert_eq!(run("{{index .Config.Labels \"a\"}}", &v), "1");
        assert_eq!(run("{{range .Config.Env}}<{{.}}>{{end}}", &v), "<A=1><B=2>");
        assert_eq!(run("{{if .Nil}}y{{else}}n{{end}}", &v), "n");
        assert_eq!(run("{{with .Config}}{{len .Env}}{{end}}", &v), "2");
        assert_eq!(run("{{upper (index .Config.Labels \"b\")}}", &v), "2");
        assert_eq!(run("{{if eq .Id \"sha256:abc\"}}same{{end}}", &v), "same");
        assert_eq!(run("a {{- .Id -}} b", &v), "asha256:abcb");
        assert_eq!(run("{{$.Id}}", &v), "sha256:abc");
    }

    #[test]
    fn strict_and_errors() {
        let v = json!({"A": "x"});
        let t = Template::parse("{{.B}}").unwrap();
        let strict = Options {
            strict: true,
            ..Options::default()
        };
        assert!(t
            .execute(&v, strict)
            .unwrap_err()
            .0
            .contains("map has no entry for key \"B\""));
        assert!(Template::parse("{{.A").is_err());
        assert!(Template::parse("{{foo .A}}")
            .unwrap_err()
            .0
            .contains("function \"foo\" not defined"));
        assert!(Template::parse("{{range .A}}").is_err());
        assert!(Template::parse("{{end}}").is_err());
        assert!(Template::parse("{{$x := .A}}").is_err());
        assert!(Template::parse("{{template \"x\"}}").is_err());
        let t = Template::parse("{{.A.B}}").unwrap();
        assert!(t
            .execute(&v, Options::default())
            .unwrap_err()
            .0
            .contains("can't evaluate field B"));
    }

    #[test]
    fn header_and_html_modes() {
        let v = json!({"Digest": "<none>"});
        let t = Template::parse("{{json .}}").unwrap();
        let o = Options {
            escape_html_root: true,
            ..Options::default()
        };
        assert_eq!(t.execute(&v, o).unwrap(), r#"{"Digest":"\u003cnone\u003e"}"#);
        assert_eq!(
            Template::parse("{{json .Digest}}")
                .unwrap()
                .execute(&v, o)
                .unwrap(),
            r#""<none>""#
        );
        let h = Options {
            header: true,
            ..Options::default()
        };
        let t = Template::parse("{{upper .Digest}}").unwrap();
        assert_eq!(t.execute(&json!({"Digest": "DIGEST"}), h).unwrap(), "DIGEST");
    }
}
