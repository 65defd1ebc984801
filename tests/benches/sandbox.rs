//! Criterion benches of the sandbox's cost: each operation on the fs
//! provider's storage logic, natively and in the sandbox, side by side in one
//! group (`cargo bench -p tapedeck-tests`). The same workloads as
//! `tapedeck-bench` (`tapedeck_tests::workload`), with criterion's
//! statistics; the table and plot with ratios come from `tapedeck-bench`.

#![allow(
    clippy::unwrap_used,
    reason = "test code fails loudly on what it did not expect"
)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::sync::Arc;
use tapedeck::sandbox::{Limits, Sandbox};
use tapedeck::store::TapeStore;
use tapedeck_tests::workload::{self, BATCH, SMALL_OPS, fill, frames, native, small_op, wasm};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn stores(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
) -> (Arc<impl TapeStore>, Arc<impl TapeStore>) {
    let sandbox = Sandbox::builder()
        .pooling_for([&Limits::default()])
        .build()
        .unwrap();
    let n = native(&dir.join("native"));
    let w = rt.block_on(wasm(&sandbox, &dir.join("wasm")));
    rt.block_on(fill(&n, 200));
    rt.block_on(fill(&w, 200));
    (Arc::new(n), Arc::new(w))
}

fn small_operations(c: &mut Criterion) {
    let rt = runtime();
    let tmp = tempfile::tempdir().unwrap();
    let (n, w) = stores(&rt, tmp.path());
    for (op, name) in SMALL_OPS {
        let mut group = c.benchmark_group(name);
        group.bench_function("native", |b| {
            b.to_async(&rt).iter(|| small_op(n.as_ref(), op))
        });
        group.bench_function("wasm", |b| {
            b.to_async(&rt).iter(|| small_op(w.as_ref(), op))
        });
        group.finish();
    }
}

fn append(c: &mut Criterion) {
    let rt = runtime();
    let tmp = tempfile::tempdir().unwrap();
    let (n, w) = stores(&rt, tmp.path());
    let batch = frames(BATCH as u64, 1024);
    let mut group = c.benchmark_group(format!("append a tape of {BATCH} 1 KiB frames"));
    group.throughput(criterion::Throughput::Elements(BATCH as u64));
    let mut k = 0u64;
    let mut id = move || {
        k += 1;
        format!("append-{k}")
    };
    group.bench_function("native", |b| {
        b.to_async(&rt).iter_batched(
            &mut id,
            |id| {
                let n = n.clone();
                let batch = batch.clone();
                async move { workload::append_tape(n.as_ref(), &id, &batch).await }
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("wasm", |b| {
        b.to_async(&rt).iter_batched(
            &mut id,
            |id| {
                let w = w.clone();
                let batch = batch.clone();
                async move { workload::append_tape(w.as_ref(), &id, &batch).await }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn instantiation(c: &mut Criterion) {
    let rt = runtime();
    let tmp = tempfile::tempdir().unwrap();
    let pooled = Sandbox::builder()
        .pooling_for([&Limits::default()])
        .build()
        .unwrap();
    let on_demand = Sandbox::new().unwrap();
    let mut group = c.benchmark_group("instantiation from InstancePre");
    for (name, sandbox) in [("pooling", &pooled), ("on demand", &on_demand)] {
        let p = rt.block_on(wasm(sandbox, &tmp.path().join(name)));
        group.bench_function(name, |b| {
            b.to_async(&rt)
                .iter(|| async { p.time_instantiation().await.unwrap() })
        });
    }
    group.finish();
}

criterion_group!(benches, small_operations, append, instantiation);
criterion_main!(benches);
