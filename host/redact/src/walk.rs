//! A byte-exact walk over a JSON payload: every string value with its
//! path and its byte span, so that a redaction replaces exactly those
//! bytes and leaves the rest of the message as it was written (member
//! order, spacing, number forms).

/// Deeper nesting than this is not walked (the payload is treated as text).
const MAX_DEPTH: usize = 256;

/// Why a value is a secret as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Whole {
    /// A member's name says so.
    Key,
    /// A configured pointer covers it.
    Pointer,
}

/// A string value found by [`walk`].
pub(crate) struct StringValue<'a> {
    /// Byte range of the string in the payload, quotes included.
    pub start: usize,
    pub end: usize,
    /// The path of member names and array indexes leading to it.
    pub path: &'a [String],
    /// Set when a key or pointer rule covers the value.
    pub whole: Option<Whole>,
}

/// Calls `visit` for every string value of `payload` (not member names).
/// `whole_at` says whether a path is covered by a pointer, `secret_key`
/// whether a member name marks a secret. `None` when `payload` is not one
/// complete JSON value.
pub(crate) fn walk(
    payload: &[u8],
    secret_key: &dyn Fn(&str) -> bool,
    pointer_at: &dyn Fn(&[String]) -> bool,
    visit: &mut dyn FnMut(StringValue<'_>),
) -> Option<()> {
    let mut w = Walker {
        b: payload,
        i: 0,
        path: Vec::new(),
        secret_key,
        pointer_at,
    };
    w.ws();
    w.value(None, 0, visit)?;
    w.ws();
    (w.i == payload.len()).then_some(())
}

struct Walker<'a, 'f> {
    b: &'a [u8],
    i: usize,
    path: Vec<String>,
    secret_key: &'f dyn Fn(&str) -> bool,
    pointer_at: &'f dyn Fn(&[String]) -> bool,
}

impl Walker<'_, '_> {
    fn ws(&mut self) {
        while self
            .b
            .get(self.i)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    /// The end of the string starting at `self.i` (an opening quote).
    fn string_end(&self) -> Option<usize> {
        let mut j = self.i + 1;
        loop {
            match *self.b.get(j)? {
                b'"' => return Some(j + 1),
                b'\\' => j += 2,
                c if c < 0x20 => return None,
                _ => j += 1,
            }
        }
    }

    fn value(
        &mut self,
        whole: Option<Whole>,
        depth: usize,
        visit: &mut dyn FnMut(StringValue<'_>),
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => {
                self.i += 1;
                if self.peek()? == b'}' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    if self.peek()? != b'"' {
                        return None;
                    }
                    let end = self.string_end()?;
                    let key: String = serde_json::from_slice(&self.b[self.i..end]).ok()?;
                    self.i = end;
                    self.eat(b':')?;
                    let by_key = (self.secret_key)(&key).then_some(Whole::Key);
                    self.path.push(key);
                    let by_pointer = (self.pointer_at)(&self.path).then_some(Whole::Pointer);
                    let child = whole.or(by_key).or(by_pointer);
                    self.value(child, depth + 1, visit)?;
                    self.path.pop();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.i += 1;
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(());
                }
                let mut index = 0usize;
                loop {
                    self.path.push(index.to_string());
                    let by_pointer = (self.pointer_at)(&self.path).then_some(Whole::Pointer);
                    self.value(whole.or(by_pointer), depth + 1, visit)?;
                    self.path.pop();
                    index += 1;
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => {
                let start = self.i;
                let end = self.string_end()?;
                self.i = end;
                visit(StringValue {
                    start,
                    end,
                    path: &self.path,
                    whole,
                });
                Some(())
            }
            _ => {
                // A number or a literal: its characters, checked by shape.
                let start = self.i;
                while self
                    .b
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
                {
                    self.i += 1;
                }
                let token = &self.b[start..self.i];
                let literal = matches!(token, b"true" | b"false" | b"null");
                let number = token
                    .first()
                    .is_some_and(|c| *c == b'-' || c.is_ascii_digit())
                    && token.iter().all(|c| {
                        c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E')
                    });
                (literal || number).then_some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(payload: &str, key: &str, pointer: &[&str]) -> Option<Vec<(String, String, bool)>> {
        let mut found = Vec::new();
        let pointer: Vec<String> = pointer.iter().map(|s| s.to_string()).collect();
        walk(
            payload.as_bytes(),
            &|k| k == key,
            &|p| p == pointer.as_slice(),
            &mut |s| {
                found.push((
                    payload[s.start..s.end].to_string(),
                    s.path.join("/"),
                    s.whole.is_some(),
                ))
            },
        )?;
        Some(found)
    }

    #[test]
    fn every_string_value_is_found_with_its_path() {
        let p = r#" {"a": "x", "b": [1, "y", {"c": "z\"q"}], "token": {"k": ["s"]}, "n": -1.5e3, "t": true} "#;
        let got = strings(p, "token", &["b", "0"]).unwrap();
        assert_eq!(
            got,
            vec![
                ("\"x\"".into(), "a".into(), false),
                ("\"y\"".into(), "b/1".into(), false),
                ("\"z\\\"q\"".into(), "b/2/c".into(), false),
                ("\"s\"".into(), "token/k/0".into(), true),
            ]
        );
        let got = strings(r#"{"p":{"q":"v"}}"#, "", &["p"]).unwrap();
        assert!(got[0].2);
    }

    #[test]
    fn what_is_not_one_json_value_is_refused() {
        for bad in [
            "",
            "{",
            r#"{"a"}"#,
            r#"{"a":1,}"#,
            "[1 2]",
            "\"a",
            "nul",
            "1 2",
            r#"{"a":"b"}x"#,
            "{a:1}",
            "\"a\u{1}b\"",
        ] {
            assert!(strings(bad, "", &[]).is_none(), "{bad:?}");
        }
        let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
        assert!(strings(&deep, "", &[]).is_none());
        let ok = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(strings(&ok, "", &[]).is_some());
    }
}
