//! Criterion benchmarks of the hot paths, per row of a 10,000-row batch:
//!
//! - `generate`: refilling a reused `TableBatch` (the built-in `readings` spec) with 10,000 `readings` rows
//!   (`TableBatch::fill`, column by column);
//! - `encode/<format>`: encoding an already filled 10,000-row batch into a reused `Vec<u8>` in each
//!   [`RowFormat`] a sink speaks, through the [`Batch`] trait, as the sinks do;
//! - `copy/split`: the copy reader thread cutting a `readings` CSV into 10,000-record chunks;
//! - `copy/parse` and `copy/parse_encode_binary`: a copy worker parsing one such chunk into fields,
//!   and then encoding it as binary COPY by the table's types;
//! - `ingest/chunk`: an ingest chunking thread cutting a 100,000-character document of sentences
//!   into chunks of 1000 characters with 100 of overlap (elements: characters).
//!
//! No I/O, no threads: these are the per-row CPU costs a worker (or the reader) pays. Run
//! with `cargo bench --bench hot_path`; figures are elements (rows) per second. Measurement time is
//! kept short so the whole bench finishes in about a minute on a noisy 2-core machine.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use std::sync::Arc;

use loader::parts::{
    readings_batch, readings_schema, Batch, Chunk, ChunkBy, Chunker, CopyBatch, Dialect, Framing,
    InputFormat, RawBatch, RowFormat, Shard, Splitter,
};

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
    let mut batch = readings_batch(SEED, ROWS);
    let mut seq = 0_u64;
    group.bench_function(BenchmarkId::new("readings", ROWS), |b| {
        b.iter(|| {
            // A new block of ids every iteration, as workers claim successive batches.
            let start = (seq % 1_000) * ROWS as u64;
            batch.fill(seq, start..start + ROWS as u64, Shard::WHOLE);
            seq += 1;
            black_box(batch.len())
        });
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(ROWS as u64));
    let mut batch = readings_batch(SEED, ROWS);
    batch.fill(0, 0..ROWS as u64, Shard::WHOLE);
    let mut out = Vec::with_capacity(ROWS * 128);
    for (name, format) in FORMATS {
        group.bench_with_input(BenchmarkId::new(name, ROWS), &format, |b, &format| {
            b.iter(|| {
                out.clear();
                let _ = black_box(&batch).encode(0..ROWS, format, &mut out);
                black_box(out.len())
            });
        });
    }
    group.finish();
}

/// A `readings` CSV of `ROWS` records, as the `file:` target writes it.
fn readings_csv() -> Vec<u8> {
    let mut batch = readings_batch(SEED, ROWS);
    batch.fill(0, 0..ROWS as u64, Shard::WHOLE);
    let mut csv = Vec::with_capacity(ROWS * 80);
    let _ = batch.encode(0..ROWS, RowFormat::Csv, &mut csv);
    csv
}

fn copy(c: &mut Criterion) {
    let mut group = c.benchmark_group("copy");
    group.throughput(Throughput::Elements(ROWS as u64));
    let csv = readings_csv();
    group.bench_function(BenchmarkId::new("split", ROWS), |b| {
        b.iter(|| {
            let mut splitter = Splitter::new(
                Box::new(std::io::Cursor::new(csv.clone())),
                Framing::Quoted(b'"'),
            );
            black_box(splitter.next_chunk(ROWS as u64, usize::MAX).unwrap())
        });
    });
    let dialect = Arc::new(Dialect::new(InputFormat::Csv, None, None, None));
    let mut batch = CopyBatch::new(
        dialect,
        Arc::new(readings_schema()),
        Arc::from(vec!["bench.csv".to_string()]),
    );
    let raw = || RawBatch {
        seq: 0,
        input: 0,
        chunk: Chunk {
            data: csv.clone(),
            first_line: 2,
            records: ROWS as u64,
        },
    };
    group.bench_function(BenchmarkId::new("parse", ROWS), |b| {
        b.iter(|| {
            batch.fill(raw());
            black_box(batch.len())
        });
    });
    let mut out = Vec::with_capacity(ROWS * 128);
    group.bench_function(BenchmarkId::new("parse_encode_binary", ROWS), |b| {
        b.iter(|| {
            batch.fill(raw());
            out.clear();
            batch
                .encode(0..ROWS, RowFormat::CopyBinary, &mut out)
                .expect("readings values all encode in binary");
            black_box(out.len())
        });
    });
    group.finish();
}

fn ingest(c: &mut Criterion) {
    let mut group = c.benchmark_group("ingest");
    const CHARS: usize = 100_000;
    let text: String = "A first sentence of the document. Another one follows here! Why not? "
        .chars()
        .cycle()
        .take(CHARS)
        .collect();
    let chunker = Chunker::new(1000, 100, ChunkBy::Chars).expect("valid chunk settings");
    group.throughput(Throughput::Elements(CHARS as u64));
    group.bench_function(BenchmarkId::new("chunk", CHARS), |b| {
        b.iter(|| black_box(chunker.chunks(black_box(&text)).len()));
    });
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
    targets = generate, encode, copy, ingest
}
criterion_main!(benches);
