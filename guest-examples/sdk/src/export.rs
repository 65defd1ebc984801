//! The exports [`export_provider!`](crate::export_provider) generates: the
//! generated `Guest` traits implemented once, over any [`TapeStorage`]. Not
//! API: only the macro names these.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use crate::bindings::exports::tapedeck::storage::tape_storage as wit;
use crate::{TapeStorage, TapeWriter};
use tapedeck_types as tt;

/// What a successful `init` made: the store and the capabilities it
/// declared.
struct Instance<S> {
    store: S,
    capabilities: tt::Capabilities,
}

thread_local! {
    /// The instance's [`Instance`], set by a successful `init` (a component
    /// instance is single-threaded, and exports one provider type).
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Runs `f` on the instance's store (`init` must have succeeded).
fn with_instance<S: TapeStorage, T>(
    f: impl FnOnce(&mut Instance<S>) -> Result<T, tt::StorageError>,
) -> Result<T, tt::StorageError> {
    INSTANCE.with_borrow_mut(|slot| {
        match slot.as_mut().and_then(|i| i.downcast_mut::<Instance<S>>()) {
            Some(instance) => f(instance),
            None => Err(tt::StorageError::internal(
                "the provider was called before a successful init",
            )),
        }
    })
}

/// Converts a `tapedeck-types` result to its component-model form.
fn wit<T, U: From<T>>(r: Result<T, tt::StorageError>) -> Result<U, wit::StorageError> {
    r.map(U::from).map_err(wit::StorageError::from)
}

/// `init`: opens the store, once per instance.
fn init<S: TapeStorage>(config: &str) -> Result<tt::ProviderInfo, tt::StorageError> {
    if INSTANCE.with_borrow(Option::is_some) {
        return Err(tt::StorageError::invalid_input(
            "init was called again on an instance that is already initialised \
             (the host calls it exactly once)",
        ));
    }
    let store = S::init(config)?;
    let info = store.info();
    let instance = Instance {
        store,
        capabilities: info.capabilities,
    };
    INSTANCE.with_borrow_mut(|slot| *slot = Some(Box::new(instance)));
    Ok(info)
}

/// The `unsupported` answer for a capability the provider did not declare.
fn undeclared(call: &str, capability: &str) -> tt::StorageError {
    tt::StorageError::unsupported(format!(
        "{call}: this provider does not declare the `{capability}` capability"
    ))
}

/// The exported `tape-storage` interface over the store `S`.
pub struct Exports<S>(PhantomData<S>);

impl<S: TapeStorage> wit::Guest for Exports<S> {
    type TapeWriter = Writer<S>;

    fn init(config: String) -> Result<wit::ProviderInfo, wit::StorageError> {
        wit(init::<S>(&config))
    }

    fn create(header: wit::TapeHeader) -> Result<wit::TapeWriter, wit::StorageError> {
        let writer = with_instance::<S, _>(|i| i.store.create(header.into()))?;
        Ok(wit::TapeWriter::new(Writer::<S>::new(writer)))
    }

    fn resume(id: String) -> Result<wit::TapeWriter, wit::StorageError> {
        let writer = with_instance::<S, _>(|i| i.store.resume(&id))?;
        Ok(wit::TapeWriter::new(Writer::<S>::new(writer)))
    }

    fn save(
        header: wit::TapeHeader,
        frames: Vec<wit::Frame>,
        summary: wit::TapeSummary,
        reason: wit::EndReason,
    ) -> Result<wit::TapeInfo, wit::StorageError> {
        let frames = frames.into_iter().map(Into::into).collect();
        wit(with_instance::<S, _>(|i| {
            i.store
                .save(header.into(), frames, summary.into(), reason.into())
        }))
    }

    fn append_many(appends: Vec<wit::TapeAppend>) -> Vec<Result<u64, wit::StorageError>> {
        let count = appends.len();
        let appends = appends.into_iter().map(Into::into).collect();
        match with_instance::<S, _>(|i| Ok(i.store.append_many(appends))) {
            Ok(results) => results
                .into_iter()
                .map(|r| r.map_err(wit::StorageError::from))
                .collect(),
            // Not initialised: the function has no error of its own, so
            // every entry reports it.
            Err(e) => vec![Err(e.into()); count],
        }
    }

    fn get(id: String) -> Result<wit::TapeInfo, wit::StorageError> {
        wit(with_instance::<S, _>(|i| i.store.get(&id)))
    }

    fn read_frames(
        id: String,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> Result<Vec<wit::Frame>, wit::StorageError> {
        let frames =
            with_instance::<S, _>(|i| i.store.read_frames(&id, from_seq, max_frames, max_bytes))?;
        Ok(frames.into_iter().map(Into::into).collect())
    }

    fn delete(id: String) -> Result<(), wit::StorageError> {
        Ok(with_instance::<S, _>(|i| {
            if !i.capabilities.delete {
                return Err(undeclared("delete", "delete"));
            }
            i.store.delete(&id)
        })?)
    }

    fn list(
        filter: wit::TapeFilter,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<wit::TapePage, wit::StorageError> {
        let filter = filter.into();
        wit(with_instance::<S, _>(|i| {
            i.store.list(&filter, cursor.as_deref(), limit)
        }))
    }

    fn search(
        query: wit::SearchQuery,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<wit::TapePage, wit::StorageError> {
        let query: tt::SearchQuery = query.into();
        wit(with_instance::<S, _>(|i| {
            if !i.capabilities.search {
                return Err(undeclared("search", "search"));
            }
            if query.text.is_some() && !i.capabilities.text_search {
                return Err(undeclared("search with a text condition", "text-search"));
            }
            i.store.search(&query, cursor.as_deref(), limit)
        }))
    }

    fn stats() -> Result<wit::StorageStats, wit::StorageError> {
        wit(with_instance::<S, _>(|i| i.store.stats()))
    }
}

/// The `tape-writer` resource: the store's writer behind a `RefCell`, since
/// resource methods take `&self`.
pub struct Writer<S: TapeStorage> {
    inner: RefCell<S::Writer>,
}

impl<S: TapeStorage> Writer<S> {
    fn new(writer: S::Writer) -> Self {
        Writer {
            inner: RefCell::new(writer),
        }
    }

    /// Runs `f` on the writer and the instance's store.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut S::Writer, &mut S) -> Result<T, tt::StorageError>,
    ) -> Result<T, tt::StorageError> {
        with_instance::<S, _>(|i| f(&mut self.inner.borrow_mut(), &mut i.store))
    }
}

impl<S: TapeStorage> wit::GuestTapeWriter for Writer<S> {
    fn next_seq(&self) -> u64 {
        match self.with(|w, store| Ok(w.next_seq(store))) {
            Ok(seq) => seq,
            // A writer exists only after a successful `init`, so this is a
            // bug, and `next-seq` has no way to report it but a trap.
            Err(e) => panic!("next-seq: {e}"),
        }
    }

    fn append(&self, frames: Vec<wit::Frame>) -> Result<u64, wit::StorageError> {
        let frames = frames.into_iter().map(Into::into).collect();
        Ok(self.with(|w, store| w.append(store, frames))?)
    }

    fn finish(
        &self,
        summary: wit::TapeSummary,
        reason: wit::EndReason,
    ) -> Result<wit::TapeInfo, wit::StorageError> {
        wit(self.with(|w, store| w.finish(store, summary.into(), reason.into())))
    }

    fn abort(&self, reason: String) -> Result<(), wit::StorageError> {
        Ok(self.with(|w, store| w.abort(store, &reason))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wit::Guest;

    /// A store declaring only `search`, counting the calls that reach it.
    struct Probe {
        calls: u32,
    }

    impl TapeWriter<Probe> for () {
        fn next_seq(&mut self, _: &mut Probe) -> u64 {
            0
        }
        fn append(&mut self, _: &mut Probe, _: Vec<tt::Frame>) -> Result<u64, tt::StorageError> {
            Ok(0)
        }
        fn finish(
            &mut self,
            _: &mut Probe,
            _: tt::TapeSummary,
            _: tt::EndReason,
        ) -> Result<tt::TapeInfo, tt::StorageError> {
            Err(tt::StorageError::internal("unused"))
        }
        fn abort(&mut self, _: &mut Probe, _: &str) -> Result<(), tt::StorageError> {
            Ok(())
        }
    }

    impl TapeStorage for Probe {
        type Writer = ();
        fn init(config: &str) -> Result<Self, tt::StorageError> {
            match config {
                "{}" => Ok(Probe { calls: 0 }),
                _ => Err(tt::StorageError::invalid_input("bad config")),
            }
        }
        fn info(&self) -> tt::ProviderInfo {
            tt::ProviderInfo {
                name: "probe".into(),
                version: "1.0.0".into(),
                capabilities: tt::Capabilities {
                    delete: false,
                    search: true,
                    text_search: false,
                },
            }
        }
        fn create(&mut self, _: tt::TapeHeader) -> Result<(), tt::StorageError> {
            Ok(())
        }
        fn resume(&mut self, id: &str) -> Result<(), tt::StorageError> {
            match id {
                "missing" => Err(tt::StorageError::not_found(id)),
                _ => Ok(()),
            }
        }
        fn save(
            &mut self,
            _: tt::TapeHeader,
            _: Vec<tt::Frame>,
            _: tt::TapeSummary,
            _: tt::EndReason,
        ) -> Result<tt::TapeInfo, tt::StorageError> {
            Err(tt::StorageError::internal("unused"))
        }
        fn get(&mut self, id: &str) -> Result<tt::TapeInfo, tt::StorageError> {
            Err(tt::StorageError::not_found(id))
        }
        fn read_frames(
            &mut self,
            _: &str,
            _: u64,
            _: u32,
            _: u64,
        ) -> Result<Vec<tt::Frame>, tt::StorageError> {
            Ok(Vec::new())
        }
        fn delete(&mut self, _: &str) -> Result<(), tt::StorageError> {
            self.calls += 1;
            Ok(())
        }
        fn list(
            &mut self,
            _: &tt::TapeFilter,
            _: Option<&str>,
            _: u32,
        ) -> Result<tt::TapePage, tt::StorageError> {
            Ok(tt::TapePage::default())
        }
        fn search(
            &mut self,
            _: &tt::SearchQuery,
            _: Option<&str>,
            _: u32,
        ) -> Result<tt::TapePage, tt::StorageError> {
            self.calls += 1;
            Ok(tt::TapePage::default())
        }
        fn stats(&mut self) -> Result<tt::StorageStats, tt::StorageError> {
            Ok(tt::StorageStats::default())
        }
    }

    type P = Exports<Probe>;

    fn calls() -> u32 {
        with_instance::<Probe, _>(|i| Ok(i.store.calls)).unwrap()
    }

    fn query(text: Option<&str>) -> wit::SearchQuery {
        wit::SearchQuery {
            filter: wit::TapeFilter {
                session_id: None,
                name_contains: None,
                tags: Vec::new(),
                created_since: None,
                created_until: None,
                state: None,
            },
            terms: Vec::new(),
            text: text.map(Into::into),
        }
    }

    fn entry(id: &str) -> wit::TapeAppend {
        wit::TapeAppend {
            id: id.into(),
            frames: vec![wit::Frame {
                seq: 0,
                timestamp: 1,
                direction: crate::bindings::tapedeck::storage::types::Direction::ClientToServer,
                payload: b"{}".to_vec(),
                flags: crate::bindings::tapedeck::storage::types::FrameFlags::empty(),
                terms: vec!["method:x".into()],
                attributes: vec![("k".into(), "v".into())],
            }],
        }
    }

    #[test]
    fn append_many_answers_every_entry() {
        let before = P::append_many(vec![entry("a"), entry("b")]);
        assert_eq!(before.len(), 2);
        assert!(
            before
                .iter()
                .all(|r| matches!(r, Err(wit::StorageError::Internal(_))))
        );
        P::init("{}".into()).unwrap();
        assert!(P::append_many(Vec::new()).is_empty());
        let r = P::append_many(vec![entry("a"), entry("missing"), entry("b"), entry("a")]);
        assert!(matches!(r[0], Ok(0)));
        assert!(matches!(&r[1], Err(wit::StorageError::NotFound(_))));
        assert!(matches!(r[2], Ok(0)));
        assert!(
            matches!(&r[3], Err(wit::StorageError::InvalidInput(m)) if m.contains("more than once"))
        );
        assert_eq!(r.len(), 4);
    }

    #[test]
    fn calls_before_init_are_internal_errors() {
        assert!(
            matches!(P::get("a".into()), Err(wit::StorageError::Internal(m)) if m.contains("before a successful init"))
        );
        assert!(matches!(
            P::init("nope".into()),
            Err(wit::StorageError::InvalidInput(_))
        ));
        assert!(matches!(P::stats(), Err(wit::StorageError::Internal(_))));
    }

    #[test]
    fn init_runs_once_and_answers_the_info() {
        let info = P::init("{}".into()).unwrap();
        assert_eq!(info.name, "probe");
        assert_eq!(
            info.capabilities,
            crate::bindings::tapedeck::storage::types::Capabilities::SEARCH
        );
        assert!(matches!(
            P::get("a".into()),
            Err(wit::StorageError::NotFound(_))
        ));
        assert!(
            matches!(P::init("{}".into()), Err(wit::StorageError::InvalidInput(m)) if m.contains("exactly once"))
        );
        assert!(P::stats().is_ok());
    }

    #[test]
    fn undeclared_capabilities_are_unsupported_without_calling_the_store() {
        P::init("{}".into()).unwrap();
        assert!(
            matches!(P::delete("a".into()), Err(wit::StorageError::Unsupported(m)) if m.contains("`delete`"))
        );
        assert!(
            matches!(P::search(query(Some("x")), None, 10), Err(wit::StorageError::Unsupported(m)) if m.contains("`text-search`"))
        );
        assert_eq!(calls(), 0);
        assert!(P::search(query(None), None, 10).is_ok());
        assert_eq!(calls(), 1);
    }
}
