#!/usr/bin/env python3
"""ci/campaign.py reads our crash reports' findings from their MMFUZZ-JSON
line, not from the text for people; sanitizer reports still by their text.

    test_campaign.py path/to/fuzz_page_alloc   (a driver build with planted defects)

Runs the target on a Program that the planted buddy_skip_merge defect makes
crash, and checks what the campaign's parser takes from the output.
Prints "N passed, M failed"; exit 1 on a failure.
"""

import importlib.util
import json
import os
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


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)
