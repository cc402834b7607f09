#!/usr/bin/env python3
"""mmfuzz fuzz campaign: build, fuzz in parallel, merge, triage, report.

Run through ci/campaign.sh (or `mmfuzz campaign`); `--help` lists the flags.
Exit codes: 0 clean, 1 a new violation was found (with --expect: the
expected one was not found), 2 bad usage or a build/tool error (one line on
stderr).
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

ROOT = Path(__file__).resolve().parent.parent
MODEL_TARGETS = ["page_alloc", "slub", "slab", "slob", "vm", "mm"]
PARSER_TARGETS = ["trace_text", "program_text"]
ALL_TARGETS = MODEL_TARGETS + PARSER_TARGETS
PLANTS = [
    "buddy_skip_merge",
    "slub_freelist_off_by_one",
    "vmalloc_no_guard",
    "vfree_leaves_pte",
    "redzone_not_rearmed",
    # Not in the self-test table (fuzz/selftest.cmake) yet; plantable all the same.
    "watermark_nowait_harder",
    "pcp_refill_count_blocks",
    "mempool_free_skips_refill",
    "slab_flusharray_drops_object",
    "slob_units_double_count",
]
# engine -> (configure preset, build folder under the source tree)
ENGINES = {
    "libfuzzer": ("fuzz", "build/fuzz"),
    "afl": ("afl", "build/afl"),
    "builtin": ("default", "build/default"),
}
AFL_BUILD_ENV = {"AFL_USE_ASAN": "1", "AFL_USE_UBSAN": "1", "AFL_QUIET": "1"}
# The AFL++ custom mutator (fuzz/afl_mutator.cpp): the same Program mutations
# as libFuzzer's, built by the afl-mutator preset (uninstrumented, PIC).
AFL_MUTATOR = ROOT / "build" / "afl-mutator" / "lib" / "libmmfuzz_afl_mutator.so"
MODEL_TARGETS = ("page_alloc", "slub", "slab", "slob", "vm", "mm")
MAX_RESTARTS = 8  # per target: a libFuzzer/driver run ends at its first crash
MAX_TRIAGE = 64  # crash files replayed per target (smallest first)
SHRINK_SECONDS = 60  # `mmfuzz shrink --time` per new signature


class CampaignError(Exception):
    """A usage, tool or build error: one line on stderr, exit 2."""


def die(msg):
    print(f"campaign: error: {msg}", file=sys.stderr)
    sys.exit(2)


def note(msg):
    clear_progress()
    print(f"campaign: {msg}", flush=True)


# ---------------------------------------------------------------- progress

_progress_shown = False


def progress(line):
    global _progress_shown
    if not sys.stdout.isatty():
        return
    width = shutil.get_terminal_size((100, 20)).columns - 1
    sys.stdout.write("\r" + line[:width].ljust(width))
    sys.stdout.flush()
    _progress_shown = True


def clear_progress():
    global _progress_shown
    if _progress_shown:
        width = shutil.get_terminal_size((100, 20)).columns - 1
        sys.stdout.write("\r" + " " * width + "\r")
        sys.stdout.flush()
        _progress_shown = False


# ---------------------------------------------------------------- helpers


def write_atomic(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def replace_dir(tmp, final):
    """Moves the finished folder tmp to final, replacing what was there."""
    final = Path(final)
    old = None
    if final.exists():
        old = final.with_name("." + final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def sha1_file(p):
    return hashlib.sha1(Path(p).read_bytes()).hexdigest()


def files_in(d):
    d = Path(d)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith("."))


def rel(p):
    """A path as a user would type it from the source tree."""
    p = Path(p).resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def kill_group(proc, sig=signal.SIGTERM):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_quiet(cmd, env=None, timeout=None, cwd=None):
    """Runs cmd in its own process group; returns (rc, combined output)."""
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out.decode(errors="replace")
    return proc.returncode, out.decode(errors="replace")


def cache_value(build_dir, name):
    cache = Path(build_dir) / "CMakeCache.txt"
    if not cache.exists():
        return None
    for line in cache.read_text(errors="replace").splitlines():
        m = re.match(re.escape(name) + r":[A-Z]+=(.*)$", line)
        if m:
            return m.group(1)
    return None


def is_on(v):
    return v is not None and v.upper() in ("ON", "1", "TRUE", "YES", "Y")


# ---------------------------------------------------------------- crash output


def parse_program(text):
    m = re.search(r"^==MMFUZZ== program:\n(.*?)^==MMFUZZ== end program", text, re.M | re.S)
    return m.group(1) if m else None


def has_shrink(mmfuzz):
    """Whether `mmfuzz --help` lists the shrink subcommand (`mmfuzz shrink
    --help` of an mmfuzz without it prints the top-level help, exit 0)."""
    rc, out = run_quiet([str(mmfuzz), "--help"], timeout=60)
    return rc == 0 and re.search(r"^\s+shrink\s", out, re.M) is not None


def count_ops(program):
    """The ops of a Program text: its lines that are neither blank nor comments
    (the header is `# key: value` comments). None for no Program."""
    if program is None:
        return None
    return sum(1 for line in program.splitlines() if line.strip() and not line.lstrip().startswith("#"))


_SKIP_FRAMES = re.compile(
    r"^(__|abort$|raise$|gsignal$|fuzzer::|std::|operator|_start$|main$|ExecuteFilesOnyByOne|"
    r"(malloc|free|calloc|realloc|memcpy|memmove|memset|strlen|strcmp|memcmp)$|"
    r"fuzz::Harness::|fuzz::crash_report)"
)


def top_frame(text):
    """The first frame of the first sanitizer stack that is project code."""
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if re.match(r"\s*#0 0x", l)), None)
    if start is None:
        return None
    for line in lines[start:]:
        if not re.match(r"\s*#\d+ 0x[0-9a-f]+", line):
            break  # the end of the first stack
        m = re.match(
            r"\s*#\d+ 0x[0-9a-f]+ in (.+?)(?: (\S+:\d+(?::\d+)?|/\S+|\(\S+\)))?(?: \(BuildId: \w+\))?\s*$", line
        )
        if not m:
            continue  # no symbol
        func, loc = m.group(1).strip(), m.group(2) or ""
        if re.search(r"libc\.so|libstdc\+\+|libclang_rt|compiler-rt|/libFuzzer/|afl-compiler-rt|aflpp_driver|sysdeps/|nptl/|stdlib/|csu/", loc):
            continue
        func = func.replace("(anonymous namespace)::", "")
        func = re.sub(r"\(.*$", "", func)  # the argument list
        while True:  # template arguments
            nf = re.sub(r"<[^<>]*>", "", func)
            if nf == func:
                break
            func = nf
        func = func.replace("(anonymous namespace)::", "").replace("mmfuzz::", "").replace(" ", "")
        if not func or _SKIP_FRAMES.match(func):
            continue
        return func
    return None


def abort_message(output, end):
    """The line a target printed just before a crash report starting at end."""
    for line in reversed(output[:end].splitlines()):
        s = line.strip()
        if not s or s.startswith(("INFO:", "Running:", "#")) or "Running 1 inputs" in s:
            continue
        if s.startswith(("==", "MS:", "base unit", "0x")):
            return None
        s = re.sub(r"^\S*fuzz_\w+: ", "", s)
        return s[:200]
    return None


def fmt_ops(n):
    return "-" if n is None else f"{n:,}"


def fmt_secs(x):
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def invariant_of(sig):
    """The invariant (first) part of a signature: <invariant>/<op>/<subsystem>
    (or |-separated)."""
    return re.split(r"[/|]", sig, maxsplit=1)[0]


def slug_words(s, n=4):
    words = re.findall(r"[a-z0-9]+", s.lower())
    return "-".join(words[:n]) or "unknown"


def crash_json(output):
    """The findings of our own crash report: its one "MMFUZZ-JSON: {...}" line
    (fuzz/harness.h crash_report; the schema is in docs/replay.md), as a dict
    with schema "mmfuzz-crash-1". None when the output has none or it does not
    parse (the last one counts)."""
    start = output.rfind("\nMMFUZZ-JSON: ")
    if start < 0 and not output.startswith("MMFUZZ-JSON: "):
        return None
    line = output[start + 1 :].split("\n", 1)[0][len("MMFUZZ-JSON: ") :]
    try:
        j = json.loads(line)
    except ValueError:
        return None
    if not isinstance(j, dict) or j.get("schema") != "mmfuzz-crash-1" or not isinstance(j.get("findings"), list):
        return None
    return j


def finding_of(output):
    """invariant, kind, subsystem and op kind of the first finding of our crash
    report (empty for sanitizer reports and other crashes)."""
    j = crash_json(output)
    f = j["findings"][0] if j and j["findings"] and isinstance(j["findings"][0], dict) else {}
    op = f.get("op") if isinstance(f.get("op"), dict) else {}
    return {k: v for k, v in (("invariant", f.get("invariant")), ("kind", f.get("kind")), ("subsystem", f.get("subsystem")), ("op", op.get("kind"))) if isinstance(v, str)}


def signatures_of(output, target, rc):
    """(signatures, title, crashed) of one replay's output."""
    j = crash_json(output)
    if j is not None:
        sigs = []
        for f in j["findings"]:
            sig = f.get("signature") if isinstance(f, dict) else None
            if isinstance(sig, str) and sig and sig not in sigs:
                sigs.append(sig)
        if sigs:
            title = j["findings"][0].get("title") if isinstance(j["findings"][0], dict) else None
            return sigs, title if isinstance(title, str) and title else sigs[0], True
    if "==MMFUZZ== crash in target" in output:
        # Our report without its findings' JSON (cut short?): say so, do not guess.
        return [f"mmfuzz.unreadable-report|{target}"], "crash report without a readable MMFUZZ-JSON line", True
    err = re.search(r"^==\d+==\s*ERROR: (\w+): (.*)$", output, re.M)
    summary = re.search(r"^SUMMARY: (\w+): (\S+)(?: .*)?$", output, re.M)
    ub = re.search(r"runtime error: ([^:\n]+)", output)
    frame = top_frame(output)
    if ub:
        where = re.search(r"^(\S+?):(\d+):\d+: runtime error", output, re.M)
        func = frame or (f"{Path(where.group(1)).name}:{where.group(2)}" if where else target)
        sig = f"ubsan.{slug_words(ub.group(1))}|{func}"
        return [sig], "UndefinedBehaviorSanitizer: " + ub.group(1).strip(), True
    if err and err.group(1) == "libFuzzer":
        kind = err.group(2)
        if kind.startswith("timeout"):
            return [f"timeout|{target}"], "libFuzzer: " + kind, True
        if "out-of-memory" in kind:
            return [f"oom|{target}"], "libFuzzer: " + kind, True
        if "deadly signal" in kind:
            msg = abort_message(output, err.start())
            if msg:
                words = "-".join(re.findall(r"[a-z]+", msg.lower())[:6])
                return [f"abort.{words}|{target}"], msg, True
            return [f"abort|{frame}" if frame else f"abort|{target}"], "deadly signal", True
        return [f"libfuzzer.{slug_words(kind)}|{target}"], "libFuzzer: " + kind, True
    if err or summary:
        tool = (err or summary).group(1)
        if tool == "LeakSanitizer":
            kind = "leak"
        elif summary:
            kind = summary.group(2)
        else:
            kind = slug_words(err.group(2).split(" on ")[0])
        if kind == "SEGV" or kind.startswith("SEGV"):
            kind = "segv"
        prefix = {"AddressSanitizer": "asan", "LeakSanitizer": "lsan"}.get(tool, tool.lower())
        sig = f"{prefix}.{kind}|{frame}" if frame else f"{prefix}.{kind}|{target}"
        title = (err.group(1) + ": " + re.sub(r" on (unknown )?address 0x[0-9a-f]+.*$", "", err.group(2))) if err else summary.group(0)
        if frame:
            title += f" in {frame}"
        return [sig], title.strip(), True
    if rc is not None and rc != 0:
        if rc < 0 or rc >= 128:
            signo = -rc if rc < 0 else rc - 128
            name = signal.Signals(signo).name if signo in signal.Signals._value2member_map_ else f"signal{signo}"
            kind = "abort" if name == "SIGABRT" else name.lower()
            return [f"{kind}|{frame}" if frame else f"{kind}|{target}"], f"killed by {name}", True
        return [f"exit{rc}|{target}"], f"exit code {rc}", True
    if rc is None:
        return [f"timeout|{target}"], "replay did not finish in time", True
    return [], None, False


