#!/usr/bin/python3
"""Driver of bench/run.sh: runs every measurement against the throwaway
cluster that run.sh started, prints the figures with their ratios to the
baselines measured in the same run, and exits non-zero only when a result
is wrong (never because of a timing).

Measurements (numbers as in bench/README.md):
  1. catch-up of the background worker on the order_summary projection
  2. the same handler called from a PL/pgSQL loop, COMMIT per 1000 events
     (the baseline of 1, 3 and 4)
  3. an external projector (bench/projector.py, Python + psycopg2)
  4. one set-based SQL statement (bench/setbased.sql), the ceiling
  5. live latency from append commit to read model visible
  6. append throughput with pgbench against a bare INSERT
  7. the worker's resident memory during 1
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
PROJ = "order_summary"
DB = "bench"
ORDER_TYPES = ["OrderCreated", "OrderItemAdded", "OrderItemRemoved",
               "OrderShipped", "OrderCompleted", "OrderCancelled"]
# The example's handlers name their tables unqualified and run with the
# search_path they were registered under: examples/ecommerce/register.sql
# registers them under this one, and so does the benchmark (and it calls the
# handler under it in 2).
SEARCH_PATH = "ecommerce, pg_catalog, pg_temp"


class Wrong(Exception):
    """A wrong result: the benchmark fails."""


T0 = time.monotonic()


def log(msg=""):
    if msg.startswith("== "):
        msg = f"{msg} [at {time.monotonic() - T0:.0f} s]"
    print(msg, flush=True)


def fmt_rate(x):
    return "-" if x is None else f"{x:,.0f}"


def fmt_ratio(x):
    return "-" if x is None else f"{x:.2f}x"


def fmt_ms(x):
    return "-" if x is None else f"{x:.2f}"


def quantile(sorted_values, q):
    """Nearest-rank quantile of an already sorted list."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(round(q * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def proc_status(pid):
    """VmRSS, VmHWM, RssAnon, RssFile, RssShmem of a process, in kB."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                    out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out


class Bench:
    def __init__(self, a):
        self.a = a
        self.quick = a.quick
        self.notes = []         # free text printed under the tables
        self.problems = []      # wrong results (fail the run)
        self.info = {}

    # ------------------------------------------------------------------ db
    def connect(self, db=DB, autocommit=True, app="projections-bench"):
        conn = psycopg2.connect(host=self.a.host, port=self.a.port,
                                user="postgres", dbname=db,
                                application_name=app)
        conn.autocommit = autocommit
        return conn

    @staticmethod
    def q(conn, sql, params=None):
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None

    def one(self, conn, sql, params=None):
        rows = self.q(conn, sql, params)
        return rows[0][0] if rows else None

    def psql_file(self, db, path):
        subprocess.run(
            [os.path.join(self.a.bindir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
             "-h", self.a.host, "-p", str(self.a.port), "-U", "postgres",
             "-d", db, "-f", path],
            check=True, stdout=subprocess.DEVNULL)

    def run_sql_file(self, conn, db, path):
        """Run a file of the example: over conn when it is plain SQL, with
        psql when it uses psql meta-commands."""
        with open(path) as f:
            text = f.read()
        if re.search(r"^\s*\\", text, re.M):
            self.psql_file(db, path)
        else:
            self.q(conn, text)

    def example(self, name):
        return os.path.join(self.a.example, name)

    def new_database(self, db, generator=False):
        c0 = self.connect("postgres")
        self.q(c0, f'DROP DATABASE IF EXISTS "{db}"')
        self.q(c0, f'CREATE DATABASE "{db}"')
        c0.close()
        conn = self.connect(db)
        self.q(conn, "CREATE EXTENSION projections")
        self.run_sql_file(conn, db, self.example("schema.sql"))
        self.run_sql_file(conn, db, self.example("handlers.sql"))
        if generator:
            self.run_sql_file(conn, db, self.example("generate.sql"))
        with open(os.path.join(HERE, "bench.sql")) as f:
            self.q(conn, f.read())
        return conn

    def drop_database(self, db):
        c0 = self.connect("postgres")
        self.q(c0, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        c0.close()

    def wal_lsn(self, conn):
        return self.one(conn, "SELECT pg_current_wal_insert_lsn()")

    def wal_since(self, conn, lsn):
        return int(self.one(conn, "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", (lsn,)))

    def worker_pid(self, conn, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.one(conn, "SELECT pid FROM projections._worker_status()")
            if pid:
                return pid
            time.sleep(0.05)
        raise Wrong("the projections worker of database %s did not start within %d s: %s"
                    % (DB, timeout, self.one(conn, "SELECT state FROM projections._worker_status()")))

    def projection_state(self, conn, name=PROJ):
        return self.q(conn, "SELECT state, last_error, events_applied, inline_active"
                            " FROM projections.projection WHERE name = %s", (name,))

    def wait_caught_up(self, conn, name=PROJ, stall=180):
        """Wait until the projection has applied every safe event, with
        bounded waits; a projection that stops (failed, paused) or makes no
        progress for `stall` seconds is an error, slowness is not."""
        last_applied, last_change = None, time.monotonic()
        while True:
            # a wait() holds its statement's snapshot while it waits, and so
            # keeps pruning (HOT) from cleaning the read model behind the
            # worker: poll with instant checks instead of one long wait
            if self.one(conn, "SELECT projections.wait(%s, NULL, '0')", (name,)):
                return
            time.sleep(0.02)
            rows = self.projection_state(conn, name)
            if not rows:
                raise Wrong(f"projection {name} disappeared")
            state, error, applied, _ = rows[0]
            if state != "active":
                raise Wrong(f"projection {name} is {state}: {error}")
            if applied != last_applied:
                last_applied, last_change = applied, time.monotonic()
            elif time.monotonic() - last_change > stall:
                raise Wrong(f"projection {name} made no progress for {stall} s "
                            f"(applied {applied})")

    def compare(self, conn, label, table, reference="bench.r_worker"):
        n = self.one(conn, f"SELECT count(*) FROM {table}")
        ref = self.one(conn, f"SELECT count(*) FROM {reference}")
        d = self.one(conn, f"SELECT count(*) FROM ((TABLE {table} EXCEPT ALL TABLE {reference})"
                           f" UNION ALL (TABLE {reference} EXCEPT ALL TABLE {table})) d")
        if d != 0 or n != ref or n == 0:
            msg = (f"{label}: {table} ({n} rows) differs from {reference} ({ref} rows)"
                   f" in {d} rows")
            self.problems.append(msg)
            log("!! " + msg)
            sample = self.q(conn, f"(TABLE {table} EXCEPT ALL TABLE {reference}) LIMIT 3")
            for r in sample or []:
                log(f"!!   only in {table}: {r}")
            sample = self.q(conn, f"(TABLE {reference} EXCEPT ALL TABLE {table}) LIMIT 3")
            for r in sample or []:
                log(f"!!   only in {reference}: {r}")
            return False
        log(f"   {label}: {n} rows, identical to {reference}")
        return True

    def snapshot(self, conn, table):
        self.q(conn, f"DROP TABLE IF EXISTS {table}")
        self.q(conn, f"CREATE TABLE {table} AS TABLE ecommerce.order_summary")

    def empty_read_model(self, conn):
        # as the worker found it: never vacuumed (a VACUUM of the empty table
        # would make the planner trust it to stay empty, and the handler's
        # cached plans would scan it sequentially)
        self.q(conn, "TRUNCATE ecommerce.order_summary")
        self.q(conn, "CHECKPOINT")

    # ------------------------------------------------------------- machine
    def describe(self, conn):
        mem_kb = 0
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
        cpu = "?"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        self.info = {
            "nproc": os.cpu_count(),
            "cpu": cpu,
            "memory": f"{mem_kb / 1048576:.1f} GiB",
            "postgres": self.one(conn, "SHOW server_version"),
            "settings": ", ".join(
                f"{k}={self.one(conn, 'SELECT current_setting(%s)', (k,))}"
                for k in ("shared_buffers", "synchronous_commit", "fsync", "max_wal_size",
                          "jit", "projections.batch_size", "projections.poll_interval")),
        }
        log(f"== machine: {self.info['nproc']} CPUs ({cpu}), {self.info['memory']} RAM,"
            f" PostgreSQL {self.info['postgres']}")
        log(f"== settings: {self.info['settings']}")
        self.load_start = os.getloadavg()
        log(f"== load average at the start: {self.load_start[0]:.2f} (1 min),"
            f" {self.load_start[2]:.2f} (15 min) on {self.info['nproc']} CPUs"
            f" (other work on the machine shows in every figure: compare ratios)")

    # ------------------------------------------------------------ history
    def generate(self, conn):
        n = self.a.events
        # load_history commits every 5000 events; generate_history appends in
        # one transaction, which holds a lock per stream until it commits
        # (some 40,000 events with the default lock table)
        has_load = self.one(conn, "SELECT to_regprocedure("
                                  "'ecommerce.load_history(bigint, double precision, integer, bigint)')"
                                  " IS NOT NULL")
        how = "CALL ecommerce.load_history" if has_load else "SELECT ecommerce.generate_history"
        log(f"== generating a history of {n:,} events ({how}, seed 0.42)")
        t0 = time.monotonic()
        if has_load:
            got = self.one(conn, "CALL ecommerce.load_history(%s, 0.42)", (n,))
        else:
            got = self.one(conn, "SELECT ecommerce.generate_history(%s, 0.42)", (n,))
        dt = time.monotonic() - t0
        total = self.one(conn, "SELECT count(*) FROM projections.events")
        log(f"   appended {got}; {total:,} events in {dt:.1f} s"
            f" ({total / dt:,.0f} events/s)")
        self.q(conn, "VACUUM (ANALYZE) projections.events")
        self.q(conn, "CHECKPOINT")
        self.history = total
        by_type = self.q(conn, "SELECT event_type, count(*) FROM projections.events"
                               " GROUP BY 1 ORDER BY 2 DESC")
        self.order_events = sum(c for t, c in by_type if t in ORDER_TYPES)
        size = self.one(conn, "SELECT pg_size_pretty(pg_total_relation_size('projections.events'))")
        log(f"   {self.order_events:,} order events; events table {size};"
            f" by type: " + ", ".join(f"{t} {c}" for t, c in by_type))
        if total < n:
            raise Wrong(f"generate_history({n}) left {total} events")

    # ------------------------------------------------------- 1. the worker
    def registration(self):
        """How examples/ecommerce/register.sql registers order_summary (it
        registers four projections; the benchmark registers this one alone,
        with the same handler, event types and reset)."""
        with open(self.example("register.sql")) as f:
            text = f.read()
        m = re.search(r"'%s'\s*,\s*'([^']+)'\s*,\s*ARRAY\s*\[([^\]]*)\]\s*,\s*[^,]+,\s*'([^']+)'"
                      % PROJ, text)
        if m:
            self.reg = {"handler": m.group(1),
                        "types": re.findall(r"'([^']+)'", m.group(2)),
                        "reset": m.group(3)}
        else:
            self.reg = {"handler": "ecommerce.order_summary_apply(projections.events)",
                        "types": ORDER_TYPES, "reset": "ecommerce.order_summary_reset()"}
            self.notes.append("could not read the registration of order_summary from"
                              " register.sql; registered it with the documented names")
        log(f"   order_summary as in register.sql: handler {self.reg['handler']},"
            f" reset {self.reg['reset']}, event types {', '.join(self.reg['types'])}")

    def register(self, conn, search_path, name, handler, mode, reset):
        """Register a projection of the order events with its handler
        running under search_path, as register.sql does; the connection's
        search_path is left as it was."""
        self.q(conn, "SELECT set_config('search_path', %s, false)", (search_path,))
        try:
            self.q(conn, "SELECT projections.register(%s, %s::regprocedure, %s, %s,"
                         " %s::regprocedure)", (name, handler, self.reg["types"], mode, reset))
        finally:
            self.q(conn, "RESET search_path")

    def note_rate(self, method, n, dt, wal):
        self.catch.setdefault(method, []).append(
            {"events": n, "seconds": dt, "rate": n / dt, "wal": wal / max(n, 1)})

    def catch_up(self, conn, rnd):
        """1. The worker: register order_summary on the history (first
        round) or rebuild it (later rounds: reset, then the worker replays
        from the first event, the same code path)."""
        how = "register" if rnd == 0 else "rebuild"
        pid = self.worker_pid(conn)
        samples = []
        stop = threading.Event()
        sampler_conn = self.connect(app="projections-bench sampler") if rnd == 0 else None

        def sample():
            while not stop.is_set():
                st = proc_status(pid)
                applied = self.one(sampler_conn, "SELECT coalesce(max(events_applied), 0)"
                                                 " FROM projections.projection WHERE name = %s",
                                   (PROJ,))
                samples.append((time.monotonic(), applied, st))
                stop.wait(0.02)

        idle = proc_status(pid)
        self.q(conn, "CHECKPOINT")
        lsn = self.wal_lsn(conn)
        th = None
        if sampler_conn is not None:
            th = threading.Thread(target=sample, daemon=True)
            th.start()
        t0 = time.monotonic()
        if rnd == 0:
            self.register(conn, SEARCH_PATH, PROJ, self.reg["handler"], "async",
                          self.reg["reset"])
        else:
            self.q(conn, "SELECT projections.rebuild(%s)", (PROJ,))
        self.wait_caught_up(conn)
        dt = time.monotonic() - t0
        if th is not None:
            stop.set()
            th.join()
            samples.append((time.monotonic(), None, proc_status(pid)))
            sampler_conn.close()
        wal = self.wal_since(conn, lsn)
        applied = self.one(conn, "SELECT events_applied FROM projections.projection"
                                 " WHERE name = %s", (PROJ,))
        self.q(conn, "SELECT projections.pause(%s)", (PROJ,))
        if rnd == 0:
            self.applied = applied
            self.snapshot(conn, "bench.r_worker")
            rows = self.one(conn, "SELECT count(*) FROM bench.r_worker")
            log(f"   1. worker ({how}): {applied:,} events applied of {self.history:,} in"
                f" {dt:.2f} s: {applied / dt:,.0f} events/s applied"
                f" ({self.history / dt:,.0f} events/s of history); {rows:,} orders;"
                f" WAL {wal / max(applied, 1):,.0f} B/event")
            self.rss(pid, idle, samples, applied)
        else:
            log(f"   1. worker ({how}): {applied:,} events in {dt:.2f} s:"
                f" {applied / dt:,.0f} events/s; WAL {wal / max(applied, 1):,.0f} B/event")
            if applied != self.applied:
                self.problems.append(f"worker round {rnd + 1} applied {applied} events,"
                                     f" round 1 {self.applied}")
            self.snapshot(conn, "bench.r_round")
            self.compare(conn, f"worker round {rnd + 1}", "bench.r_round")
        self.note_rate("worker", applied, dt, wal)

    # ------------------------------------------------------------- 7. RSS
    def rss(self, pid, idle, samples, applied):
        def at(fraction):
            for t, a, st in samples:
                if a is not None and a >= fraction * applied and st:
                    return st
            return samples[-1][2]

        q1, half, end = at(0.25), at(0.5), samples[-1][2]
        peak_rss = max((st.get("VmRSS", 0) for _, _, st in samples), default=0)
        peak_anon = max((st.get("RssAnon", 0) for _, _, st in samples), default=0)
        hwm = end.get("VmHWM", 0)
        anon_q1 = q1.get("RssAnon", 0)
        ratio = peak_anon / anon_q1 if anon_q1 else None
        self.rss_result = {
            "pid": pid, "idle": idle, "q1": q1, "half": half, "end": end,
            "peak_rss": peak_rss, "peak_anon": peak_anon, "hwm": hwm,
            "ratio": ratio, "samples": len(samples),
        }
        log(f"   7. worker pid {pid} memory (kB), {len(samples)} samples:"
            f" idle RssAnon {idle.get('RssAnon')} VmRSS {idle.get('VmRSS')};"
            f" at 25% of the events RssAnon {anon_q1} VmRSS {q1.get('VmRSS')};"
            f" at 50% RssAnon {half.get('RssAnon')};"
            f" peak RssAnon {peak_anon} VmRSS {peak_rss} (RssShmem {end.get('RssShmem')}),"
            f" VmHWM {hwm}")

    # --------------------------------------------------- 2. PL/pgSQL loop
    def plpgsql_loop(self, conn, rnd):
        self.empty_read_model(conn)
        lsn = self.wal_lsn(conn)
        t0 = time.monotonic()
        self.q(conn, "SELECT set_config('search_path', %s, false)", (SEARCH_PATH,))
        try:
            self.q(conn, "CALL bench.plpgsql_loop(%s, 1000)", (self.reg["types"],))
        finally:
            self.q(conn, "RESET search_path")
        dt = time.monotonic() - t0
        wal = self.wal_since(conn, lsn)
        n = self.one(conn, "SELECT applied FROM bench.checkpoint WHERE name = 'plpgsql_loop'")
        log(f"   2. PL/pgSQL loop: {n:,} events in {dt:.2f} s: {n / dt:,.0f} events/s;"
            f" WAL {wal / max(n, 1):,.0f} B/event")
        if n != self.applied:
            self.problems.append(f"PL/pgSQL loop applied {n} events, the worker {self.applied}")
        self.note_rate("loop", n, dt, wal)
        self.snapshot(conn, "bench.r_round")
        self.compare(conn, "PL/pgSQL loop", "bench.r_round")

    # -------------------------------------------------- 3. external client
    def external(self, conn, rnd):
        self.empty_read_model(conn)
        lsn = self.wal_lsn(conn)
        t0 = time.monotonic()
        out = subprocess.run(
            [sys.executable, os.path.join(HERE, "projector.py"),
             "--host", self.a.host, "--port", str(self.a.port), "--dbname", DB,
             "--types", json.dumps(self.reg["types"]), "--batch", "1000"],
            check=True, stdout=subprocess.PIPE, text=True)
        wall = time.monotonic() - t0
        wal = self.wal_since(conn, lsn)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        n, dt = res["events"], res["seconds"]
        log(f"   3. external projector: {n:,} events in {dt:.2f} s ({wall:.2f} s with the"
            f" process start): {n / dt:,.0f} events/s; {res['statements']:,} statements,"
            f" {res['batches']} batches; WAL {wal / max(n, 1):,.0f} B/event")
        if n != self.applied:
            self.problems.append(f"external projector applied {n} events, the worker {self.applied}")
        self.note_rate("external", n, dt, wal)
        self.snapshot(conn, "bench.r_round")
        self.compare(conn, "external projector", "bench.r_round")

    # ------------------------------------------------------ 4. set-based
    def setbased(self, conn, rnd):
        with open(os.path.join(HERE, "setbased.sql")) as f:
            query = f.read().strip().rstrip(";")
        self.empty_read_model(conn)
        lsn = self.wal_lsn(conn)
        t0 = time.monotonic()
        self.q(conn, "INSERT INTO ecommerce.order_summary " + query)
        dt = time.monotonic() - t0
        wal = self.wal_since(conn, lsn)
        n = self.applied
        log(f"   4. set-based SQL: {n:,} order events in {dt:.2f} s: {n / dt:,.0f} events/s;"
            f" WAL {wal / max(n, 1):,.0f} B/event")
        self.note_rate("setbased", n, dt, wal)
        self.snapshot(conn, "bench.r_round")
        self.compare(conn, "set-based SQL", "bench.r_round")

    def catch_up_rounds(self, conn):
        rounds = self.a.rounds
        self.catch = {}
        self.registration()
        log(f"== 1-4. catch-up of order_summary over the whole history, {rounds} rounds of:"
            f" 1 worker (register, then rebuild), 2 PL/pgSQL loop (baseline),"
            f" 3 external projector, 4 set-based SQL (in alternating order);"
            f" each from an empty read model")
        for rnd in range(rounds):
            # the order alternates, so that no method always runs first
            steps = [self.catch_up, self.plpgsql_loop, self.external, self.setbased]
            if rnd % 2:
                steps = [self.plpgsql_loop, self.catch_up, self.setbased, self.external]
            log(f"-- round {rnd + 1}/{rounds}")
            for step in steps:
                step(conn, rnd)

    def restore(self, conn):
        """Put the worker's read model back and resume the projection, for 5."""
        self.q(conn, "TRUNCATE ecommerce.order_summary")
        self.q(conn, "INSERT INTO ecommerce.order_summary TABLE bench.r_worker")
        self.q(conn, "VACUUM (ANALYZE) ecommerce.order_summary")
        self.q(conn, "SELECT projections.resume(%s)", (PROJ,))
        self.wait_caught_up(conn)

    # ------------------------------------------------------ 6. appends
    def pgbench(self, db, script, seconds, clients, rate=None, background=False, rnd=0):
        cmd = [os.path.join(self.a.bindir, "pgbench"), "-n", "-M", "prepared",
               "-c", str(clients), "-j", str(clients), "-T", str(seconds),
               "-D", "n=0", "-D", f"r={rnd}", "-f", os.path.join(HERE, "pgbench", script),
               "-h", self.a.host, "-p", str(self.a.port), "-U", "postgres", db]
        if rate:
            cmd[1:1] = ["-R", str(int(rate))]
        if background:
            return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            raise Wrong(f"pgbench {script} on {db} failed:\n{p.stdout[-2000:]}")
        m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", p.stdout)
        done = re.search(r"number of transactions actually processed: (\d+)", p.stdout)
        failed = re.search(r"number of failed transactions: (\d+)", p.stdout)
        if not m or not done:
            raise Wrong(f"cannot read pgbench's output:\n{p.stdout[-2000:]}")
        if failed and int(failed.group(1)) > 0:
            raise Wrong(f"pgbench {script} on {db}: {failed.group(1)} failed transactions")
        return float(m.group(1)), int(done.group(1))

    def inline_copies(self, conn, count):
        """Register order_summary inline under `count` names: the example's
        handler on ecommerce.order_summary, and copies of the handler on
        copies of the table (schemas bench_inline2, ...)."""
        names = []
        for i in range(1, count + 1):
            if i == 1:
                schema, name = "ecommerce", PROJ
            else:
                schema, name = f"bench_inline{i}", f"{PROJ}_{i}"
                self.q(conn, "SELECT bench.copy_order_summary(%s)", (schema,))
            self.register(conn, f"{schema}, pg_catalog, pg_temp", name,
                          f"{schema}.order_summary_apply(projections.events)", "inline",
                          f"{schema}.order_summary_reset()")
            self.q(conn, "SELECT projections.run(%s)", (name,))
            rows = self.projection_state(conn, name)
            if not rows or not rows[0][3]:
                raise Wrong(f"inline projection {name} did not become active: {rows}")
            names.append((name, schema))
        return names

    def appends(self):
        secs = 2 if self.quick else 10
        rounds = self.a.rounds
        clients = 2
        log(f"== 6. append throughput: pgbench -M prepared, {clients} clients, {secs} s per run,"
            f" {rounds} rounds over the configurations in turn, a database per configuration")
        configs = [
            ("bare INSERT into a plain copy of projections.events (no triggers)", "bare_insert.sql", 0),
            ("projections.append, no projection", "append.sql", 0),
            ("projections.append, 1 inline projection", "append.sql", 1),
            ("projections.append, 4 inline projections", "append.sql", 4),
        ]
        dbs = []
        for i, (label, script, inline) in enumerate(configs):
            db = f"bench_append_{i}"
            conn = self.new_database(db)
            copies = self.inline_copies(conn, inline) if inline else []
            self.q(conn, "VACUUM ANALYZE")
            dbs.append((db, conn, copies))
        self.append_results = [{"label": c[0], "inline": c[2], "tps": [], "events": 0,
                                "wal_bytes": 0} for c in configs]
        for rnd in range(rounds):
            # rotate the order, so that no configuration always runs first
            order = list(range(len(configs)))
            order = order[rnd % len(order):] + order[:rnd % len(order)]
            for i in order:
                label, script, inline = configs[i]
                db, conn, copies = dbs[i]
                self.q(conn, "CHECKPOINT")
                lsn = self.wal_lsn(conn)
                tps, done = self.pgbench(db, script, secs, clients, rnd=rnd)
                wal = self.wal_since(conn, lsn)
                r = self.append_results[i]
                r["tps"].append(tps)
                r["events"] += done
                r["wal_bytes"] += wal
                log(f"   round {rnd + 1}: {label}: {tps:,.0f} events/s ({done:,} events),"
                    f" WAL {wal / max(done, 1):,.0f} B/event")
        for i, (label, script, inline) in enumerate(configs):
            db, conn, copies = dbs[i]
            r = self.append_results[i]
            r["wal"] = r["wal_bytes"] / max(r["events"], 1)
            table = "bench.plain_events" if script == "bare_insert.sql" else "projections.events"
            rows = self.one(conn, f"SELECT count(*) FROM {table}")
            if rows != r["events"]:
                self.problems.append(f"{label}: pgbench committed {r['events']} transactions,"
                                     f" {table} has {rows} rows")
            if copies:
                # fresh statistics: the table was empty when last analyzed,
                # and the set-based query's plan would be quadratic
                self.q(conn, "ANALYZE projections.events")
            for name, schema in copies:
                # the inline read model must equal a set-based build from the events
                self.q(conn, "DROP TABLE IF EXISTS bench.expected")
                with open(os.path.join(HERE, "setbased.sql")) as f:
                    query = f.read().strip().rstrip(";")
                self.q(conn, "CREATE TABLE bench.expected (LIKE ecommerce.order_summary)")
                self.q(conn, "INSERT INTO bench.expected " + query)
                self.compare(conn, f"inline projection {name}", f"{schema}.order_summary",
                             "bench.expected")
            conn.close()
            self.drop_database(db)

    # ------------------------------------------------------ 5. latency
    def latency_run(self, conn, label, n, other=False):
        """n appends in autocommit, each followed by wait(order_summary, its
        position): the time from the append's commit to wait() returning.
        other: append an event order_summary does not take (CustomerCreated);
        wait() then returns once the checkpoint has moved past it."""
        cur = conn.cursor()
        lat, rtt, timeouts = [], [], 0
        warm = 10
        for i in range(n + warm):
            oid = f"lat-{label}-{i}"
            t0 = time.perf_counter()
            if other:
                cur.execute("SELECT projections.append(%s, 'CustomerCreated', %s::jsonb)",
                            (f"customer-{oid}", json.dumps(
                                {"customer_id": oid, "email": f"{oid}@example.com",
                                 "name": "Latency Probe", "created_at": "2024-06-01T12:00:00Z"})))
            else:
                cur.execute("SELECT projections.append(%s, 'OrderCreated', %s::jsonb)",
                            (f"order-{oid}", json.dumps(
                                {"order_id": oid, "customer_id": "c-lat",
                                 "created_at": "2024-06-01T12:00:00Z"})))
            pos = cur.fetchone()[0]
            t1 = time.perf_counter()
            cur.execute("SELECT projections.wait(%s, %s, '5 seconds')", (PROJ, pos))
            ok = cur.fetchone()[0]
            t2 = time.perf_counter()
            if not ok:
                timeouts += 1
                continue
            if not other:
                cur.execute("SELECT 1 FROM ecommerce.order_summary WHERE order_id = %s", (oid,))
                if cur.fetchone() is None:
                    msg = (f"latency {label}: wait() returned true but order {oid}"
                           f" is not in the read model")
                    self.problems.append(msg)
                    raise Wrong(msg)
            if i >= warm:
                lat.append((t2 - t1) * 1000.0)
                rtt.append((t1 - t0) * 1000.0)
        cur.close()
        lat.sort()
        rtt.sort()
        return {"label": label, "n": len(lat), "timeouts": timeouts,
                "p50": quantile(lat, 0.5), "p99": quantile(lat, 0.99),
                "max": lat[-1] if lat else None,
                "mean": statistics.mean(lat) if lat else None,
                "rtt50": quantile(rtt, 0.5), "rtt99": quantile(rtt, 0.99)}

    def latency(self, conn):
        n = 200 if self.quick else 1000
        n_other = 30 if self.quick else 100
        clients = 2
        log(f"== 5. live latency: append (autocommit), then projections.wait(name, position);"
            f" {n} appends per condition")
        # orders for the load to add items to
        self.q(conn, "SELECT projections.append('order-load-' || c || '-' || i, 'OrderCreated',"
                     " jsonb_build_object('order_id', 'load-' || c || '-' || i,"
                     " 'customer_id', 'c-load', 'created_at', now()))"
                     " FROM generate_series(0, %s) c, generate_series(1, 1000) i",
               (clients - 1,))
        self.wait_caught_up(conn)
        self.q(conn, "VACUUM ANALYZE ecommerce.order_summary")
        plain = statistics.median(next(r["tps"] for r in self.append_results
                                       if r["label"].startswith("projections.append, no")))
        rate = max(50, plain / 2)
        # (label, load: None = idle, 0 = unthrottled, else events/s; other event type; samples)
        conditions = [
            ("idle", None, False, n),
            (f"load {rate:,.0f}/s ({clients} pgbench clients)", rate, False, n),
            (f"load unthrottled ({clients} pgbench clients)", 0, False, n),
            ("idle, an event order_summary does not take (CustomerCreated)", None, True, n_other),
        ]
        self.latencies = []
        for k, (label, load, other, count) in enumerate(conditions):
            bg = None
            if load is not None:
                bg = self.pgbench(DB, "append_load.sql", 3600, clients,
                                  rate=load or None, background=True)
                # let the clients connect and start (not a correctness wait)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and bg.poll() is None and self.one(
                        conn, "SELECT count(*) FROM pg_stat_activity"
                              " WHERE application_name = 'pgbench'") < clients:
                    time.sleep(0.05)
                if bg.poll() is not None:
                    raise Wrong(f"pgbench load exited early:\n{bg.stdout.read()[-2000:]}")
            try:
                r = self.latency_run(conn, f"c{k}", count, other=other)
            finally:
                if bg is not None:
                    bg.send_signal(signal.SIGTERM)
                    try:
                        bg.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        bg.kill()
                        bg.wait()
            r["label"] = label
            self.latencies.append(r)
            self.wait_caught_up(conn)
            log(f"   {label}: p50 {fmt_ms(r['p50'])} ms, p99 {fmt_ms(r['p99'])} ms,"
                f" max {fmt_ms(r['max'])} ms over {r['n']} appends, {r['timeouts']} timeouts (5 s);"
                f" the append itself (round trip with its commit): p50 {fmt_ms(r['rtt50'])} ms,"
                f" p99 {fmt_ms(r['rtt99'])} ms")

    # ------------------------------------------------------ profile
    def keep_library(self):
        """A copy of projections.so as the server loaded it, so that the
        profile can name the extension's functions even if the library is
        reinstalled during the run."""
        libdir = subprocess.run([os.path.join(self.a.bindir, "pg_config"), "--pkglibdir"],
                                stdout=subprocess.PIPE, text=True).stdout.strip()
        self.so_copy = os.path.join(self.a.host, "projections.so.loaded")
        try:
            shutil.copyfile(os.path.join(libdir, "projections.so"), self.so_copy)
        except OSError:
            self.so_copy = None

    def mapped_library(self, pid):
        """The projections.so mapped by process pid (readable by root even
        when the file was replaced), else the copy taken at the start."""
        try:
            with open(f"/proc/{pid}/maps") as f:
                for line in f:
                    if line.rstrip().endswith("projections.so") or "projections.so (deleted)" in line:
                        path = os.path.join(self.a.host, "projections.so.mapped")
                        shutil.copyfile(f"/proc/{pid}/map_files/{line.split()[0]}", path)
                        return path
        except OSError:
            pass
        return self.so_copy

    def profile(self, conn):
        secs = 10 if self.quick else 20
        log(f"== profile: perf record of the worker for up to {secs} s while it replays"
            f" the history (projections.rebuild)")
        pid = self.worker_pid(conn)
        data = os.path.join(self.a.host, "perf.data")
        self.q(conn, "CHECKPOINT")
        try:
            perf = subprocess.Popen(["perf", "record", "-F", "499", "--call-graph", "dwarf,16384",
                                     "-o", data, "-p", str(pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        except OSError as e:
            log(f"   cannot run perf: {e}")
            return
        time.sleep(0.5)  # perf attaches; a profile is no correctness matter
        if perf.poll() is not None:
            log("   perf record failed: " + perf.stderr.read().strip()[-500:])
            return
        t0 = time.monotonic()
        self.q(conn, "SELECT projections.rebuild(%s)", (PROJ,))
        done = False
        while time.monotonic() - t0 < secs and not done:
            done = self.one(conn, "SELECT projections.wait(%s, NULL, '0')", (PROJ,))
            time.sleep(0.02)
        dt = time.monotonic() - t0
        applied = self.one(conn, "SELECT events_applied FROM projections.projection"
                                 " WHERE name = %s", (PROJ,))
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=120)
        log(f"   {'replayed' if done else 'stopped profiling after'} {dt:.1f} s"
            f" ({applied:,} events applied in all, under perf)")
        so = self.mapped_library(pid)
        subprocess.run([sys.executable, os.path.join(HERE, "perf_summary.py"), data]
                       + ([so] if so else []), check=False)

    # ------------------------------------------------------ report
    def median_rate(self, method):
        runs = self.catch[method]
        rates = sorted(r["rate"] for r in runs)
        return statistics.median(rates), rates[0], rates[-1], statistics.median(r["wal"] for r in runs)

    def paired(self, method, base="loop"):
        """Median over the rounds of the ratio of two methods measured in the
        same round (close in time: less exposed to the machine's load)."""
        return statistics.median(a["rate"] / b["rate"]
                                 for a, b in zip(self.catch[method], self.catch[base]))

    @staticmethod
    def spread(lo, hi, n):
        return f" ({fmt_rate(lo)}-{fmt_rate(hi)})" if n > 1 else ""

    def report(self):
        lines = []
        met = lambda ok: "met" if ok else "MISSED"
        rounds = self.a.rounds
        loop, lo, hi, loop_wal = self.median_rate("loop")
        w, wlo, whi, w_wal = self.median_rate("worker")
        ext, elo, ehi, e_wal = self.median_rate("external")
        sb, slo, shi, s_wal = self.median_rate("setbased")

        def row(figure, value, ratio, target, verdict):
            lines.append((figure, value, ratio, target, verdict))

        row("2. PL/pgSQL loop calling the handler, COMMIT per 1000 (baseline)",
            f"{fmt_rate(loop)} ev/s{self.spread(lo, hi, rounds)}, {loop_wal:,.0f} B WAL/ev",
            "1.00x", "", "")
        w_loop, ext_loop, sb_loop = self.paired("worker"), self.paired("external"), self.paired("setbased")
        w_ext = self.paired("worker", "external")
        row("1. background worker (register / rebuild)",
            f"{fmt_rate(w)} ev/s{self.spread(wlo, whi, rounds)}, {w_wal:,.0f} B WAL/ev",
            fmt_ratio(w_loop), ">= 1.10x loop", met(w_loop >= 1.1))
        row("3. external projector (Python + psycopg2, Unix socket)",
            f"{fmt_rate(ext)} ev/s{self.spread(elo, ehi, rounds)}, {e_wal:,.0f} B WAL/ev",
            fmt_ratio(ext_loop), f"worker >= 20x external: {w_ext:.1f}x",
            met(w_ext >= 20))
        row("4. set-based INSERT ... SELECT (ceiling)",
            f"{fmt_rate(sb)} ev/s{self.spread(slo, shi, rounds)}, {s_wal:,.0f} B WAL/ev",
            fmt_ratio(sb_loop), "", "")
        for r in self.latencies:
            idle = r["label"] == "idle"
            row(f"5. append commit -> visible, {r['label']}",
                f"p50 {fmt_ms(r['p50'])} / p99 {fmt_ms(r['p99'])} / max {fmt_ms(r['max'])} ms"
                + (f", {r['timeouts']} timeouts" if r["timeouts"] else "")
                + f" (append itself: p50 {fmt_ms(r['rtt50'])})",
                "", "p99 <= 5 ms" if idle else "",
                met(r["p99"] is not None and r["p99"] <= 5.0 and r["timeouts"] == 0) if idle else "")
        base = self.append_results[0]["tps"]
        for i, r in enumerate(self.append_results):
            tps = statistics.median(r["tps"])
            ratio = statistics.median(a / b for a, b in zip(r["tps"], base))
            plain = r["label"] == "projections.append, no projection"
            row(f"6. {r['label']}" + (" (baseline)" if i == 0 else ""),
                f"{fmt_rate(tps)} ev/s{self.spread(min(r['tps']), max(r['tps']), len(r['tps']))},"
                f" {r['wal']:,.0f} B WAL/ev",
                fmt_ratio(ratio), ">= 0.70x" if plain else "",
                met(ratio >= 0.7) if plain else "")
        m = self.rss_result
        flat = m["ratio"] is not None and m["ratio"] <= 1.10
        row("7. worker private memory (RssAnon) at 25% of the catch-up (baseline)",
            f"{m['q1'].get('RssAnon', 0) / 1024:.1f} MiB", "1.00x", "", "")
        row("7. worker peak RssAnon over the catch-up",
            f"{m['peak_anon'] / 1024:.1f} MiB", fmt_ratio(m["ratio"]), "flat (<= 1.10x)",
            met(flat))
        row("7. worker peak VmRSS / VmHWM (with the shared buffers it touched)",
            f"{m['peak_rss'] / 1024:.1f} / {m['hwm'] / 1024:.1f} MiB", "", "", "")

        head = ("figure", "value", "ratio", "target", "verdict")
        widths = [max(len(str(x[i])) for x in lines + [head]) for i in range(5)]
        summary = (f"history {self.history:,} events, {self.applied:,} of them order events"
                   f" (applied per catch-up); {self.info['nproc']} CPUs ({self.info['cpu']}),"
                   f" {self.info['memory']} RAM, PostgreSQL {self.info['postgres']}")
        load_end = os.getloadavg()
        footer = [
            f"Load average: {self.load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end"
            f" (1 min; {load_end[2]:.2f} over 15 min) on {self.info['nproc']} CPUs.",
            f"Catch-up rates: order events applied (handler calls) per second, median of"
            f" {rounds} rounds (range); ratio: median over the rounds of the ratio to the"
            f" PL/pgSQL loop (2) of the same round.",
            f"Append rates: events per second, median of {rounds} pgbench runs (range),"
            f" 2 clients; ratio: median over the rounds of the ratio to the bare INSERT of the"
            f" same round.",
            f"Settings: {self.info['settings']}.",
        ] + self.notes
        log()
        log("== results: " + summary)
        log(("  " + "  ".join(h.ljust(widths[i]) for i, h in enumerate(head))).rstrip())
        for x in lines:
            log(("  " + "  ".join(str(x[i]).ljust(widths[i]) for i in range(5))).rstrip())
        for f in footer:
            log("  " + f)
        if self.a.output:
            md = [f"Results: {summary}.", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            md += ["| " + " | ".join(str(v) for v in x) + " |" for x in lines]
            md += [""] + [f + "  " for f in footer]
            with open(self.a.output, "w") as f:
                f.write("\n".join(md) + "\n")
            log(f"== wrote {self.a.output}")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bindir", required=True)
    ap.add_argument("--example", required=True)
    ap.add_argument("--events", type=int, default=1000000)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--output")
    a = ap.parse_args()

    b = Bench(a)
    t_start = time.monotonic()
    if a.profile:
        b.keep_library()
    try:
        conn = b.new_database(DB, generator=True)
        b.describe(conn)
        b.generate(conn)
        b.catch_up_rounds(conn)
        b.restore(conn)
        b.appends()
        b.latency(conn)
        if a.profile:
            b.profile(conn)
        b.report()
    except Wrong as e:
        log(f"!! {e}")
        b.problems.append(str(e))
    except (psycopg2.Error, subprocess.CalledProcessError) as e:
        log(f"!! a step failed: {e}")
        b.problems.append(str(e))
    log(f"== benchmark took {time.monotonic() - t_start:.0f} s")
    if b.problems:
        log("== WRONG RESULTS:")
        for p in b.problems:
            log("   " + p)
        return 1
    log("== all results verified (read models identical across methods)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
