//! What the tests of recordings (the recorder's, the proxy's, the hostile
//! suite's, `tapedeck record`'s) start them with and read them back by.

use tapedeck::recorder::TapeMeta;
use tapedeck::store::TapeStore;
use tapedeck_types::Frame;

/// A recording in session `session-1`, named `name`, tagged `suite=SUITE`
/// (the test file it comes from).
pub fn meta(suite: &str, name: &str) -> TapeMeta {
    TapeMeta {
        session_id: "session-1".into(),
        name: name.into(),
        tags: vec![("suite".into(), suite.into())],
    }
}

/// Every frame of tape `id`, read in pages (of 97 frames or 64 KiB).
pub async fn read_all<S: TapeStore>(store: &S, id: &str) -> Vec<Frame> {
    let mut out: Vec<Frame> = Vec::new();
    loop {
        let page = store
            .read_frames(id, out.len() as u64, 97, 64 * 1024)
            .await
            .unwrap_or_else(|e| panic!("read_frames({id}): {e}"));
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}
