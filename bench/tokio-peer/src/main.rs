//! tokio-peer: the async design beside loader. N tokio tasks on a multi-threaded runtime, each with
//! its own tokio-postgres connection, load the `readings` rows with ids 0..ROWS (the same columns
//! and values as loader's built-in generator at seed 1), B rows per binary COPY, each COPY its own
//! transaction. Task t takes the batches t, t + N, t + 2N, … Bench-only: scripts/compare runs it.
//!
//! Usage: tokio-peer URL ROWS TASKS BATCH

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::NoTls;

const LOCATIONS: [&str; 8] = [
    "berlin", "vienna", "zurich", "paris", "madrid", "rome", "oslo", "lisbon",
];
const STATUSES: [&str; 3] = ["ok", "warn", "fail"];
/// 2026-01-01T00:00:00Z in microseconds since the Unix epoch; rows are 10 ms apart.
const START_MICROS: u64 = 1_767_225_600_000_000;
const STEP_MICROS: u64 = 10_000;
const SEED: u64 = 1;

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn uniform_below(bits: u64, range: u64) -> u64 {
    ((bits >> 32) * range) >> 32
}

struct Reading {
    id: i64,
    ts: SystemTime,
    sensor_id: i32,
    location: &'static str,
    temperature: f64,
    humidity: f64,
    status: &'static str,
}

fn reading(id: u64) -> Reading {
    let mut state = SEED ^ id.wrapping_mul(0xD1B5_4A32_D192_ED03);
    let a = splitmix64(&mut state);
    let b = splitmix64(&mut state);
    let c = splitmix64(&mut state);
    let status = match (((a >> 32) & 0xFFFF) * 100) >> 16 {
        0..=89 => STATUSES[0],
        90..=97 => STATUSES[1],
        _ => STATUSES[2],
    };
    Reading {
        id: id as i64,
        ts: UNIX_EPOCH + Duration::from_micros(START_MICROS + id * STEP_MICROS),
        sensor_id: (((a & 0xFFFF_FFFF) * 10_000) >> 32) as i32,
        location: LOCATIONS[(a >> 61) as usize],
        temperature: f64::from(uniform_below(b, 6_000) as i32 - 2_000) / 100.0,
        humidity: f64::from(uniform_below(c, 10_000) as i32) / 100.0,
        status,
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn worker(url: String, rows: u64, tasks: u64, batch: u64, task: u64) -> Result<(), Error> {
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
    let connection = tokio::spawn(connection);
    let types = [
        Type::INT8,
        Type::TIMESTAMPTZ,
        Type::INT4,
        Type::TEXT,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::TEXT,
    ];
    let mut start = task * batch;
    while start < rows {
        let end = (start + batch).min(rows);
        let sink = client
            .copy_in("COPY readings (id, ts, sensor_id, location, temperature, humidity, status) FROM STDIN (FORMAT binary)")
            .await?;
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        for id in start..end {
            let r = reading(id);
            writer
                .as_mut()
                .write(&[
                    &r.id,
                    &r.ts,
                    &r.sensor_id,
                    &r.location,
                    &r.temperature,
                    &r.humidity,
                    &r.status,
                ])
                .await?;
        }
        writer.finish().await?;
        start += tasks * batch;
    }
    drop(client);
    connection.await??;
    Ok(())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, rows, tasks, batch] = args.as_slice() else {
        eprintln!("usage: tokio-peer URL ROWS TASKS BATCH");
        std::process::exit(2);
    };
    let number = |what: &str, s: &str| -> u64 {
        match s.parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("tokio-peer: {what} must be a positive integer, got '{s}'");
                std::process::exit(2);
            }
        }
    };
    let (rows, tasks, batch) = (
        number("ROWS", rows),
        number("TASKS", tasks),
        number("BATCH", batch),
    );
    let handles: Vec<_> = (0..tasks)
        .map(|task| tokio::spawn(worker(url.clone(), rows, tasks, batch, task)))
        .collect();
    let mut failed = false;
    for handle in handles {
        match handle.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("tokio-peer: {e}");
                failed = true;
            }
            Err(e) => {
                eprintln!("tokio-peer: task failed: {e}");
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
