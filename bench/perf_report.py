#!/usr/bin/env python3
"""Writes docs/performance.md from Google Benchmark JSON (bench/run.sh calls this).

Only the standard library. The output file is replaced atomically (temp file in
the same directory + os.replace), so a failed run never leaves a half-written
document. Any problem ends the script with one line on stderr and exit status 1.
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile

PROG = "bench/perf_report.py"

# DESIGN.md "Performance budgets", in its order. `bench` names the benchmark
# that measures the row (None: not measurable yet), `kind` how to read it.
BUDGETS = [
    dict(what="order-0 alloc+free through pcp", budget="≤ 50 ns",
         bench="BM_Order0AllocFreePcp", kind="time_max", limit_ns=50.0),
    dict(what="kmalloc+kfree fast path, checks off", budget="≤ 60 ns",
         bench="BM_KmallocKfree/0", kind="time_max", limit_ns=60.0,
         proxy="SLUB, the default allocator; SLAB and SLOB are listed below"),
    dict(what="replay, all incremental checks on", budget="≥ 3 M events/s",
         bench="BM_Replay/incremental", kind="rate_min", limit_per_s=3e6,
         note="the real arm64 6.1 boot+shell trace (0.42 M events), text parsing included; "
              "zstd, the model boot and the cache-name first pass not included"),
    dict(what="ftrace text parsing", budget="≥ 500 MB/s",
         bench="BM_ParseFtrace", kind="bytes_min", limit_bytes_per_s=500e6,
         note="TextParser over the lines of the real 6.1 trace (68 MB), split into lines "
              "beforehand"),
    dict(what="full invariant sweep, 1 GiB model", budget="≤ 20 ms",
         bench="BM_FullSweep1GiB", kind="time_max", limit_ns=20e6),
    dict(what="full invariant sweep, 1 GiB model with 13 k slab objects", budget="≤ 20 ms",
         bench="BM_SlabFullSweep1GiB/0", kind="time_max", limit_ns=20e6,
         proxy="SLUB, the default allocator; SLAB and SLOB are listed below"),
    dict(what="fuzz executions, 64-op programs, checks on", budget="≥ 20 k exec/s per core",
         bench="BM_Exec64/mm", kind="rate_min", limit_per_s=20e3, unit="exec",
         proxy="the whole-API target (fuzz_mm); every target is listed below"),
    dict(what="model reset between fuzz executions", budget="≤ 10 µs",
         bench="BM_Reset/mm", kind="time_max", limit_ns=10e3,
         proxy="Mm::restore_from() after one 64-op input of the whole-API target; "
               "BM_BootSmall below is the fresh boot it replaces"),
    dict(what="replay memory", budget="bounded by live objects, not by trace length",
         bench="bench/replay_rss.sh", kind="rss", max_rss_ratio=1.25,
         note="peak RSS of `mmfuzz replay --quiet`; within budget when the 24-copy trace "
              "needs at most 1.25× the RSS of one copy (both one pass through stdin)"),
]

# Every benchmark of bench_page_alloc, with what one item means.
BENCHES = [
    ("BM_Order0AllocFreePcp", "GFP_KERNEL order-0 alloc + __free_pages, 1 GiB model, no checks",
     "alloc+free pair"),
    ("BM_Order0AllocFreePcpChecked", "the same with a CheckEngine (all checks, incremental) and "
     "begin_op/end_op around each call", "event (alloc or free)"),
    ("BM_MixedOrders", "orders 0..10, 8 GFP masks, ~2000 live blocks, alloc or free, no checks",
     "alloc or free"),
    ("BM_Boot1GiB", "construct the default Mm (1 GiB QEMU virt, all boot steps)", "boot"),
    ("BM_BootSmall", "construct Mm with small_machine() (16 MiB)", "boot"),
    ("BM_FullSweep1GiB", "CheckEngine::full_sweep, 1 GiB model, ~4000 blocks live, pcp lists "
     "populated", "sweep"),
    ("BM_FullSweepSmall", "CheckEngine::full_sweep, small_machine(), ~150 blocks live", "sweep"),
]
# bench_slab: one row per allocator (argument 0/1/2).
for _arg, _alloc in ((0, "SLUB"), (1, "SLAB"), (2, "SLOB")):
    BENCHES += [
        (f"BM_KmallocKfree/{_arg}", f"{_alloc}: kmalloc(64, GFP_KERNEL) + kfree, no checks",
         "kmalloc+kfree pair"),
        (f"BM_KmemCacheAllocFree/{_arg}", f"{_alloc}: kmem_cache_alloc + kmem_cache_free of a "
         "192-byte SLAB_HWCACHE_ALIGN cache, no checks", "alloc+free pair"),
        (f"BM_KmallocKfreeChecked/{_arg}", f"{_alloc}: kmalloc(64) + kfree with a CheckEngine "
         "(all checks, incremental)", "event (kmalloc or kfree)"),
        (f"BM_KmemCacheAllocFreeChecked/{_arg}", f"{_alloc}: the same cache pair with a "
         "CheckEngine (all checks, incremental)", "event (alloc or free)"),
        (f"BM_KmallocMixed/{_arg}", f"{_alloc}: sizes 8..8192, ~2000 live objects, kmalloc or "
         "kfree, no checks", "kmalloc or kfree"),
        (f"BM_SlabFullSweep1GiB/{_arg}", f"{_alloc}: CheckEngine::full_sweep (buddy + slab), "
         "1 GiB model, ~13300 kmalloc objects of 8..2048 bytes live", "sweep"),
    ]
# bench_vm: the kernel-VM layer (no DESIGN.md budget covers it).
for _pages in (1, 16, 1024):
    BENCHES.append(
        (f"BM_VmallocVfree/{_pages}", f"vmalloc({_pages} page{'s' if _pages > 1 else ''}) + vfree, "
         "1 GiB model, Mm::tick() every 32 iterations (the lazy purge amortized)"
         + (", page array vmalloc'd" if _pages > 512 else ""), "vmalloc+vfree pair"))
BENCHES += [
    ("BM_IoremapIounmap", "ioremap(pl011, 4 KiB) + iounmap, 1 GiB model, Mm::tick() every 32 "
     "iterations", "ioremap+iounmap pair"),
    ("BM_PgtableWalk1GiB/0", "PageTables::for_each_desc over swapper_pg_dir of the booted 1 GiB "
     "model (rodata=on: block-mapped linear map), counting leaves", "full walk"),
    ("BM_PgtableWalk1GiB/1", "the same walk with rodata=full (the linear map by pages)",
     "full walk"),
    ("BM_TranslateCpuHit", "translate_cpu() of 64 vmalloc pages in turn, all in the TLB",
     "translation"),
    ("BM_TranslateCpuMiss", "translate_cpu() of 8192 vmalloc pages in turn (more than the "
     "4096-entry TLB): a 4-level walk and a TLB fill each", "translation"),
]
# bench_trace_parse: the text-trace line parser, lines split beforehand.
BENCHES += [
    ("BM_ParseFtrace", "TextParser::parse of every line of the real arm64 6.1 ftrace trace "
     "(68 MB decompressed, 423,632 events)", "line"),
    ("BM_ParseTraceCmdReport", "the same over a `trace-cmd report` of a second 6.1 recording "
     "(130,467 events)", "line"),
    ("BM_ParsePerfScript", "the same over 3,000 lines of `perf script`", "line"),
]
# bench_replay: the real trace through Replayer + Executor, as `mmfuzz replay` wires it.
_REPLAY = ("replay of the real arm64 6.1 trace (423,632 events) from a decompressed temp file: "
           "open, parse, Replayer::feed, Replayer::finish, Executor::finish; model boot (1 GiB "
           "default) and first pass untimed")
BENCHES += [
    ("BM_Replay/off", _REPLAY + "; checks off", "trace event"),
    ("BM_Replay/incremental", _REPLAY + "; all incremental checks, one full sweep at the end",
     "trace event"),
    ("BM_Replay/full10k", _REPLAY + "; CheckMode::full, a full sweep every 10,000 ops and at "
     "the end", "trace event"),
    ("BM_Replay/incremental_noprov", "BM_Replay/incremental without the findings' history "
     "(ExecOptions::provenance off): what keeping the ops that allocated and freed each handle "
     "costs", "trace event"),
    ("BM_Replay/incremental_zst", "BM_Replay/incremental reading the .zst directly "
     "(streaming zstd decompression timed)", "trace event"),
    ("BM_LearnCacheNames", "learn_cache_names(): the first pass of `mmfuzz replay` over the "
     "decompressed trace (call site → cache name)", "trace event"),
]

# bench_fuzz: the fuzz harness (fuzz/harness.h) on 64 fixed random inputs cut at 64 ops.
BENCHES += [
    (f"BM_Reset/{_t}", f"Mm::restore_from() of the {_t} target's model after one of its inputs",
     "reset") for _t in ("page_alloc", "slub", "mm")
] + [
    (f"BM_Exec64/{_t}", f"one 64-op input of fuzz_{_t}: restore, decode, Executor with "
     "incremental checks (no final sweep), crash check", "exec") for _t in
    ("page_alloc", "slub", "slab", "slob", "vm", "mm")
]

UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


class ReportError(Exception):
    pass


def fmt_time(ns):
    if ns < 1e3:
        return f"{ns:.1f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.1f} µs"
    if ns < 1e9:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e9:.2f} s"


def fmt_rate(per_s):
    if per_s >= 1e6:
        return f"{per_s / 1e6:.2f} M/s"
    if per_s >= 1e3:
        return f"{per_s / 1e3:.1f} k/s"
    return f"{per_s:.1f} /s"


def load_all(paths):
    """Several benchmark programs' JSON: the first context, all results."""
    context, results = None, {}
    for path in paths:
        ctx, res = load_results(path)
        context = context if context is not None else ctx
        for name in res:
            if name in results:
                raise ReportError(f"benchmark {name} appears in more than one JSON file")
        results.update(res)
    return context or {}, results


