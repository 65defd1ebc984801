//! Tape id validation: the one rule every provider and the host apply.

/// Longest valid tape id, in bytes.
///
/// Long enough for any generated id (a UUID is 36) plus a readable prefix;
/// short enough to be a file name on every common filesystem (255 bytes).
pub const MAX_TAPE_ID_LEN: usize = 128;

/// Checks that `id` is a valid tape id, as defined in the WIT contract: 1 to
/// [`MAX_TAPE_ID_LEN`] bytes of ASCII letters, digits, `-`, `_` and `.`, not
/// starting with `.` and not containing `..`.
///
/// Such an id can be used as a file name or a key as it is: it cannot name a
/// parent directory, an absolute path, or a hidden file.
///
/// The error explains what is wrong, showing at most the first 40 characters of
/// the id.
pub fn validate_tape_id(id: &str) -> Result<(), String> {
    let shown = || {
        let head: String = id.chars().take(40).collect();
        if head.len() < id.len() {
            format!("{head:?}… ({} bytes)", id.len())
        } else {
            format!("{head:?}")
        }
    };
    if id.is_empty() {
        return Err("tape id is empty".to_string());
    }
    if id.len() > MAX_TAPE_ID_LEN {
        return Err(format!(
            "tape id {} is longer than {MAX_TAPE_ID_LEN} bytes",
            shown()
        ));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "tape id {} contains {bad:?}; only ASCII letters, digits, '-', '_' and '.' are allowed",
            shown()
        ));
    }
    if id.starts_with('.') {
        return Err(format!("tape id {} starts with '.'", shown()));
    }
    if id.contains("..") {
        return Err(format!("tape id {} contains '..'", shown()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_uuids_and_readable_ids() {
        for id in [
            "0192f3a4-6b1c-7d2e-8f30-123456789abc",
            "a",
            "session_1.v2",
            &"x".repeat(MAX_TAPE_ID_LEN),
        ] {
            assert_eq!(validate_tape_id(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn rejects_paths_and_odd_ids() {
        let cases = [
            ("", "empty"),
            ("../x", "contains '/'"),
            ("..", "starts with '.'"),
            ("a..b", "contains '..'"),
            (".hidden", "starts with '.'"),
            ("/etc/passwd", "contains '/'"),
            ("a\\b", "contains '\\\\'"),
            ("a b", "contains ' '"),
            ("é", "contains 'é'"),
            ("nul\0", "contains '\\0'"),
        ];
        for (id, why) in cases {
            let err = validate_tape_id(id).unwrap_err();
            assert!(err.contains(why), "{id:?}: {err}");
        }
        let long = "y".repeat(10 * 1024);
        let err = validate_tape_id(&long).unwrap_err();
        assert!(err.contains("longer than 128 bytes"), "{err}");
        assert!(err.contains("(10240 bytes)"), "{err}");
    }
}
