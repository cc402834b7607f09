#!/usr/bin/env python3
"""Mutation testing of the model (issue 18): does a small change to mm/ get
caught?

Each mutant changes one site of mm/**/*.cpp (a comparison flipped or
loosened, && and || swapped, a +1/-1 dropped, a constant nudged, a
statement that counts or clears something dropped), in a scratch worktree
of HEAD with its own build directory; the build is incremental. A mutant is

  killed    when something the project runs says so: the replay of the
            bundled traces (invariants, misuse reports and the fidelity
            baselines of corpus/fidelity/), `mmfuzz prop` for --prop-time
            seconds, and each model fuzz target's built-in driver for
            --fuzz-time seconds;
  survived  when all of them pass;
  stillborn when it does not compile (not counted).

  scripts/mutate.py --mutants 50 --seed 1 --out mutants.md
  scripts/mutate.py --list | head        # the sites, without building

The mutant set is a function of --seed and the tree: the sites are listed
in a fixed order and --mutants of them drawn. The report lists every mutant
with its verdict and what killed it; the score is killed / (killed +
survived).
"""
import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (name, regex, replacement): applied to one match on one line.
OPERATORS = [
    ("lt->le", re.compile(r"(?<=[\w\)\]]) < (?=[\w\(])"), " <= "),
    ("le->lt", re.compile(r" <= "), " < "),
    ("gt->ge", re.compile(r"(?<=[\w\)\]]) > (?=[\w\(])"), " >= "),
    ("ge->gt", re.compile(r" >= "), " > "),
    ("eq->ne", re.compile(r" == "), " != "),
    ("ne->eq", re.compile(r" != "), " == "),
    ("and->or", re.compile(r" && "), " || "),
    ("or->and", re.compile(r" \|\| "), " && "),
    ("drop+1", re.compile(r" \+ 1\b"), ""),
    ("drop-1", re.compile(r" - 1\b"), ""),
    ("const+1", re.compile(r"(?<=[=<>(,] )([2-9]|[1-9]\d+)(?=[;,)\s])"), None),
    ("drop++", re.compile(r"^(\s*)(\+\+|--)?[\w.\[\]>-]+(\+\+|--)?;\s*$"), None),
]

SKIP_LINE = re.compile(r"^\s*(//|#|\*|/\*)|static_assert|fmt::format|snprintf|report|throw |"
                       r"std::string|\"[^\"]*\"|for \(|LOG|assert\(")


def sites(files):
    out = []
    for path in files:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if SKIP_LINE.search(line):
                    continue
                for name, rx, _ in OPERATORS:
                    if name == "drop++":
                        if rx.match(line) and ("++" in line or "--" in line):
                            out.append((path, n, name, 0))
                        continue
                    for k, _m in enumerate(rx.finditer(line)):
                        out.append((path, n, name, k))
    return out


def mutate_line(line, name, k):
    for op, rx, rep in OPERATORS:
        if op != name:
            continue
        if name == "drop++":
            return re.sub(r"\S.*$", ";  // mutant: dropped", line.rstrip("\n")) + "\n"
        matches = list(rx.finditer(line))
        if k >= len(matches):
            return None
        m = matches[k]
        new = str(int(m.group(1)) + 1) if name == "const+1" else rep
        return line[: m.start()] + new + line[m.end():]
    return None


