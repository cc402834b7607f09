#!/usr/bin/env python3
"""Regenerates the fuzz dictionaries from the source tables they mirror.

  corpus/dict/trace_text.dict    kmem trace text: event names and fields the
                                 text parser knows (trace/text_parse.cpp), GFP
                                 flag names (mm/page_alloc/gfp.cpp), the
                                 literal tokens of ftrace / trace-cmd report /
                                 perf script lines.
  corpus/dict/program_text.dict  the Program text: its events and fields
                                 (program/text.cpp), GFP and slab flag
                                 names (mm/slab/slab_common.cpp).

Usage: scripts/make_dicts.py [--check]
  --check: write nothing; exit 1 if a dictionary is not what the sources give.
Format: libFuzzer / AFL++ dictionaries, one "token" per line, with \\\\, \\"
and \\xNN escapes.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def src(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def block(text, start_pattern):
    """The text from start_pattern's match to the next '};'."""
    m = re.search(start_pattern, text)
    if not m:
        sys.exit(f"make_dicts: '{start_pattern}' not found: the source changed shape")
    end = text.index("};", m.end())
    return text[m.end():end]


def strings_in(text):
    return re.findall(r'"((?:[^"\\]|\\.)*)"', text)


def need(tokens, what):
    if not tokens:
        sys.exit(f"make_dicts: no {what} found: the source changed shape")
    return tokens


