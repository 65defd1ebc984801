//! The JSON a replay needs: where a message's top-level `id` is in its raw
//! bytes (so an answer is sent exactly as recorded, with only its id
//! changed), the message normalized for matching (ignored members removed),
//! and a structural diff between two values.

use serde_json::Value;

/// The byte range of the value of the top-level member `name` of the JSON
/// object in `bytes`, or `None` when `bytes` is not an object with that
/// member. A small scanner: strings (with escapes) and nesting are skipped,
/// nothing is allocated.
pub fn member_span(bytes: &[u8], name: &str) -> Option<(usize, usize)> {
    let mut i = skip_ws(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(bytes, i);
        match bytes.get(i)? {
            b'}' => return None,
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let key_end = string_end(bytes, i)?;
        let key = &bytes[i + 1..key_end - 1];
        i = skip_ws(bytes, key_end);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(bytes, i + 1);
        let value_end = value_end(bytes, i)?;
        // Member names in JSON-RPC are plain ASCII: an escaped name is not
        // `id`.
        if key == name.as_bytes() {
            return Some((i, value_end));
        }
        i = value_end;
    }
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while matches!(bytes.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The end (exclusive) of the string starting at `bytes[i] == '"'`.
fn string_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match bytes.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The end (exclusive) of the value starting at `i`.
fn value_end(bytes: &[u8], i: usize) -> Option<usize> {
    match bytes.get(i)? {
        b'"' => string_end(bytes, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match bytes.get(j)? {
                    b'"' => {
                        j = string_end(bytes, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while let Some(c) = bytes.get(j) {
                if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    break;
                }
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// `bytes` with the value of its top-level `id` replaced by `id` (JSON
/// text), everything else byte for byte; `None` if it has no `id`.
pub fn with_id(bytes: &[u8], id: &str) -> Option<Vec<u8>> {
    let (start, end) = member_span(bytes, "id")?;
    let mut out = Vec::with_capacity(bytes.len() + id.len());
    out.extend_from_slice(&bytes[..start]);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(&bytes[end..]);
    Some(out)
}

/// A path into a JSON value: `/params/arguments/city` (RFC 6901 pointer),
/// or `params.arguments.city`; a segment `*` matches any member or item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(Vec<String>);

impl JsonPath {
    /// Parses a pointer (`/a/b`, with `~0` and `~1`) or a dotted path
    /// (`a.b`). An empty path is refused.
    pub fn parse(s: &str) -> Result<JsonPath, String> {
        let segments: Vec<String> = if let Some(rest) = s.strip_prefix('/') {
            rest.split('/')
                .map(|p| p.replace("~1", "/").replace("~0", "~"))
                .collect()
        } else {
            s.split('.').map(str::to_string).collect()
        };
        if s.is_empty() || segments.iter().any(String::is_empty) {
            return Err(format!(
                "`{s}` is not a path: use a JSON pointer (/params/arguments/now) or dots (params.arguments.now)"
            ));
        }
        Ok(JsonPath(segments))
    }

    /// Removes what the path names from `value` (nothing if absent).
    pub fn remove_from(&self, value: &mut Value) {
        remove(value, &self.0);
    }
}

impl std::fmt::Display for JsonPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for s in &self.0 {
            write!(f, "/{}", s.replace('~', "~0").replace('/', "~1"))?;
        }
        Ok(())
    }
}

fn remove(value: &mut Value, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    match value {
        Value::Object(map) => {
            if rest.is_empty() {
                if first == "*" {
                    map.clear();
                } else {
                    map.remove(first);
                }
                return;
            }
            if first == "*" {
                map.values_mut().for_each(|v| remove(v, rest));
            } else if let Some(v) = map.get_mut(first) {
                remove(v, rest);
            }
        }
        Value::Array(items) => {
            if first == "*" {
                if rest.is_empty() {
                    items.clear();
                } else {
                    items.iter_mut().for_each(|v| remove(v, rest));
                }
            } else if let Ok(i) = first.parse::<usize>()
                && i < items.len()
            {
                if rest.is_empty() {
                    items.remove(i);
                } else {
                    remove(&mut items[i], rest);
                }
            }
        }
        _ => {}
    }
}

/// Removes every member named `name`, at any depth.
pub fn remove_everywhere(value: &mut Value, name: &str) {
    match value {
        Value::Object(map) => {
            map.remove(name);
            map.values_mut().for_each(|v| remove_everywhere(v, name));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| remove_everywhere(v, name)),
        _ => {}
    }
}

/// One place where two JSON values differ.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// Where (a JSON pointer; empty for the whole value).
    pub path: String,
    /// The recorded value there (`None`: the member is missing).
    pub recorded: Option<Value>,
    /// The value received there (`None`: the member is missing).
    pub got: Option<Value>,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<Value>| match v {
            None => "(missing)".to_string(),
            Some(v) => {
                let s = v.to_string();
                if s.len() > 120 {
                    let cut = s.char_indices().nth(117).map_or(s.len(), |(i, _)| i);
                    format!("{}…", &s[..cut])
                } else {
                    s
                }
            }
        };
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(
            f,
            "{path}: recorded {}, got {}",
            show(&self.recorded),
            show(&self.got)
        )
    }
}

/// Where `recorded` and `got` differ, member by member and item by item,
/// in a stable order; at most `limit` differences.
pub fn diff(recorded: &Value, got: &Value, limit: usize) -> Vec<Difference> {
    let mut out = Vec::new();
    diff_at(recorded, got, &mut String::new(), &mut out, limit);
    out
}

fn diff_at(a: &Value, b: &Value, path: &mut String, out: &mut Vec<Difference>, limit: usize) {
    if out.len() >= limit {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x
                .keys()
                .chain(y.keys().filter(|k| !x.contains_key(*k)))
                .collect();
            keys.sort();
            for k in keys {
                let len = path.len();
                path.push('/');
                path.push_str(&k.replace('~', "~0").replace('/', "~1"));
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => diff_at(p, q, path, out, limit),
                    (p, q) if out.len() < limit => out.push(Difference {
                        path: path.clone(),
                        recorded: p.cloned(),
                        got: q.cloned(),
                    }),
                    _ => {}
                }
                path.truncate(len);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let len = path.len();
                path.push_str(&format!("/{i}"));
                match (x.get(i), y.get(i)) {
                    (Some(p), Some(q)) => diff_at(p, q, path, out, limit),
                    (p, q) if out.len() < limit => out.push(Difference {
                        path: path.clone(),
                        recorded: p.cloned(),
                        got: q.cloned(),
                    }),
                    _ => {}
                }
                path.truncate(len);
            }
        }
        _ if a == b => {}
        _ => out.push(Difference {
            path: path.clone(),
            recorded: Some(a.clone()),
            got: Some(b.clone()),
        }),
    }
}

/// How many differences there are (for ranking candidates), counting at
/// most `limit`.
pub fn distance(a: &Value, b: &Value, limit: usize) -> usize {
    diff(a, b, limit).len()
}

/// JSON text with object members sorted: equal values give equal text.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}
