#!/usr/bin/python3
"""Summarise a `perf record --call-graph dwarf -p <worker pid>` profile of the
projections worker: where its CPU time goes, by call chain.

    bench/perf_summary.py perf.data [projections.so]

(projections.so: a copy of the library the server loaded, to name the
extension's frames when the installed file was replaced meanwhile.)

Every sample is put in the first category whose frames it contains (frames
of projections.so, inlined ones included, come from its debug information):
  handler      ProjCallEvent: the PL/pgSQL handler and the statements it runs
  list         RefreshNames: the list of projections, read again when the
               catalog changed
  probe        FrontierCanMove: the query asking whether events the fetch
               filtered out lie between the checkpoint and the safe key
  fetch        ApplyRange -> SPI_execute_snapshot: the query reading the events
  commit       CommitTransactionCommand (WAL flush included)
  other ext    anything else under projections.so (load, save, notify,
               subtransaction, ...)
and the handler's share is split further.  Also prints the leaf symbols
(self time) and the share of samples whose leaf is in projections.so.
"""
import collections
import subprocess
import sys


def resolve(addresses, so_path):
    """Function names (innermost first, inlined ones included) of addresses
    of a shared object, from its debug information."""
    names = {}
    if not addresses or not so_path:
        return names
    out = subprocess.run(["addr2line", "-a", "-f", "-i", "-e", so_path]
                         + [f"0x{a}" for a in addresses],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    current = None
    lines = out.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("0x"):
            current = format(int(line, 16), "x")
            names[current] = []
            i += 1
            continue
        if current is not None and line not in ("??",):
            names[current].append(line)
        i += 2  # function, then file:line
    return names


def samples(path, so_path=None):
    out = subprocess.run(["perf", "script", "-i", path, "-F", "ip,sym,dso"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    raw = []
    frames = []
    for line in out.stdout.splitlines():
        line = line.strip()
        if not line:
            if frames:
                raw.append(frames)
            frames = []
            continue
        parts = line.split(None, 1)
        if len(parts) < 2:
            continue
        ip, rest = parts
        dso = ""
        if rest.endswith(")") and " (" in rest:
            rest, dso = rest.split(" (", 1)
            dso = dso[:-1]
        sym = rest.split("+0x")[0]
        if sym.endswith(" (inlined)"):
            sym = sym[:-len(" (inlined)")]
        frames.append((ip.lower().lstrip("0") or "0", sym, dso))
    if frames:
        raw.append(frames)
    # the extension's frames perf could not name (its file was replaced
    # since the server loaded it): name them from the copy of the loaded one
    unknown = {ip for fr in raw for ip, sym, dso in fr
               if sym == "[unknown]" and "projections.so" in dso}
    names = resolve(sorted(unknown), so_path)
    for fr in raw:
        out_frames = []
        for ip, sym, dso in fr:
            if sym == "[unknown]" and ip in names and names[ip]:
                out_frames += [(n, dso) for n in names[ip]]
            else:
                out_frames.append((sym, dso))
        yield out_frames


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "perf.data"
    so_path = sys.argv[2] if len(sys.argv) > 2 else None
    cats = collections.Counter()
    handler = collections.Counter()
    leaf = collections.Counter()
    leaf_dso = collections.Counter()
    total = 0
    unnamed = 0
    for frames in samples(path, so_path):
        total += 1
        names = {s for s, _ in frames}
        sym, dso = frames[0]
        if sym == "[unknown]":
            # no symbol (a static function of a stripped binary): name it by
            # its nearest named caller
            caller = next((s for s, _ in frames if s != "[unknown]"), "?")
            sym = f"[{dso.rsplit('/', 1)[-1]} static, under {caller}]"
        leaf[sym] += 1
        leaf_dso[dso.rsplit("/", 1)[-1]] += 1
        if any(s_ == "[unknown]" and "projections.so" in d for s_, d in frames):
            unnamed += 1
        if "ProjCallEvent" in names:
            cats["handler calls (ProjCallEvent -> PL/pgSQL -> its INSERT/UPDATE)"] += 1
            if "ExecInsertIndexTuples" in names:
                handler["index maintenance on the read model (ExecInsertIndexTuples)"] += 1
            elif "standard_ExecutorStart" in names or "standard_ExecutorEnd" in names:
                handler["executor start/end per statement"] += 1
            elif "standard_planner" in names:
                handler["planning"] += 1
            elif dso.endswith("plpgsql.so"):
                handler["PL/pgSQL interpreter itself"] += 1
            elif "ExecModifyTable" in names or "ExecScan" in names or "standard_ExecutorRun" in names:
                handler["executing the statements (scan, update, insert)"] += 1
            else:
                handler["other (expression evaluation, jsonb, casts, ...)"] += 1
        elif "FrontierCanMove" in names:
            cats["frontier probe (FrontierCanMove: any event between checkpoint and safe key?)"] += 1
        elif "RefreshNames" in names:
            cats["projection list (RefreshNames, when the catalog changed)"] += 1
        elif "ApplyRange" in names and "SPI_execute_snapshot" in names:
            cats["event fetch (ApplyRange's query on projections.events)"] += 1
        elif "CommitTransactionCommand" in names:
            cats["commit (incl. WAL flush)"] += 1
        elif any(d.endswith("projections.so") for _, d in frames):
            cats["other projections.so paths (load, save progress, subtransaction, ...)"] += 1
        else:
            cats["other (outside the extension's call chains)"] += 1
    if total == 0:
        print("   no samples")
        return 1
    if unnamed > total / 2:
        print("   (the extension's frames have no names: projections.so was probably replaced"
              " after the server loaded it; the split below is then incomplete)")
    print(f"   {total} samples of the worker; share of its CPU time by call chain:")
    for name, n in cats.most_common():
        print(f"   {100.0 * n / total:6.1f}%  {name}")
        if name.startswith("handler calls"):
            for hname, hn in handler.most_common():
                print(f"           {100.0 * hn / total:6.1f}%  {hname}")
    own = sum(n for d, n in leaf_dso.items() if d.startswith("projections.so"))
    print(f"   {100.0 * own / total:6.1f}%  self time in projections.so (the extension's own C code)")
    print("   top leaf symbols (self time):")
    for name, n in leaf.most_common(12):
        print(f"   {100.0 * n / total:6.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
