//! The `text` condition of a search: a raw, case-sensitive substring of a
//! payload. (The `terms` condition needs no code of its own: terms are
//! compared by equality; see `listing.rs`.)

/// Does `haystack` contain `needle` (byte-wise, case-sensitive)? The empty
/// needle is contained in everything.
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    if haystack.len() < needle.len() {
        return false;
    }
    let last_start = haystack.len() - needle.len();
    let mut i = 0;
    while i <= last_start {
        match haystack[i..=last_start].iter().position(|&b| b == first) {
            None => return false,
            Some(p) => {
                let at = i + p;
                if &haystack[at + 1..at + needle.len()] == rest {
                    return true;
                }
                i = at + 1;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring() {
        assert!(contains(b"hello world", b"o w"));
        assert!(contains(b"hello", b"hello"));
        assert!(contains(b"hello", b""));
        assert!(contains(b"aab", b"ab"));
        assert!(!contains(b"hello", b"Hello"));
        assert!(!contains(b"he", b"hello"));
        assert!(contains(&[0, 0xff, 1], &[0xff, 1]));
    }
}
