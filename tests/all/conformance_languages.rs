//! The provider templates of `docs/writing-a-provider.md` (Rust, Python,
//! JavaScript, C) pass the same full conformance suite as the fs provider: each is built from source by `tests/build.rs`
//! with its own toolchain, and a missing toolchain fails its test with the
//! install step (never a silent skip).
//!
//! The components are big (each carries an interpreter: Python 18 MB,
//! JavaScript on StarlingMonkey 15 MB):
//! compiled code is cached in the target directory, shared with the CLI
//! tests, so only the first run after a change compiles it.

use std::path::Path;
use tapedeck::sandbox::cache::ComponentCache;
use tapedeck::sandbox::{ComponentSource, DirGrant, Grants, ProviderSpec, Sandbox, WasmProvider};
use tapedeck_tests::artifacts;

/// Runs the whole suite (large cases included) against the component at
/// `artifact`, granted a scratch directory at `/tapes`, and fails on any
/// failed case or any skip other than an undeclared capability's.
async fn passes_the_whole_suite(name: &str, artifact: Result<&str, &str>) {
    let path = artifact.unwrap_or_else(|why| panic!("the {name} provider was not built: {why}"));
    let tmp = tempfile::tempdir().unwrap();
    let spec = ProviderSpec::new(name, ComponentSource::File(path.into()))
        .with_config(serde_json::json!({ "root": "/tapes" }))
        .with_grants(Grants {
            dirs: vec![DirGrant::read_write(tmp.path(), "/tapes")],
            ..Grants::default()
        });
    let cache = ComponentCache::at(crate::cache_dir());
    let sandbox = Sandbox::builder()
        .cache(Some(cache))
        .pooling_for([&spec.limits])
        .build()
        .unwrap();
    let provider = WasmProvider::start(&sandbox, &spec, Path::new("."))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tapedeck_tests::suite::assert_passes_whole_suite(name, provider, spec.config.clone()).await;
}

/// The Rust template a provider author copies (`docs/writing-a-provider.md`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_template_passes_the_whole_suite() {
    passes_the_whole_suite("rust-template", Ok(artifacts::RUST_TEMPLATE_PROVIDER)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_provider_passes_the_whole_suite() {
    passes_the_whole_suite("python", artifacts::PYTHON_PROVIDER).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_provider_passes_the_whole_suite() {
    passes_the_whole_suite("js", artifacts::JS_PROVIDER).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_provider_passes_the_whole_suite() {
    passes_the_whole_suite("c", artifacts::C_PROVIDER).await;
}
