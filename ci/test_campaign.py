#!/usr/bin/env python3
"""ci/campaign.py reads our crash reports' findings from their MMFUZZ-JSON
line, not from the text for people; sanitizer reports still by their text;
and a new signature's reproducer.program is what `mmfuzz shrink` makes of
the crash file, the crash's own Program when shrink fails.

    test_campaign.py path/to/fuzz_page_alloc   (a driver build with planted defects)

Runs the target on a Program that the planted buddy_skip_merge defect makes
crash, and checks what the campaign's parser takes from the output. Then runs
the campaign's triage and reports on that crash (as fuzz bytes from
fuzz_encode, when it is built next to the target) with a stand-in mmfuzz
whose shrink succeeds, fails, or writes a Program that does not reproduce,
and with the real bin/mmfuzz next to the target when it has `shrink`.
Prints "N passed, M failed"; exit 1 on a failure.
"""

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("campaign", HERE / "campaign.py")
campaign = importlib.util.module_from_spec(spec)
spec.loader.exec_module(campaign)

# An order-3 block freed next to its free buddy: the planted defect stops
# the merge there, and the buddy checker sees two free buddies.
PROGRAM = """# mmfuzz program v1
           <...>-0       [000] .....     0.000001: mm_page_alloc: page=0000000000000000 pfn=0x1000 order=3 migratetype=0 gfp_flags=GFP_KERNEL
           <...>-0       [000] .....     0.000003: mm_page_free: page=0000000000000000 pfn=0x1000 order=3
           <...>-0       [000] .....     0.000005: mmfuzz_drain_all_pages:
           <...>-0       [000] .....     0.000006: mmfuzz_check:
"""

ASAN = """==123==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000000011 at pc 0x1 bp 0x2 sp 0x3
READ of size 1 at 0x602000000011 thread T0
    #0 0x55d in mmfuzz::trace::TextParser::parse(std::basic_string_view<char>) /src/trace/text_parse.cpp:10:3
    #1 0x55e in LLVMFuzzerTestOneInput /src/fuzz/targets/trace_text.cpp:20:1
SUMMARY: AddressSanitizer: heap-buffer-overflow /src/trace/text_parse.cpp:10:3 in parse
"""

passed = failed = 0


