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
  8. 1 with order_summary's batch handler (one call per batch of events)
  9. parallel workers: 2 and 4 copies of order_summary registered at once,
     with projections.workers_per_database 1, 2 (and 4); and the loop of 2
     on 2 copies, one after the other and side by side (what two processes
     get out of the machine without projections)
 10. the latency of 5 for a small live projection while another projection
     is rebuilt, with workers_per_database 1 and 2
 11. online rebuild against plain rebuild, and the exchange's lock time at
     two model sizes (from the server log, and as a reader sees it)
"""
import argparse
import contextlib
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
BATCH = "order_summary_batch"     # 8: the same read model, with the batch handler
LIVE = "bench_live"                # 10: a small live projection (bench.sql)
SHORT_BATCH = 250                  # 10: projections.batch_size of the last condition
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


def cpu_seconds(pid):
    """User + system CPU time a process has used, in seconds (None if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


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

    @contextlib.contextmanager
    def search_path(self, conn, path):
        """The connection's search_path set to path for the with block."""
        self.q(conn, "SELECT set_config('search_path', %s, false)", (path,))
        try:
            yield
        finally:
            self.q(conn, "RESET search_path")

    @contextlib.contextmanager
    def autovacuum_off(self, conn, tables):
        """No autovacuum of tables for the with block: a VACUUM or ANALYZE
        of an emptied read model makes the planner trust it to stay empty,
        and a PL/pgSQL loop (a long CALL, whose statistics reach autovacuum
        only at its end) would keep plans that scan it whole."""
        for t in tables:
            self.q(conn, f"ALTER TABLE {t} SET (autovacuum_enabled = off)")
        try:
            yield
        finally:
            for t in tables:
                self.q(conn, f"ALTER TABLE {t} RESET (autovacuum_enabled)")

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
        instant checks every 20 ms (wait_all_caught_up); a projection that
        stops (failed, paused) or makes no progress for `stall` seconds is
        an error, slowness is not.  (A wait() holds its statement's snapshot
        while it waits, and so keeps pruning (HOT) from cleaning the read
        model behind the worker: hence instant checks, not one long wait.)"""
        self.wait_all_caught_up(conn, [name], stall, every=0.02)

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
            "batch_size": self.one(conn, "SHOW projections.batch_handler_size"),
            "settings": ", ".join(
                f"{k}={self.one(conn, 'SELECT current_setting(%s)', (k,))}"
                for k in ("shared_buffers", "synchronous_commit", "fsync", "max_wal_size",
                          "jit", "max_worker_processes", "projections.batch_size",
                          "projections.batch_handler_size", "projections.workers_per_database",
                          "projections.poll_interval", "projections.exchange_timeout")),
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
        with the same handler, event types and reset, and, for 8, the batch
        handler and tables it gives with -v handlers=batch)."""
        with open(self.example("register.sql")) as f:
            text = f.read()
        m = re.search(r"'%s'\s*,\s*'([^']+)'\s*,\s*ARRAY\s*\[([^\]]*)\]\s*,\s*[^,]+,\s*'([^']+)'"
                      r"(?:\s*,\s*ARRAY\s*\[([^\]]*)\]\s*,\s*'([^']+)')?"
                      % PROJ, text)
        if m:
            self.reg = {"handler": m.group(1),
                        "types": re.findall(r"'([^']+)'", m.group(2)),
                        "reset": m.group(3),
                        "tables": re.findall(r"'([^']+)'", m.group(4) or "")
                                  or ["ecommerce.order_summary"],
                        "batch": m.group(5)
                                 or "ecommerce.order_summary_apply_batch(projections.events[])"}
        else:
            self.reg = {"handler": "ecommerce.order_summary_apply(projections.events)",
                        "types": ORDER_TYPES, "reset": "ecommerce.order_summary_reset()",
                        "tables": ["ecommerce.order_summary"],
                        "batch": "ecommerce.order_summary_apply_batch(projections.events[])"}
            self.notes.append("could not read the registration of order_summary from"
                              " register.sql; registered it with the documented names")
        log(f"   order_summary as in register.sql: handler {self.reg['handler']},"
            f" reset {self.reg['reset']}, event types {', '.join(self.reg['types'])};"
            f" batch handler {self.reg['batch']}, tables {', '.join(self.reg['tables'])}")

    def register(self, conn, search_path, name, handler, mode, reset, tables=None,
                 types=None):
        """Register a projection (of the order events, unless types says
        otherwise) with its handler running under search_path, as
        register.sql does; the connection's search_path is left as it was."""
        with self.search_path(conn, search_path):
            self.q(conn, "SELECT projections.register(%s, %s::regprocedure, %s, %s,"
                         " %s::regprocedure, tables => %s::regclass[])",
                   (name, handler, types or self.reg["types"], mode, reset, tables))

    def note_rate(self, method, n, dt, wal, cpu=None):
        """cpu: CPU seconds of the process that applied the events (the
        worker, or the backend running the loop or the statement)"""
        self.catch.setdefault(method, []).append(
            {"events": n, "seconds": dt, "rate": n / dt, "wal": wal / max(n, 1),
             "cpu_us": cpu / max(n, 1) * 1e6 if cpu is not None else None})

    @staticmethod
    def fmt_cpu(cpu, n):
        return f"; CPU {cpu / max(n, 1) * 1e6:.1f} us/event" if cpu is not None else ""

    def backend_pid(self, conn):
        return self.one(conn, "SELECT pg_backend_pid()")

    @staticmethod
    def cpu_since(pid, before):
        after = cpu_seconds(pid)
        return after - before if after is not None and before is not None else None

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
        cpu0 = cpu_seconds(pid)
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
        cpu = self.cpu_since(pid, cpu0)
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
                f" WAL {wal / max(applied, 1):,.0f} B/event{self.fmt_cpu(cpu, applied)}")
            self.rss(pid, idle, samples, applied)
        else:
            log(f"   1. worker ({how}): {applied:,} events in {dt:.2f} s:"
                f" {applied / dt:,.0f} events/s; WAL {wal / max(applied, 1):,.0f} B/event"
                f"{self.fmt_cpu(cpu, applied)}")
            if applied != self.applied:
                self.problems.append(f"worker round {rnd + 1} applied {applied} events,"
                                     f" round 1 {self.applied}")
            self.snapshot(conn, "bench.r_round")
            self.compare(conn, f"worker round {rnd + 1}", "bench.r_round")
        self.note_rate("worker", applied, dt, wal, cpu)

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
        pid = self.backend_pid(conn)
        with self.autovacuum_off(conn, ["ecommerce.order_summary"]):
            self.empty_read_model(conn)
            lsn = self.wal_lsn(conn)
            cpu0 = cpu_seconds(pid)
            t0 = time.monotonic()
            with self.search_path(conn, SEARCH_PATH):
                self.q(conn, "CALL bench.plpgsql_loop(%s, 1000)", (self.reg["types"],))
            dt = time.monotonic() - t0
        cpu = self.cpu_since(pid, cpu0)
        wal = self.wal_since(conn, lsn)
        n = self.one(conn, "SELECT applied FROM bench.checkpoint WHERE name = 'plpgsql_loop'")
        log(f"   2. PL/pgSQL loop: {n:,} events in {dt:.2f} s: {n / dt:,.0f} events/s;"
            f" WAL {wal / max(n, 1):,.0f} B/event{self.fmt_cpu(cpu, n)}")
        if n != self.applied:
            self.problems.append(f"PL/pgSQL loop applied {n} events, the worker {self.applied}")
        self.note_rate("loop", n, dt, wal, cpu)
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
        pid = self.backend_pid(conn)
        cpu0 = cpu_seconds(pid)
        t0 = time.monotonic()
        self.q(conn, "INSERT INTO ecommerce.order_summary " + query)
        dt = time.monotonic() - t0
        cpu = self.cpu_since(pid, cpu0)
        wal = self.wal_since(conn, lsn)
        n = self.applied
        log(f"   4. set-based SQL: {n:,} order events in {dt:.2f} s: {n / dt:,.0f} events/s;"
            f" WAL {wal / max(n, 1):,.0f} B/event{self.fmt_cpu(cpu, n)}")
        self.note_rate("setbased", n, dt, wal, cpu)
        self.snapshot(conn, "bench.r_round")
        self.compare(conn, "set-based SQL", "bench.r_round")

    # ------------------------------------------- 8. the batch handler
    def batch_catch_up(self, conn, rnd):
        """8. The worker with order_summary's batch handler, registered as
        another projection (BATCH) on the same event types and table: one
        call per batch of projections.batch_handler_size events.  Registered
        in the first round, rebuilt in the later ones, paused in between."""
        how = "register" if rnd == 0 else "rebuild"
        self.empty_read_model(conn)
        lsn = self.wal_lsn(conn)
        pid = self.worker_pid(conn)
        cpu0 = cpu_seconds(pid)
        t0 = time.monotonic()
        if rnd == 0:
            self.register(conn, SEARCH_PATH, BATCH, self.reg["batch"], "async",
                          self.reg["reset"], self.reg["tables"])
        else:
            self.q(conn, "SELECT projections.rebuild(%s)", (BATCH,))
        self.wait_caught_up(conn, BATCH)
        dt = time.monotonic() - t0
        cpu = self.cpu_since(pid, cpu0)
        wal = self.wal_since(conn, lsn)
        self.q(conn, "SELECT projections.pause(%s)", (BATCH,))
        applied = self.one(conn, "SELECT events_applied FROM projections.projection"
                                 " WHERE name = %s", (BATCH,))
        n = self.applied
        log(f"   8. worker, batch handler ({how}): {n:,} order events in {dt:.2f} s:"
            f" {n / dt:,.0f} events/s; WAL {wal / max(n, 1):,.0f} B/event"
            f"{self.fmt_cpu(cpu, n)} (events_applied {applied:,})")
        if applied != n:
            self.problems.append(f"batch handler round {rnd + 1} applied {applied} events,"
                                 f" the per-event worker {n}")
        self.note_rate("batch", n, dt, wal, cpu)
        self.snapshot(conn, "bench.r_round")
        self.compare(conn, f"batch handler round {rnd + 1}", "bench.r_round")

    def catch_up_rounds(self, conn):
        rounds = self.a.rounds
        self.catch = {}
        self.registration()
        log(f"== 1-4, 8. catch-up of order_summary over the whole history, {rounds} rounds of:"
            f" 1 worker (register, then rebuild), 2 PL/pgSQL loop (baseline),"
            f" 3 external projector, 4 set-based SQL, 8 worker with the batch handler"
            f" (in alternating order); each from an empty read model")
        for rnd in range(rounds):
            # the order alternates, so that no method always runs first
            steps = [self.catch_up, self.plpgsql_loop, self.external, self.setbased,
                     self.batch_catch_up]
            if rnd % 2:
                steps = [self.plpgsql_loop, self.catch_up, self.batch_catch_up, self.setbased,
                         self.external]
            log(f"-- round {rnd + 1}/{rounds}")
            for step in steps:
                step(conn, rnd)
        # the batch projection shares order_summary's table: it goes
        self.q(conn, "SELECT projections.unregister(%s)", (BATCH,))

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
    def latency_run(self, conn, label, n, other=False, ping=False, between=None):
        """n appends in autocommit, each followed by wait(order_summary, its
        position): the time from the append's commit to wait() returning.
        other: append an event order_summary does not take (CustomerCreated);
        wait() then returns once the checkpoint has moved past it.
        ping: append an event of the small live projection of 10 (LIVE)
        and wait for that one.  between: called before every append (not
        timed)."""
        cur = conn.cursor()
        lat, rtt, timeouts = [], [], 0
        warm = 10
        proj = LIVE if ping else PROJ
        for i in range(n + warm):
            if between is not None:
                between(i)
            oid = f"lat-{label}-{i}"
            t0 = time.perf_counter()
            if ping:
                cur.execute("SELECT projections.append(%s, 'BenchPing', %s::jsonb)",
                            (f"ping-{oid}", json.dumps({"id": oid})))
            elif other:
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
            cur.execute("SELECT projections.wait(%s, %s, '5 seconds')", (proj, pos))
            ok = cur.fetchone()[0]
            t2 = time.perf_counter()
            if not ok:
                timeouts += 1
                continue
            if ping or not other:
                if ping:
                    cur.execute("SELECT 1 FROM bench.live_ping WHERE id = %s", (oid,))
                else:
                    cur.execute("SELECT 1 FROM ecommerce.order_summary WHERE order_id = %s",
                                (oid,))
                if cur.fetchone() is None:
                    msg = (f"latency {label}: wait() returned true but {oid}"
                           f" is not in the read model of {proj}")
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

    # ------------------------------------------- workers, copies, waits
    def worker_pids(self, conn):
        return [r[0] for r in self.q(conn, "SELECT pid FROM pg_stat_activity"
                                           " WHERE backend_type = 'projections worker'"
                                           " AND datname = %s", (DB,))]

    def workers_running(self, conn):
        return len(self.worker_pids(conn))

    def set_setting(self, conn, name, value):
        """A reloadable setting (None: its default) with ALTER SYSTEM and a
        reload; returns once a new connection sees it."""
        if not hasattr(self, "orig_settings"):
            self.orig_settings = {}
        if name not in self.orig_settings:
            c = self.connect(app="projections-bench settings")
            self.orig_settings[name] = self.one(c, f"SHOW {name}")
            c.close()
        if value is None:
            self.q(conn, f"ALTER SYSTEM RESET {name}")
        else:
            self.q(conn, f"ALTER SYSTEM SET {name} = {int(value)}")
        self.q(conn, "SELECT pg_reload_conf()")
        want = str(value) if value is not None else self.orig_settings[name]
        deadline = time.monotonic() + 30
        while True:
            c = self.connect(app="projections-bench settings")
            seen = self.one(c, f"SHOW {name}")
            c.close()
            if seen == want:
                return
            if time.monotonic() > deadline:
                raise Wrong(f"{name} is still {seen} 30 s after the reload that set it to {want}")
            time.sleep(0.02)

    def set_workers(self, conn, n, settle=True):
        """projections.workers_per_database = n (None: as configured) with
        ALTER SYSTEM and a reload; returns once a new connection sees it
        and, with settle, once no more than n workers run (the extra ones
        exit when they see the new value; they start again only when the
        first worker finds projections with work for them)."""
        self.set_setting(conn, "projections.workers_per_database", n)
        if settle and n is not None:
            deadline = time.monotonic() + 30
            while self.workers_running(conn) > n:
                if time.monotonic() > deadline:
                    self.notes.append(f"{self.workers_running(conn)} workers still ran 30 s"
                                      f" after workers_per_database was set to {n}")
                    break
                time.sleep(0.02)

    def order_copy(self, conn, schema, tenth=False):
        """A copy of order_summary (table, handler, reset) in schema, made
        by bench.copy_order_summary as for the inline copies of 6."""
        if not self.one(conn, "SELECT to_regnamespace(%s) IS NOT NULL", (schema,)):
            self.q(conn, "SELECT bench.copy_order_summary_tenth(%s)" if tenth else
                   "SELECT bench.copy_order_summary(%s)", (schema,))
        return {"search_path": f"{schema}, pg_catalog, pg_temp",
                "handler": f"{schema}.order_summary_apply"
                           + ("_tenth" if tenth else "") + "(projections.events)",
                "reset": f"{schema}.order_summary_reset()",
                "tables": [f"{schema}.order_summary"],
                "table": f"{schema}.order_summary"}

    def register_copy(self, conn, name, copy):
        self.register(conn, copy["search_path"], name, copy["handler"], "async",
                      copy["reset"], copy["tables"])

    def wait_all_caught_up(self, conn, names, stall=180, on_poll=None, every=0.25):
        """Wait until every projection in names has applied every safe event,
        with one instant check of them all every `every` seconds (on_poll
        runs before each); see wait_caught_up for what is an error.
        Checks every 20 ms cost this script and its server process about
        0.1 CPU, which on a 2-CPU machine came out of the workers measured
        in 9 as soon as two ran; 9 takes its times from the projections'
        last_applied_at instead (see parallel_run).  Returns the time of
        the last applied batch of them all (Unix epoch)."""
        last, last_change = None, time.monotonic()
        pending = sorted(names)
        while True:
            if on_poll is not None:
                on_poll()
            rows = self.q(conn, "SELECT n, p.state, p.last_error, p.events_applied,"
                                " CASE WHEN p.name IS NOT NULL"
                                " THEN projections.wait(n, NULL, '0') END"
                                " FROM unnest(%s::text[]) n"
                                " LEFT JOIN projections.projection p ON p.name = n",
                          (pending,))
            for name, state, error, _, _ in rows:
                if state is None:
                    raise Wrong(f"projection {name} is not registered")
                if state != "active":
                    raise Wrong(f"projection {name} is {state}: {error}")
            pending = [r[0] for r in rows if not r[4]]
            if not pending:
                return self.one(conn, "SELECT extract(epoch FROM max(last_applied_at))::float8"
                                      " FROM projections.projection WHERE name = ANY (%s)",
                                (list(names),))
            applied = sum(r[3] for r in rows)
            now = time.monotonic()
            if applied != last:
                last, last_change = applied, now
            elif now - last_change > stall:
                raise Wrong(f"projections {pending} made no progress for {stall} s")
            time.sleep(every)

    # ------------------------------------------------ 9. parallel workers
    def check_copies(self, conn, what, events, tables):
        """9: the copies together applied every order event once each, and
        each (label, table) equals the reference."""
        if events != len(tables) * self.applied:
            self.problems.append(f"{what} applied {events} events in all,"
                                 f" not {len(tables)} x {self.applied}")
        for label, table in tables:
            self.compare(conn, label, table)

    def parallel_run(self, conn, n, w, rnd):
        """n copies of order_summary registered in one transaction, from
        empty read models, with workers_per_database = w: the time until all
        have caught up."""
        copies = [self.order_copy(conn, f"bench_par{i}") for i in range(1, n + 1)]
        names = [f"{PROJ}_par{i}" for i in range(1, n + 1)]
        # every run starts with the first worker alone: extra workers start
        # as they would in production, when it finds work for them
        self.set_workers(conn, 1)
        self.set_workers(conn, w)
        self.q(conn, "TRUNCATE " + ", ".join(c["table"] for c in copies))
        self.q(conn, "CHECKPOINT")
        lsn = self.wal_lsn(conn)
        seen = [0]
        # CPU time of the workers: at the start (the first worker's) and the
        # last reading of each process seen (a new worker starts from 0)
        cpu0 = {pid: cpu_seconds(pid) for pid in self.worker_pids(conn)}
        cpu = dict(cpu0)
        blks0 = self.q(conn, "SELECT blks_read, blks_hit FROM pg_stat_database"
                             " WHERE datname = current_database()")[0]

        def count_workers():
            pids = self.worker_pids(conn)
            seen[0] = max(seen[0], len(pids))
            for pid in pids:
                c = cpu_seconds(pid)
                if c is not None:
                    cpu[pid] = c

        # the time: from just before the registration to the last batch
        # (its checkpoint, saved just before its commit), by the same clock
        # (this machine's: the server stamps last_applied_at with
        # clock_timestamp()), whenever it is checked
        t0, wall0 = time.monotonic(), time.time()
        self.q(conn, "BEGIN")
        try:
            for name, c in zip(names, copies):
                self.register_copy(conn, name, c)
            self.q(conn, "COMMIT")
        except Exception:
            self.q(conn, "ROLLBACK")
            raise
        end = self.wait_all_caught_up(conn, names, on_poll=count_workers)
        count_workers()
        dt = end - wall0 if end is not None and end > wall0 else time.monotonic() - t0
        wal = self.wal_since(conn, lsn)
        busy = sum(c - (cpu0.get(pid) or 0) for pid, c in cpu.items() if c is not None) / dt
        blks = self.q(conn, "SELECT blks_read, blks_hit FROM pg_stat_database"
                            " WHERE datname = current_database()")[0]
        applied = self.q(conn, "SELECT name, events_applied FROM projections.projection"
                               " WHERE name = ANY (%s)", (names,))
        events = sum(a for _, a in applied)
        for name in names:
            self.q(conn, "SELECT projections.unregister(%s)", (name,))
        log(f"   9. {n} projections, workers_per_database {w}: {events:,} events in {dt:.2f} s:"
            f" {events / dt:,.0f} events/s in all; up to {seen[0]} workers seen, using"
            f" {busy:.2f} CPUs on average; WAL {wal / max(events, 1):,.0f} B/event;"
            f" blocks read from outside shared_buffers {blks[0] - blks0[0]:,},"
            f" hits {blks[1] - blks0[1]:,}")
        self.check_copies(conn, f"{n} parallel projections", events,
                          [(f"{name} ({n} projections, {w} workers, round {rnd + 1})",
                            c["table"]) for name, c in zip(names, copies)])
        return {"seconds": dt, "events": events, "rate": events / dt, "workers": seen[0],
                "cpus": busy}

    def loops_run(self, conn, n, together, rnd):
        """The machine's own scaling, for 9: the PL/pgSQL loop of 2 on each
        of n copies of order_summary, one after the other in one session
        (together False) or side by side in n sessions at once; the time
        until all are done."""
        copies = [self.order_copy(conn, f"bench_par{i}") for i in range(1, n + 1)]
        schemas = [f"bench_par{i}" for i in range(1, n + 1)]
        for s in schemas:
            if not self.one(conn, "SELECT to_regprocedure(%s) IS NOT NULL",
                            (f"{s}.plpgsql_loop(text[], integer)",)):
                self.q(conn, "SELECT bench.copy_plpgsql_loop(%s)", (s,))
        conns = ([self.connect(app="projections-bench loop") for _ in schemas] if together
                 else [conn] * n)
        errors = []

        def run(c, schema, copy):
            try:
                with self.search_path(c, copy["search_path"]):
                    self.q(c, f"CALL {schema}.plpgsql_loop(%s, 1000)", (self.reg["types"],))
            except Exception as e:  # raised below, in the main thread
                errors.append(e)

        with self.autovacuum_off(conn, [c["table"] for c in copies]):
            self.q(conn, "TRUNCATE " + ", ".join(c["table"] for c in copies))
            self.q(conn, "CHECKPOINT")
            lsn = self.wal_lsn(conn)
            cpu0 = {pid: cpu_seconds(pid) for pid in {self.backend_pid(c) for c in conns}}
            t0 = time.monotonic()
            if together:
                threads = [threading.Thread(target=run, args=args)
                           for args in zip(conns, schemas, copies)]
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
            else:
                for args in zip(conns, schemas, copies):
                    run(*args)
            dt = time.monotonic() - t0
            busy = sum(cpu_seconds(pid) - c0 for pid, c0 in cpu0.items()) / dt
        if together:
            for c in conns:
                c.close()
        if errors:
            raise errors[0]
        wal = self.wal_since(conn, lsn)
        events = sum(self.one(conn, "SELECT applied FROM bench.checkpoint WHERE name = %s", (s,))
                     for s in schemas)
        how = f"side by side in {n} sessions" if together else "one after the other"
        log(f"   9. {n} PL/pgSQL loops {how}: {events:,} events in {dt:.2f} s:"
            f" {events / dt:,.0f} events/s in all, using {busy:.2f} CPUs on average;"
            f" WAL {wal / max(events, 1):,.0f} B/event")
        self.check_copies(conn, f"{n} PL/pgSQL loops ({how})", events,
                          [(f"{s} (PL/pgSQL loop {how}, round {rnd + 1})", c["table"])
                           for s, c in zip(schemas, copies)])
        return {"seconds": dt, "events": events, "rate": events / dt, "cpus": busy}

    def parallel(self, conn):
        rounds = self.a.rounds
        # (2, "loops 1") and (2, "loops 2"): the machine's own scaling, the
        # PL/pgSQL loop on 2 copies one after the other and side by side
        groups = [[(2, 1), (2, 2), (2, "loops 1"), (2, "loops 2")], [(4, 1), (4, 2), (4, 4)]]
        log(f"== 9. parallel workers: 2 and 4 copies of order_summary registered at once,"
            f" timed until all have caught up, with workers_per_database 1, 2 (and 4);"
            f" and the PL/pgSQL loop on 2 copies, one after the other and side by side;"
            f" {rounds} rounds; {self.info['nproc']} CPUs")
        self.par = {cfg: [] for g in groups for cfg in g}
        for rnd in range(rounds):
            log(f"-- round {rnd + 1}/{rounds}")
            order = groups if rnd % 2 == 0 else groups[::-1]
            for g in order:
                k = rnd % len(g)
                for n, w in g[k:] + g[:k]:
                    if isinstance(w, str):
                        run = self.loops_run(conn, n, w == "loops 2", rnd)
                    else:
                        run = self.parallel_run(conn, n, w, rnd)
                    self.par[(n, w)].append(run)
        self.set_workers(conn, None)

    # ------------------------------ 10. live latency during a rebuild
    def rebuild_latency(self, conn):
        """10. The commit -> visible latency of a small live projection (LIVE)
        while a copy of order_summary is rebuilt (plain rebuild: the worker
        replays the whole history), with workers_per_database 1 and 2.  A
        rebuild that ends before the samples are taken is started again."""
        n = 200 if self.quick else 1000
        log(f"== 10. live latency during another projection's rebuild: {n} appends of"
            f" BenchPing (projection {LIVE}) while {PROJ}_rb is rebuilt, with"
            f" workers_per_database 1 and 2")
        self.register(conn, "bench, pg_catalog, pg_temp", LIVE,
                      "bench.live_ping_apply(projections.events)", "async", None,
                      ["bench.live_ping"], types=["BenchPing"])
        copy = self.order_copy(conn, "bench_rb")
        rb = f"{PROJ}_rb"
        self.register_copy(conn, rb, copy)
        self.wait_all_caught_up(conn, [LIVE])
        self.rb_latency = []
        # the third: what a shorter rebuild batch changes (see bench/README.md)
        for w, batch in ((1, None), (2, None), (2, SHORT_BATCH)):
            self.set_workers(conn, 1)
            self.set_workers(conn, w)
            if batch:
                self.set_setting(conn, "projections.batch_size", batch)
            state = {"rebuilds": 0, "workers": 0, "checks": 0}

            def between(i, rb=rb, state=state):
                # keep the rebuild going: start it again when it is over
                if self.one(conn, "SELECT projections.wait(%s, NULL, '0')", (rb,)):
                    self.q(conn, "SELECT projections.rebuild(%s)", (rb,))
                    state["rebuilds"] += 1
                if i % 5 == 0:
                    state["workers"] = max(state["workers"], self.workers_running(conn))

            self.q(conn, "CHECKPOINT")
            r = self.latency_run(conn, f"rb{w}-{batch or 0}", n, ping=True, between=between)
            state["workers"] = max(state["workers"], self.workers_running(conn))
            pids = dict(self.q(conn, "SELECT name, applied_by FROM projections.projection"
                                     " WHERE name IN (%s, %s)", (LIVE, rb)))
            state["same_pid"] = pids.get(LIVE) == pids.get(rb)
            if batch:
                self.set_setting(conn, "projections.batch_size", None)
            r["label"] = (f"{w} worker{'s' if w > 1 else ''}"
                          + (f", projections.batch_size {batch}" if batch else ""))
            r["w"] = w
            r["batch"] = batch
            r.update(state)
            self.rb_latency.append(r)
            log(f"   {r['label']}: p50 {fmt_ms(r['p50'])} ms,"
                f" p99 {fmt_ms(r['p99'])} ms, max {fmt_ms(r['max'])} ms over {r['n']} appends,"
                f" {r['timeouts']} timeouts (5 s); {state['rebuilds']} rebuild(s) started,"
                f" up to {state['workers']} workers seen, the last batches of both applied by"
                f" {'the same process' if state['same_pid'] else 'two processes'};"
                f" the append itself:"
                f" p50 {fmt_ms(r['rtt50'])} ms")
        # the last rebuild runs to its end: its model must be right
        self.wait_caught_up(conn, rb)
        self.compare(conn, f"{rb} after the rebuilds of 10", copy["table"])
        for name in (rb, LIVE):
            self.q(conn, "SELECT projections.unregister(%s)", (name,))
        self.set_workers(conn, None)

    # --------------------------------------------- 11. online rebuild
    def log_offset(self):
        try:
            return os.path.getsize(self.a.server_log) if self.a.server_log else None
        except OSError:
            return None

    def exchange_line(self, offset, name, timeout=5):
        """The server log's line about the exchange of projection name,
        written after offset: (locked ms, exchange ms, time of the line), or
        None."""
        if offset is None:
            return None
        # run.sh sets log_line_prefix = '%n [%p] ': the line starts with its
        # time (Unix epoch, ms)
        pat = re.compile(r'^(?:(\d+\.\d+) )?.*projections: exchanged the read model of projection'
                         r' "%s" \(\d+ tables?\); the tables were locked for (\d+) ms, '
                         r'the exchange took (\d+) ms' % re.escape(name), re.M)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(self.a.server_log, errors="replace") as f:
                    f.seek(offset)
                    m = pat.search(f.read())
            except OSError:
                return None
            if m:
                return (int(m.group(2)), int(m.group(3)),
                        float(m.group(1)) if m.group(1) else None)
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def online_once(self, conn, name, copy, rnd, reference):
        """rebuild(name, online => true), timed until the exchange has
        happened (status.rebuild_position, the catalog's build_position, is
        NULL again), with a reader querying the live table meanwhile."""
        self.q(conn, "CHECKPOINT")
        offset = self.log_offset()
        keys = [r[0] for r in self.q(conn, f"SELECT order_id FROM {copy['table']}"
                                           f" ORDER BY order_id LIMIT 100")]
        stop = threading.Event()
        reads = []

        def reader():
            c = self.connect(app="projections-bench reader")
            cur = c.cursor()
            i = 0
            while not stop.is_set():
                w0, t0 = time.time(), time.perf_counter()
                cur.execute(f"SELECT status, total_amount FROM {copy['table']}"
                            f" WHERE order_id = %s", (keys[i % len(keys)],))
                cur.fetchall()
                t1 = time.perf_counter()
                reads.append((w0, w0 + (t1 - t0), (t1 - t0) * 1000.0))
                i += 1
                stop.wait(0.002)
            c.close()

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        t0 = time.monotonic()
        self.q(conn, "SELECT projections.rebuild(%s, online => true)", (name,))
        last, last_change = None, time.monotonic()
        while True:
            row = self.q(conn, "SELECT build_position IS NULL, last_error, build_applied"
                               " FROM projections.projection WHERE name = %s", (name,))[0]
            if row[0]:
                break
            if row[2] != last:
                last, last_change = row[2], time.monotonic()
            elif time.monotonic() - last_change > 180:
                stop.set()
                raise Wrong(f"the online rebuild of {name} made no progress for 180 s")
            time.sleep(0.02)
        dt = time.monotonic() - t0
        stop.set()
        th.join()
        err = row[1]
        got = self.exchange_line(offset, name)
        if got is None:
            msg = (f"online rebuild of {name}: no exchange line in the server log"
                   + (f" (last_error: {err})" if err else ""))
            if err:
                self.problems.append(msg)
            else:
                self.notes.append(msg)
            log("!! " + msg)
        durations = sorted(d for _, _, d in reads)
        # the reader's query that the exchange held up, if any: the first one
        # to end after the log line (written with the locks held, just
        # before the commit)
        at_exchange = None
        if got and got[2] is not None:
            after = [d for _, end, d in reads if end >= got[2]]
            at_exchange = after[0] if after else None
        res = {"seconds": dt, "locked": got[0] if got else None,
               "exchange": got[1] if got else None, "read_at": at_exchange,
               "read_max": durations[-1] if durations else None,
               "read_p50": quantile(durations, 0.5), "reads": len(durations)}
        rows = self.one(conn, f"SELECT count(*) FROM {copy['table']}")
        log(f"   online rebuild of {name} ({rows:,} rows): exchanged after {dt:.2f} s;"
            f" log: locked {res['locked']} ms, exchange {res['exchange']} ms; reader:"
            f" {res['reads']:,} queries, p50 {fmt_ms(res['read_p50'])} ms,"
            f" longest {fmt_ms(res['read_max'])} ms, the one at the exchange"
            f" {fmt_ms(res['read_at'])} ms")
        self.compare(conn, f"{name} after an online rebuild (round {rnd + 1})",
                     copy["table"], reference)
        return res

    def plain_once(self, conn, name, copy, rnd, first):
        self.q(conn, "CHECKPOINT")
        t0 = time.monotonic()
        if first:
            self.register_copy(conn, name, copy)
        else:
            self.q(conn, "SELECT projections.rebuild(%s)", (name,))
        self.wait_caught_up(conn, name)
        dt = time.monotonic() - t0
        log(f"   plain {'register' if first else 'rebuild'} of {name}: caught up after {dt:.2f} s")
        self.compare(conn, f"{name} after a plain {'register' if first else 'rebuild'}"
                           f" (round {rnd + 1})", copy["table"])
        return {"seconds": dt}

    def online(self, conn):
        rounds = self.a.rounds
        full = self.order_copy(conn, "bench_ol")
        tenth = self.order_copy(conn, "bench_ol10", tenth=True)
        name, name10 = f"{PROJ}_ol", f"{PROJ}_ol10"
        self.q(conn, "DROP TABLE IF EXISTS bench.r_tenth")
        self.q(conn, "CREATE TABLE bench.r_tenth AS"
                     " SELECT * FROM bench.r_worker WHERE bench.tenth(order_id)")
        log(f"== 11. online rebuild of {name} (all orders) against a plain rebuild, and the"
            f" exchange's lock at two model sizes ({name10}: a tenth of the orders);"
            f" {rounds} rounds; server log: {self.a.server_log or 'not given'}")
        self.register_copy(conn, name10, tenth)
        self.wait_caught_up(conn, name10)
        self.compare(conn, f"{name10} registered", tenth["table"], "bench.r_tenth")
        self.ol = {"plain": [], "online": [], "online10": []}
        for rnd in range(rounds):
            log(f"-- round {rnd + 1}/{rounds}")
            steps = ["plain", "online", "online10"]
            if rnd % 2:
                steps = ["online10", "online", "plain"]
            for step in steps:
                if step == "plain":
                    r = self.plain_once(conn, name, full, rnd, rnd == 0)
                elif step == "online":
                    r = self.online_once(conn, name, full, rnd, "bench.r_worker")
                else:
                    r = self.online_once(conn, name10, tenth, rnd, "bench.r_tenth")
                self.ol[step].append(r)
        self.ol["rows"] = self.one(conn, f"SELECT count(*) FROM {full['table']}")
        self.ol["rows10"] = self.one(conn, f"SELECT count(*) FROM {tenth['table']}")
        for n in (name, name10):
            self.q(conn, "SELECT projections.unregister(%s)", (n,))

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

    def cpu_note(self, method):
        """the median CPU time per event of a method, and its ratio to the
        loop's (median over the rounds)"""
        runs = self.catch[method]
        if any(r["cpu_us"] is None for r in runs):
            return ""
        cpu = statistics.median(r["cpu_us"] for r in runs)
        text = f", CPU {cpu:.1f} us/ev"
        base = self.catch["loop"]
        if method != "loop" and all(r["cpu_us"] for r in base):
            ratio = statistics.median(a["cpu_us"] / b["cpu_us"] for a, b in zip(runs, base))
            text += f" ({ratio:.2f}x the loop's)"
        return text

    def paired(self, method, base="loop"):
        """Median over the rounds of the ratio of two methods measured in the
        same round (close in time: less exposed to the machine's load)."""
        return statistics.median(a["rate"] / b["rate"]
                                 for a, b in zip(self.catch[method], self.catch[base]))

    @staticmethod
    def spread_s(values):
        return f" ({values[0]:.2f}-{values[-1]:.2f})" if len(values) > 1 else ""

    @staticmethod
    def ms_list(values, digits=0):
        """median (all values, in run order) of a few milliseconds"""
        if not values:
            return "-"
        med = statistics.median(values)
        return (f"{med:.{digits}f}" + (" (" + ", ".join(f"{v:.{digits}f}" for v in values) + ")"
                                       if len(values) > 1 else ""))

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
            f"{fmt_rate(loop)} ev/s{self.spread(lo, hi, rounds)}, {loop_wal:,.0f} B WAL/ev"
            f"{self.cpu_note('loop')}",
            "1.00x", "", "")
        w_loop, ext_loop, sb_loop = self.paired("worker"), self.paired("external"), self.paired("setbased")
        w_ext = self.paired("worker", "external")
        row("1. background worker (register / rebuild)",
            f"{fmt_rate(w)} ev/s{self.spread(wlo, whi, rounds)}, {w_wal:,.0f} B WAL/ev"
            f"{self.cpu_note('worker')}",
            fmt_ratio(w_loop), ">= 1.10x loop", met(w_loop >= 1.1))
        row("3. external projector (Python + psycopg2, Unix socket)",
            f"{fmt_rate(ext)} ev/s{self.spread(elo, ehi, rounds)}, {e_wal:,.0f} B WAL/ev",
            fmt_ratio(ext_loop), f"worker >= 20x external: {w_ext:.1f}x",
            met(w_ext >= 20))
        row("4. set-based INSERT ... SELECT (ceiling)",
            f"{fmt_rate(sb)} ev/s{self.spread(slo, shi, rounds)}, {s_wal:,.0f} B WAL/ev"
            f"{self.cpu_note('setbased')}",
            fmt_ratio(sb_loop), "", "")
        b, blo, bhi, b_wal = self.median_rate("batch")
        b_sb, b_w = self.paired("batch", "setbased"), self.paired("batch", "worker")
        row(f"8. background worker, batch handler ({self.info['batch_size']} events per call)",
            f"{fmt_rate(b)} ev/s{self.spread(blo, bhi, rounds)}, {b_wal:,.0f} B WAL/ev"
            f"{self.cpu_note('batch')}; {b_w:.2f}x the per-event worker (1)",
            fmt_ratio(self.paired("batch")), f">= 0.80x set-based (4): {b_sb:.2f}x",
            met(b_sb >= 0.8))
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

        # 9. parallel workers: rates of all the projections together; the
        # PL/pgSQL loops side by side show the scaling the machine allows
        cpus = self.info["nproc"]
        seq, side = self.par[(2, "loops 1")], self.par[(2, "loops 2")]
        machine = statistics.median(a["rate"] / b["rate"] for a, b in zip(side, seq))
        for n, ws in ((2, (1, 2)), (4, (1, 2, 4))):
            base = self.par[(n, 1)]
            for w in ws:
                runs = self.par[(n, w)]
                rates = sorted(r["rate"] for r in runs)
                ratio = statistics.median(a["rate"] / b["rate"] for a, b in zip(runs, base))
                target, verdict, of_machine = "", "", ""
                if n == 2 and w == 2:
                    target = f">= 1.70x 1 worker ({cpus} CPUs)"
                    verdict = met(ratio >= 1.7)
                    of_machine = (f"; {ratio / machine:.2f} of the machine's own scaling"
                                  f" (two loops side by side: {machine:.2f}x)")
                each = ", ".join(f"{a['rate'] / b['rate']:.2f}" for a, b in zip(runs, base))
                row(f"9. {n} projections registered at once, {w} worker{'s' if w > 1 else ''}"
                    + (" (baseline)" if w == 1 else ""),
                    f"{fmt_rate(statistics.median(rates))} ev/s in all"
                    f"{self.spread(rates[0], rates[-1], len(rates))},"
                    f" {statistics.median(r['seconds'] for r in runs):.2f} s;"
                    f" up to {max(r['workers'] for r in runs)} workers seen, busy"
                    f" {statistics.median(r['cpus'] for r in runs):.2f} CPUs"
                    + (f"; ratio per round: {each}" if w > 1 and len(runs) > 1 else "")
                    + of_machine,
                    fmt_ratio(ratio), target, verdict)
            if n == 2:
                for label, runs in (("one after the other (baseline)", seq),
                                    ("side by side in 2 sessions", side)):
                    rates = sorted(r["rate"] for r in runs)
                    each = ", ".join(f"{a['rate'] / b['rate']:.2f}" for a, b in zip(runs, seq))
                    row(f"9. the PL/pgSQL loop of 2 on 2 copies, {label}",
                        f"{fmt_rate(statistics.median(rates))} ev/s in all"
                        f"{self.spread(rates[0], rates[-1], len(rates))},"
                        f" {statistics.median(r['seconds'] for r in runs):.2f} s; busy"
                        f" {statistics.median(r['cpus'] for r in runs):.2f} CPUs"
                        + (f"; ratio per round: {each}" if runs is side and len(runs) > 1
                           else ""),
                        fmt_ratio(statistics.median(a["rate"] / b["rate"]
                                                    for a, b in zip(runs, seq))), "", "")
        # 10. live latency during another projection's rebuild
        for r in self.rb_latency:
            two = r["w"] == 2 and not r["batch"]
            row(f"10. live projection commit -> visible during another's rebuild, {r['label']}",
                f"p50 {fmt_ms(r['p50'])} / p99 {fmt_ms(r['p99'])} / max {fmt_ms(r['max'])} ms"
                + (f", {r['timeouts']} timeouts" if r["timeouts"] else "")
                + f"; up to {r['workers']} worker{'s' if r['workers'] != 1 else ''} seen"
                + ("; both applied by one process" if r["same_pid"] else "")
                + ("; waits for the rebuild's batch (round-robin)" if r["w"] == 1 else ""),
                "", "p99 < 10 ms" if two else "",
                met(r["p99"] is not None and r["p99"] < 10.0 and r["timeouts"] == 0) if two else "")
        # 11. online rebuild
        o = self.ol
        plain = sorted(r["seconds"] for r in o["plain"])
        online = sorted(r["seconds"] for r in o["online"])
        o_ratio = statistics.median(a["seconds"] / b["seconds"]
                                    for a, b in zip(o["online"], o["plain"]))
        row("11. plain rebuild of an order_summary copy, until caught up (baseline)",
            f"{statistics.median(plain):.2f} s{self.spread_s(plain)}", "1.00x", "", "")
        row("11. online rebuild of the same, until exchanged",
            f"{statistics.median(online):.2f} s{self.spread_s(online)}"
            " (ratio: time, online / plain)", fmt_ratio(o_ratio), "", "")

        def lock_row(runs):
            locked = [r["locked"] for r in runs if r["locked"] is not None]
            took = [r["exchange"] for r in runs if r["exchange"] is not None]
            at = [r["read_at"] for r in runs if r["read_at"] is not None]
            reads = [r["read_max"] for r in runs if r["read_max"] is not None]
            value = (f"locked {self.ms_list(locked)} ms, exchange {self.ms_list(took)} ms"
                     f" (server log); reader: query at the exchange {self.ms_list(at, 1)} ms,"
                     f" longest query of the rebuild {self.ms_list(reads, 1)} ms")
            return value, (statistics.median(locked) if locked else None)

        v10, l10 = lock_row(o["online10"])
        v, l = lock_row(o["online"])
        row(f"11. exchange, model of a tenth of the orders ({o['rows10']:,} rows) (baseline)",
            v10, "", "", "")
        flat = l is not None and l10 is not None and l <= l10 + 5
        row(f"11. exchange, model of all the orders ({o['rows']:,} rows)", v, "",
            "lock time flat: <= tenth + 5 ms", met(flat) if l is not None else "no log")

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
            f" PL/pgSQL loop (2) of the same round. CPU: user + system time of the process"
            f" that applied the events (the worker; the backend of the loop or the statement;"
            f" /proc), per event, median; it depends less on the machine's other load than"
            f" the rates.",
            f"Append rates: events per second, median of {rounds} pgbench runs (range),"
            f" 2 clients; ratio: median over the rounds of the ratio to the bare INSERT of the"
            f" same round.",
            f"8: the batch handler's rate is order events per second like 1-4; ratio: to the"
            f" PL/pgSQL loop (2); the target compares it with the set-based statement (4) of the"
            f" same round. setbased.sql is one statement over the whole history, not a true"
            f" ceiling: batches of a few thousand events beat it (examples/ecommerce/README.md).",
            f"9: order events applied per second by all the projections together, from"
            f" registration until all have caught up, median of {rounds} rounds; ratio: to 1"
            f" worker with the same projections in the same round; busy: the workers' CPU"
            f" time over the run's time (/proc); {cpus} CPUs (os.cpu_count()).",
            f"10: as 5, for a projection of its own event type (one INSERT per event), while a"
            f" copy of order_summary is rebuilt (plain rebuild, started again whenever it"
            f" ended); one run per setting; the last with the rebuild's batches cut to"
            f" {SHORT_BATCH} events (with one worker a live event waits for the rebuild's"
            f" batches; with two, the other worker applies it: a replay's transactions are"
            f" left out of the safe key).",
            f"11: rebuild times, median of {rounds} rounds (range); exchange: the server log's"
            f" lock and exchange times, and a reader of the live table (a primary-key lookup"
            f" every 2 ms): its query that ended first after the exchange's log line, and its"
            f" longest query during the whole online rebuild; median (each round).",
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
    ap.add_argument("--server-log", help="the server's log file (11 reads the exchange's lock time there)")
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
        b.parallel(conn)
        b.online(conn)
        b.rebuild_latency(conn)
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