# ---------------------------------------------------------------- engines


class Job:
    def __init__(self, target, proc, log, deadline, workers):
        self.target = target
        self.started = time.monotonic()
        self.proc = proc
        self.log = log
        self.deadline = deadline
        self.workers = workers
        self.term_sent = None


class Engine:
    name = ""

    def __init__(self, camp):
        self.c = camp

    def env(self):
        e = dict(os.environ)
        e.pop("MMFUZZ_PLANT", None)
        if self.c.args.plant:
            e["MMFUZZ_PLANT"] = self.c.args.plant
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1:symbolize=1")
        e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        return e

    def work(self, t):
        return self.c.out / "work" / t

    def replay(self, t, path, timeout=60):
        rc, out = run_quiet([str(self.c.binary[t]), str(path)], env=self.env(), timeout=timeout)
        return rc, out

    def max_restarts(self):
        """How often a target that stopped at a crash is started again."""
        return MAX_RESTARTS

    def crash_files(self, t):
        return [p for p in files_in(self.work(t) / "artifacts") if p.name.startswith(("crash-", "leak-", "timeout-", "oom-"))]

    def merge(self, t, inputs, dest):
        raise NotImplementedError

    def minimize(self, t, src, dest, seconds):
        raise NotImplementedError

    def stats(self, t):
        return {}


def _libfuzzer_stats(logs):
    st = {"execs": 0, "cov": None, "ft": None}
    for log in logs:
        try:
            text = Path(log).read_text(errors="replace")
        except OSError:
            continue
        execs = None
        m = re.findall(r"^stat::number_of_executed_units: (\d+)", text, re.M)
        if m:
            execs = int(m[-1])
        lines = re.findall(r"^#(\d+):?\s.*?cov: (\d+) ft: (\d+)", text, re.M)
        if lines:
            n, cov, ft = lines[-1]
            if execs is None:
                execs = int(n)
            st["cov"] = max(st["cov"] or 0, int(cov))
            st["ft"] = max(st["ft"] or 0, int(ft))
        st["execs"] += execs or 0
    return st


class LibFuzzer(Engine):
    name = "libfuzzer"

    def replay(self, t, path, timeout=60):
        cmd = [str(self.c.binary[t]), "-timeout=25", "-rss_limit_mb=2560", str(path)]
        return run_quiet(cmd, env=self.env(), timeout=timeout)

    def max_restarts(self):
        return 1  # once, in fork mode, which goes on after crashes

    def start(self, t, workers, seconds, idx, resume=False):
        w = self.work(t)
        (w / "queue").mkdir(parents=True, exist_ok=True)
        (w / "artifacts").mkdir(parents=True, exist_ok=True)
        cmd = [
            str(self.c.binary[t]),
            f"-max_total_time={seconds}",
            f"-artifact_prefix={w / 'artifacts'}/",
            "-rss_limit_mb=2560",
            "-timeout=20",
            "-print_final_stats=1",
            f"-seed={self.c.seed + idx}",
        ]
        if self.c.dicts.get(t):
            cmd.append(f"-dict={self.c.dicts[t]}")
        if workers > 1 or resume:
            cmd += [f"-fork={workers}", "-ignore_crashes=1", "-ignore_timeouts=1", "-ignore_ooms=1"]
        cmd += [str(w / "queue")] + [str(d) for d in self.c.inputs[t]]
        return [cmd], {}

    def stats(self, t):
        return _libfuzzer_stats(sorted(self.work(t).glob("log.*")))

    def merge(self, t, inputs, dest):
        dest.mkdir(parents=True)
        cmd = [str(self.c.binary[t]), "-merge=1", f"-artifact_prefix={self.work(t) / 'artifacts'}/", "-rss_limit_mb=2560", "-timeout=20"]
        cmd += [str(dest)] + [str(d) for d in inputs if Path(d).is_dir()]
        rc, out = run_quiet(cmd, env=self.env(), timeout=max(300, self.c.args.time * 2))
        write_atomic(self.work(t) / "merge.log", out)
        return rc == 0

    def update_seeds(self, t, merged, seeds):
        seeds.mkdir(parents=True, exist_ok=True)
        before = len(files_in(seeds))
        cmd = [str(self.c.binary[t]), "-merge=1", "-rss_limit_mb=2560", "-timeout=20", str(seeds), str(merged)]
        run_quiet(cmd, env=self.env(), timeout=max(300, self.c.args.time * 2))
        return len(files_in(seeds)) - before

    def minimize(self, t, src, dest, seconds):
        cmd = [
            str(self.c.binary[t]),
            "-minimize_crash=1",
            f"-max_total_time={seconds}",
            f"-exact_artifact_path={dest}",
            "-rss_limit_mb=2560",
            "-timeout=20",
            str(src),
        ]
        run_quiet(cmd, env=self.env(), timeout=seconds + 60)
        return dest.exists()