def check(what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok:   {what}")
    else:
        failed += 1
        print(f"FAIL: {what}" + (f"\n  {detail}" if detail else ""))


def main(binary):
    with tempfile.TemporaryDirectory() as tmp:
        prog = Path(tmp) / "crash.program"
        prog.write_text(PROGRAM)
        env = dict(os.environ, MMFUZZ_PLANT="buddy_skip_merge")
        proc = subprocess.run([binary, str(prog)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        out = proc.stdout.decode(errors="replace")

    check("the planted defect crashes the target", proc.returncode != 0, out[-2000:])
    lines = [l for l in out.splitlines() if l.startswith("MMFUZZ-JSON: ")]
    check("one MMFUZZ-JSON line", len(lines) == 1, out[-2000:])
    j = campaign.crash_json(out)
    check("it parses as an mmfuzz-crash-1 object", j is not None and j["target"] == "page_alloc", lines)
    if j is None:
        return
    f = j["findings"][0]
    for key in ("invariant", "kind", "subsystem", "signature", "title", "details", "op_index", "op", "pfns", "addrs", "history"):
        check(f"finding has {key}", key in f)
    check("op provenance", all(k in f["op"] for k in ("index", "kind")), f["op"])

    sigs, title, crashed = campaign.signatures_of(out, "page_alloc", proc.returncode)
    distinct = list(dict.fromkeys(x["signature"] for x in j["findings"]))
    check("signatures from the JSON", crashed and sigs == distinct == j["signatures"], sigs)
    check("the buddy checker's signature", any(s.startswith("buddy.coalesced|") for s in sigs), sigs)
    check("title from the JSON", title == f["title"], title)
    info = campaign.finding_of(out)
    check("invariant, kind, op", info.get("invariant") == f["invariant"] and info.get("kind") == "invariant" and info.get("op") == f["op"]["kind"], info)

    # The text for people does not decide: a changed signature line leaves
    # the signatures as the JSON says.
    forged = out.replace("MMFUZZ-SIGNATURE: buddy.", "MMFUZZ-SIGNATURE: forged.")
    check("MMFUZZ-SIGNATURE text is not parsed", campaign.signatures_of(forged, "page_alloc", 1)[0] == sigs)
    # Our report without a readable JSON line: said so, not guessed.
    cut = "\n".join(l for l in out.splitlines() if not l.startswith("MMFUZZ-JSON: "))
    s2, _, c2 = campaign.signatures_of(cut, "page_alloc", -6)
    check("report without JSON is unreadable, not guessed", c2 and s2 == ["mmfuzz.unreadable-report|page_alloc"], s2)
    broken = out.replace('"schema":"mmfuzz-crash-1"', '"schema":"other"')
    check("a JSON line of another schema is not ours", campaign.crash_json(broken) is None)
    # Sanitizer reports: their text, as before.
    s3, t3, c3 = campaign.signatures_of(ASAN, "trace_text", 1)
    check("ASan report parsed from its text", c3 and s3 == ["asan.heap-buffer-overflow|trace::TextParser::parse"], s3)
    check("ASan has no finding JSON", campaign.finding_of(ASAN) == {})
    check("clean output: no signature", campaign.signatures_of("ran 1 inputs\n", "page_alloc", 0) == ([], None, False))
    json.dumps(j)  # what the campaign stores must serialize

    check("count_ops counts op lines, not the header", campaign.count_ops(campaign.parse_program(out)) == 4, campaign.parse_program(out))
    shrink_tests(binary, sigs[0], campaign.parse_program(out))


# A stand-in for bin/mmfuzz: `shrink` as FAKE_SHRINK says (copy: writes the
# Program FAKE_SHRINK_PROGRAM names; fail: exit 2 with a one-line error;
# bogus: a Program without ops), every other subcommand is the real mmfuzz's.
FAKE_MMFUZZ = """#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
if args == ["--help"]:
    print("Subcommands:\\n  replay   replay\\n  shrink   reduce a failing input")
    sys.exit(0)
if args[:1] != ["shrink"]:
    real = os.environ["FAKE_REAL_MMFUZZ"]
    os.execv(real, [real] + args)
with open(os.environ["FAKE_ARGS_LOG"], "a") as f:
    f.write(json.dumps(args) + "\\n")
mode = os.environ["FAKE_SHRINK"]
if mode == "fail":
    print("mmfuzz: error: stand-in shrink failed", file=sys.stderr)
    sys.exit(2)
out = args[args.index("-o") + 1]
text = open(os.environ["FAKE_SHRINK_PROGRAM"]).read()
if mode == "bogus":
    text = "\\n".join(l for l in text.splitlines() if l.startswith("#")) + "\\n"
ops = sum(1 for l in text.splitlines() if l.strip() and not l.startswith("#"))
open(out, "w").write(text)
j = {"schema": "mmfuzz-shrink-1", "ops_before": 40, "ops_after": ops, "seconds": 0.5, "candidates": 12, "cached": 3,
     "signature": args[args.index("--signature") + 1], "output": out}
open(args[args.index("--json") + 1], "w").write(json.dumps(j))
print(f"shrink: 40 ops -> {ops} ops in 0.5 s, 12 candidates (3 cached), signature {j['signature']}")
"""


def run_campaign(tmp, binary, mmfuzz, crash):
    """The campaign's triage and reports (no fuzzing) on one crash file, with
    build/bin/{fuzz_page_alloc,mmfuzz} and an empty corpus: every signature
    is new."""
    build = tmp / "build"
    (build / "bin").mkdir(parents=True)
    os.symlink(Path(binary).resolve(), build / "bin" / "fuzz_page_alloc")
    os.symlink(Path(mmfuzz).resolve(), build / "bin" / "mmfuzz")
    (tmp / "corpus").mkdir()
    out = tmp / "out"
    args = campaign.parse_args(
        ["--engine", "builtin", "--no-build", "--build-dir", str(build), "--targets", "page_alloc", "--plant", "buddy_skip_merge",
         "--corpus", str(tmp / "corpus"), "--out", str(out), "--time", "6", "--jobs", "1", "--seed", "1"]
    )
    camp = campaign.Campaign(args)
    camp.targets = list(args.targets)
    camp.find_binaries()
    camp.find_mmfuzz()
    art = camp.engine.work("page_alloc") / "artifacts"
    art.mkdir(parents=True)
    shutil.copyfile(crash, art / "crash-test")
    camp.corpus_sizes = {}
    results = camp.write_crashes(camp.triage())
    camp.write_reports(results, {"page_alloc": camp.engine.stats("page_alloc")})
    summary = (out / "summary.md").read_text()
    data = json.loads((out / "campaign.json").read_text())
    return camp, results, summary, data


def replay_signatures(mmfuzz, program):
    with tempfile.TemporaryDirectory() as tmp:
        js = Path(tmp) / "r.json"
        subprocess.run([mmfuzz, "replay", "--quiet", "--json", str(js), str(program)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        try:
            return json.loads(js.read_text()).get("signatures", [])
        except (OSError, ValueError):
            return []


def shrink_tests(binary, sig, crash_program):
    bindir = Path(binary).resolve().parent
    real = bindir / "mmfuzz"
    if not real.exists():
        check(f"bin/mmfuzz next to {binary} (the shrink tests need it)", False)
        return
    saved = {k: os.environ.pop(k, None) for k in ("MMFUZZ_BIN", "MMFUZZ_PLANT")}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        # The crash as fuzz bytes, as a fuzzer writes it (its Program text
        # when fuzz_encode is not built).
        prog = tmp / "crash.program"
        prog.write_text(PROGRAM)
        crash = tmp / "crash.bin"
        enc = bindir / "fuzz_encode"
        if enc.exists():
            subprocess.run([str(enc), "page_alloc", str(prog), str(crash)], stdout=subprocess.DEVNULL, check=True, timeout=60)
        else:
            shutil.copyfile(prog, crash)
        shrunk = tmp / "shrunk.program"
        shrunk.write_text(crash_program)
        fake = tmp / "mmfuzz-fake"
        fake.write_text(FAKE_MMFUZZ)
        fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
        os.environ.update(FAKE_REAL_MMFUZZ=str(real), FAKE_ARGS_LOG=str(tmp / "args.log"), FAKE_SHRINK_PROGRAM=str(shrunk))
        try:
            # 1. shrink works: its Program is the reproducer.
            os.environ["FAKE_SHRINK"] = "copy"
            camp, res, summary, data = run_campaign(tmp / "copy", binary, fake, crash)
            r = next((x for x in res if x["signature"] == sig), None)
            check("the crash is triaged under its signature", r is not None, [x["signature"] for x in res])
            if r is not None:
                calls = [json.loads(l) for l in (tmp / "args.log").read_text().splitlines()]
                check("shrink ran once per new signature", sorted(c[c.index("--signature") + 1] for c in calls) == sorted(x["signature"] for x in res), calls)
                call = next((c for c in calls if c[c.index("--signature") + 1] == sig), [])
                opt = lambda k: call[call.index(k) + 1] if k in call else None
                check("shrink's arguments: crash file, target, -o, signature, time, json",
                      call[:1] == ["shrink"] and Path(call[1]).name == "crash-test" and opt("--target") == "page_alloc" and opt("--time") == "60"
                      and (opt("-o") or "").endswith(r["slug"] + "/reproducer.program") and (opt("--json") or "").endswith("shrink.json"), call)
                d = camp.out / "crashes" / r["slug"]
                check("reproducer.program is shrink's output", (d / "reproducer.program").read_text() == crash_program)
                check("reported as shrunk", r["reproducer_from"] == "shrink" and r["shrink"]["status"] == "shrunk", r["shrink"])
                check("ops before and after from shrink's JSON", r["ops_before"] == 40 and r["ops_after"] == 4, (r["ops_before"], r["ops_after"]))
                check("the reproducer was checked with mmfuzz replay", r["reproducer_replays"] is True, r)
                check("shrink.json and shrink.log kept, paths final", (d / "shrink.json").exists() and ".crashes.tmp" not in (d / "shrink.json").read_text() + (d / "shrink.log").read_text())
                check("the input is the crash file, not byte-trimmed", not r["minimized"] and (d / "input").read_bytes() == crash.read_bytes())
                check("summary: ops before -> after", "by `mmfuzz shrink`, 40 → 4 ops" in summary and "| 40 | 4 | `mmfuzz shrink` |" in summary, summary)
                check("summary: shrink line", f"- shrink: {len(res)} of {len(res)} new signature(s) reduced by `mmfuzz shrink`" in summary, summary)
                check("campaign.json: shrink per crash", data["crashes"][0]["shrink"]["candidates"] == 12 and data["crashes"][0]["reproducer_from"] == "shrink")

            # 2. shrink fails: the crash's own Program, said so.
            os.environ["FAKE_SHRINK"] = "fail"
            camp, res, summary, data = run_campaign(tmp / "fail", binary, fake, crash)
            r = next((x for x in res if x["signature"] == sig), None)
            if r is not None:
                d = camp.out / "crashes" / r["slug"]
                check("shrink failed: fallback to the crash's Program", r["reproducer_from"] == "crash" and r["shrink"]["status"] == "failed", r)
                check("the error is shrink's one line", "stand-in shrink failed" in (r["shrink"]["error"] or ""), r["shrink"])
                check("the fallback reproducer replays", r["reproducer_replays"] is True and sig in replay_signatures(str(real), d / "reproducer.program"))
                check("fallback ops counted from the Programs", r["ops_before"] == 4 and r["ops_after"] is not None and r["ops_after"] <= 4, (r["ops_before"], r["ops_after"]))
                check("summary says it fell back", f"**{len(res)} fell back**" in summary and "shrink failed" in summary, summary)

            # 3. shrink writes a Program that does not reproduce: rejected.
            os.environ["FAKE_SHRINK"] = "bogus"
            camp, res, summary, data = run_campaign(tmp / "bogus", binary, fake, crash)
            r = next((x for x in res if x["signature"] == sig), None)
            if r is not None:
                d = camp.out / "crashes" / r["slug"]
                check("a shrunk Program that does not replay is rejected", r["reproducer_from"] == "crash" and r["shrink"]["status"] == "no-replay", r["shrink"])
                check("... kept aside, the crash's Program used", (d / "shrink-rejected.program").exists() and r["reproducer_replays"] is True)

            # 4. The real mmfuzz shrink, once it exists.
            if not campaign.has_shrink(real):
                print(f"note: {real} has no shrink subcommand yet: checking the fallback")
                camp, res, summary, data = run_campaign(tmp / "real", binary, real, crash)
                r = next((x for x in res if x["signature"] == sig), None)
                if r is not None:
                    check("mmfuzz without shrink: the crash's Program, said why", r["reproducer_from"] == "crash" and r["shrink"]["status"] == "unavailable" and "has no shrink subcommand" in (r["shrink"]["error"] or ""), r["shrink"])
            else:
                camp, res, summary, data = run_campaign(tmp / "real", binary, real, crash)
                r = next((x for x in res if x["signature"] == sig), None)
                if r is not None:
                    d = camp.out / "crashes" / r["slug"]
                    check("real shrink: reproducer from shrink", r["reproducer_from"] == "shrink", r["shrink"])
                    check("real shrink: no more ops than the crash", r["ops_after"] is not None and r["ops_before"] is not None and 0 < r["ops_after"] <= r["ops_before"], r["shrink"])
                    check("real shrink: replays alone with the signature", r["reproducer_replays"] is True and sig in replay_signatures(str(real), d / "reproducer.program"))
        finally:
            for k in ("FAKE_SHRINK", "FAKE_REAL_MMFUZZ", "FAKE_ARGS_LOG", "FAKE_SHRINK_PROGRAM"):
                os.environ.pop(k, None)
            for k, v in saved.items():
                if v is not None:
                    os.environ[k] = v


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)
