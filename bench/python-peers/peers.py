#!/usr/bin/env python3
"""peers.py: the Python designs loader replaces, loading the `readings` rows for scripts/compare.

    peers.py DESIGN URL ROWS WORKERS BATCH

DESIGN is one of
    threads-psycopg   WORKERS threads, each with its own psycopg (v3) connection, binary COPY
    asyncio-asyncpg   WORKERS asyncio tasks, each with its own asyncpg connection,
                      copy_records_to_table (asyncpg's binary COPY)
    gevent-psycopg    WORKERS greenlets (gevent.monkey.patch_all()), each with its own psycopg
                      connection (psycopg's gevent-aware waiting), binary COPY

Every design loads the rows with ids 0..ROWS, the same columns and values as loader's built-in
`readings` generator at seed 1 (src/gen/readings.rs), generated in Python; BATCH rows per COPY, each
COPY its own transaction (autocommit); worker w takes the batches w, w + WORKERS, w + 2·WORKERS, …
The table must exist. scripts/compare runs this with the venv it creates under target/ (psycopg[binary],
asyncpg, gevent from PyPI) and checks the count afterwards.
"""

import sys

DESIGNS = ("threads-psycopg", "asyncio-asyncpg", "gevent-psycopg")

if len(sys.argv) != 6 or sys.argv[1] not in DESIGNS:
    sys.exit(f"usage: peers.py {{{'|'.join(DESIGNS)}}} URL ROWS WORKERS BATCH")
DESIGN, URL = sys.argv[1], sys.argv[2]
ROWS, WORKERS, BATCH = (int(a) for a in sys.argv[3:6])

if DESIGN == "gevent-psycopg":
    # Before anything else imports socket, threading or select.
    from gevent import monkey

    monkey.patch_all()

import datetime

MASK = (1 << 64) - 1
LOCATIONS = ("berlin", "vienna", "zurich", "paris", "madrid", "rome", "oslo", "lisbon")
SEED = 1
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
COLUMNS = ("id", "ts", "sensor_id", "location", "temperature", "humidity", "status")
COPY_SQL = f"COPY readings ({', '.join(COLUMNS)}) FROM STDIN (FORMAT binary)"
TYPES = ("int8", "timestamptz", "int4", "text", "float8", "float8", "text")


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def reading(i):
    """The row with id i: the same values as Reading::generate(1, i)."""
    state = SEED ^ ((i * 0xD1B54A32D192ED03) & MASK)
    state, a = splitmix64(state)
    state, b = splitmix64(state)
    _, c = splitmix64(state)
    pick = (((a >> 32) & 0xFFFF) * 100) >> 16
    status = "ok" if pick <= 89 else "warn" if pick <= 97 else "fail"
    return (
        i,
        START + datetime.timedelta(microseconds=i * 10_000),
        ((a & 0xFFFFFFFF) * 10_000) >> 32,
        LOCATIONS[a >> 61],
        ((((b >> 32) * 6_000) >> 32) - 2_000) / 100.0,
        (((c >> 32) * 10_000) >> 32) / 100.0,
        status,
    )


def batches(worker):
    """The id ranges of this worker's batches."""
    for start in range(worker * BATCH, ROWS, WORKERS * BATCH):
        yield range(start, min(start + BATCH, ROWS))


def psycopg_worker(worker):
    import psycopg

    with psycopg.connect(URL, autocommit=True) as conn:
        cur = conn.cursor()
        for ids in batches(worker):
            with cur.copy(COPY_SQL) as copy:
                copy.set_types(TYPES)
                for i in ids:
                    copy.write_row(reading(i))


def main():
    if DESIGN == "threads-psycopg":
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            for future in [pool.submit(psycopg_worker, w) for w in range(WORKERS)]:
                future.result()
    elif DESIGN == "gevent-psycopg":
        import gevent

        greenlets = [gevent.spawn(psycopg_worker, w) for w in range(WORKERS)]
        gevent.joinall(greenlets, raise_error=True)
    else:
        import asyncio

        import asyncpg

        async def task(worker):
            conn = await asyncpg.connect(URL)
            try:
                for ids in batches(worker):
                    await conn.copy_records_to_table(
                        "readings", records=[reading(i) for i in ids], columns=COLUMNS
                    )
            finally:
                await conn.close()

        async def all_tasks():
            await asyncio.gather(*(task(w) for w in range(WORKERS)))

        asyncio.run(all_tasks())


main()
