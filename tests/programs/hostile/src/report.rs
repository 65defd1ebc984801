//! What an attack saw, reported in the answer's tape name.

use std::fmt::Display;

/// The attempts of one attack: each must be refused by the sandbox.
#[derive(Default)]
pub struct Report {
    refused: Vec<String>,
    escaped: Vec<String>,
}

impl Report {
    /// An empty report.
    pub fn new() -> Self {
        Report::default()
    }

    /// Records an attempt that the sandbox must refuse: an error is a
    /// refusal, success an escape. Returns the success value, if any.
    pub fn must_fail<T, E: Display>(&mut self, what: &str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => {
                self.escaped.push(what.to_string());
                Some(v)
            }
            Err(e) => {
                self.refused.push(format!("{what}: {e}"));
                None
            }
        }
    }

    /// Records something that got through, with what it revealed.
    pub fn escaped(&mut self, what: String) {
        self.escaped.push(what);
    }

    /// `ESCAPED: …` if anything got through, else `refused: …` listing every
    /// refusal (`what: error`, separated by `; `).
    pub fn finish(self) -> String {
        if self.escaped.is_empty() {
            format!("refused: {}", self.refused.join("; "))
        } else {
            format!("ESCAPED: {}", self.escaped.join("; "))
        }
    }
}
