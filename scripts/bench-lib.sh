# shellcheck shell=bash
#
# bench-lib.sh: what scripts/compare, bench-gen, bench-copy, bench-http and the other benchmarks
# share: the throwaway PostgreSQL cluster, the checks of every run, the timed runs of
# loader and its peers (psql `\copy`, pgbench, pgloader), medians and the results files. Sourced,
# never run. A script sets BENCH_NAME and `set -euo pipefail`, then:
#
#     BENCH_NAME=bench-x
#     source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
#     bench_init TOOL…                 # REPO, OUT, LOADER (built unless BUILD=0 or LOADER set),
#                                      # WORK (a mktemp directory), the cleanup trap
#     bench_start_cluster [CLUSTER]    # PGROOT, PORT, URL, sql(), PG_VERSION, bench_facts;
#                                      # CLUSTER durable or fsync-off (the default)
#     bench_stop_cluster               # stops and removes it (another may start after)
#     bench_facts                      # (without a cluster) machine facts, DATE, RAW
#     bench_on_exit FUNCTION           # FUNCTION runs at exit, before WORK is removed
#     sql "CREATE TABLE readings (…)"
#     reset_table readings; t0=$(now); …; t1=$(now)
#     expect_count readings "$ROWS" "$name, run $run"
#     record "$name" KIND ROWS THREADS "$(elapsed "$t0" "$t1")" [LOADER_ROWS_PER_S [REQUESTS [PEAK_RSS_MB [CPU_S]]]]
#     report_rate REPORT ROWS; report_value REPORT KEY.PATH   # loader's --report: checked; one field
#     make_readings_csv "$WORK/readings.csv"   # + $WORK/half-a.csv, $WORK/half-b.csv
#     run_psql_copy "$WORK/readings.csv"       # psql \copy, 1 stream and 2 parallel streams
#     timed_runs NAME KIND ROWS THREADS TABLE COMMAND…          # RUNS checked, recorded runs
#     timed_pair_runs NAME KIND ROWS TABLE COMMAND ARG_A ARG_B  # two at once, timed together
#     client_runs NAME KIND THREADS COMMAND…   # into readings, + CPU and peak RSS (/usr/bin/time)
#     loader_runs NAME KIND THREADS LOADER_ARGUMENTS…           # loader into readings, + report
#     pgbench_runs SCALE                       # pgbench -i -I dtg -s SCALE
#     find_pgloader install|skip; pgloader_runs "$WORK/readings.csv"  # pgloader, or a WARNING
#     RESULT_TITLE=… RESULT_FACTS=… RESULT_NOTES=… RESULT_JSON=… bench_write_results
#
# The cluster: initdb into a mktemp directory (owned by `postgres` when run as root; initdb and the
# server then run as that user), pg_ctl on a free 127.0.0.1 port, stopped and removed on exit, with
# WORK. Two kinds (CLUSTER): `durable`, PostgreSQL's default durability (fsync, synchronous_commit
# and full_page_writes on, as a production server runs), and `fsync-off`, the settings of
# src/pg/local.rs (fsync and full_page_writes off: no commit waits for the disk). Both share the
# sizing settings below, so that durability is the only difference.

# The sizing both kinds share (src/pg/local.rs SERVER_SETTINGS without its two durability settings).
SHARED_SETTINGS=(shared_buffers=256MB max_wal_size=4GB max_connections=300)
# Each kind's durability settings (the durable ones are PostgreSQL's defaults, spelled out).
DURABLE_SETTINGS=(fsync=on synchronous_commit=on full_page_writes=on)
FSYNC_OFF_SETTINGS=(fsync=off full_page_writes=off)
# The running cluster's settings (bench_start_cluster sets them); src/pg/local.rs's by default.
SERVER_SETTINGS=("${FSYNC_OFF_SETTINGS[@]}" "${SHARED_SETTINGS[@]}")
CLUSTER=fsync-off
# The configuration every ratio is taken against (run by run_psql_copy).
BASELINE='psql \copy CSV, 2 parallel streams'