def escape(tok):
    out = []
    for ch in tok.encode("latin-1"):
        c = chr(ch)
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif ch < 0x20 or ch >= 0x7F:
            out.append(f"\\x{ch:02x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def unescape_c(s):
    """A C string literal's body (only the escapes the sources use)."""
    return (s.encode("latin-1").decode("unicode_escape"))


def gfp_names():
    text = block(src("mm/page_alloc/gfp.cpp"), r"constexpr GfpName kGfpNames\[\] = \{")
    return need(strings_in(text), "GFP names")


def slab_flag_names():
    text = block(src("mm/slab/slab_common.cpp"), r"constexpr FlagName kSlabFlagNames\[\] = \{")
    return need(strings_in(text), "slab flag names")


def trace_text_tokens():
    tp = src("trace/text_parse.cpp")
    classify = block(tp, r"EventType classify\(std::string_view n\) \{")
    events = need(re.findall(r'n == "([^"]+)"', classify), "event names")
    keys = [k for k in strings_in(block(tp, r"constexpr const char\* kKeyNames\[kNrKeys\] = \{")) if k]
    need(keys, "field names")
    literals = [unescape_c(s) for s in
                re.findall(r'starts_with\([^;]*?,\s*"((?:[^"\\]|\\.)*)"\)', tp)]
    need(literals, "starts_with literals")
    toks = []
    toks += ["# tracer: nop", "# entries-in-buffer/entries-written: 1/1   #P:2",
             "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION"]
    for e in events:
        toks += [e, e + ": "]
    toks += ["kmem:", "vmalloc:", "ftrace:", "tracing_mark_write: ", "print: ", "mmfuzz_"]
    toks += [k + "=" for k in keys]
    toks += ["va_start: "]
    toks += gfp_names()
    toks += ["|", "none", "0x", "ffff", "0000000000000000", "fffffc545b0f9040", "(nil)", "(null)",
             "true", "false", "-1", "B"]
    toks += literals
    toks += ["CPU:0 [LOST 3 EVENTS]", "CPU:1 [LOST EVENTS]", "CPU:1 [12 EVENTS DROPPED]",
             "CPU:0 [EVENTS DROPPED]", "PERF_RECORD_LOST lost ", "[FAILED TO PARSE]"]
    toks += ["<idle>-0", "<...>", "-1 ", " [000] ", " [001] ", ".....", "d....", "..s1.", "d.s2",
             "(-------)", "(   1230)", "0.000000: ", "12.345678901: ", "+0x1c/0x40",
             "kworker/u4:1-45", " 351/352 "]
    toks += ["MM_FILEPAGES", "MM_ANONPAGES", "MM_SWAPENTS", "MM_SHMEMPAGES"]
    toks += ["\r\n", "\t", "\x1f\x8b\x08\x00", "\x28\xb5\x2f\xfd"]
    return toks


def program_text_tokens():
    pt = src("program/text.cpp")
    fmt_events = re.findall(r'"(?:mm_page_alloc|mm_page_free|kmalloc|kfree|kmem_cache_\w+|mmfuzz_\w+):',
                            pt)
    events = sorted({e.rstrip(":").strip('"') for e in fmt_events})
    ext = need(re.findall(r'\{"([a-z_]+)", parse_as<', pt), "extension event names")
    events += ["mmfuzz_" + e for e in ext]
    keys = set(re.findall(r'(?:u64|i64|str|pick|get|ranged)\("([a-z_]+)"', pt))
    keys |= set(re.findall(r'[ "]([a-z_]+)=\{', pt))
    need(keys, "field names")
    enums = []
    for arr in ("kVmallocApis", "kIoremapApis", "kPoolKinds", "kKmapApis", "kKunmapApis",
                "kIoReadApis", "kIoWriteApis"):
        enums += need(strings_in(block(pt, r"const char\* const " + arr + r"\[\] = \{")), arr)
    toks = ["# mmfuzz program v2", "# mmfuzz program v1", "# mmfuzz program", "#"]
    # The v2 header (program/header.cpp): its keys and their values.
    hd = src("program/header.cpp")
    hkeys = need(re.findall(r'\{"([a-z_]+)", (?:true|false), set_', hd), "header keys")
    toks += ["# " + k + ": " for k in hkeys]
    toks += need(strings_in(block(hd, r"kCheckModes = \{")), "check modes")
    toks += need(strings_in(block(hd, r"kSlabs = \{")), "allocators")
    toks += need(strings_in(block(src("program/header.h"), r"kHeaderMachines\[\] = \{")), "machines")
    toks += need(strings_in(block(src("mm/planted.cpp"), r"kDefectNames = \{")), "planted defects")
    toks += ["on", "off", "16M", "1G", "0x40000000", "FZPU", "linux-6.1-arm64", "linux-5.10-arm64",
             "buddy.*,slab.*", "ram_size = 32M"]
    seen = set()
    for e in events:
        if e not in seen:
            seen.add(e)
            toks += [e + ": "]
    toks += [k + "=" for k in sorted(keys)]
    toks += enums
    toks += gfp_names()
    toks += slab_flag_names()
    toks += ["|", "none", "0", "0x", "0x0", "ctor=none", "(null)", "<...>-0", " [000] ", " [001] ",
             ".....", "0.000000: ", "5.000000001: ", "tracing_mark_write: ", "print: ",
             "0000000000000001", "ffff000012345678", "page=0000000000000000 ", "-1", "true",
             "false", "accounted=", "\r\n"]
    return toks


def render(name, sources, toks):
    lines = [f"# {name}: generated by scripts/make_dicts.py from {', '.join(sources)}.",
             "# Do not edit: run scripts/make_dicts.py after changing those tables."]
    seen = set()
    for t in toks:
        if t and t not in seen:
            seen.add(t)
            lines.append(escape(t))
    return "\n".join(lines) + "\n"


def main():
    check = "--check" in sys.argv[1:]
    dicts = {
        "corpus/dict/trace_text.dict": render(
            "trace_text.dict", ["trace/text_parse.cpp", "mm/page_alloc/gfp.cpp"],
            trace_text_tokens()),
        "corpus/dict/program_text.dict": render(
            "program_text.dict",
            ["program/text.cpp", "program/header.cpp", "mm/page_alloc/gfp.cpp",
             "mm/slab/slab_common.cpp"],
            program_text_tokens()),
    }
    stale = []
    for path, text in dicts.items():
        full = os.path.join(ROOT, path)
        old = None
        if os.path.exists(full):
            with open(full, encoding="latin-1") as f:
                old = f.read()
        if old == text:
            continue
        if check:
            stale.append(path)
            continue
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="latin-1") as f:
            f.write(text)
        print(f"make_dicts: wrote {path} ({text.count(chr(10)) - 2} tokens)")
    if stale:
        print("make_dicts: out of date (run scripts/make_dicts.py): " + " ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
