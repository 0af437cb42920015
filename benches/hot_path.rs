//! Criterion benchmarks of `gen` mode's hot path (DESIGN §10), per row of a 10,000-row batch:
//!
//! - `generate`: refilling a reused [`ReadingsBatch`] with 10,000 `readings` rows
//!   (`ReadingsBatch::fill`, i.e. `Reading::generate` per id);
//! - `encode/<format>`: encoding an already filled 10,000-row batch into a reused `Vec<u8>` in each
//!   [`RowFormat`] a sink speaks, through the [`Batch`] trait, as the sinks do.
//!
//! No I/O, no threads: these are the per-row CPU costs a worker pays before its sink writes. Run
//! with `cargo bench --bench hot_path`; figures are elements (rows) per second. Measurement time is
//! kept short so the whole bench finishes in about a minute on a noisy 2-core machine.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use loader::config::Shard;
use loader::gen::ReadingsBatch;
use loader::rows::{Batch, RowFormat};

/// Rows per batch, as a large `--batch` would use.
const ROWS: usize = 10_000;
/// The default `--seed`.
const SEED: u64 = 1;

const FORMATS: [(&str, RowFormat); 5] = [
    ("copy_binary", RowFormat::CopyBinary),
    ("copy_text", RowFormat::CopyText),
    ("sql_values", RowFormat::SqlValues),
    ("csv", RowFormat::Csv),
    ("ndjson", RowFormat::Ndjson),
];

fn generate(c: &mut Criterion) {
    let mut group = c.benchmark_group("generate");
    group.throughput(Throughput::Elements(ROWS as u64));
    let mut batch = ReadingsBatch::with_capacity(SEED, ROWS);
    let mut seq = 0_u64;
    group.bench_function(BenchmarkId::new("readings", ROWS), |b| {
        b.iter(|| {
            // A new block of ids every iteration, as workers claim successive batches.
            let start = (seq % 1_000) * ROWS as u64;
            batch.fill(seq, start..start + ROWS as u64, Shard::WHOLE);
            seq += 1;
            black_box(batch.rows().len())
        });
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(ROWS as u64));
    let mut batch = ReadingsBatch::with_capacity(SEED, ROWS);
    batch.fill(0, 0..ROWS as u64, Shard::WHOLE);
    let mut out = Vec::with_capacity(ROWS * 128);
    for (name, format) in FORMATS {
        group.bench_with_input(BenchmarkId::new(name, ROWS), &format, |b, &format| {
            b.iter(|| {
                out.clear();
                black_box(&batch).encode(0..ROWS, format, &mut out);
                black_box(out.len())
            });
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = generate, encode
}
criterion_main!(benches);