die() {
    echo >&2
    echo "$BENCH_NAME: ERROR: $*" >&2
    exit 1
}
log() { echo "$BENCH_NAME: $*" >&2; }
now() { date +%s.%N; }
elapsed() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.6f}")' "$1" "$2"; }
is_count() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
# 2000000 -> 2,000,000
thousands() {
    local n=$1 out=""
    while ((${#n} > 3)); do
        out=",${n: -3}$out"
        n=${n:0:${#n}-3}
    done
    echo "$n$out"
}
# A JSON string literal.
json_str() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }
# A JSON string literal, or null when empty.
json_str_or_null() { if [[ -n $1 ]]; then json_str "$1"; else echo null; fi; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Checks the tools, builds loader, creates WORK and installs the cleanup trap.
bench_init() {
    OUT=${OUT:-$REPO/target/$BENCH_NAME}
    mkdir -p "$OUT"
    OUT=$(cd "$OUT" && pwd)

    local tool
    for tool in python3 "$@"; do
        command -v "$tool" >/dev/null || die "$tool not found on PATH"
    done

    if [[ -z ${LOADER:-} ]]; then
        LOADER=$REPO/target/release/loader
        if [[ ${BUILD:-1} != 0 ]]; then
            log "cargo build --release"
            (cd "$REPO" && cargo build --release --quiet) || die "cargo build --release failed"
        fi
    fi
    [[ -x $LOADER ]] || die "loader binary not found at $LOADER (cargo build --release, or set LOADER)"

    AS_ROOT=0
    [[ $(id -u) == 0 ]] && AS_ROOT=1
    PGROOT=""
    WORK=""
    PG_STARTED=0
    BG_PIDS=()
    EXIT_HOOKS=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    WORK=$(mktemp -d "/tmp/$BENCH_NAME-work.XXXXXX")
}

# Runs FUNCTION at exit, in the order given, before the cluster is stopped and WORK removed.
bench_on_exit() { EXIT_HOOKS+=("$1"); }

bench_cleanup() {
    local status=$? hook
    set +e
    for pid in "${BG_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for hook in "${EXIT_HOOKS[@]}"; do
        "$hook"
    done
    bench_stop_cluster
    [[ -n $WORK ]] && rm -rf "$WORK"
    exit "$status"
}

# --- the throwaway cluster ----------------------------------------------------------------------

find_bindir() {
    local dir
    if dir=$(pg_config --bindir 2>/dev/null) && [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then
        echo "$dir"
        return
    fi
    # shellcheck disable=SC2012 # the version directories have plain names
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl ]] || return 1
    echo "$dir"
}

# Runs a server binary, as `postgres` when we are root, from the cluster's directory.
as_pg() {
    if ((AS_ROOT)); then
        (cd "$PGROOT" && runuser -u postgres -- "$@")
    else
        (cd "$PGROOT" && "$@")
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

sql() { PGOPTIONS='-c client_min_messages=warning' psql "$URL" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

# bench_start_cluster [CLUSTER]: starts a throwaway cluster of that kind (durable, or fsync-off,
# the default); CLUSTER and SERVER_SETTINGS say which.
bench_start_cluster() {
    CLUSTER=${1:-fsync-off}
    case $CLUSTER in
    durable) SERVER_SETTINGS=("${DURABLE_SETTINGS[@]}" "${SHARED_SETTINGS[@]}") ;;
    fsync-off) SERVER_SETTINGS=("${FSYNC_OFF_SETTINGS[@]}" "${SHARED_SETTINGS[@]}") ;;
    *) die "unknown cluster kind '$CLUSTER' (durable or fsync-off)" ;;
    esac
    command -v psql >/dev/null || die "psql not found on PATH"
    BINDIR=$(find_bindir) || die "no PostgreSQL server binaries (pg_config --bindir, /usr/lib/postgresql/*/bin); apt-get install -y postgresql"
    PGROOT=$(mktemp -d "/tmp/$BENCH_NAME-pg.XXXXXX")
    if ((AS_ROOT)); then
        id postgres >/dev/null 2>&1 || die "running as root needs the postgres system user (apt-get install -y postgresql)"
        chown postgres:postgres "$PGROOT"
    fi

    log "initdb ($BINDIR) in $PGROOT"
    as_pg "$BINDIR/initdb" -D "$PGROOT/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
        --no-instructions >"$WORK/initdb.log" 2>&1 || {
        cat "$WORK/initdb.log" >&2
        die "initdb failed"
    }

    local options="" setting _attempt
    for setting in "${SERVER_SETTINGS[@]}"; do
        options+=" -c $setting"
    done
    PORT=""
    for _attempt in 1 2 3 4 5; do
        PORT=$(free_port)
        if as_pg "$BINDIR/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/server.log" -w -t 60 \
            -o "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PGROOT$options" \
            start >"$WORK/pg_ctl.log" 2>&1; then
            PG_STARTED=1
            break
        fi
    done
    if ((!PG_STARTED)); then
        cat "$WORK/pg_ctl.log" >&2
        tail -n 5 "$PGROOT/server.log" >&2 || true
        die "could not start PostgreSQL"
    fi
    URL="postgres://postgres@127.0.0.1:$PORT/postgres"
    log "PostgreSQL on 127.0.0.1:$PORT, the $CLUSTER cluster: ${SERVER_SETTINGS[*]}"

    PG_VERSION=$(sql "SHOW server_version")
    bench_facts
}

# Stops the cluster and removes its directory, so that another can start.
bench_stop_cluster() {
    if ((PG_STARTED)); then
        as_pg "$BINDIR/pg_ctl" -D "$PGROOT/data" -m fast -w stop >/dev/null 2>&1 ||
            as_pg "$BINDIR/pg_ctl" -D "$PGROOT/data" -m immediate -w stop >/dev/null 2>&1
        PG_STARTED=0
    fi
    [[ -n $PGROOT ]] && rm -rf "$PGROOT"
    PGROOT=""
}

# The machine facts of the results (NPROC, CPU_MODEL, LOADAVG, DATE) and an empty RAW.
bench_facts() {
    NPROC=$(nproc)
    CPU_MODEL=$(grep -m 1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
    [[ -n $CPU_MODEL ]] || CPU_MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
    [[ -n $CPU_MODEL ]] || CPU_MODEL=unknown
    LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
    DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)

    # Raw results, one line per run: configuration, kind, rows, threads, wall seconds, loader rows/s.
    RAW=$WORK/raw.tsv
    : >"$RAW"
}

# --- every run ----------------------------------------------------------------------------------

# Empties a table (and loader's batch ledger, which otherwise grows run after run) and flushes the
# previous run's dirty pages, outside the timed part.
reset_table() {
    sql "TRUNCATE $1" >/dev/null
    sql "DO \$\$ BEGIN IF to_regclass('loader_ledger') IS NOT NULL THEN TRUNCATE loader_ledger; END IF; END \$\$" >/dev/null
    sql "CHECKPOINT" >/dev/null
}

# Aborts unless the table holds exactly the expected rows.
expect_count() {
    local table=$1 expected=$2 what=$3 got
    got=$(sql "SELECT count(*) FROM $table")
    [[ $got == "$expected" ]] || die "$what: $table holds $got rows, expected $expected"
}

# record NAME KIND ROWS THREADS WALL_S [LOADER_ROWS_PER_S [REQUESTS [PEAK_RSS_MB [CPU_S]]]]: one
# run; CPU_S is the client's user + system CPU seconds.
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${6:-}" "${7:-}" \
        "${8:-}" "${9:-}" >>"$RAW"
}

# Prints the report's rows_per_s after checking that the load completed with the expected rows.
report_rate() {
    python3 - "$1" "$2" <<'PY'
import json, sys
path, expected = sys.argv[1], int(sys.argv[2])
report = json.load(open(path))
if report.get("outcome") != "completed" or report.get("rows_loaded") != expected:
    sys.exit(f"report {path}: outcome {report.get('outcome')}, rows_loaded "
             f"{report.get('rows_loaded')}, expected completed with {expected}")
print(repr(float(report["rows_per_s"])))
PY
}

# Prints one field of loader's report, by its dotted path (rows_loaded, process.peak_rss_mb).
report_value() {
    python3 - "$1" "$2" <<'PY'
import functools, json, sys
print(functools.reduce(lambda value, key: value[key], sys.argv[2].split("."), json.load(open(sys.argv[1]))))
PY
}

# --- the CSV and the psql \copy peers -----------------------------------------------------------

# Writes ROWS `readings` rows as CSV with `loader --target file:` (a header and ROWS lines), and its
# two halves, each with the header, as $WORK/half-a.csv and $WORK/half-b.csv.
make_readings_csv() {
    local csv=$1 lines
    log "generating $ROWS rows of CSV with loader --target file:"
    "$LOADER" --rows "$ROWS" --target "file:$csv" --quiet >"$WORK/loader.log" 2>&1 || {
        cat "$WORK/loader.log" >&2
        die "loader --target file: failed"
    }
    lines=$(wc -l <"$csv")
    ((lines == ROWS + 1)) || die "$csv has $lines lines, expected a header and $ROWS rows"
    [[ $(head -n 1 "$csv") == "id,ts,sensor_id,location,temperature,humidity,status" ]] ||
        die "unexpected CSV header: $(head -n 1 "$csv")"

    awk -v half=$(((ROWS + 1) / 2)) -v a="$WORK/half-a.csv" -v b="$WORK/half-b.csv" '
        NR == 1 { print > a; print > b; next }
        NR - 1 <= half { print > a; next }
        { print > b }' "$csv"
    (($(wc -l <"$WORK/half-a.csv") + $(wc -l <"$WORK/half-b.csv") == ROWS + 2)) ||
        die "splitting the CSV lost rows"
}

copy_file() {
    psql "$URL" -X -q -v ON_ERROR_STOP=1 \
        -c "\\copy readings FROM '$1' (FORMAT csv, HEADER true)"
}

# psql \copy of the whole CSV (one stream) and of its two halves at once (two streams, the
# BASELINE), RUNS times each, into `readings`; leaves the table empty.
run_psql_copy() {
    local csv=$1
    timed_runs 'psql \copy CSV, 1 stream' psql "$ROWS" 1 readings copy_file "$csv"
    timed_pair_runs "$BASELINE" psql "$ROWS" readings copy_file "$WORK/half-a.csv" "$WORK/half-b.csv"
    sql "TRUNCATE readings" >/dev/null
}

# --- timed runs -----------------------------------------------------------------------------------

# timed_runs NAME KIND ROWS THREADS TABLE COMMAND…: RUNS runs of COMMAND (a program or a function),
# each after reset_table TABLE, timed by the wall clock, checked by its exit status and by
# `expect_count TABLE ROWS`, then recorded. This and the other *_runs functions take RUNS (and
# RUN_OFFSET, added to the run numbers in messages) from the environment: `RUNS=1 RUN_OFFSET=2
# timed_runs …` is the third run alone, for scripts that interleave configurations run by run.
timed_runs() {
    local name=$1 kind=$2 want=$3 threads=$4 table=$5 run t0 t1 wall status
    shift 5
    for ((run = 1 + ${RUN_OFFSET:-0}; run <= RUNS + ${RUN_OFFSET:-0}; run++)); do
        reset_table "$table"
        status=0
        t0=$(now)
        "$@" >"$WORK/run.log" 2>&1 || status=$?
        t1=$(now)
        if ((status)); then
            tail -n 40 "$WORK/run.log" >&2
            die "$name, run $run: $1 failed (exit $status)"
        fi
        expect_count "$table" "$want" "$name, run $run"
        wall=$(elapsed "$t0" "$t1")
        record "$name" "$kind" "$want" "$threads" "$wall" ""
        log "[$CLUSTER] $name, run $run: ${wall}s"
    done
}

# timed_pair_runs NAME KIND ROWS TABLE COMMAND ARG_A ARG_B: like timed_runs, with `COMMAND ARG_A`
# and `COMMAND ARG_B` started at once and timed together, from the start of the first to the end
# of the last (recorded with 2 threads); both must succeed and TABLE then hold ROWS rows.
timed_pair_runs() {
    local name=$1 kind=$2 want=$3 table=$4 command=$5 arg_a=$6 arg_b=$7 run t0 t1 wall
    local status_a status_b
    for ((run = 1 + ${RUN_OFFSET:-0}; run <= RUNS + ${RUN_OFFSET:-0}; run++)); do
        reset_table "$table"
        t0=$(now)
        "$command" "$arg_a" >"$WORK/run-a.log" 2>&1 &
        BG_PIDS=($!)
        "$command" "$arg_b" >"$WORK/run-b.log" 2>&1 &
        BG_PIDS+=($!)
        status_a=0 status_b=0
        wait "${BG_PIDS[0]}" || status_a=$?
        wait "${BG_PIDS[1]}" || status_b=$?
        t1=$(now)
        BG_PIDS=()
        if ((status_a || status_b)); then
            tail -n 20 "$WORK/run-a.log" "$WORK/run-b.log" >&2
            die "$name, run $run: $command failed (exit $status_a, $status_b)"
        fi
        expect_count "$table" "$want" "$name, run $run"
        wall=$(elapsed "$t0" "$t1")
        record "$name" "$kind" "$want" 2 "$wall" ""
        log "[$CLUSTER] $name, run $run: ${wall}s"
    done
}

# loader_runs NAME KIND THREADS LOADER_ARGUMENTS…: RUNS runs of
# `$LOADER LOADER_ARGUMENTS… --quiet --report FILE --reject-file FILE` loading ROWS rows into
# `readings`, each after reset_table readings, timed by the wall clock; checked by the exit
# status, the count (the first rejected rows shown when one is missing) and the report (completed,
# ROWS rows loaded); recorded with the report's rows_per_s as loader's own figure, its peak RSS and
# its CPU seconds (user + system, getrusage in the report).
loader_runs() {
    local name=$1 kind=$2 threads=$3 run t0 t1 wall rate rss cpu report rejects got
    shift 3
    for ((run = 1 + ${RUN_OFFSET:-0}; run <= RUNS + ${RUN_OFFSET:-0}; run++)); do
        reset_table readings
        report=$WORK/report-$run.json
        rejects=$WORK/rejects-$run.ndjson
        rm -f "$report" "$rejects"
        t0=$(now)
        if ! "$LOADER" "$@" --quiet --report "$report" --reject-file "$rejects" \
            >"$WORK/loader.log" 2>&1; then
            tail -n 40 "$WORK/loader.log" >&2
            die "$name, run $run: loader failed"
        fi
        t1=$(now)
        got=$(sql "SELECT count(*) FROM readings")
        if [[ $got != "$ROWS" ]]; then
            tail -n 40 "$WORK/loader.log" >&2
            if [[ -s $rejects ]]; then
                echo "first rejected rows ($rejects):" >&2
                head -n 5 "$rejects" >&2
            fi
            die "$name, run $run: readings holds $got rows, expected $ROWS"
        fi
        rate=$(report_rate "$report" "$ROWS") || die "$name, run $run: bad report"
        rss=$(report_value "$report" process.peak_rss_mb)
        cpu=$(python3 -c 'import sys; print(float(sys.argv[1]) + float(sys.argv[2]))' \
            "$(report_value "$report" process.user_cpu_s)" \
            "$(report_value "$report" process.system_cpu_s)")
        wall=$(elapsed "$t0" "$t1")
        record "$name" "$kind" "$ROWS" "$threads" "$wall" "$rate" "" "$rss" "$cpu"
        log "[$CLUSTER] $name, run $run: ${wall}s"
    done
}

# client_runs NAME KIND THREADS COMMAND…: RUNS runs of COMMAND (another client loading ROWS rows
# into `readings`), each after reset_table readings, under /usr/bin/time, timed by the wall clock,
# checked by its exit status and the count; recorded with the child's peak RSS and user + system
# CPU seconds (wait4's rusage, as /usr/bin/time reports them).
client_runs() {
    local name=$1 kind=$2 threads=$3 run t0 t1 wall status usage cpu rss
    shift 3
    [[ -x /usr/bin/time ]] || die "/usr/bin/time is needed for $name (apt-get install -y time)"
    for ((run = 1 + ${RUN_OFFSET:-0}; run <= RUNS + ${RUN_OFFSET:-0}; run++)); do
        reset_table readings
        status=0
        t0=$(now)
        /usr/bin/time -f '%U %S %M' -o "$WORK/time.txt" "$@" >"$WORK/run.log" 2>&1 || status=$?
        t1=$(now)
        if ((status)); then
            tail -n 40 "$WORK/run.log" >&2
            die "[$CLUSTER] $name, run $run: $1 failed (exit $status)"
        fi
        expect_count readings "$ROWS" "[$CLUSTER] $name, run $run"
        usage=$(tail -n 1 "$WORK/time.txt")
        read -r cpu rss <<<"$(python3 -c 'import sys; u, s, kb = sys.argv[1].split(); print(float(u) + float(s), int(kb) / 1024)' "$usage")"
        wall=$(elapsed "$t0" "$t1")
        record "$name" "$kind" "$ROWS" "$threads" "$wall" "" "" "$rss" "$cpu"
        log "[$CLUSTER] $name, run $run: ${wall}s"
    done
}

# --- pgbench -i -----------------------------------------------------------------------------------

# pgbench_runs SCALE: RUNS runs of `pgbench -i -I dtg -s SCALE` (drop and create its tables,
# client-side generate with COPY; no vacuum, no primary key), each after dropping its tables and a
# CHECKPOINT, checked by the count of pgbench_accounts (100,000 rows per scale unit); recorded
# under the name "pgbench -i -I dtg -s SCALE", kind pgbench. Drops its tables at the end.
pgbench_runs() {
    local scale=$1 accounts=$(($1 * 100000)) name="pgbench -i -I dtg -s $1" run t0 t1 wall
    local drop="DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history"
    for ((run = 1 + ${RUN_OFFSET:-0}; run <= RUNS + ${RUN_OFFSET:-0}; run++)); do
        # -I dtg drops the tables itself: no TRUNCATE needed, but flush the previous run first.
        sql "$drop" >/dev/null
        sql "CHECKPOINT" >/dev/null
        t0=$(now)
        pgbench -i -I dtg -s "$scale" -q -h 127.0.0.1 -p "$PORT" -U postgres postgres \
            >"$WORK/pgbench.log" 2>&1 || {
            cat "$WORK/pgbench.log" >&2
            die "$name, run $run: pgbench failed"
        }
        t1=$(now)
        expect_count pgbench_accounts "$accounts" "$name, run $run"
        wall=$(elapsed "$t0" "$t1")
        record "$name" pgbench "$accounts" 1 "$wall" ""
        log "[$CLUSTER] $name, run $run: ${wall}s"
    done
    sql "$drop" >/dev/null
}

# --- pgloader -------------------------------------------------------------------------------------

PGLOADER_NAME='pgloader CSV (Debian package, default settings)'

# find_pgloader install|skip: leaves PGLOADER set to a runnable pgloader and PGLOADER_VERSION to
# its version, or PGLOADER_PROBLEM saying why there is none (PGLOADER_RUNS=0 skips it). A missing
# pgloader is installed with apt-get when run as root (`install`), or not measured (`skip`).
find_pgloader() {
    PGLOADER_PROBLEM=""
    PGLOADER_VERSION=""
    if ((${PGLOADER_RUNS:-1} == 0)); then
        PGLOADER_PROBLEM="pgloader was skipped (PGLOADER_RUNS=0): not measured"
    elif [[ -n ${PGLOADER:-} ]]; then
        command -v "$PGLOADER" >/dev/null ||
            PGLOADER_PROBLEM="PGLOADER=$PGLOADER is not an executable: pgloader was not measured"
    elif PGLOADER=$(command -v pgloader); then
        :
    elif [[ $1 != install ]]; then
        PGLOADER_PROBLEM="pgloader is not installed: not measured (apt-get install -y pgloader, or set PGLOADER)"
    elif ((!AS_ROOT)) || ! command -v apt-get >/dev/null; then
        PGLOADER_PROBLEM="pgloader is not installed and this script cannot install it (needs root and apt-get): pgloader was not measured; run apt-get install -y pgloader"
    else
        log "pgloader not found: apt-get update && apt-get install -y pgloader"
        if ! { apt-get update >"$WORK/apt.log" 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y pgloader >>"$WORK/apt.log" 2>&1 &&
            PGLOADER=$(command -v pgloader); }; then
            PGLOADER_PROBLEM="pgloader is not installed and \`apt-get install -y pgloader\` failed ($(tail -n 1 "$WORK/apt.log")): pgloader was not measured"
        fi
    fi
    if [[ -z $PGLOADER_PROBLEM ]]; then
        # Not `| head -n 1`: under pipefail, pgloader's second line may then die of SIGPIPE.
        if PGLOADER_VERSION=$("$PGLOADER" --version 2>&1); then
            PGLOADER_VERSION=${PGLOADER_VERSION%%$'\n'*}
        else
            PGLOADER_PROBLEM="$PGLOADER --version failed (${PGLOADER_VERSION%%$'\n'*}): pgloader was not measured"
            PGLOADER_VERSION=""
        fi
    fi
    if [[ -n $PGLOADER_PROBLEM ]]; then
        log "WARNING: $PGLOADER_PROBLEM"
    else
        log "using $PGLOADER: $PGLOADER_VERSION"
    fi
}

# pgloader_command_file CSV: writes $WORK/readings.load (PGLOADER_FILE), pgloader's command file
# loading the CSV (with its header) into `readings`, every other setting pgloader's default.
pgloader_command_file() {
    PGLOADER_FILE=$WORK/readings.load
    cat >"$PGLOADER_FILE" <<EOF
LOAD CSV
     FROM '$1' (id, ts, sensor_id, location, temperature, humidity, status)
     INTO postgresql://postgres@127.0.0.1:$PORT/postgres
     TARGET TABLE readings
     WITH skip header = 1,
          fields optionally enclosed by '"',
          fields terminated by ',';
EOF
}

pgloader_once() {
    rm -rf "$WORK/pgloader"
    "$PGLOADER" --root-dir "$WORK/pgloader" "$PGLOADER_FILE"
}

# pgloader_runs CSV: PGLOADER_RUNS runs of pgloader loading the CSV into `readings` (recorded as
# PGLOADER_NAME, kind pgloader), unless find_pgloader found none. pgloader exits 0 after rejecting
# rows: the count decides. Leaves the table empty.
pgloader_runs() {
    pgloader_command_file "$1"
    [[ -z $PGLOADER_PROBLEM ]] || return 0
    RUNS=${PGLOADER_RUNS:-$RUNS} timed_runs "$PGLOADER_NAME" pgloader "$ROWS" 1 readings pgloader_once
    sql "TRUNCATE readings" >/dev/null
}

# --- results ------------------------------------------------------------------------------------

# Writes OUT/results.md and OUT/results.json (and prints the Markdown) from the recorded runs:
# per configuration the median rows/s (rows / wall-clock seconds; for kind `null` loader's own
# rows_per_s per thread), loader's own median, and the ratio to BASELINE. The script supplies:
#   RESULT_TITLE     the Markdown title (without `# `)
#   RESULT_FACTS     Markdown bullet lines after the date/machine(/PostgreSQL, when a cluster ran)
#                    lines
#   RESULT_NOTES     Markdown bullet lines under "Notes:"
#   RESULT_JSON      a JSON object of extra top-level fields (rows, runs, …)
#   RESULT_COMPARE   optional, lines "PEER CONFIGURATION<TAB>GOAL": loader's best configuration
#                    (kind `loader`) against that peer's median, with the goal ratio
#   RESULT_WARNINGS  optional, lines shown loudly at the top (e.g. a peer that could not run)
#   RESULT_SECTIONS  optional, lines "KIND[,KIND…]<TAB>HEADING<TAB>BASELINE[<TAB>RATIO LABEL]": one
#                    table per line, under `## HEADING`, of the configurations of those kinds, with
#                    the ratio to that section's BASELINE configuration (no ratio column when
#                    BASELINE is empty; RATIO LABEL, default BASELINE, names it in the header).
#                    Without it: one table of every configuration, ratios to BASELINE.
#   RESULT_RATIOS    optional, without RESULT_SECTIONS: lines "LABEL<TAB>REFERENCE", one ratio column
#                    per line ("ratio to LABEL") instead of the ratio to BASELINE; REFERENCE is a
#                    configuration's name, or "fastest:KIND[,KIND…]" for the highest median of
#                    those kinds. The resolved references are listed under the facts.
#   RESULT_SKIPPED   optional, without RESULT_SECTIONS: lines "CONFIGURATION<TAB>REASON", rows
#                    marked **not measured** (the reason in the runs column) at the end of the
#                    table, and "skipped" in the JSON
#   RESULT_FILE      optional, the files' base name (default results: OUT/results.{md,json})
# Configurations recorded with CPU_S (loader's report, or /usr/bin/time for client_runs) get a column of
# the client's CPU seconds per million rows; with PEAK_RSS_MB, one of its peak RSS.
# Configurations recorded with REQUESTS get a column of loader's own requests/s (REQUESTS over
# loader's clock, rows / rows_per_s), and requests/s over both clocks in results.json.
bench_write_results() {
    export RAW OUT BASELINE NPROC CPU_MODEL LOADAVG DATE
    export PG_VERSION=${PG_VERSION:-}
    export SETTINGS="${SERVER_SETTINGS[*]}" CLUSTER
    export RESULT_TITLE RESULT_FACTS RESULT_NOTES RESULT_JSON
    export RESULT_COMPARE=${RESULT_COMPARE:-} RESULT_WARNINGS=${RESULT_WARNINGS:-}
    export RESULT_SECTIONS=${RESULT_SECTIONS:-} RESULT_RATIOS=${RESULT_RATIOS:-}
    export RESULT_SKIPPED=${RESULT_SKIPPED:-} RESULT_FILE=${RESULT_FILE:-results}
    python3 - <<'PY'
import json, os, statistics

env = os.environ
order, runs = [], {}
with open(env["RAW"]) as raw:
    for line in raw:
        name, kind, rows, threads, wall, rate, requests, rss, cpu = line.rstrip("\n").split("\t")
        if name not in runs:
            order.append(name)
            runs[name] = {"kind": kind, "rows": int(rows), "threads": int(threads), "runs": []}
        wall = float(wall)
        run = {
            "wall_s": wall,
            "rows_per_s_wall": int(rows) / wall,
            "rows_per_s_loader": float(rate) if rate else None,
        }
        if rss:
            run["peak_rss_mb"] = float(rss)
        if cpu:
            run["client_cpu_s"] = float(cpu)
            run["client_cpu_s_per_million_rows"] = float(cpu) * 1e6 / int(rows)
        if requests:
            run["requests"] = int(requests)
            run["requests_per_s_wall"] = int(requests) / wall
            # loader's clock: its elapsed time is rows / rows_per_s.
            run["requests_per_s_loader"] = (
                int(requests) * float(rate) / int(rows) if rate else None
            )
        runs[name]["runs"].append(run)

configs = []
for name in order:
    c = runs[name]
    own = [r["rows_per_s_loader"] for r in c["runs"] if r["rows_per_s_loader"] is not None]
    if c["kind"] == "null":
        # The generator alone: loader's own clock, per thread.
        figures = [r["rows_per_s_loader"] / c["threads"] for r in c["runs"]]
        basis = "loader rows_per_s / threads"
    else:
        figures = [r["rows_per_s_wall"] for r in c["runs"]]
        basis = "rows / wall-clock seconds"
    config = {
        "configuration": name,
        "kind": c["kind"],
        "rows": c["rows"],
        "threads": c["threads"],
        "basis": basis,
        "median_rows_per_s": statistics.median(figures),
        "median_loader_rows_per_s": statistics.median(own) if own else None,
        "figures": figures,
        "runs": c["runs"],
    }
    own_requests = [r["requests_per_s_loader"] for r in c["runs"]
                    if r.get("requests_per_s_loader") is not None]
    if own_requests:
        config["median_loader_requests_per_s"] = statistics.median(own_requests)
    rss = [r["peak_rss_mb"] for r in c["runs"] if "peak_rss_mb" in r]
    if rss:
        config["median_peak_rss_mb"] = statistics.median(rss)
    cpu = [r["client_cpu_s_per_million_rows"] for r in c["runs"] if "client_cpu_s" in r]
    if cpu:
        config["median_client_cpu_s_per_million_rows"] = statistics.median(cpu)
    configs.append(config)

by_name = {c["configuration"]: c for c in configs}

def n(x):
    return "–" if x is None else f"{x:,.0f}"

def md(name):
    return name.replace("\\copy", "`\\copy`")

# Sections: (heading, kinds or None for all, baseline name or None, ratio label).
if env["RESULT_SECTIONS"].strip():
    sections = []
    for line in env["RESULT_SECTIONS"].split("\n"):
        if not line.strip():
            continue
        fields = line.split("\t")
        kinds, heading, baseline_name = fields[0], fields[1], fields[2]
        label = fields[3] if len(fields) > 3 and fields[3] else md(baseline_name)
        sections.append((heading, kinds.split(","), baseline_name or None, label))
    for heading, kinds, baseline_name, _ in sections:
        baseline = by_name.get(baseline_name) if baseline_name else None
        if baseline_name and baseline is None:
            raise SystemExit(f"section {heading!r}: no configuration {baseline_name!r} was recorded")
        for c in configs:
            if c["kind"] in kinds:
                c["section"] = heading
                c["baseline"] = baseline_name
                c["ratio_to_baseline"] = (
                    c["median_rows_per_s"] / baseline["median_rows_per_s"] if baseline else None
                )
    ratio_key = "ratio_to_baseline"
elif env["RESULT_RATIOS"].strip():
    sections = [(None, None, None, None)]
    ratio_key = None
else:
    sections = [(None, None, env["BASELINE"], "2-stream `\\copy`")]
    baseline = by_name[env["BASELINE"]]
    for c in configs:
        c["ratio_to_two_stream_copy"] = c["median_rows_per_s"] / baseline["median_rows_per_s"]
    ratio_key = "ratio_to_two_stream_copy"

# Ratio columns (RESULT_RATIOS): (label, spec, reference configuration or None).
ratio_columns = []
for line in env["RESULT_RATIOS"].split("\n"):
    if not line.strip() or env["RESULT_SECTIONS"].strip():
        continue
    label, spec = line.split("\t")
    if spec.startswith("fastest:"):
        kinds = spec[len("fastest:"):].split(",")
        candidates = [c for c in configs if c["kind"] in kinds]
        ref = max(candidates, key=lambda c: c["median_rows_per_s"]) if candidates else None
    else:
        ref = by_name.get(spec)
    ratio_columns.append((label, spec, ref))
for c in configs:
    if ratio_columns:
        c["ratios"] = {
            label: c["median_rows_per_s"] / ref["median_rows_per_s"] if ref else None
            for label, _, ref in ratio_columns
        }
skipped = []
for line in env["RESULT_SKIPPED"].split("\n"):
    if line.strip():
        name, reason = line.split("\t", 1)
        skipped.append({"configuration": name, "reason": reason})

warnings = [w for w in env["RESULT_WARNINGS"].split("\n") if w.strip()]
comparisons = []
loaders = [c for c in configs if c["kind"] == "loader"]
best = max(loaders, key=lambda c: c["median_rows_per_s"]) if loaders else None
for line in env["RESULT_COMPARE"].split("\n"):
    if not line.strip():
        continue
    peer_name, goal = line.split("\t")
    goal = float(goal)
    peer = by_name.get(peer_name)
    ratio = best["median_rows_per_s"] / peer["median_rows_per_s"] if best and peer else None
    comparisons.append({
        "loader": best["configuration"] if best else None,
        "loader_median_rows_per_s": best["median_rows_per_s"] if best else None,
        "peer": peer_name,
        "peer_median_rows_per_s": peer["median_rows_per_s"] if peer else None,
        "ratio": ratio,
        "goal": goal,
        "met": None if ratio is None else ratio >= goal,
    })

lines = [f"# {env['RESULT_TITLE']}", ""]
for w in warnings:
    lines += [f"> **WARNING: {w}**", ""]
lines += [
    f"- date: {env['DATE']}",
    f"- machine: nproc {env['NPROC']}, {env['CPU_MODEL']} (load average at start: {env['LOADAVG']})",
]
if env["PG_VERSION"]:
    lines.append(
        f"- PostgreSQL {env['PG_VERSION']}, local throwaway **{env['CLUSTER']}** cluster on 127.0.0.1: {env['SETTINGS']}"
    )
lines += [l for l in env["RESULT_FACTS"].split("\n") if l.strip()]
for label, spec, ref in ratio_columns:
    if ref:
        lines.append(f"- ratio to {label}: {md(ref['configuration'])}, median {n(ref['median_rows_per_s'])} rows/s")
    else:
        lines.append(f"- ratio to {label}: **not measured** ({md(spec)})")
for heading, kinds, baseline_name, label in sections:
    members = [c for c in configs if kinds is None or c["kind"] in kinds]
    requests = any("median_loader_requests_per_s" in c for c in members)
    rss = any("median_peak_rss_mb" in c for c in members)
    cpu = any("median_client_cpu_s_per_million_rows" in c for c in members)
    lines.append("")
    if heading:
        lines += [f"## {heading}", ""]
    header = ["configuration", "median rows/s"]
    align = ["---", "---:"]
    if baseline_name:
        header.append(f"ratio to {label}")
        align.append("---:")
    for ratio_label, _, _ in ratio_columns:
        header.append(f"ratio to {ratio_label}")
        align.append("---:")
    header.append("loader's own rows/s (median)")
    align.append("---:")
    if requests:
        header.append("loader's own requests/s (median)")
        align.append("---:")
    if cpu:
        header.append("client CPU s per M rows (median)")
        align.append("---:")
    if rss:
        header.append("client peak RSS, MB (median)")
        align.append("---:")
    header.append("runs (rows/s)")
    align.append("---")
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for c in members:
        cells = [md(c["configuration"]), n(c["median_rows_per_s"])]
        if baseline_name:
            cells.append(f"{c[ratio_key]:.2f}")
        for ratio_label, _, _ in ratio_columns:
            ratio = c["ratios"][ratio_label]
            cells.append("–" if ratio is None else f"{ratio:.2f}")
        cells.append(n(c["median_loader_rows_per_s"]))
        if requests:
            cells.append(n(c.get("median_loader_requests_per_s")))
        if cpu:
            per_million = c.get("median_client_cpu_s_per_million_rows")
            cells.append("–" if per_million is None else f"{per_million:.2f}")
        if rss:
            mb = c.get("median_peak_rss_mb")
            cells.append("–" if mb is None else f"{mb:.1f}")
        cells.append(", ".join(n(f) for f in c["figures"]))
        lines.append("| " + " | ".join(cells) + " |")
    if heading is None:
        for x in skipped:
            cells = [md(x["configuration"]), "**not measured**"]
            cells += ["–"] * (len(header) - 3) + [md(x["reason"])]
            lines.append("| " + " | ".join(cells) + " |")
if comparisons:
    lines += [
        "",
        "| loader's best (median rows/s) | peer (median rows/s) | ratio | goal | met |",
        "|---|---|---:|---:|---|",
    ]
    for x in comparisons:
        loader = f"{md(x['loader'])} ({n(x['loader_median_rows_per_s'])})" if x["loader"] else "–"
        if x["ratio"] is None:
            peer, ratio, met = f"{md(x['peer'])}: **not measured**", "–", "**unknown**"
        else:
            peer = f"{md(x['peer'])} ({n(x['peer_median_rows_per_s'])})"
            ratio, met = f"{x['ratio']:.2f}×", "yes" if x["met"] else "**no**"
        lines.append(f"| {loader} | {peer} | {ratio} | {x['goal']:g}× | {met} |")
lines += ["", "Notes:", ""]
lines += [l for l in env["RESULT_NOTES"].split("\n") if l.strip()]
text = "\n".join(lines) + "\n"
print(text, end="")
with open(os.path.join(env["OUT"], env["RESULT_FILE"] + ".md"), "w") as f:
    f.write(text)
result = {
    "date": env["DATE"],
    "machine": {"nproc": int(env["NPROC"]), "model_name": env["CPU_MODEL"], "loadavg_at_start": env["LOADAVG"]},
}
if env["PG_VERSION"]:
    result["postgres_version"] = env["PG_VERSION"]
    result["server_settings"] = env["SETTINGS"].split()
    result["cluster"] = env["CLUSTER"]
result.update(json.loads(env["RESULT_JSON"]))
if env["RESULT_SECTIONS"].strip():
    result["sections"] = [
        {"heading": heading, "kinds": kinds, "baseline": baseline_name}
        for heading, kinds, baseline_name, _ in sections
    ]
elif ratio_columns:
    result["ratios"] = [
        {
            "label": label,
            "reference": spec,
            "configuration": ref["configuration"] if ref else None,
            "median_rows_per_s": ref["median_rows_per_s"] if ref else None,
        }
        for label, spec, ref in ratio_columns
    ]
else:
    result["baseline"] = env["BASELINE"]
result["configurations"] = configs
if skipped:
    result["skipped"] = skipped
if comparisons:
    result["comparisons"] = comparisons
if warnings:
    result["warnings"] = warnings
with open(os.path.join(env["OUT"], env["RESULT_FILE"] + ".json"), "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
PY
    log "wrote $OUT/${RESULT_FILE:-results}.md and $OUT/${RESULT_FILE:-results}.json"
}