def run(cmd, cwd, timeout):
    try:
        p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, text=True, errors="replace")
        return p.returncode, p.stdout
    except subprocess.TimeoutExpired:
        return "timeout", ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mutants", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--prop-time", type=float, default=10)
    ap.add_argument("--fuzz-time", type=int, default=5)
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "mutants"),
                    help="scratch worktree and build (default build/mutants)")
    ap.add_argument("--out", default="", help="write the report (markdown) here")
    ap.add_argument("--files", default="mm/", help="paths under the tree to mutate (prefix)")
    ap.add_argument("--list", action="store_true", help="list the sites and exit")
    a = ap.parse_args()
    if a.mutants < 1 or a.prop_time < 0 or a.fuzz_time < 0:
        sys.exit("mutate.py: --mutants must be >= 1, times >= 0")
    files = subprocess.run(["git", "ls-files", a.files], cwd=ROOT, stdout=subprocess.PIPE,
                           text=True, check=True).stdout.split()
    files = sorted(f for f in files if f.endswith(".cpp") and "/testing/" not in f)
    if not files:
        sys.exit(f"mutate.py: no .cpp files under {a.files}")
    all_sites = sites(files)
    if a.list:
        for s in all_sites:
            print("%s:%d %s #%d" % s)
        return 0
    rng = random.Random(a.seed)
    chosen = sorted(rng.sample(all_sites, min(a.mutants, len(all_sites))))

    wt = os.path.join(a.work, "tree")
    if os.path.exists(wt):
        subprocess.run(["git", "worktree", "remove", "--force", wt], cwd=ROOT)
        shutil.rmtree(wt, ignore_errors=True)
    os.makedirs(a.work, exist_ok=True)
    subprocess.run(["git", "worktree", "add", "--detach", "-f", wt, "HEAD"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    build = os.path.join(wt, "build", "default")
    env_targets = ["mmfuzz", "fuzz_page_alloc", "fuzz_slub", "fuzz_slab", "fuzz_slob", "fuzz_vm",
                   "fuzz_mm"]
    print(f"mutate.py: {len(all_sites)} sites in {len(files)} files; {len(chosen)} mutants, "
          f"seed {a.seed}; tree {wt}", flush=True)
    rc, out = run(["cmake", "--preset", "default"], wt, 600)
    if rc != 0:
        sys.exit("mutate.py: configure failed:\n" + out[-2000:])
    rc, out = run(["cmake", "--build", build, "--target"] + env_targets, wt, 3600)
    if rc != 0:
        sys.exit("mutate.py: the unmutated tree does not build:\n" + out[-2000:])
    mm = os.path.join(build, "bin", "mmfuzz")
    checks = [
        ("replay boot-shell", [mm, "replay", "--quiet", "corpus/traces/arm64-6.1-boot-shell.trace.zst",
                               "--fidelity-baseline", "corpus/fidelity/arm64-6.1-boot-shell.json"]),
        ("replay pressure", [mm, "replay", "--quiet", "--ram", "256M",
                             "corpus/traces/arm64-6.1-pressure.trace.zst",
                             "--fidelity-baseline", "corpus/fidelity/arm64-6.1-pressure.json"]),
    ]
    if a.prop_time:
        checks.append(("prop", [mm, "prop", "--seed", "1", "--time", str(a.prop_time),
                                "--corpus", os.path.join(a.work, "props-db"), "--no-shrink"]))
    if a.fuzz_time:
        for t in env_targets[1:]:
            short = t[len("fuzz_"):]
            seeds = os.path.join(wt, "corpus", "seeds", short)
            checks.append((t, [os.path.join(build, "bin", t), f"-max_total_time={a.fuzz_time}",
                               "-seed=1", f"-artifact_prefix={a.work}/"] +
                           ([seeds] if os.path.isdir(seeds) else [])))
    # The unmutated tree must pass every check, or the verdicts mean nothing.
    for name, cmd in checks:
        shutil.rmtree(os.path.join(a.work, "props-db"), ignore_errors=True)
        rc, out = run(cmd, wt, 600)
        if rc != 0:
            sys.exit(f"mutate.py: the unmutated tree fails {name} (exit {rc}):\n" + out[-2000:])
    results = []
    for i, (path, n, name, k) in enumerate(chosen, 1):
        src = os.path.join(wt, path)
        with open(src, encoding="utf-8") as f:
            lines = f.readlines()
        old = lines[n - 1]
        new = mutate_line(old, name, k)
        if new is None or new == old:
            continue
        lines[n - 1] = new
        with open(src, "w", encoding="utf-8") as f:
            f.writelines(lines)
        t0 = time.time()
        verdict, killer = "survived", ""
        rc, out = run(["cmake", "--build", build, "--target"] + env_targets, wt, 1800)
        if rc != 0:
            verdict = "stillborn"
        else:
            for cname, cmd in checks:
                shutil.rmtree(os.path.join(a.work, "props-db"), ignore_errors=True)
                rc, out = run(cmd, wt, 300)
                if rc != 0:
                    verdict, killer = "killed", f"{cname} (exit {rc})"
                    break
        lines[n - 1] = old
        with open(src, "w", encoding="utf-8") as f:
            f.writelines(lines)
        r = {"file": path, "line": n, "operator": name, "old": old.strip(), "new": new.strip(),
             "verdict": verdict, "by": killer, "seconds": round(time.time() - t0, 1)}
        results.append(r)
        print(f"[{i}/{len(chosen)}] {verdict:9} {path}:{n} {name} {killer}", flush=True)
    # Restore the unmutated build (the next run starts from it).
    run(["cmake", "--build", build, "--target"] + env_targets, wt, 1800)
    killed = sum(r["verdict"] == "killed" for r in results)
    survived = sum(r["verdict"] == "survived" for r in results)
    score = 100.0 * killed / max(killed + survived, 1)
    md = [f"# Mutants: {killed} killed, {survived} survived, "
          f"{sum(r['verdict'] == 'stillborn' for r in results)} stillborn; score {score:.1f} %", "",
          f"`scripts/mutate.py --mutants {a.mutants} --seed {a.seed} --prop-time {a.prop_time} "
          f"--fuzz-time {a.fuzz_time}`", "",
          "| verdict | site | operator | change | killed by |", "|---|---|---|---|---|"]
    for r in results:
        md.append(f"| {r['verdict']} | {r['file']}:{r['line']} | {r['operator']} | "
                  f"`{r['old'][:70]}` → `{r['new'][:70]}` | {r['by']} |".replace("|`", "| `"))
    text = "\n".join(md) + "\n"
    if a.out:
        tmp = a.out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, a.out)
        with open(a.out + ".json", "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    print(text)
    subprocess.run(["git", "worktree", "remove", "--force", wt], cwd=ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