class Afl(Engine):
    name = "afl"

    def max_restarts(self):
        return 0  # afl-fuzz keeps going after a crash

    def env(self):
        e = super().env()
        e.pop("ASAN_OPTIONS", None)  # afl-fuzz sets the ones it needs
        e.pop("UBSAN_OPTIONS", None)
        e.update(
            {
                "AFL_NO_UI": "1",
                "AFL_SKIP_CPUFREQ": "1",
                "AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES": "1",
                "AFL_NO_AFFINITY": "1",
                "AFL_SKIP_CRASHES": "1",
                "AFL_ALLOW_TMP": "1",
                "AFL_FAST_CAL": "1",
            }
        )
        return e

    def replay(self, t, path, timeout=60):
        return run_quiet([str(self.c.binary[t]), str(path)], env=super().env(), timeout=timeout)

    def start(self, t, workers, seconds, idx, resume=False):
        w = self.work(t)
        seeds = w / "in"
        if not seeds.exists():
            seeds.mkdir(parents=True)
            seen = set()
            for d in self.c.inputs[t]:
                for p in files_in(d):
                    h = sha1_file(p)
                    if h not in seen and p.stat().st_size <= 1 << 20:
                        seen.add(h)
                        shutil.copyfile(p, seeds / h)
            if not seen:
                (seeds / "empty").write_bytes(b"\0")
        cmds = []
        for i in range(workers):
            role = ["-M", "main"] if i == 0 else ["-S", f"s{i}"]
            cmd = ["afl-fuzz", "-i", str(seeds), "-o", str(w / "afl")] + role
            cmd += ["-V", str(seconds), "-m", "none", "-t", "5000+", "-s", str(self.c.seed + idx + i)]
            if self.c.dicts.get(t):
                cmd += ["-x", str(self.c.dicts[t])]
            cmd += ["--", str(self.c.binary[t])]
            cmds.append(cmd)
        extra = {}
        if t in MODEL_TARGETS and AFL_MUTATOR.is_file():
            extra = {"AFL_CUSTOM_MUTATOR_LIBRARY": str(AFL_MUTATOR), "MMFUZZ_AFL_TARGET": t}
        return cmds, extra

    def crash_files(self, t):
        out = []
        for d in sorted((self.work(t) / "afl").glob("*/crashes")):
            out += [p for p in files_in(d) if p.name.startswith("id:")]
        return out

    def stats(self, t):
        st = {"execs": 0, "edges": None, "bitmap_cvg": None}
        for f in sorted((self.work(t) / "afl").glob("*/fuzzer_stats")):
            kv = {}
            for line in f.read_text(errors="replace").splitlines():
                if ":" in line:
                    k, v = line.split(":", 1)
                    kv[k.strip()] = v.strip()
            st["execs"] += int(kv.get("execs_done", "0") or 0)
            if "edges_found" in kv:
                st["edges"] = max(st["edges"] or 0, int(kv["edges_found"]))
            if "bitmap_cvg" in kv:
                st["bitmap_cvg"] = kv["bitmap_cvg"]
        return st

    def merge(self, t, inputs, dest):
        flat = self.work(t) / "cmin-in"
        shutil.rmtree(flat, ignore_errors=True)
        flat.mkdir(parents=True)
        n = 0
        for q in sorted((self.work(t) / "afl").glob("*/queue")):
            for p in files_in(q):
                if p.name.startswith("id:"):
                    shutil.copyfile(p, flat / f"{q.parent.name}_{p.name.split(',')[0].replace(':', '')}")
                    n += 1
        if n == 0:
            for d in inputs:
                for p in files_in(d):
                    shutil.copyfile(p, flat / sha1_file(p))
                    n += 1
        dest.mkdir(parents=True)
        if n == 0:
            return True
        cmd = ["afl-cmin", "-i", str(flat), "-o", str(dest) + ".cmin", "-m", "none", "-t", "5000", "--", str(self.c.binary[t])]
        rc, out = run_quiet(cmd, env=self.env(), timeout=max(300, self.c.args.time * 2))
        write_atomic(self.work(t) / "merge.log", out)
        ok = rc == 0 and Path(str(dest) + ".cmin").is_dir()
        src = Path(str(dest) + ".cmin") if ok else flat
        for p in files_in(src):  # name by content, as libFuzzer does
            shutil.copyfile(p, dest / sha1_file(p))
        shutil.rmtree(str(dest) + ".cmin", ignore_errors=True)
        return ok

    def minimize(self, t, src, dest, seconds):
        cmd = ["afl-tmin", "-i", str(src), "-o", str(dest), "-m", "none", "-t", "5000", "--", str(self.c.binary[t])]
        rc, _ = run_quiet(cmd, env=self.env(), timeout=seconds)
        return rc == 0 and dest.exists()


