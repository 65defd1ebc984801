//! `list` and `search`: walking the catalog newest first from a cursor.

use crate::cursor::Cursor;
use crate::inner::Inner;
use crate::seek;
use crate::tapefile;
use tapedeck_types::{ErrorKind, StorageError, TapeFilter, TapePage};

/// Largest page of `list` and `search`.
const MAX_LIMIT: u32 = 1000;

impl Inner {
    /// One page of `list` or `search`.
    pub(crate) fn page(
        &mut self,
        filter: &TapeFilter,
        terms: &[String],
        text: Option<&[u8]>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(StorageError::invalid_input(format!(
                "limit must be between 1 and {MAX_LIMIT}, got {limit}"
            )));
        }
        let cursor = cursor.map(Cursor::parse).transpose()?;
        self.refresh()?;
        let snapshot = cursor.as_ref().map_or(self.log.offset(), |c| c.snapshot);
        let header_filter = TapeFilter {
            state: None,
            ..filter.clone()
        };
        let mut key = cursor.map(|c| (c.created_at, c.id));
        let mut tapes = Vec::new();
        let mut more = false;
        while let Some(k) = self.catalog.next_in_order(key.as_ref()) {
            key = Some(k);
            let id = &key.as_ref().expect("just set").1;
            let entry = self.catalog.get(id).expect("ordered tapes exist");
            if entry.log_pos >= snapshot || !header_filter.matches(&entry.info) {
                continue;
            }
            let id = id.clone();
            if !self.refresh_live(&id)? {
                continue;
            }
            if !filter.matches(&self.current(&id)?.info) || !self.frames_match(&id, terms, text)? {
                continue;
            }
            if tapes.len() == limit as usize {
                more = true;
                break;
            }
            tapes.push(self.current(&id)?.info.clone());
        }
        let next_cursor = match (more, tapes.last()) {
            (true, Some(last)) => Some(
                Cursor {
                    snapshot,
                    created_at: last.header.created_at_us,
                    id: last.header.id.clone(),
                }
                .encode(),
            ),
            _ => None,
        };
        Ok(TapePage { tapes, next_cursor })
    }

    /// The frame conditions of a search, for one tape: every term among
    /// the tape's terms (exact equality; from the catalog for an ended tape,
    /// from the chain of terms records for a recording one), and `text` in
    /// some payload (streaming the frames, only once the terms matched).
    pub(crate) fn frames_match(
        &mut self,
        id: &str,
        terms: &[String],
        text: Option<&[u8]>,
    ) -> Result<bool, StorageError> {
        if terms.is_empty() && text.is_none() {
            return Ok(true);
        }
        let entry = self.current(id)?;
        let nonce = entry.nonce;
        if !terms.is_empty() {
            match (&entry.end, entry.live) {
                (Some(end), _) => {
                    let has = |t: &String| {
                        self.catalog
                            .term_id(t)
                            .is_some_and(|tid| end.term_ids.binary_search(&tid).is_ok())
                    };
                    if !terms.iter().all(has) {
                        return Ok(false);
                    }
                }
                (None, Some(live)) => {
                    let tape_terms = match self.terms_at(id, nonce, live.last_index) {
                        Ok(t) => t,
                        Err(e) if e.kind == ErrorKind::NotFound => return Ok(false),
                        Err(e) => return Err(e),
                    };
                    if !terms.iter().all(|t| tape_terms.contains(t)) {
                        return Ok(false);
                    }
                }
                (None, None) => {
                    return Err(StorageError::internal(format!(
                        "tape {id:?} is recording but its counts were not read"
                    )));
                }
            }
        }
        let Some(text) = text else {
            return Ok(true);
        };
        let path = self.paths.tape(id);
        let mut tape = match self.open_tape(id, nonce, false) {
            Ok(t) => t,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let start = seek::header_start(&tape);
        tapefile::any_payload_contains(&mut tape, start, text, &path)
    }
}