def load_results(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise ReportError(f"cannot read {path}: {e.strerror}")
    except json.JSONDecodeError as e:
        raise ReportError(f"{path} is not benchmark JSON ({e.msg} at line {e.lineno})")
    if not isinstance(data, dict) or "benchmarks" not in data:
        raise ReportError(f"{path} has no 'benchmarks' array: not Google Benchmark JSON output")
    results = {}  # run_name -> {aggregate_name -> entry}
    for b in data["benchmarks"]:
        if b.get("error_occurred"):
            raise ReportError(f"benchmark {b.get('run_name', b.get('name'))} failed: "
                              f"{b.get('error_message', 'no message')}")
        # ->Iterations(N) and ->MinTime(T) become part of the name; drop them.
        run = re.sub(r"/(iterations|min_time|repeats):[^/]+", "",
                     b.get("run_name", b.get("name")))
        if b.get("run_type") == "aggregate":
            results.setdefault(run, {})[b.get("aggregate_name", "single")] = b
        else:
            # Individual repetitions: keep the last as "single" and the best.
            by = results.setdefault(run, {})
            by["single"] = b
            best = by.get("best")
            if best is None or float(b["cpu_time"]) < float(best["cpu_time"]):
                by["best"] = b
    if not results:
        raise ReportError(f"{path} holds no benchmark results")
    return data.get("context", {}), results


def central(entry_by_agg):
    """The median when repetitions ran, else the single run."""
    return entry_by_agg.get("median") or entry_by_agg.get("single")


def time_ns(entry):
    return float(entry["cpu_time"]) * UNIT_NS[entry.get("time_unit", "ns")]


def fmt_mib(kib):
    return f"{kib / 1024:.1f} MiB"


def rss_row(b, rss):
    """The replay-memory budget row from bench/replay_rss.sh's JSON."""
    if rss is None:
        return (b["what"], b["budget"], "—", "not measured in this run (bench/replay_rss.sh)")
    runs = {r["name"]: r for r in rss["runs"]}
    one, many = runs["stdin1"], runs["stdinN"]
    ratio = many["peak_rss_kib"] / one["peak_rss_kib"]
    measured = (f"{fmt_mib(one['peak_rss_kib'])} at {one['events'] / 1e6:.2f} M events, "
                f"{fmt_mib(many['peak_rss_kib'])} at {many['events'] / 1e6:.2f} M events "
                f"({rss['copies']} copies): {ratio:.2f}× the RSS for "
                f"{many['events'] / one['events']:.0f}× the events (`bench/replay_rss.sh`)")
    ok = ratio <= b["max_rss_ratio"]
    status = "within budget" if ok else "**over budget**"
    return (b["what"], b["budget"], measured, status + f"; {b['note']}")


def budget_rows(results, rss=None):
    rows = []
    for b in BUDGETS:
        if b["bench"] is None:
            rows.append((b["what"], b["budget"], "—", b["pending"]))
            continue
        if b["kind"] == "rss":
            rows.append(rss_row(b, rss))
            continue
        entry = central(results.get(b["bench"], {}))
        if entry is None:
            rows.append((b["what"], b["budget"], "—", f"not measured in this run ({b['bench']})"))
            continue
        best = results.get(b["bench"], {}).get("best")
        if b["kind"] == "time_max":
            ns = time_ns(entry)
            measured = fmt_time(ns)
            if best is not None and "median" in results.get(b["bench"], {}):
                measured += f", best {fmt_time(time_ns(best))}"
            ok = ns <= b["limit_ns"]
        elif b["kind"] == "bytes_min":
            rate = float(entry.get("bytes_per_second", 0.0))
            measured = f"{rate / 1e6:.0f} MB/s"
            if best is not None and "median" in results.get(b["bench"], {}):
                measured += f", best {float(best.get('bytes_per_second', 0.0)) / 1e6:.0f} MB/s"
            ok = rate >= b["limit_bytes_per_s"]
        else:
            rate = float(entry.get("items_per_second", 0.0))
            unit = " " + b.get("unit", "events") + "/s"
            measured = fmt_rate(rate).replace("/s", unit)
            if best is not None and "median" in results.get(b["bench"], {}):
                measured += f", best {fmt_rate(float(best.get('items_per_second', 0.0))).replace('/s', unit)}"
            ok = rate >= b["limit_per_s"]
        measured += f" (`{b['bench']}`)"
        status = "within budget" if ok else "**over budget**"
        for key in ("proxy", "note"):
            if b.get(key):
                status += f"; {b[key]}"
        rows.append((b["what"], b["budget"], measured, status))
    return rows


def bench_rows(results):
    rows = []
    known = {name for name, _, _ in BENCHES}
    extra = [(n, "", "") for n in sorted(results) if n not in known]
    for name, desc, item in BENCHES + extra:
        aggs = results.get(name)
        if not aggs:
            continue
        e = central(aggs)
        rate = e.get("items_per_second")
        # items/s is computed from CPU time, so this is CPU time per item even
        # when an iteration holds several items (2 events per checked pair).
        ns = 1e9 / float(rate) if rate else time_ns(e)
        cv = aggs.get("cv")
        cv_s = f"{100.0 * float(cv['cpu_time']):.1f} %" if cv else "—"
        rate_s = fmt_rate(float(rate)) if rate else "—"
        counters = []
        if e.get("bytes_per_second"):
            counters.append(f"{float(e['bytes_per_second']) / 1e6:.0f} MB/s")
        for k in ("events", "malformed", "ops", "full_sweeps", "violations", "call_sites",
                  "live_blocks", "live_objects", "pcp_pages", "alloc_failures", "free_pages",
                  "purges", "leaves"):
            if k in e:
                counters.append(f"{k}={float(e[k]):.0f}")
        rows.append((f"`{name}`", desc, item, fmt_time(ns), rate_s, cv_s, ", ".join(counters)))
    return rows


def cmake_cache(build_dir):
    cache = {}
    path = os.path.join(build_dir, "CMakeCache.txt")
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith(("#", "//")) or "=" not in line:
                    continue
                key, value = line.split("=", 1)
                cache[key.split(":", 1)[0]] = value
    except OSError:
        raise ReportError(f"cannot read {path}: configure the build first")
    return cache


def first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        return out.splitlines()[0].strip() if out else "?"
    except (OSError, subprocess.CalledProcessError):
        return "?"


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def source_revision(source_dir):
    rev = first_line(["git", "-C", source_dir, "rev-parse", "--short", "HEAD"])
    if rev == "?":
        return "unknown (not a git checkout)"
    try:
        dirty = subprocess.run(["git", "-C", source_dir, "status", "--porcelain"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        dirty = ""
    return f"`{rev}`" + (" plus uncommitted changes" if dirty else "")


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def render(context, results, cache, command, source_dir, notes, rss=None, rss_text=""):
    build_type = cache.get("CMAKE_BUILD_TYPE", "?")
    flags = " ".join(x for x in (cache.get("CMAKE_CXX_FLAGS", ""),
                                 cache.get(f"CMAKE_CXX_FLAGS_{build_type.upper()}", "")) if x)
    compiler = first_line([cache.get("CMAKE_CXX_COMPILER", "c++"), "--version"])
    lib_type = context.get("library_build_type", "?")
    load = context.get("load_avg")
    load_s = ", ".join(f"{x:.2f}" for x in load) if load else "?"
    over = [r for r in budget_rows(results, rss) if "over budget" in r[3]]
    build_label = os.path.relpath(cache.get("CMAKE_CACHEFILE_DIR", "?"), source_dir) \
        if cache.get("CMAKE_CACHEFILE_DIR") else "?"
    generator = cache.get("CMAKE_GENERATOR", "")
    if generator:
        build_label += f" ({generator})"

    parts = []
    parts.append("# Performance\n")
    parts.append("<!-- Generated by bench/run.sh (bench/perf_report.py). Do not edit by hand: "
                 "re-run bench/run.sh. -->\n")
    parts.append("Measured against the budgets of DESIGN.md (\"Performance budgets\"). Times are "
                 "CPU time per item, the median of 5 repetitions.\n")
    parts.append("> **These numbers come from a shared 2-core VM and vary from run to run** "
                 "(other jobs, steal time, a hypervisor between us and the CPU): read them as "
                 "orders of magnitude and trends, not as exact values. The coefficient of "
                 "variation (cv) column below shows the spread of the 5 repetitions.\n")
    parts.append("## Budgets\n")
    parts.append(table(["what", "budget", "measured (median, best repetition)", "status"], budget_rows(results, rss)))
    parts.append("")
    if over:
        parts.append(f"{len(over)} measured budget(s) over budget"
                     + ("; see \"Where the time goes\" below.\n" if notes else ".\n"))
    parts.append("## All benchmarks\n")
    parts.append(table(["benchmark", "what it does", "item", "time per item (median)",
                        "items/s (median)", "cv", "counters"], bench_rows(results)))
    parts.append("")
    parts.append("Boots and live sets are built outside the timed loops; `BM_Boot*` time only "
                 "the construction (the previous model is destroyed with the timer paused). "
                 "`BM_Replay/*` run 2 replays per repetition, each on a model booted (and "
                 "destroyed afterwards) with the timer paused.\n")
    parts.append(notes)
    if rss_text:
        parts.append("## Replay memory: `bench/replay_rss.sh` output of this run\n")
        parts.append("Wall time (not CPU time) of the whole `mmfuzz replay --quiet` process: "
                     "boot, first pass (a only), replay and report; (a1) and (b) read "
                     "the decompressed text through a pipe.\n")
        parts.append("```\n" + rss_text.rstrip("\n") + "\n```\n")
    parts.append("## Run\n")
    parts.append(f"- command (what bench/run.sh runs): `{command}`")
    parts.append(f"- date: {context.get('date', '?')}")
    parts.append(f"- source: {source_revision(source_dir)}")
    parts.append(f"- CPU: {cpu_model()}, {os.cpu_count()} cores online "
                 f"(benchmark sees {context.get('num_cpus', '?')} CPUs at "
                 f"{context.get('mhz_per_cpu', '?')} MHz); load average before the run: {load_s}")
    parts.append(f"- host: {platform.system()} {platform.release()} ({platform.machine()})")
    parts.append(f"- compiler: {compiler}")
    parts.append(f"- build: `{build_label}`, CMAKE_BUILD_TYPE={build_type} "
                 f"(`{flags.strip()}`)")
    parts.append(f"- Google Benchmark library: Debian package, reports build type "
                 f"\"{lib_type}\" (its own bookkeeping only; the timed loops are compiled "
                 f"with the flags above)")
    parts.append("")
    parts.append(HOW_TO)
    return "\n".join(parts)



HOW_TO = """## How to reproduce

```sh
bench/run.sh                       # builds build/default, runs, rewrites this file
bench/run.sh --benchmark_min_time=0.1   # a quicker, noisier run (extra args go to the binary)
# one benchmark, human-readable output:
build/default/bin/bench_page_alloc --benchmark_filter=BM_Order0AllocFreePcp$
build/default/bin/bench_slab --benchmark_filter='BM_KmallocKfree/0$'
build/default/bin/bench_vm --benchmark_filter='BM_VmallocVfree/1$'
build/default/bin/bench_replay --benchmark_filter='BM_Replay/incremental$'
build/default/bin/bench_trace_parse --benchmark_filter=BM_ParseFtrace
bench/replay_rss.sh                # peak RSS of mmfuzz replay, 0.42 M and 10.2 M events
```

For stable numbers run on an idle machine and pin the process
(`taskset -c 1 bench/run.sh`). Benchmarks never run under ctest.
"""


def read_notes(path):
    """The hand-written "Where the time goes" section, if the file exists."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().rstrip("\n") + "\n"
    except FileNotFoundError:
        return ""
    except OSError as e:
        raise ReportError(f"cannot read {path}: {e.strerror}")


def load_rss(path):
    """bench/replay_rss.sh --json: {"copies": N, "runs": [{name, events, peak_rss_kib, ...}]}."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise ReportError(f"cannot read {path}: {e.strerror}")
    except json.JSONDecodeError as e:
        raise ReportError(f"{path} is not bench/replay_rss.sh JSON ({e.msg} at line {e.lineno})")
    try:
        names = {r["name"] for r in data["runs"]}
        for r in data["runs"]:
            int(r["events"]), int(r["peak_rss_kib"])
        int(data["copies"])
    except (KeyError, TypeError, ValueError):
        raise ReportError(f"{path} is not bench/replay_rss.sh JSON (runs/events/peak_rss_kib)")
    if not {"stdin1", "stdinN"} <= names:
        raise ReportError(f"{path} lacks the one-copy and many-copy runs (stdin1, stdinN)")
    return data


def read_text(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise ReportError(f"cannot read {path}: {e.strerror}")


def write_atomically(path, text):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".performance.", suffix=".md.tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True, action="append",
                    help="Google Benchmark JSON output (repeat for several programs)")
    ap.add_argument("--build-dir", required=True, help="the CMake build directory used")
    ap.add_argument("--source-dir", default=".", help="the source tree (for the git revision)")
    ap.add_argument("--out", required=True, help="the Markdown file to write")
    ap.add_argument("--command", required=True, help="the command line to document")
    ap.add_argument("--rss-json", help="bench/replay_rss.sh --json output (replay memory row)")
    ap.add_argument("--rss-output", help="bench/replay_rss.sh's printed table, shown verbatim")
    ap.add_argument("--notes", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                    "performance_notes.md"),
                    help="hand-written analysis copied into the report (optional file)")
    args = ap.parse_args()
    try:
        context, results = load_all(args.json)
        cache = cmake_cache(args.build_dir)
        notes = read_notes(args.notes)
        rss = load_rss(args.rss_json) if args.rss_json else None
        rss_text = read_text(args.rss_output) if args.rss_output else ""
        text = render(context, results, cache, args.command, args.source_dir, notes, rss,
                      rss_text)
        write_atomically(args.out, text)
    except ReportError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{PROG}: error: cannot write {args.out}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