class Builtin(Engine):
    """fuzz/driver_main.cpp: a non-coverage generate/mutate loop."""

    name = "builtin"

    def start(self, t, workers, seconds, idx, resume=False):
        w = self.work(t)
        (w / "queue").mkdir(parents=True, exist_ok=True)
        (w / "artifacts").mkdir(parents=True, exist_ok=True)
        cmds = []
        for i in range(workers):
            cmd = [
                str(self.c.binary[t]),
                f"-max_total_time={seconds}",
                f"-seed={self.c.seed + idx * 101 + i}",
                f"-artifact_prefix={w / 'artifacts'}/",
            ]
            if self.c.dicts.get(t):
                cmd.append(f"-dict={self.c.dicts[t]}")
            cmd += [str(d) for d in self.c.inputs[t] if Path(d).is_dir() and files_in(d)]
            cmds.append(cmd)
        return cmds, {}

    def stats(self, t):
        st = {"execs": 0}
        for log in sorted(self.work(t).glob("log.*")):
            text = log.read_text(errors="replace")
            m = re.findall(r"^==mmfuzz-driver== (\d+) execs in", text, re.M)
            if m:
                st["execs"] += int(m[-1])
        return st

    def merge(self, t, inputs, dest):
        dest.mkdir(parents=True)
        for d in inputs:
            for p in files_in(d):
                shutil.copyfile(p, dest / sha1_file(p))
        return True

    def minimize(self, t, src, dest, seconds):
        """Byte trimming: drop chunks while the signature stays."""
        data = Path(src).read_bytes()
        want = self.c.crash_sig_of.get(str(src))
        end = time.monotonic() + seconds
        probe = dest.with_name(dest.name + ".probe")
        chunk = max(1, len(data) // 2)
        while chunk >= 1 and time.monotonic() < end:
            i = 0
            changed = False
            while i < len(data) and time.monotonic() < end:
                cand = data[:i] + data[i + chunk :]
                probe.write_bytes(cand)
                rc, out = self.replay(t, probe, timeout=30)
                sigs, _, crashed = signatures_of(out, t, rc)
                if crashed and (want is None or want in sigs):
                    data = cand
                    changed = True
                else:
                    i += chunk
            if not changed:
                chunk //= 2
        probe.unlink(missing_ok=True)
        dest.write_bytes(data)
        return True


# ---------------------------------------------------------------- campaign


class Campaign:
    def __init__(self, args):
        self.args = args
        self.props = None  # (exit code, output) of `mmfuzz prop` beside the fuzzers
        self.out = Path(args.out).resolve()
        self.corpus = Path(args.corpus).resolve()
        self.seed = int(time.time()) & 0xFFFF if args.seed is None else args.seed
        self.binary = {}
        self.inputs = {}
        self.dicts = {}
        self.missing = []
        self.crash_sig_of = {}
        self.started = time.monotonic()
        self.fuzz_seconds = 0.0
        self.runs = {}
        self.stopped_early = False
        self.found = {}  # crash file -> (target, signatures, title, output, rc)
        self.flaky = set()  # signatures seen only while fuzzing
        self.log_rc = {}  # fuzzer log -> its process's exit status
        self.seen_crash_files = set()
        self.expect_hit = None
        self.active = {}  # target -> (first start, last end) of its fuzzer processes
        self.live = []  # every fuzzer process started and not yet reaped
        self.engine = {"libfuzzer": LibFuzzer, "afl": Afl, "builtin": Builtin}[args.engine](self)
        preset, bdir = ENGINES[args.engine]
        self.preset = preset
        self.build_dir = Path(args.build_dir).resolve() if args.build_dir else ROOT / bdir
        self.mmfuzz = None  # the mmfuzz command: shrink and the reproducer check (find_mmfuzz)
        self.shrink_support = None  # (supported, why not), asked once

    # -------------------------------------------------------- build

    def check_tools(self):
        need = []
        if not self.args.no_build:
            need.append("cmake")
            if self.args.engine == "libfuzzer" and not self.args.build_dir:
                need.append("clang++-14")
            if self.args.engine == "afl":
                need.append("afl-clang-fast++")
        if self.args.engine == "afl":
            need += ["afl-fuzz", "afl-cmin", "afl-tmin"]
        for tool in need:
            if not shutil.which(tool):
                raise CampaignError(f"{tool} not found (engine {self.args.engine}; scripts/deps.sh installs it)")

    def build(self):
        a = self.args
        log = self.out / "build.log"
        env = dict(os.environ)
        if a.engine == "afl":
            env.update(AFL_BUILD_ENV)
        configured = (self.build_dir / "CMakeCache.txt").exists()
        cmds = []
        if a.build_dir:
            if not configured:
                raise CampaignError(f"--build-dir {a.build_dir} is not a configured CMake build folder")
            if a.plant and not is_on(cache_value(self.build_dir, "MMFUZZ_PLANTED_DEFECTS")):
                cmds.append(["cmake", "-S", str(ROOT), "-B", str(self.build_dir), "-DMMFUZZ_PLANTED_DEFECTS=ON"])
        else:
            reconf = not configured
            extra = []
            if a.plant and not is_on(cache_value(self.build_dir, "MMFUZZ_PLANTED_DEFECTS")):
                reconf = True
                extra.append("-DMMFUZZ_PLANTED_DEFECTS=ON")
            if reconf:
                cmds.append(["cmake", "--preset", self.preset] + extra)
        cmds.append(["cmake", "--build", str(self.build_dir), "--target", "fuzz_targets", "-j", str(a.jobs)])
        if a.engine == "afl":
            cmds.append(["cmake", "--preset", "afl-mutator"])
            cmds.append(["cmake", "--build", "--preset", "afl-mutator", "-j", str(a.jobs)])
        note(f"building fuzz targets ({a.engine}) in {rel(self.build_dir)}, log {rel(log)}")
        with open(log, "wb") as f:
            for cmd in cmds:
                f.write(("$ " + shlex.join(cmd) + "\n").encode())
                f.flush()
                proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
                self.live.append(proc)
                rc = proc.wait()
                self.live.remove(proc)
                if rc != 0:
                    break
            if rc != 0:
                raise CampaignError(f"build failed: `{shlex.join(cmd)}` exited {rc} (see {rel(log)})")

    def find_binaries(self):
        bindir = self.build_dir / "bin"
        for t in self.targets:
            b = bindir / f"fuzz_{t}"
            if b.is_file() and os.access(b, os.X_OK):
                self.binary[t] = b
            elif self.args.targets_explicit:
                hint = "" if not self.args.no_build else " (run without --no-build to build it)"
                raise CampaignError(f"fuzz target {t} not built: {rel(b)} is missing{hint}")
            else:
                self.missing.append(t)
        self.targets = [t for t in self.targets if t in self.binary]
        if not self.targets:
            raise CampaignError(f"no fuzz target built in {rel(bindir)}")
        if self.args.plant:
            if self.args.engine == "builtin" or self.args.build_dir:
                v = cache_value(self.build_dir, "MMFUZZ_PLANTED_DEFECTS")
                if v is not None and not is_on(v):
                    raise CampaignError(f"--plant needs MMFUZZ_PLANTED_DEFECTS=ON in {rel(self.build_dir)}")

    def find_mmfuzz(self):
        """The mmfuzz binary that shrinks crashes and replays reproducers:
        --mmfuzz (or $MMFUZZ_BIN), else bin/mmfuzz of the build folder, else
        build/default/bin/mmfuzz (the fuzz and afl presets build only the
        fuzz targets). None when there is none: no shrink, no check."""
        if self.args.mmfuzz:
            mm = Path(self.args.mmfuzz).resolve()
            if not (mm.is_file() and os.access(mm, os.X_OK)):
                raise CampaignError(f"--mmfuzz {self.args.mmfuzz} is not an executable file")
            self.mmfuzz = mm
            return
        for mm in (self.build_dir / "bin" / "mmfuzz", ROOT / "build" / "default" / "bin" / "mmfuzz"):
            if mm.is_file() and os.access(mm, os.X_OK):
                self.mmfuzz = mm
                return

    def prepare_inputs(self):
        for t in self.targets:
            ins = []
            for d in (self.corpus / "seeds" / t, self.corpus / "regressions" / t, self.out / "corpus" / t):
                if d.is_dir():
                    ins.append(d)
            self.inputs[t] = ins
            dct = self.corpus / "dict" / f"{t}.dict"
            if dct.is_file():
                self.dicts[t] = dct

    # -------------------------------------------------------- fuzz

    def plan(self):
        """(target, workers, seconds) slots; at most --jobs processes at once."""
        n, m, total = self.args.jobs, len(self.targets), self.args.time
        if n >= m:
            return [[(t, n // m + (1 if i < n % m else 0), total) for i, t in enumerate(self.targets)]]
        rounds = -(-m // n)
        secs = max(1, total // rounds)
        return [[(t, 1, secs) for t in self.targets[r * n : (r + 1) * n]] for r in range(rounds)]

    def launch(self, t, workers, seconds, idx, resume=False):
        cmds, extra_env = self.engine.start(t, workers, seconds, idx, resume)
        env = self.engine.env()
        env.update(extra_env)
        jobs = []
        for k, cmd in enumerate(cmds):
            n = self.runs.get(t, 0)
            self.runs[t] = n + 1
            log = self.engine.work(t) / f"log.{n}"
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "wb") as f:
                f.write(("$ " + shlex.join(cmd) + "\n").encode())
                f.flush()
                proc = subprocess.Popen(
                    cmd,
                    env=env,
                    cwd=self.engine.work(t),
                    stdin=subprocess.DEVNULL,
                    stdout=f,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.live.append(proc)
            jobs.append(Job(t, proc, log, time.monotonic() + seconds, workers if k == 0 else 1))
        return jobs

    def kill_all(self):
        for proc in self.live:
            if proc.poll() is None:
                kill_group(proc)
        for proc in self.live:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kill_group(proc, signal.SIGKILL)
                proc.wait()
        self.live = []

    def scan_crashes(self):
        """--expect: replays the crash files that appeared since the last scan."""
        for t in self.targets:
            for p in self.engine.crash_files(t):
                key = str(p)
                if key in self.seen_crash_files:
                    continue
                self.seen_crash_files.add(key)
                if p.name.startswith(("timeout-", "oom-")):
                    continue
                rc, out = self.engine.replay(t, p)
                sigs, title, crashed = signatures_of(out, t, rc)
                self.found[key] = (t, sigs, title, out, rc)
                if any(self.expected(s) for s in sigs):
                    self.expect_hit = sigs
                    return True
        return False

    def fuzz(self):
        a = self.args
        plan = self.plan()
        desc = ", ".join(f"{t}x{w}" if w > 1 else t for t, w, _ in plan[0])
        note(f"fuzzing {len(self.targets)} target(s) with {a.engine} for {a.time}s on {a.jobs} core(s): {desc}" + (f" (+{len(plan) - 1} more round(s))" if len(plan) > 1 else ""))
        start = time.monotonic()
        last_scan = last_progress = 0.0
        idx = 0
        restarts = {}
        for rnd in plan:
            running = []
            for t, w, secs in rnd:
                running += self.launch(t, w, secs, idx)
                idx += 1
            while running:
                now = time.monotonic()
                exited = [j for j in running if j.proc.poll() is not None]
                if a.expect and (exited or now - last_scan >= 1.0):
                    last_scan = now
                    if self.scan_crashes():
                        self.stopped_early = True
                        for j in running:
                            self.note_active(j, now)
                        self.kill_all()
                        break
                still = []
                for j in running:
                    if j not in exited:
                        if now > j.deadline + 30 and j.term_sent is None:
                            kill_group(j.proc)
                            j.term_sent = now
                        elif j.term_sent is not None and now > j.term_sent + 10:
                            kill_group(j.proc, signal.SIGKILL)
                        still.append(j)
                        continue
                    self.note_active(j, now)
                    self.note_exit(j)
                    left = int(j.deadline - now)
                    if j.proc.returncode != 0 and left >= 2 and restarts.get(j.target, 0) < self.engine.max_restarts():
                        restarts[j.target] = restarts.get(j.target, 0) + 1
                        still += self.launch(j.target, j.workers, left, idx, resume=True)
                        idx += 1
                running = still
                if running:
                    if now - last_progress >= 2.0:
                        last_progress = now
                        self.show_progress(start)
                    time.sleep(0.5)
            if self.stopped_early:
                break
        self.live = []
        self.fuzz_seconds = time.monotonic() - start
        clear_progress()
        if self.stopped_early:
            note(f"expected crash found after {self.fuzz_seconds:.0f}s: {self.expect_hit[0]}")

    def note_exit(self, j):
        rc = j.proc.returncode
        self.log_rc[str(j.log)] = rc
        how = f"signal {signal.Signals(-rc).name}" if rc is not None and rc < 0 and -rc in signal.Signals._value2member_map_ else f"code {rc}"
        with open(j.log, "a") as f:
            f.write(f"# campaign: the fuzzer exited with {how}\n")

    def note_active(self, j, now):
        first, last = self.active.get(j.target, (j.started, now))
        self.active[j.target] = (min(first, j.started), max(last, now))

    def show_progress(self, start):
        if not sys.stdout.isatty():
            return
        execs = sum(self.engine.stats(t).get("execs", 0) for t in self.targets)
        ncrash = sum(len(self.engine.crash_files(t)) for t in self.targets)
        el = time.monotonic() - start
        progress(f"campaign: {el:4.0f}s/{self.args.time}s  execs {execs:,}  exec/s {execs / max(el, 1):,.0f}  crash files {ncrash}")

    # -------------------------------------------------------- after

    def merge_corpora(self):
        self.corpus_sizes = {}
        if self.stopped_early:
            note("stopped at the expected crash: corpus merge skipped")
            return
        for t in self.targets:
            seeds = self.corpus / "seeds" / t
            final = self.out / "corpus" / t
            tmp = self.out / "corpus" / f".{t}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            ins = []
            w = self.engine.work(t)
            if (w / "queue").is_dir():
                ins.append(w / "queue")
            ins += self.inputs[t]
            n_seeds = len(files_in(seeds))
            ok = self.engine.merge(t, ins, tmp)
            replace_dir(tmp, final)
            size = len(files_in(final))
            added = None
            if self.args.update_corpus and size:
                added = self.update_seeds(t, final, seeds)
            self.corpus_sizes[t] = (n_seeds, size, added, ok)

    def update_seeds(self, t, merged, seeds):
        if isinstance(self.engine, LibFuzzer):
            return self.engine.update_seeds(t, merged, seeds)
        seeds.mkdir(parents=True, exist_ok=True)
        have = {sha1_file(p) for p in files_in(seeds)}
        added = 0
        for p in files_in(merged):
            h = sha1_file(p)
            if h not in have:
                shutil.copyfile(p, seeds / h)
                have.add(h)
                added += 1
        return added

    def triage(self):
        """Replays every crash file; groups them by signature."""
        groups = {}
        self.unreproducible = []
        for t in self.targets:
            files = sorted(self.engine.crash_files(t), key=lambda p: (p.stat().st_size, p.name))
            for p in files[:MAX_TRIAGE]:
                key = str(p)
                if key in self.found:
                    _, sigs, title, out, rc = self.found[key]
                else:
                    rc, out = self.engine.replay(t, p)
                    sigs, title, crashed = signatures_of(out, t, rc)
                    self.found[key] = (t, sigs, title, out, rc)
                if not sigs:
                    if p.name.startswith(("timeout-", "oom-")) or rc is None:
                        self.unreproducible.append((t, p))
                        continue
                    # It crashed while fuzzing but not alone: state carried
                    # from one input to the next. Judged by the fuzzer's log.
                    excerpt, job_rc = self.log_before(t, p)
                    sigs, title, _ = signatures_of(excerpt, t, job_rc if job_rc else 1)
                    sigs = [x for x in sigs if not x.startswith("exit1|")] or [f"unreproducible|{t}"]
                    title = "crashed while fuzzing, not when run alone (state kept between inputs?)" + (f": {title}" if title and not title.startswith("exit code") else "")
                    out = f"# the input alone does not crash; its replay:\n{out}\n# the fuzzer's log up to the crash:\n{excerpt}"
                    self.found[key] = (t, sigs, title, out, rc)
                    self.flaky.update(sigs)
                for s in sigs:
                    g = groups.setdefault(s, {"sig": s, "targets": [], "files": [], "title": title})
                    if t not in g["targets"]:
                        g["targets"].append(t)
                    g["files"].append((t, p))
                    if s == sigs[0]:
                        g["title"] = title
        return groups

    def log_before(self, t, crash):
        """The fuzzer log lines that led up to writing this crash file."""
        for log in sorted(self.engine.work(t).glob("log.*")):
            lines = log.read_text(errors="replace").splitlines()
            for i, line in enumerate(lines):
                if crash.name in line:
                    start = max(0, i - 200)
                    for j in range(i - 1, start, -1):  # the previous input's end
                        if "crash input written to" in lines[j] or "Test unit written to" in lines[j]:
                            start = j + 1
                            break
                    end = min(len(lines), i + 6)
                    return "\n".join(lines[start:end]) + "\n", self.log_rc.get(str(log))
        return "", None

    def known_signatures(self):
        known = set()
        ks = self.corpus / "regressions" / "known-signatures.txt"
        if ks.is_file():
            for line in ks.read_text(errors="replace").splitlines():
                line = line.split("#", 1)[0].strip()
                if line:
                    known.add(line)
        return known

    def regression_mentions(self, t, sig):
        for p in files_in(self.corpus / "regressions" / t):
            try:
                head = p.read_bytes()[:4096].decode(errors="replace")
            except OSError:
                continue
            if sig in head:
                return True
        return False

    def write_crashes(self, groups):
        tmp = self.out / ".crashes.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        known = self.known_signatures()
        minimize_secs = min(60, max(5, self.args.time // 6))
        used = set()
        results = []
        for sig in sorted(groups):
            g = groups[sig]
            t, src = min(g["files"], key=lambda tp: (tp[1].stat().st_size, str(tp[1])))
            slug = re.sub(r"[^a-z0-9._-]+", "-", re.sub(r"[/|]", "--", sig.lower())).strip("-")[:80] or "crash"
            if slug in used:
                slug += "-" + hashlib.sha1(sig.encode()).hexdigest()[:8]
            used.add(slug)
            d = tmp / slug
            d.mkdir()
            new = sig not in known and not self.regression_mentions(t, sig)
            first_out = self.found[str(src)][3]
            # A new signature's reproducer is what `mmfuzz shrink` makes of the
            # crash file; the byte minimizer and the crash's own Program are
            # the fallback when it cannot.
            shrink = None
            if self.wants_shrink(t, sig, new, first_out):
                shrink = self.shrink(t, src, d, sig, tmp)
            shrunk = shrink is not None and shrink["status"] == "shrunk"
            shutil.copyfile(src, d / "input.orig")
            final_input = d / "input.orig"
            minimized = False
            if not shrunk and not self.args.no_minimize and sig not in self.flaky:
                self.crash_sig_of[str(src)] = sig
                cand = d / "input.min"
                try:
                    if self.engine.minimize(t, src, cand, minimize_secs) and cand.exists():
                        rc, out = self.engine.replay(t, cand)
                        sigs, _, _ = signatures_of(out, t, rc)
                        if sig in sigs and cand.stat().st_size < src.stat().st_size:
                            final_input = cand
                            minimized = True
                except (OSError, subprocess.SubprocessError):
                    pass
            shutil.copyfile(final_input, d / "input")
            for f in ("input.min", "input.min.probe"):
                (d / f).unlink(missing_ok=True)
            if not minimized:
                (d / "input.orig").unlink()
            rc, out = self.engine.replay(t, d / "input")
            sigs, title, _ = signatures_of(out, t, rc)
            if sig not in sigs:  # should not happen: keep the first output
                out = first_out
            header = f"# mmfuzz campaign crash\n# signature: {sig}\n# target: {t}\n"
            if self.args.plant:
                header += f"# planted defect: {self.args.plant}\n"
            out = out.replace(str(tmp), str(self.out / "crashes"))
            write_atomic(d / "report.txt", header + "\n" + out)
            prog = parse_program(out)
            ops_before = count_ops(parse_program(first_out))
            if shrunk:
                replays = True  # shrink() checked it
                ops_before, ops_after = shrink["ops_before"], shrink["ops_after"]
                source = "shrink"
            elif prog is not None:
                write_atomic(d / "reproducer.program", prog)
                replays = self.check_reproducer(d / "reproducer.program", sigs if sig in sigs else [sig])
                ops_after = count_ops(prog)
                source = "crash"
            else:
                replays, ops_after, source = None, None, None
            results.append(
                {
                    "signature": sig,
                    "slug": slug,
                    "targets": g["targets"],
                    "target": t,
                    "title": g["title"] or title or sig,
                    "count": len(g["files"]),
                    "input_size": (d / "input").stat().st_size,
                    "orig_size": src.stat().st_size,
                    "minimized": minimized,
                    "new": new,
                    "has_program": source is not None,
                    "reproducer_replays": replays,
                    "reproducer_from": source,
                    "ops_before": ops_before,
                    "ops_after": ops_after,
                    "shrink": shrink,
                    "flaky": sig in self.flaky,
                    **finding_of(out),
                }
            )
        replace_dir(tmp, self.out / "crashes")
        return results

    def wants_shrink(self, t, sig, new, output):
        """`mmfuzz shrink` takes new signatures of the model targets that our
        crash report (its MMFUZZ-JSON line) names: not sanitizer findings, not
        crashes that happen only while fuzzing, not with --no-minimize."""
        if self.args.no_minimize or not new or t not in MODEL_TARGETS or sig in self.flaky:
            return False
        j = crash_json(output)
        return j is not None and sig in j.get("signatures", [])

    def shrink_supported(self):
        """(True, None) when the mmfuzz found has the shrink subcommand, else
        (False, why not)."""
        if self.shrink_support is None:
            if self.mmfuzz is None:
                self.shrink_support = (False, "no mmfuzz binary (build/default/bin/mmfuzz, the build folder's bin/, --mmfuzz)")
            else:
                self.shrink_support = (True, None) if has_shrink(self.mmfuzz) else (False, f"{rel(self.mmfuzz)} has no shrink subcommand")
        return self.shrink_support

    def shrink(self, t, src, d, sig, tmp):
        """`mmfuzz shrink` on the crash file: d/reproducer.program, shrink.json
        and shrink.log. A dict: status "shrunk" (with ops_before, ops_after,
        seconds, candidates, cached) when it wrote a Program that `mmfuzz
        replay` alone shows sig with; else "unavailable" (no mmfuzz with
        shrink), "failed" (exit status, no output) or "no-replay", and error."""
        info = {"status": "failed", "ops_before": None, "ops_after": None, "seconds": None, "candidates": None, "cached": None, "error": None, "log": None}
        ok, why = self.shrink_supported()
        if not ok:
            info["status"], info["error"] = "unavailable", why
            return info
        prog = d / "reproducer.program"
        js = d / "shrink.json"
        cmd = [str(self.mmfuzz), "shrink", str(src), "--target", t, "-o", str(prog), "--signature", sig]
        cmd += ["--time", str(SHRINK_SECONDS), "--jobs", str(self.args.jobs), "--json", str(js)]
        started = time.monotonic()
        rc, log = run_quiet(cmd, env=Engine.env(self.engine), timeout=SHRINK_SECONDS + 120)
        final = str(self.out / "crashes")
        write_atomic(d / "shrink.log", ("$ " + shlex.join(cmd) + "\n" + log).replace(str(tmp), final))
        info["log"] = "shrink.log"
        if rc != 0:
            lines = [l.strip() for l in log.splitlines() if l.strip()]
            info["error"] = (f"exit {rc}: " + (lines[-1][:200] if lines else "no output")) if rc is not None else f"no result after {time.monotonic() - started:.0f} s"
            prog.unlink(missing_ok=True)
            return info
        try:
            j = json.loads(js.read_text())
            if j.get("schema") != "mmfuzz-shrink-1":
                raise ValueError(f"schema {j.get('schema')!r}")
            for k in ("ops_before", "ops_after", "seconds", "candidates", "cached"):
                info[k] = j[k]
            if isinstance(j.get("output"), str):
                j["output"] = j["output"].replace(str(tmp), final)
            write_atomic(js, json.dumps(j, indent=2) + "\n")
        except (OSError, ValueError, KeyError, TypeError) as e:
            info["error"] = f"exit 0 but no readable --json: {e}"
            prog.unlink(missing_ok=True)
            return info
        if not prog.is_file():
            info["error"] = f"exit 0 but no {prog.name}"
            return info
        if not self.check_reproducer(prog, [sig]):
            # Keep what it wrote for a look; the crash's Program is used instead.
            os.replace(prog, d / "shrink-rejected.program")
            info["status"] = "no-replay"
            info["error"] = f"its Program does not show {sig} under mmfuzz replay (kept as shrink-rejected.program)"
            return info
        info["status"] = "shrunk"
        return info

    def check_reproducer(self, program, sigs):
        """`mmfuzz replay PROGRAM` alone, no flags: True when it reports every
        signature the target did, False when not (noted), None without mmfuzz."""
        mm = self.mmfuzz
        if mm is None:
            return None
        js = program.with_name("replay.json.tmp")
        try:
            subprocess.run([str(mm), "replay", "--quiet", "--json", str(js), str(program)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
            seen = json.loads(js.read_text()).get("signatures", [])
        except (OSError, ValueError, subprocess.SubprocessError):
            seen = []
        finally:
            js.unlink(missing_ok=True)
        missing = [x for x in sigs if x not in seen]
        if missing:
            note(f"reproducer {rel(program)} does not reproduce {', '.join(missing)} under mmfuzz replay")
        return not missing

    # -------------------------------------------------------- reports

    def repro_commands(self, r):
        d = self.out / "crashes" / r["slug"]
        env = f"MMFUZZ_PLANT={self.args.plant} " if self.args.plant else ""
        cmds = [f"{env}{rel(self.binary[r['target']])} {rel(d / 'input')}"]
        if r["has_program"]:
            # The Program's header carries the target's model, checks and
            # planted defect: it needs no environment.
            mm = self.mmfuzz
            cmds.append(f"{rel(mm) if mm else 'mmfuzz'} replay {rel(d / 'reproducer.program')}")
            cmds.append(f"{rel(self.binary[r['target']])} {rel(d / 'reproducer.program')}")
        return cmds

    def write_reports(self, results, stats):
        a = self.args
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        n_new = sum(1 for r in results if r["new"])
        if a.expect:
            verdict = (
                f"expected crash `{a.expect}` found" if self.expect_met(results) else f"expected crash `{a.expect}` NOT found"
            )
        elif n_new:
            verdict = f"{n_new} new violation signature(s)"
        elif results:
            verdict = "only known signatures"
        else:
            verdict = "clean"
        md = ["# mmfuzz fuzz campaign", ""]
        md.append(f"- verdict: **{verdict}**")
        md.append(f"- engine: {a.engine}, build: `{rel(self.build_dir)}`")
        md.append(f"- time: {a.time}s budget, {self.fuzz_seconds:.0f}s fuzzing{' (stopped at the expected crash)' if self.stopped_early else ''}, {time.monotonic() - self.started:.0f}s in all; jobs: {a.jobs}")
        if a.plant:
            md.append(f"- planted defect: `{a.plant}`")
        md.append(f"- corpus: `{rel(self.corpus)}`, output: `{rel(self.out)}`, finished {now}")
        checked = [r for r in results if r["reproducer_replays"] is not None]
        if checked:
            md.append(f"- reproducers: {sum(1 for r in checked if r['reproducer_replays'])} of {len(checked)} reproduce under `mmfuzz replay` alone")
        tried = [r for r in results if r["shrink"] is not None]
        if tried:
            fell = [r for r in tried if r["shrink"]["status"] != "shrunk"]
            line = f"- shrink: {len(tried) - len(fell)} of {len(tried)} new signature(s) reduced by `mmfuzz shrink`"
            if fell:
                why = {}
                for r in fell:
                    why.setdefault(r["shrink"]["error"], []).append(r["signature"])
                line += f"; **{len(fell)} fell back** to the crash's own Program: " + "; ".join(
                    e if len(why) == 1 else f"{e} ({', '.join('`' + x + '`' for x in sigs)})" for e, sigs in why.items()
                )
            md.append(line)
        if self.missing:
            md.append(f"- not built (skipped): {', '.join(self.missing)}")
        md += ["", "## Targets", ""]
        md.append("| target | processes | execs | exec/s | coverage | seeds | corpus after merge | crash files | signatures |")
        md.append("|---|---:|---:|---:|---|---:|---:|---:|---|")
        for t in self.targets:
            s = stats[t]
            cov = []
            if s.get("cov") is not None:
                cov.append(f"cov {s['cov']} ft {s['ft']}")
            if s.get("edges") is not None:
                cov.append(f"edges {s['edges']}")
            if s.get("bitmap_cvg"):
                cov.append(f"map {s['bitmap_cvg']}")
            seeds, size, added, _ = self.corpus_sizes.get(t, (len(files_in(self.corpus / "seeds" / t)), None, None, True))
            after = "-" if size is None else str(size)
            if added:
                after += f" (+{added} into seeds)"
            sigs = [r["signature"] for r in results if t in r["targets"]]
            first, last = self.active.get(t, (0.0, 0.0))
            eps = s["execs"] / (last - first) if last > first else 0
            md.append(
                f"| {t} | {self.runs.get(t, 0)} | {s['execs']:,} | {eps:,.0f} | {', '.join(cov) or '-'} | {seeds} | {after} | {len(self.engine.crash_files(t))} | {'<br>'.join('`' + x.replace('|', chr(92) + '|') + '`' for x in sigs) or '-'} |"
            )
        programs = [r for r in results if r["reproducer_from"]]
        if programs:
            md += ["", "## Reproducers", ""]
            md.append("| signature | ops in the crash | ops in reproducer.program | made by | seconds | candidates (cached) | replays alone |")
            md.append("|---|---:|---:|---|---:|---:|---|")
            for r in programs:
                sh = r["shrink"] or {}
                if r["reproducer_from"] == "shrink":
                    by = "`mmfuzz shrink`"
                elif sh:
                    by = "crash Program (no `mmfuzz shrink`)" if sh["status"] == "unavailable" else "crash Program, **shrink failed**"
                else:
                    by = "crash Program"
                secs = fmt_secs(sh["seconds"]) if isinstance(sh.get("seconds"), (int, float)) else "-"
                cands = f"{sh['candidates']} ({sh['cached']})" if sh.get("candidates") is not None else "-"
                rp = {True: "yes", False: "**no**", None: "not checked"}[r["reproducer_replays"]]
                md.append(f"| `{r['signature'].replace('|', chr(92) + '|')}` | {fmt_ops(r['ops_before'])} | {fmt_ops(r['ops_after'])} | {by} | {secs} | {cands} | {rp} |")
        md += ["", "## Crashes by signature", ""]
        if not results:
            md.append("None.")
        for r in results:
            md.append(f"### `{r['signature']}`{' (new)' if r['new'] else ' (known)'}{' (only while fuzzing)' if r['flaky'] else ''}")
            md.append("")
            md.append(f"- {r['title']}")
            if r.get("invariant"):
                md.append(f"- {r.get('kind', 'invariant')} `{r['invariant']}` ({r.get('subsystem', '-')}) at op `{r.get('op', '-')}`")
            size = f"{r['input_size']} bytes" + (f" (minimized from {r['orig_size']})" if r["minimized"] else "")
            md.append(f"- targets: {', '.join(r['targets'])}; crash files: {r['count']}; input: {size}")
            md.append(f"- files: `{rel(self.out / 'crashes' / r['slug'])}/` (input, report.txt" + (", reproducer.program)" if r["has_program"] else ")"))
            if r["reproducer_from"]:
                sh = r["shrink"]
                if r["reproducer_from"] == "shrink":
                    line = f"- reproducer.program: by `mmfuzz shrink`, {fmt_ops(r['ops_before'])} → {fmt_ops(r['ops_after'])} ops in {fmt_secs(sh['seconds'])} s ({sh['candidates']} candidates, {sh['cached']} cached; shrink.json, shrink.log)"
                else:
                    line = f"- reproducer.program: the crash's own Program, {fmt_ops(r['ops_before'])} → {fmt_ops(r['ops_after'])} ops"
                    if sh:
                        what = "not run" if sh["status"] == "unavailable" else "failed"
                        line += f" (**`mmfuzz shrink` {what}**: {sh['error']}" + (f"; {sh['log']})" if sh["log"] else ")")
                if r["reproducer_replays"] is not None:
                    line += "; " + ("`mmfuzz replay` alone reports its signature(s)" if r["reproducer_replays"] else "**does not reproduce** under `mmfuzz replay` alone")
                md.append(line)
            md.append("- reproduce:")
            md.append("")
            md.append("  ```")
            for c in self.repro_commands(r):
                md.append("  " + c)
            md.append("  ```")
            md.append("")
        if self.props is not None:
            rc, out = self.props
            verdict = {0: "every property holds", 1: "**a property failed**"}.get(rc, f"**mmfuzz prop exit {rc}**")
            md += ["## Properties (`mmfuzz prop`)", "", f"{verdict}; details in `{rel(self.out / 'prop' / 'summary.md')}`", "", "```"]
            md += [ln for ln in out.splitlines() if ln.strip()][-40:]
            md += ["```", ""]
        if self.unreproducible:
            md += ["## Crash files that did not reproduce", ""]
            for t, p in self.unreproducible:
                md.append(f"- {t}: `{rel(p)}`")
            md.append("")
        write_atomic(self.out / "summary.md", "\n".join(md) + "\n")
        self.write_junit(results, stats)
        self.write_sarif(results)
        write_atomic(
            self.out / "campaign.json",
            json.dumps(
                {
                    "engine": a.engine,
                    "targets": self.targets,
                    "skipped": self.missing,
                    "time": a.time,
                    "jobs": a.jobs,
                    "plant": a.plant,
                    "fuzz_seconds": round(self.fuzz_seconds, 1),
                    "stats": stats,
                    "crashes": results,
                    "verdict": verdict,
                },
                indent=2,
            )
            + "\n",
        )

    def write_junit(self, results, stats):
        cases = []
        nfail = 0
        for t in self.targets:
            body = ""
            expect = self.args.expect
            if expect:
                fails = []
                if not any(self.expected(r["signature"]) for r in results if t in r["targets"]):
                    body = f"      <failure message={quoteattr(f'expected crash {expect} not found')} type=\"expect\"/>\n"
            else:
                fails = [r for r in results if t in r["targets"] and r["new"]]
            nfail += 1 if fails or body else 0
            for r in fails:
                report = (self.out / "crashes" / r["slug"] / "report.txt").read_text(errors="replace")
                body += f'      <failure message={quoteattr(r["signature"] + ": " + r["title"])} type={quoteattr(r.get("invariant") or invariant_of(r["signature"]))}>{xml_escape(report)}</failure>\n'
            out = f"execs {stats[t]['execs']}"
            first, last = self.active.get(t, (0.0, 0.0))
            case = f'    <testcase classname="mmfuzz.fuzz.{self.args.engine}" name={quoteattr(t)} time="{last - first:.1f}">\n{body}      <system-out>{xml_escape(out)}</system-out>\n    </testcase>\n'
            cases.append(case)
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n'
            f'  <testsuite name="mmfuzz-campaign-{self.args.engine}" tests="{len(self.targets)}" failures="{nfail}" errors="0" time="{self.fuzz_seconds:.1f}">\n'
            + "".join(cases)
            + "  </testsuite>\n</testsuites>\n"
        )
        write_atomic(self.out / "junit.xml", xml)

    def write_sarif(self, results):
        rules = {}
        res = []
        for r in results:
            inv = r.get("invariant") or invariant_of(r["signature"])
            what = f"mmfuzz {r['kind']}" if r.get("kind") else "mmfuzz invariant"
            rules.setdefault(inv, {"id": inv, "name": inv, "shortDescription": {"text": f"{what} {inv}"}})
            d = self.out / "crashes" / r["slug"]
            loc = d / ("reproducer.program" if r["has_program"] else "input")
            try:
                uri = loc.resolve().relative_to(ROOT).as_posix()
                art = {"uri": uri, "uriBaseId": "%SRCROOT%"}
            except ValueError:
                art = {"uri": loc.resolve().as_uri()}
            res.append(
                {
                    "ruleId": inv,
                    "level": "error" if r["new"] else "warning",
                    "message": {"text": f"{r['title']} [{r['signature']}] in fuzz target(s) {', '.join(r['targets'])}"},
                    "locations": [{"physicalLocation": {"artifactLocation": art, "region": {"startLine": 1}}}],
                    "partialFingerprints": {"mmfuzzSignature/v1": r["signature"]},
                    "properties": {"targets": r["targets"], "new": r["new"], "engine": self.args.engine},
                }
            )
        sarif = {
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": "mmfuzz-campaign",
                            "version": "0.1.0",
                            "rules": list(rules.values()),
                        }
                    },
                    "originalUriBaseIds": {"%SRCROOT%": {"uri": ROOT.as_uri() + "/"}},
                    "results": res,
                }
            ],
        }
        write_atomic(self.out / "results.sarif", json.dumps(sarif, indent=2) + "\n")

    def expected(self, sig):
        """--expect: a signature containing one of its comma-separated parts."""
        return any(part and part in sig for part in self.args.expect.split(","))

    def expect_met(self, results):
        return any(self.expected(r["signature"]) for r in results)

    # -------------------------------------------------------- main

    def run(self):
        a = self.args
        self.targets = list(a.targets)
        self.check_tools()
        if not a.no_build:
            self.out.mkdir(parents=True, exist_ok=True)
            self.build()
        self.find_binaries()
        self.find_mmfuzz()
        self.out.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.out / "work", ignore_errors=True)
        self.prepare_inputs()
        self.fuzz()
        self.merge_corpora()
        stats = {t: self.engine.stats(t) for t in self.targets}
        groups = self.triage()
        results = self.write_crashes(groups)
        self.run_props()
        self.write_reports(results, stats)
        for r in results:
            note(f"{'NEW' if r['new'] else 'known'} {r['signature']} ({', '.join(r['targets'])}): {r['title']}")
        note(f"summary: {rel(self.out / 'summary.md')}")
        if a.expect:
            return 0 if self.expect_met(results) else 1
        props_failed = self.props is not None and self.props[0] != 0
        return 1 if any(r["new"] for r in results) or props_failed else 0

    def run_props(self):
        """--prop-time: the properties (`mmfuzz prop`) after the fuzzers, on
        the same cores, their counterexamples saved into the corpus's
        regressions/props/ (replayed first on the next run)."""
        a = self.args
        if not a.prop_time:
            return
        if not self.mmfuzz:
            raise CampaignError("--prop-time needs the mmfuzz binary (build it: cmake --build build/default --target mmfuzz)")
        cmd = [str(self.mmfuzz), "prop", "--time", str(a.prop_time), "--jobs", str(a.jobs or os.cpu_count() or 1),
               "--out", str(self.out / "prop"), "--corpus", str(self.corpus / "regressions" / "props")]
        if a.plant:
            cmd += ["--plant", a.plant]
        note(f"properties: {' '.join(cmd[1:])}")
        rc, out = run_quiet(cmd, timeout=int(a.prop_time) + 600)
        self.props = (rc, out)
        for ln in out.splitlines():
            if ln.startswith(("FAIL", "ERROR")):
                note(ln)


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        die(message)


def parse_args(argv):
    p = OneLineParser(
        prog="ci/campaign.sh",
        description="Run a fuzz campaign over the mmfuzz fuzz targets: build, fuzz in parallel, "
        "merge the corpus, deduplicate and minimize crashes, write summary.md, junit.xml and results.sarif.",
        epilog="Exit codes: 0 clean (with --expect: the expected crash was found), 1 a new violation "
        "(with --expect: not found), 2 bad usage or a build/tool error.",
    )
    p.add_argument("--engine", default="libfuzzer", help="libfuzzer (default), afl or builtin (the plain driver)")
    p.add_argument("--targets", default="all", help="comma-separated: " + ",".join(ALL_TARGETS) + " or all (default)")
    p.add_argument("--time", default="60", help="fuzzing time budget in seconds (default 60)")
    p.add_argument("--jobs", default=None, help="cores to use (default: nproc)")
    p.add_argument("--corpus", default=str(ROOT / "corpus"), help="corpus folder: seeds/<t>/, dict/<t>.dict, regressions/<t>/ (default corpus/)")
    p.add_argument("--out", default="campaign-out", help="output folder (default campaign-out/)")
    p.add_argument("--plant", default=None, help="planted defect to switch on (MMFUZZ_PLANT): " + ", ".join(PLANTS))
    p.add_argument(
        "--expect",
        default=None,
        metavar="SIGNATURE-SUBSTRING",
        help="self-test: exit 0 only if a crash whose signature contains this (or one of its comma-separated parts) is found; stops at it",
    )
    p.add_argument("--no-build", action="store_true", help="use the fuzz targets already built")
    p.add_argument("--no-minimize", action="store_true", help="do not minimize crashes")
    p.add_argument("--update-corpus", action="store_true", help="merge new coverage back into <corpus>/seeds/<t>/")
    p.add_argument("--build-dir", default=None, help="where the fuzz targets are (default build/fuzz, build/afl or build/default by engine)")
    p.add_argument(
        "--mmfuzz",
        default=os.environ.get("MMFUZZ_BIN") or None,
        metavar="PATH",
        help="the mmfuzz binary that shrinks new crashes and replays reproducers (default $MMFUZZ_BIN, else bin/mmfuzz of the build folder, else build/default/bin/mmfuzz)",
    )
    p.add_argument("--prop-time", default="0", help="then run the properties (mmfuzz prop) for this many seconds (default 0: not)")
    p.add_argument("--seed", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.engine not in ENGINES:
        die(f"unknown engine '{a.engine}' (engines: libfuzzer, afl, builtin)")
    names = [s.strip() for s in a.targets.split(",") if s.strip()]
    if not names:
        die("--targets is empty")
    targets = []
    for n in names:
        if n == "all":
            targets += [t for t in ALL_TARGETS if t not in targets]
        elif n in ALL_TARGETS:
            if n not in targets:
                targets.append(n)
        else:
            die(f"unknown target '{n}' (targets: {', '.join(ALL_TARGETS)}, all)")
    a.targets_explicit = "all" not in names
    a.targets = targets
    for name in ("time", "jobs", "seed", "prop_time"):
        v = getattr(a, name)
        if v is None:
            continue
        try:
            iv = int(v)
        except ValueError:
            die(f"--{name} wants a whole number, not '{v}'")
        if iv < (0 if name in ("seed", "prop_time") else 1):
            die(f"--{name.replace('_', '-')} must be at least {0 if name in ('seed', 'prop_time') else 1}")
        setattr(a, name, iv)
    if a.jobs is None:
        a.jobs = os.cpu_count() or 1
    if a.plant is not None and a.plant not in PLANTS:
        die(f"unknown planted defect '{a.plant}' (defects: {', '.join(PLANTS)})")
    if a.expect is not None and not a.expect.strip():
        die("--expect is empty")
    if not Path(a.corpus).is_dir():
        die(f"corpus folder {a.corpus} does not exist")
    if Path(a.out).exists() and not Path(a.out).is_dir():
        die(f"--out {a.out} exists and is not a folder")
    if a.build_dir is not None and not Path(a.build_dir).is_dir():
        die(f"--build-dir {a.build_dir} does not exist")
    return a


def main(argv):
    args = parse_args(argv)
    camp = Campaign(args)

    def on_signal(signo, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        return camp.run()
    except CampaignError as e:
        camp.kill_all()
        clear_progress()
        die(str(e))
    except KeyboardInterrupt:
        camp.kill_all()
        clear_progress()
        print("campaign: error: interrupted", file=sys.stderr)
        return 2
    except OSError as e:
        camp.kill_all()
        clear_progress()
        die(f"{e.filename or ''}: {e.strerror}" if e.strerror else str(e))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
