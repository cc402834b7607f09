// The text-trace line parser (trace/text_parse.h): real lines of the 6.1
// arm64 recordings (ftrace, trace-cmd report, perf script), hand-written
// lines in the 5.10 and current formats, context-column variants, lost
// markers, truncated and garbage lines, and whole-trace event counts.
#include <gtest/gtest.h>
#include <zstd.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "mm/page_alloc/gfp.h"
#include "trace/text_parse.h"

namespace mmfuzz::trace {
namespace {

using namespace mmfuzz::mm;

struct Parsed {
  LineStatus status;
  TraceEvent ev;
  std::string error;
};

// Parses `line` with a fresh parser. The views in ev point into `line`.
Parsed parse1(std::string_view line) {
  TextParser p;
  Parsed r;
  r.status = p.parse(line, r.ev, &r.error);
  return r;
}

TraceEvent expect_event(std::string_view line) {
  Parsed r = parse1(line);
  EXPECT_EQ(r.status, LineStatus::event) << line << "\n  error: " << r.error;
  return r.ev;
}

std::string expect_malformed(std::string_view line) {
  Parsed r = parse1(line);
  EXPECT_EQ(r.status, LineStatus::malformed) << line;
  EXPECT_EQ(r.error.find('\n'), std::string::npos);
  return r.error;
}

void expect_skipped(std::string_view line) {
  Parsed r = parse1(line);
  EXPECT_EQ(r.status, LineStatus::skipped) << line << " parsed as " << event_type_name(r.ev.type);
}

constexpr std::uint64_t us(std::uint64_t sec, std::uint64_t usec) {
  return sec * 1000000000ull + usec * 1000ull;
}

// ---------------------------------------------------------------------------
// ftrace text, Linux 6.1 (lines copied from samples-arm64-6.1.txt).

TEST(TraceParseFtrace61, Kmalloc) {
  const TraceEvent ev = expect_event(
      "            init-1       [001] .....     0.533568: kmalloc: "
      "call_site=__register_sysctl_table+0x4c4/0x9e0 ptr=ffff1516c8353900 bytes_req=251 "
      "bytes_alloc=256 gfp_flags=GFP_KERNEL|__GFP_ZERO node=-1 accounted=false");
  EXPECT_EQ(ev.type, EventType::kmalloc);
  EXPECT_EQ(ev.comm, "init");
  EXPECT_EQ(ev.pid, 1);
  EXPECT_EQ(ev.cpu, 1);
  EXPECT_EQ(ev.ts_ns, us(0, 533568));
  EXPECT_EQ(ev.call_site, "__register_sysctl_table+0x4c4/0x9e0");
  EXPECT_EQ(ev.ptr, 0xffff1516c8353900u);
  EXPECT_EQ(ev.bytes_req, 251u);
  EXPECT_EQ(ev.bytes_alloc, 256u);
  EXPECT_TRUE(ev.has_gfp);
  EXPECT_EQ(ev.gfp, GFP_KERNEL | __GFP_ZERO);
  EXPECT_EQ(ev.node, -1);
  EXPECT_FALSE(ev.accounted);
  EXPECT_EQ(ev.name, "");
}

TEST(TraceParseFtrace61, KmallocAccounted) {
  const TraceEvent ev = expect_event(
      "            init-1       [001] .....     0.534563: kmalloc: "
      "call_site=fib_default_rule_add+0x44/0xd0 ptr=ffff1516c5c4ee00 bytes_req=176 "
      "bytes_alloc=256 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO node=-1 accounted=true");
  EXPECT_EQ(ev.gfp, GFP_KERNEL_ACCOUNT | __GFP_ZERO);
  EXPECT_TRUE(ev.accounted);
  EXPECT_EQ(ev.ts_ns, us(0, 534563));
}

TEST(TraceParseFtrace61, KmemCacheAllocAndFree) {
  TraceEvent ev = expect_event(
      "              ls-296     [001] .....     5.809411: kmem_cache_alloc: "
      "call_site=getname_flags.part.0+0x3c/0x1a0 ptr=ffff1516c5c57000 bytes_req=4096 "
      "bytes_alloc=4096 gfp_flags=GFP_KERNEL node=-1 accounted=false");
  EXPECT_EQ(ev.type, EventType::kmem_cache_alloc);
  EXPECT_EQ(ev.comm, "ls");
  EXPECT_EQ(ev.pid, 296);
  EXPECT_EQ(ev.call_site, "getname_flags.part.0+0x3c/0x1a0");
  EXPECT_EQ(ev.ptr, 0xffff1516c5c57000u);
  EXPECT_EQ(ev.bytes_req, 4096u);
  EXPECT_EQ(ev.gfp, GFP_KERNEL);
  EXPECT_EQ(ev.name, "");  // 6.1 does not name the cache here

  ev = expect_event(
      "              ls-364     [001] .....     7.424562: kmem_cache_free: "
      "call_site=putname+0xa4/0xc0 ptr=ffff1516c5c57000 name=names_cache");
  EXPECT_EQ(ev.type, EventType::kmem_cache_free);
  EXPECT_EQ(ev.ptr, 0xffff1516c5c57000u);
  EXPECT_EQ(ev.name, "names_cache");
  EXPECT_EQ(ev.call_site, "putname+0xa4/0xc0");
  EXPECT_EQ(ev.ts_ns, us(7, 424562));
}

TEST(TraceParseFtrace61, KfreeNullAndSoftirqFlags) {
  TraceEvent ev = expect_event(
      "             cat-132     [001] .....     2.107333: kfree: "
      "call_site=tomoyo_find_next_domain+0x258/0x7dc ptr=0000000000000000");
  EXPECT_EQ(ev.type, EventType::kfree);
  EXPECT_EQ(ev.ptr, 0u);
  EXPECT_EQ(ev.call_site, "tomoyo_find_next_domain+0x258/0x7dc");

  ev = expect_event(
      "          <idle>-0       [000] ..s..     2.111011: kfree: "
      "call_site=security_cred_free+0x4c/0x60 ptr=ffff1516c68d0a00");
  EXPECT_EQ(ev.comm, "<idle>");
  EXPECT_EQ(ev.pid, 0);
  EXPECT_EQ(ev.cpu, 0);
  EXPECT_EQ(ev.ptr, 0xffff1516c68d0a00u);
}

TEST(TraceParseFtrace61, PageEvents) {
  TraceEvent ev = expect_event(
      "              cp-267     [001] .....     4.030816: mm_page_alloc: page=fffffc545b1f3480 "
      "pfn=0x47cd2 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_COMP");
  EXPECT_EQ(ev.type, EventType::mm_page_alloc);
  EXPECT_EQ(ev.pfn, 0x47cd2u);
  EXPECT_EQ(ev.order, 0u);
  EXPECT_EQ(ev.migratetype, 1);
  EXPECT_EQ(ev.gfp, GFP_HIGHUSER_MOVABLE | __GFP_COMP);
  EXPECT_FALSE(ev.failed);

  ev = expect_event(
      "     ksoftirqd/1-20      [001] ..s..     7.123132: mm_page_free: page=fffffc545b202a80 "
      "pfn=0x480aa order=0");
  EXPECT_EQ(ev.type, EventType::mm_page_free);
  EXPECT_EQ(ev.comm, "ksoftirqd/1");
  EXPECT_EQ(ev.pid, 20);
  EXPECT_EQ(ev.pfn, 0x480aau);

  ev = expect_event(
      "              rm-522     [001] .....    11.111545: mm_page_free_batched: "
      "page=fffffc545b1ea400 pfn=0x47a90 order=0");
  EXPECT_EQ(ev.type, EventType::mm_page_free_batched);
  EXPECT_EQ(ev.pfn, 0x47a90u);
  EXPECT_EQ(ev.ts_ns, us(11, 111545));

  ev = expect_event(
      "              cp-267     [001] d....     4.031509: mm_page_alloc_zone_locked: "
      "page=fffffc545b1f4240 pfn=0x47d09 order=0 migratetype=1 percpu_refill=1");
  EXPECT_EQ(ev.type, EventType::mm_page_alloc_zone_locked);
  EXPECT_EQ(ev.pfn, 0x47d09u);
  EXPECT_EQ(ev.migratetype, 1);
  EXPECT_TRUE(ev.percpu_refill);

  ev = expect_event(
      "              rm-522     [001] d....    11.135143: mm_page_pcpu_drain: "
      "page=fffffc545b215fc0 pfn=0x4857f order=0 migratetype=1");
  EXPECT_EQ(ev.type, EventType::mm_page_pcpu_drain);
  EXPECT_EQ(ev.pfn, 0x4857fu);
  EXPECT_EQ(ev.migratetype, 1);
}

TEST(TraceParseFtrace61, Extfrag) {
  const TraceEvent ev = expect_event(
      "    kworker/u4:0-9       [000] d....     0.541977: mm_page_alloc_extfrag: "
      "page=fffffc545b180000 pfn=0x46000 alloc_order=1 fallback_order=10 pageblock_order=9 "
      "alloc_migratetype=2 fallback_migratetype=1 fragmenting=0 change_ownership=1");
  EXPECT_EQ(ev.type, EventType::mm_page_alloc_extfrag);
  EXPECT_EQ(ev.comm, "kworker/u4:0");
  EXPECT_EQ(ev.pid, 9);
  EXPECT_EQ(ev.pfn, 0x46000u);
  EXPECT_EQ(ev.alloc_order, 1u);
  EXPECT_EQ(ev.fallback_order, 10u);
  EXPECT_EQ(ev.alloc_migratetype, 2);
  EXPECT_EQ(ev.fallback_migratetype, 1);
  EXPECT_FALSE(ev.fragmenting);
  EXPECT_TRUE(ev.change_ownership);
}

TEST(TraceParseFtrace61, RssStat) {
  const TraceEvent ev = expect_event(
      "            init-1       [000] .....     5.435692: rss_stat: mm_id=3032197659 curr=0 "
      "type=MM_SHMEMPAGES size=20480B");
  EXPECT_EQ(ev.type, EventType::rss_stat);
  EXPECT_EQ(ev.name, "MM_SHMEMPAGES");
  EXPECT_EQ(ev.size, 20480u);
  EXPECT_EQ(ev.fields, "mm_id=3032197659 curr=0 type=MM_SHMEMPAGES size=20480B");
}

TEST(TraceParseFtrace61, Marker) {
  const TraceEvent ev = expect_event(
      "            init-1       [000] .....     1.845950: tracing_mark_write: ktrace phase: A: "
      "init started, buffer 24579 KB/cpu");
  EXPECT_EQ(ev.type, EventType::marker);
  EXPECT_EQ(ev.fields, "ktrace phase: A: init started, buffer 24579 KB/cpu");
  EXPECT_EQ(ev.pid, 1);
  EXPECT_EQ(ev.ts_ns, us(1, 845950));
}

TEST(TraceParseFtrace61, FailedPageAlloc) {
  // pfn == -1 is printed as page NULL, pfn 0.
  TraceEvent ev = expect_event(
      "            init-1       [000] .....     1.000000: mm_page_alloc: page=0000000000000000 "
      "pfn=0x0 order=3 migratetype=0 gfp_flags=GFP_NOWAIT|__GFP_NOWARN");
  EXPECT_TRUE(ev.failed);
  EXPECT_EQ(ev.order, 3u);
  EXPECT_EQ(ev.gfp, GFP_NOWAIT | __GFP_NOWARN);
  ev = expect_event(
      "            init-1       [000] .....     1.000000: mm_page_alloc: page=(null) pfn=0x0 "
      "order=0 migratetype=0 gfp_flags=GFP_ATOMIC");
  EXPECT_TRUE(ev.failed);
  ev = expect_event(
      "            init-1       [000] .....     1.000000: mm_page_alloc: page=fffffc545b1f3480 "
      "pfn=0x47cd2 order=0 migratetype=0 gfp_flags=GFP_ATOMIC");
  EXPECT_FALSE(ev.failed);
}

// ---------------------------------------------------------------------------
// Context-column variants of trace_print_context().

TEST(TraceParseContext, CommWithDashesSlashesAndSpaces) {
  TraceEvent ev = expect_event(
      "kworker/u4:1-events_unbound-123 [000] d.... 1.500000: kfree: call_site=f+0x1/0x2 "
      "ptr=ffff000012345678");
  EXPECT_EQ(ev.comm, "kworker/u4:1-events_unbound");
  EXPECT_EQ(ev.pid, 123);
  EXPECT_EQ(ev.cpu, 0);
  ev = expect_event(
      "      my prog-42      [003] .....     2.000001: kfree: call_site=f+0x1/0x2 ptr=ffff0000");
  EXPECT_EQ(ev.comm, "my prog");
  EXPECT_EQ(ev.pid, 42);
  EXPECT_EQ(ev.cpu, 3);
  EXPECT_EQ(ev.ts_ns, us(2, 1));
  ev = expect_event(
      "   (sd-pam)-77      [001] .....     2.000001: kfree: call_site=f+0x1/0x2 ptr=ffff0000");
  EXPECT_EQ(ev.comm, "(sd-pam)");
  EXPECT_EQ(ev.pid, 77);
  ev = expect_event(
      "  a [1] b-8      [012] .....     2.000001: kfree: call_site=f+0x1/0x2 ptr=ffff0000");
  EXPECT_EQ(ev.comm, "a [1] b");
  EXPECT_EQ(ev.pid, 8);
  EXPECT_EQ(ev.cpu, 12);
}

TEST(TraceParseContext, RecordTgid) {
  TraceEvent ev = expect_event(
      "            bash-1234    (   1230) [002] d..1.   100.123456: kfree: "
      "call_site=f+0x1/0x2 ptr=ffff000000001000");
  EXPECT_EQ(ev.comm, "bash");
  EXPECT_EQ(ev.pid, 1234);
  EXPECT_EQ(ev.cpu, 2);
  EXPECT_EQ(ev.ptr, 0xffff000000001000u);
  EXPECT_EQ(ev.ts_ns, us(100, 123456));
  ev = expect_event(
      "          <idle>-0       (-------) [001] ..s..     5.000000: kfree: "
      "call_site=f+0x1/0x2 ptr=0000000000000000");
  EXPECT_EQ(ev.comm, "<idle>");
  EXPECT_EQ(ev.pid, 0);
  EXPECT_EQ(ev.cpu, 1);
  // tgid without the irq-info columns.
  ev = expect_event(
      "            bash-1234    (   1230) [002]   100.123456: kfree: call_site=f ptr=10");
  EXPECT_EQ(ev.pid, 1234);
  EXPECT_EQ(ev.cpu, 2);
  EXPECT_EQ(ev.ptr, 0x10u);
}

TEST(TraceParseContext, NoIrqInfoAndFourFlagColumns) {
  // noirq-info: no flags column.
  TraceEvent ev = expect_event(
      "            bash-1234    [002]   100.123456: kfree: call_site=f+0x1/0x2 "
      "ptr=ffff00000000abcd");
  EXPECT_EQ(ev.pid, 1234);
  EXPECT_EQ(ev.cpu, 2);
  EXPECT_EQ(ev.ptr, 0xffff00000000abcdu);
  // 5.10: four flag characters.
  ev = expect_event(
      "          <idle>-0       [000] d.s2    12.345678: kfree: call_site=f+0x1/0x2 ptr=ab");
  EXPECT_EQ(ev.cpu, 0);
  EXPECT_EQ(ev.ts_ns, us(12, 345678));
}

TEST(TraceParseContext, Timestamps) {
  // Nanosecond resolution.
  TraceEvent ev =
      expect_event("            bash-1  [000] .....    12.345678901: kfree: call_site=f ptr=1");
  EXPECT_EQ(ev.ts_ns, 12345678901u);
  // Counter clocks (x86-tsc, counter): an integer, taken as ns.
  ev = expect_event("            bash-1  [000] ..... 987654321012: kfree: call_site=f ptr=1");
  EXPECT_EQ(ev.ts_ns, 987654321012u);
  ev = expect_event("            bash-1  [000] .....     0.000000: kfree: call_site=f ptr=1");
  EXPECT_EQ(ev.ts_ns, 0u);
  // Fewer decimals scale up.
  ev = expect_event("            bash-1  [000]     3.5: kfree: call_site=f ptr=1");
  EXPECT_EQ(ev.ts_ns, 3500000000u);
}

TEST(TraceParseContext, BareEventLines) {
  // ftrace's nocontext-info option prints the event alone.
  const TraceEvent ev = expect_event("kfree: call_site=f+0x1/0x2 ptr=ffff000000000040");
  EXPECT_EQ(ev.type, EventType::kfree);
  EXPECT_EQ(ev.ptr, 0xffff000000000040u);
  EXPECT_EQ(ev.pid, -1);
  EXPECT_EQ(ev.cpu, -1);
  EXPECT_EQ(ev.comm, "");
  expect_skipped("kfree: nothing that looks like fields");
  // A "[1]" that is no CPU column leaves no trace in the event.
  const TraceEvent ev2 = expect_event("kfree: call_site=x [1] ptr=ffff000000000040");
  EXPECT_EQ(ev2.cpu, -1);
  EXPECT_EQ(ev2.pid, -1);
  EXPECT_EQ(ev2.ptr, 0xffff000000000040u);
}

// ---------------------------------------------------------------------------
// Linux 5.10 formats (hand-written from its kmem.h): no node=/accounted= on
// kmalloc, separate _node events, no kmem_cache_free name=, pfn in decimal
// (%lu; hex since 5.14), rss_stat member=.

TEST(TraceParse510, SlabEvents) {
  TraceEvent ev = expect_event(
      "     kworker/0:1-16      [000] ....     1.234567: kmalloc: "
      "call_site=alloc_worker+0x2c/0x64 ptr=ffff00000a1b2c00 bytes_req=160 bytes_alloc=192 "
      "gfp_flags=GFP_KERNEL|__GFP_ZERO");
  EXPECT_EQ(ev.type, EventType::kmalloc);
  EXPECT_EQ(ev.node, -1);
  EXPECT_FALSE(ev.accounted);
  EXPECT_EQ(ev.bytes_alloc, 192u);
  EXPECT_EQ(ev.ptr, 0xffff00000a1b2c00u);

  ev = expect_event(
      "     kworker/0:1-16      [000] ....     1.234568: kmalloc_node: "
      "call_site=__vmalloc_area_node+0x5c/0x1a0 ptr=ffff00000a1b2000 bytes_req=64 "
      "bytes_alloc=64 gfp_flags=GFP_KERNEL node=0");
  EXPECT_EQ(ev.type, EventType::kmalloc_node);
  EXPECT_EQ(ev.node, 0);

  ev = expect_event(
      "            sshd-400     [001] ...1     1.300000: kmem_cache_alloc_node: "
      "call_site=__alloc_skb+0x4c/0x1b0 ptr=ffff00000b000000 bytes_req=256 bytes_alloc=256 "
      "gfp_flags=GFP_ATOMIC|__GFP_NOWARN node=-1");
  EXPECT_EQ(ev.type, EventType::kmem_cache_alloc_node);
  EXPECT_EQ(ev.gfp, GFP_ATOMIC | __GFP_NOWARN);
  EXPECT_EQ(ev.comm, "sshd");

  ev = expect_event(
      "            sshd-400     [001] ..s1     1.300100: kmem_cache_free: "
      "call_site=kfree_skbmem+0x9c/0xb0 ptr=ffff00000b000000");
  EXPECT_EQ(ev.type, EventType::kmem_cache_free);
  EXPECT_EQ(ev.name, "");
  EXPECT_EQ(ev.ptr, 0xffff00000b000000u);
}

TEST(TraceParse510, PageEventsDecimalPfn) {
  TraceEvent ev = expect_event(
      "              dd-500     [001] ....     2.000000: mm_page_alloc: page=fffffe0000456780 "
      "pfn=293530 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE");
  EXPECT_EQ(ev.pfn, 293530u);
  EXPECT_EQ(ev.gfp, GFP_HIGHUSER_MOVABLE);

  ev = expect_event(
      "              dd-500     [001] ....     2.000001: mm_page_free_batched: "
      "page=fffffe0000456780 pfn=293530 order=0");
  EXPECT_EQ(ev.type, EventType::mm_page_free_batched);
  EXPECT_EQ(ev.pfn, 293530u);

  // Before 4.15 mm_page_free_batched had cold=.
  ev = expect_event(
      "              dd-500     [001] ....     2.000001: mm_page_free_batched: "
      "page=fffffe0000456780 pfn=293530 order=0 cold=1");
  EXPECT_EQ(ev.pfn, 293530u);

  ev = expect_event(
      "              dd-500     [001] d...     2.000002: mm_page_alloc_zone_locked: "
      "page=fffffe0000456780 pfn=293530 order=1 migratetype=0 percpu_refill=0");
  EXPECT_EQ(ev.order, 1u);
  EXPECT_FALSE(ev.percpu_refill);

  // Without percpu_refill=: still an event, refill unknown (false).
  ev = expect_event(
      "              dd-500     [001] d...     2.000002: mm_page_alloc_zone_locked: "
      "page=fffffe0000456780 pfn=293530 order=0 migratetype=1");
  EXPECT_EQ(ev.migratetype, 1);
  EXPECT_FALSE(ev.percpu_refill);
}

TEST(TraceParse510, RssStatMember) {
  const TraceEvent ev = expect_event(
      "              sh-283     [001] ....     5.432482: rss_stat: mm_id=2515125648 curr=1 "
      "member=1 size=8192B");
  EXPECT_EQ(ev.type, EventType::rss_stat);
  EXPECT_EQ(ev.name, "1");
  EXPECT_EQ(ev.size, 8192u);
}

TEST(TraceParse510, BareHexCallSite) {
  // call_site without symbols (%pS falls back to the address; pre-5.5 %lx).
  TraceEvent ev = expect_event(
      "            init-1       [000] ....     0.100000: kfree: call_site=ffff800008123456 "
      "ptr=ffff000001000000");
  EXPECT_EQ(ev.call_site, "ffff800008123456");
  ev = expect_event(
      "            init-1       [000] ....     0.100000: kfree: call_site=0xffff800008123456 "
      "ptr=ffff000001000000");
  EXPECT_EQ(ev.call_site, "0xffff800008123456");
}

// ---------------------------------------------------------------------------
// Current kernels: kmem_cache_alloc name= and the vmalloc events.

TEST(TraceParseCurrent, KmemCacheAllocName) {
  const TraceEvent ev = expect_event(
      "            bash-900     [002] .....   300.000001: kmem_cache_alloc: "
      "call_site=alloc_inode+0x3c/0xe0 ptr=ffff0000c1234500 name=shmem_inode_cache "
      "bytes_req=776 bytes_alloc=784 gfp_flags=GFP_KERNEL node=-1 accounted=true");
  EXPECT_EQ(ev.type, EventType::kmem_cache_alloc);
  EXPECT_EQ(ev.name, "shmem_inode_cache");
  EXPECT_EQ(ev.bytes_req, 776u);
  EXPECT_EQ(ev.bytes_alloc, 784u);
  EXPECT_TRUE(ev.accounted);
}

TEST(TraceParseCurrent, VmallocEvents) {
  // alloc_vmap_area prints "va_start: %lu" (a colon, decimal).
  TraceEvent ev = expect_event(
      "        modprobe-700     [001] .....    50.000000: alloc_vmap_area: "
      "va_start: 18446603336221196288 size=20480 align=4096 vstart=0xffff800080000000 "
      "vend=0xfffffdffbf800000 failed=0");
  EXPECT_EQ(ev.type, EventType::alloc_vmap_area);
  EXPECT_EQ(ev.addr, 18446603336221196288u);
  EXPECT_EQ(ev.size, 20480u);
  EXPECT_EQ(ev.align, 4096u);
  EXPECT_EQ(ev.vstart, 0xffff800080000000u);
  EXPECT_EQ(ev.vend, 0xfffffdffbf800000u);
  EXPECT_FALSE(ev.failed);
  ev = expect_event(
      "        modprobe-700     [001] .....    50.000000: alloc_vmap_area: va_start=0 "
      "size=20480 align=4096 vstart=0xffff800080000000 vend=0xffff800088000000 failed=1");
  EXPECT_TRUE(ev.failed);

  ev = expect_event(
      "     kworker/1:2-80      [001] .....    51.000000: purge_vmap_area_lazy: "
      "start=0xffff800080000000 end=0xffff800080400000 num_purged=12");
  EXPECT_EQ(ev.type, EventType::purge_vmap_area_lazy);
  EXPECT_EQ(ev.vstart, 0xffff800080000000u);
  EXPECT_EQ(ev.vend, 0xffff800080400000u);
  EXPECT_EQ(ev.npurged, 12u);

  ev = expect_event(
      "        modprobe-700     [001] .....    52.000000: free_vmap_area_noflush: "
      "va_start=0xffff800080014000 nr_lazy=5 nr_lazy_max=32768");
  EXPECT_EQ(ev.type, EventType::free_vmap_area_noflush);
  EXPECT_EQ(ev.addr, 0xffff800080014000u);
  EXPECT_EQ(ev.nr_lazy, 5u);
  EXPECT_EQ(ev.nr_lazy_max, 32768u);

  EXPECT_NE(expect_malformed("  a-1 [000] ..... 1.0: purge_vmap_area_lazy: start=0x1000"), "");
}

// ---------------------------------------------------------------------------
// trace-cmd report (lines of arm64-6.1-small.report.txt).

TEST(TraceParseTraceCmd, SlabLines) {
  TextParser p;
  TraceEvent ev;
  std::string err;
  EXPECT_EQ(p.parse("cpus=2", ev, &err), LineStatus::skipped);
  EXPECT_EQ(p.format(), TextFormat::trace_cmd_report);
  ASSERT_EQ(p.parse("        workload-108   [000]     5.526685: kmem_cache_alloc:     "
                    "(getname_flags.part.0+0x3c) call_site=getname_flags.part.0+0x3c "
                    "ptr=0xffff0cc5c267c000 bytes_req=4096 bytes_alloc=4096 "
                    "gfp_flags=GFP_KERNEL node=-1 accounted=false",
                    ev, &err),
            LineStatus::event)
      << err;
  EXPECT_EQ(ev.type, EventType::kmem_cache_alloc);
  EXPECT_EQ(ev.comm, "workload");
  EXPECT_EQ(ev.pid, 108);
  EXPECT_EQ(ev.cpu, 0);
  EXPECT_EQ(ev.ts_ns, us(5, 526685));
  EXPECT_EQ(ev.call_site, "getname_flags.part.0+0x3c");
  EXPECT_EQ(ev.ptr, 0xffff0cc5c267c000u);
  EXPECT_EQ(ev.gfp, GFP_KERNEL);

  ASSERT_EQ(p.parse("        workload-108   [000]     5.528268: kfree:                "
                    "(tomoyo_realpath_from_path+0x40) call_site=tomoyo_realpath_from_path+0x40 "
                    "ptr=(nil)",
                    ev, &err),
            LineStatus::event);
  EXPECT_EQ(ev.type, EventType::kfree);
  EXPECT_EQ(ev.ptr, 0u);

  ASSERT_EQ(p.parse("       trace-cmd-107   [001]     5.527640: kmem_cache_free:      "
                    "(putname+0xa4) call_site=putname+0xa4 ptr=0xffff0cc5c958e000 name=names_cache",
                    ev, &err),
            LineStatus::event);
  EXPECT_EQ(ev.comm, "trace-cmd");
  EXPECT_EQ(ev.pid, 107);
  EXPECT_EQ(ev.name, "names_cache");
  EXPECT_EQ(p.format(), TextFormat::trace_cmd_report);
}

TEST(TraceParseTraceCmd, FailedToParsePageLines) {
  TraceEvent ev = expect_event(
      "       trace-cmd-107   [001]     5.526686: mm_page_alloc:        [FAILED TO PARSE] "
      "pfn=0x41e73 order=0 gfp_flags=0x140cca migratetype=1");
  EXPECT_EQ(ev.type, EventType::mm_page_alloc);
  EXPECT_EQ(ev.pfn, 0x41e73u);
  EXPECT_EQ(ev.gfp, 0x140ccau);
  EXPECT_EQ(ev.migratetype, 1);
  EXPECT_FALSE(ev.failed);
  // The raw field keeps the -1 of a failed allocation.
  ev = expect_event(
      "       trace-cmd-107   [001]     5.526686: mm_page_alloc:        [FAILED TO PARSE] "
      "pfn=0xffffffffffffffff order=2 gfp_flags=0xa20 migratetype=0");
  EXPECT_TRUE(ev.failed);
  EXPECT_EQ(ev.pfn, 0u);
  EXPECT_EQ(ev.gfp, GFP_ATOMIC);

  ev = expect_event(
      "        workload-108   [000]     5.530165: mm_page_free_batched: [FAILED TO PARSE] "
      "pfn=0x475e7");
  EXPECT_EQ(ev.type, EventType::mm_page_free_batched);
  EXPECT_EQ(ev.pfn, 0x475e7u);
  EXPECT_EQ(ev.order, 0u);

  ev = expect_event(
      "       trace-cmd-107   [001]     5.528307: mm_page_alloc_zone_locked: [FAILED TO PARSE] "
      "pfn=0x4c170 order=2 migratetype=0 percpu_refill=1");
  EXPECT_EQ(ev.order, 2u);
  EXPECT_TRUE(ev.percpu_refill);

  ev = expect_event(
      "        workload-108   [000]     6.005546: mm_page_alloc_extfrag: [FAILED TO PARSE] "
      "pfn=0x4c400 alloc_order=0 fallback_order=10 alloc_migratetype=0 "
      "fallback_migratetype=1 change_ownership=1");
  EXPECT_EQ(ev.type, EventType::mm_page_alloc_extfrag);
  EXPECT_EQ(ev.pfn, 0x4c400u);
  EXPECT_EQ(ev.fallback_order, 10u);
  EXPECT_TRUE(ev.change_ownership);

  ev = expect_event(
      "        workload-108   [000]     5.527578: rss_stat:             mm_id=1429668190 "
      "curr=1 type=MM_SHMEMPAGES size=1626112B");
  EXPECT_EQ(ev.size, 1626112u);
  EXPECT_EQ(ev.name, "MM_SHMEMPAGES");
}

TEST(TraceParseTraceCmd, PrintMarker) {
  const TraceEvent ev = expect_event(
      "        workload-108   [000]     5.550148: print:                tracing_mark_write: "
      "ktrace2 phase: start");
  EXPECT_EQ(ev.type, EventType::marker);
  EXPECT_EQ(ev.fields, "ktrace2 phase: start");
  EXPECT_EQ(ev.pid, 108);
}

TEST(TraceParseTraceCmd, LatencyColumn) {
  // trace-cmd report -l adds the flags column.
  const TraceEvent ev = expect_event(
      "        workload-108   [000] d..1.     5.526685: kfree:                (f+0x3c) "
      "call_site=f+0x3c ptr=0xffff0cc5c267c000");
  EXPECT_EQ(ev.ptr, 0xffff0cc5c267c000u);
  EXPECT_EQ(ev.ts_ns, us(5, 526685));
}

// ---------------------------------------------------------------------------
// perf script (lines of arm64-6.1-perf-script-sample.txt).

TEST(TraceParsePerf, Lines) {
  TextParser p;
  TraceEvent ev;
  std::string err;
  ASSERT_EQ(p.parse("            perf   351 [001]    48.472731:                     kmem:kfree: "
                    "call_site=__set_cpus_allowed_ptr_locked+0x18c ptr=(nil)",
                    ev, &err),
            LineStatus::event);
  EXPECT_EQ(p.format(), TextFormat::perf_script);
  EXPECT_EQ(ev.type, EventType::kfree);
  EXPECT_EQ(ev.comm, "perf");
  EXPECT_EQ(ev.pid, 351);
  EXPECT_EQ(ev.cpu, 1);
  EXPECT_EQ(ev.ts_ns, us(48, 472731));
  EXPECT_EQ(ev.call_site, "__set_cpus_allowed_ptr_locked+0x18c");
  EXPECT_EQ(ev.ptr, 0u);

  ASSERT_EQ(p.parse("       perf-exec   352 [001]    48.486004:                   kmem:kmalloc: "
                    "call_site=alloc_bprm+0x38 ptr=0xffff0cc5c9387e00 bytes_req=416 "
                    "bytes_alloc=512 gfp_flags=GFP_KERNEL|__GFP_ZERO node=-1 accounted=false",
                    ev, &err),
            LineStatus::event);
  EXPECT_EQ(ev.type, EventType::kmalloc);
  EXPECT_EQ(ev.comm, "perf-exec");
  EXPECT_EQ(ev.pid, 352);
  EXPECT_EQ(ev.ptr, 0xffff0cc5c9387e00u);
  EXPECT_EQ(ev.gfp, GFP_KERNEL | __GFP_ZERO);

  ASSERT_EQ(p.parse("            perf   351 [001]    48.485227:             kmem:mm_page_alloc: "
                    "[FAILED TO PARSE] pfn=0x4d09d order=0 gfp_flags=0x500cc2 migratetype=0",
                    ev, &err),
            LineStatus::event);
  EXPECT_EQ(ev.type, EventType::mm_page_alloc);
  EXPECT_EQ(ev.pfn, 0x4d09du);
  EXPECT_EQ(ev.gfp, 0x500cc2u);

  ASSERT_EQ(p.parse("       perf-exec   352 [000]    48.490673:      kmem:mm_page_free_batched: "
                    "[FAILED TO PARSE] pfn=0x509d2",
                    ev, &err),
            LineStatus::event);
  EXPECT_EQ(ev.pfn, 0x509d2u);
  EXPECT_EQ(ev.cpu, 0);
  EXPECT_EQ(p.format(), TextFormat::perf_script);
}

TEST(TraceParsePerf, CommWithSpacesPidTidAndVmalloc) {
  TraceEvent ev = expect_event(
      "  Web Content  4321 [002]   100.000001: kmem:kfree: call_site=f+0x1 ptr=0xffff00001");
  EXPECT_EQ(ev.comm, "Web Content");
  EXPECT_EQ(ev.pid, 4321);
  ev = expect_event(
      "  kworker/u4:1-ev  10/12   [002]   100.000001: kmem:kfree: call_site=f ptr=0x10");
  EXPECT_EQ(ev.comm, "kworker/u4:1-ev");
  EXPECT_EQ(ev.pid, 12);  // the tid: the kernel's pid
  ev = expect_event(
      "       insmod   800 [000]   200.000000:  vmalloc:free_vmap_area_noflush: "
      "va_start=0xffff800080014000 nr_lazy=5 nr_lazy_max=32768");
  EXPECT_EQ(ev.type, EventType::free_vmap_area_noflush);
  EXPECT_EQ(ev.addr, 0xffff800080014000u);
  // perf --ns prints nine decimals.
  ev = expect_event("   perf   351 [001]    48.472731123: kmem:kfree: call_site=f ptr=(nil)");
  EXPECT_EQ(ev.ts_ns, 48472731123u);
}

// ---------------------------------------------------------------------------
// Lost events.

TEST(TraceParseLost, Markers) {
  TraceEvent ev = expect_event("CPU:1 [LOST 1234 EVENTS]");
  EXPECT_EQ(ev.type, EventType::lost_events);
  EXPECT_EQ(ev.cpu, 1);
  EXPECT_EQ(ev.lost, 1234u);
  ev = expect_event("CPU:15 [LOST EVENTS]");  // the iterator could not count them
  EXPECT_EQ(ev.type, EventType::lost_events);
  EXPECT_EQ(ev.cpu, 15);
  EXPECT_EQ(ev.lost, 0u);
  ev = expect_event("CPU:3 [5678 EVENTS DROPPED]");  // trace-cmd report
  EXPECT_EQ(ev.type, EventType::lost_events);
  EXPECT_EQ(ev.cpu, 3);
  EXPECT_EQ(ev.lost, 5678u);
  ev = expect_event("CPU:2 [EVENTS DROPPED]");
  EXPECT_EQ(ev.cpu, 2);
  EXPECT_EQ(ev.lost, 0u);
  // perf script --show-lost-events.
  ev = expect_event("            perf   351 [001]    48.472731: PERF_RECORD_LOST lost 17");
  EXPECT_EQ(ev.type, EventType::lost_events);
  EXPECT_EQ(ev.cpu, 1);
  EXPECT_EQ(ev.lost, 17u);

  expect_skipped("CPU:0 [SUBBUFFER START]");
  expect_skipped("CPU:x [LOST 5 EVENTS]");
  expect_skipped("CPU:1 [LOST 5 EVENTS");

  TextParser p;
  std::string err;
  EXPECT_EQ(p.parse("CPU:1 [LOST 1 EVENTS]", ev, &err), LineStatus::event);
  EXPECT_EQ(p.format(), TextFormat::ftrace);
  TextParser q;
  EXPECT_EQ(q.parse("CPU:1 [1 EVENTS DROPPED]", ev, &err), LineStatus::event);
  EXPECT_EQ(q.format(), TextFormat::trace_cmd_report);
}

// ---------------------------------------------------------------------------
// Extension events and markers.

TEST(TraceParseExt, MmfuzzEvents) {
  TraceEvent ev = expect_event(
      "          mmfuzz-1       [000] .....     1.000000: mmfuzz_kmem_cache_create: "
      "name=foo size=64 align=8  ");
  EXPECT_EQ(ev.type, EventType::mmfuzz_ext);
  EXPECT_EQ(ev.ext_name, "kmem_cache_create");
  EXPECT_EQ(ev.fields, "name=foo size=64 align=8");
  EXPECT_EQ(ev.ts_ns, us(1, 0));
  // Written through trace_marker.
  ev = expect_event(
      "            init-1       [000] .....     2.000000: tracing_mark_write: mmfuzz_tick: n=3");
  EXPECT_EQ(ev.type, EventType::mmfuzz_ext);
  EXPECT_EQ(ev.ext_name, "tick");
  EXPECT_EQ(ev.fields, "n=3");
  ev = expect_event(
      "        workload-108   [000]     5.550148: print:                tracing_mark_write: "
      "mmfuzz_check: ");
  EXPECT_EQ(ev.type, EventType::mmfuzz_ext);
  EXPECT_EQ(ev.ext_name, "check");
  EXPECT_EQ(ev.fields, "");
  ev = expect_event("mmfuzz_drain_all_pages:");
  EXPECT_EQ(ev.ext_name, "drain_all_pages");
  // "mmfuzz_" alone names nothing.
  expect_skipped("          mmfuzz-1       [000] .....     1.000000: mmfuzz_: a=1");
  ev = expect_event(
      "            init-1       [000] .....     2.000000: tracing_mark_write: mmfuzz_ no name");
  EXPECT_EQ(ev.type, EventType::marker);
  EXPECT_EQ(ev.fields, "mmfuzz_ no name");
}

// ---------------------------------------------------------------------------
// Skipped lines.

TEST(TraceParseSkip, NonKmemLines) {
  expect_skipped("");
  expect_skipped("   ");
  expect_skipped("# tracer: nop");
  expect_skipped("#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION");
  expect_skipped("cpus=2");
  expect_skipped("version = 6");
  expect_skipped("CPU 0 is empty");
  expect_skipped("hello world");
  expect_skipped(
      "          <idle>-0       [000] d..2.   100.000000: sched_switch: prev_comm=swapper/0 "
      "prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=bash next_pid=5 next_prio=120");
  expect_skipped(
      "           <...>-1       [000] .....     1.000000: kmem_cache_alloc_bulk: ptr=1 n=2");
  expect_skipped("            perf   351 [001]    48.472731:        sched:sched_wakeup: pid=3");
  expect_skipped(
      "       trace-cmd-107   [001]     5.528307: mm_compaction_begin: zone_start=0x40000");
  // A perf callchain line.
  expect_skipped("\t    ffff800008123456 kfree+0x0 ([kernel.kallsyms])");
}

// ---------------------------------------------------------------------------
// Malformed kmem lines: a one-line reason naming the field.

TEST(TraceParseMalformed, Reasons) {
  EXPECT_EQ(expect_malformed("   a-1 [000] ..... 1.0: kmalloc: call_site=x ptr=zz"),
            "kmalloc: bad ptr= value 'zz'");
  EXPECT_EQ(expect_malformed("kmalloc: call_site=x ptr=zz"), "kmalloc: bad ptr= value 'zz'");
  EXPECT_EQ(expect_malformed("   a-1 [000] ..... 1.0: kmalloc: call_site=x ptr=ffff0000"),
            "kmalloc: missing bytes_req=");
  EXPECT_EQ(expect_malformed("   a-1 [000] ..... 1.0: kfree: call_site=x"), "kfree: missing ptr=");
  EXPECT_EQ(expect_malformed("   a-1 [000] ..... 1.0: kfree: call_site=x ptr=12345678901234567"),
            "kfree: bad ptr= value '12345678901234567'");
  const std::string gfp = expect_malformed(
      "   a-1 [000] ..... 1.0: kmalloc: call_site=x ptr=1 bytes_req=1 bytes_alloc=8 "
      "gfp_flags=GFP_KERNEL|GFP_BOGUS node=-1");
  EXPECT_EQ(gfp.rfind("kmalloc: bad gfp_flags= value 'GFP_KERNEL|GFP_BOGUS'", 0), 0u) << gfp;
  EXPECT_NE(gfp.find("GFP_BOGUS'"), std::string::npos);
  EXPECT_EQ(expect_malformed("   a-1 [000] ..... 1.0: kmalloc: call_site=x ptr=1 bytes_req=1 "
                             "bytes_alloc=8 gfp_flags=GFP_KERNEL node=x"),
            "kmalloc: bad node= value 'x'");
  EXPECT_EQ(expect_malformed("   a-1 [000] ..... 1.0: kmalloc: call_site=x ptr=1 bytes_req=-1 "
                             "bytes_alloc=8 gfp_flags=GFP_KERNEL"),
            "kmalloc: bad bytes_req= value '-1'");
  EXPECT_EQ(expect_malformed("   a-1 [000] ..... 1.0: mm_page_alloc: page=1 pfn=0x12 order=-1 "
                             "migratetype=0 gfp_flags=GFP_KERNEL"),
            "mm_page_alloc: bad order= value '-1'");
  EXPECT_EQ(expect_malformed("   a-1 [000] ..... 1.0: mm_page_free: page=1 pfn=0xzz order=0"),
            "mm_page_free: bad pfn= value '0xzz'");
  EXPECT_EQ(expect_malformed("   a-1 [000] ..... 1.0: mm_page_free: page=1 order=0"),
            "mm_page_free: missing pfn=");
  EXPECT_EQ(expect_malformed("   a-1 [000] ..... 1.0: mm_page_alloc_extfrag: pfn=0x1 "
                             "alloc_order=0 fallback_order=10 alloc_migratetype=0"),
            "mm_page_alloc_extfrag: missing fallback_migratetype=");
  EXPECT_EQ(expect_malformed("   a-1 [000] ..... 1.0: rss_stat: mm_id=1 curr=0 type=MM_ANONPAGES "
                             "size=12KB"),
            "rss_stat: bad size= value '12KB'");
  EXPECT_EQ(expect_malformed("   a-1 [000] ..... 1.0: kmalloc: call_site=x ptr=1 bytes_req=1 "
                             "bytes_alloc=8 gfp_flags=GFP_KERNEL accounted=maybe"),
            "kmalloc: bad accounted= value 'maybe'");
  // A long value is cut in the message.
  const std::string longv(200, 'z');
  const std::string msg =
      expect_malformed("   a-1 [000] ..... 1.0: kfree: call_site=x ptr=" + longv);
  EXPECT_LT(msg.size(), 120u);
  // No error string wanted: still malformed.
  TextParser p;
  TraceEvent ev;
  EXPECT_EQ(p.parse("kfree: call_site=x ptr=zz", ev, nullptr), LineStatus::malformed);
  EXPECT_EQ(
      p.parse("kmalloc: call_site=x ptr=1 bytes_req=1 bytes_alloc=8 gfp_flags=NOPE", ev, nullptr),
      LineStatus::malformed);
}

// ---------------------------------------------------------------------------
// State: fields reset per line, the gfp cache, format detection.

TEST(TraceParseState, EveryFieldResetBetweenLines) {
  TextParser p;
  TraceEvent ev;
  std::string err;
  ASSERT_EQ(p.parse("    kworker/u4:0-9       [000] d....     0.541977: mm_page_alloc_extfrag: "
                    "page=fffffc545b180000 pfn=0x46000 alloc_order=1 fallback_order=10 "
                    "pageblock_order=9 alloc_migratetype=2 fallback_migratetype=1 "
                    "fragmenting=1 change_ownership=1",
                    ev, &err),
            LineStatus::event);
  ASSERT_EQ(p.parse("            init-1       [001] .....     0.534563: kmalloc: "
                    "call_site=fib_default_rule_add+0x44/0xd0 ptr=ffff1516c5c4ee00 bytes_req=176 "
                    "bytes_alloc=256 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO node=0 "
                    "accounted=true",
                    ev, &err),
            LineStatus::event);
  ASSERT_EQ(p.parse("CPU:1 [LOST 9 EVENTS]", ev, &err), LineStatus::event);
  const TraceEvent fresh{};
  EXPECT_EQ(ev.type, EventType::lost_events);
  EXPECT_EQ(ev.comm, fresh.comm);
  EXPECT_EQ(ev.pid, fresh.pid);
  EXPECT_EQ(ev.ts_ns, fresh.ts_ns);
  EXPECT_EQ(ev.call_site, fresh.call_site);
  EXPECT_EQ(ev.ptr, fresh.ptr);
  EXPECT_EQ(ev.bytes_req, fresh.bytes_req);
  EXPECT_EQ(ev.bytes_alloc, fresh.bytes_alloc);
  EXPECT_EQ(ev.gfp, fresh.gfp);
  EXPECT_EQ(ev.has_gfp, fresh.has_gfp);
  EXPECT_EQ(ev.node, fresh.node);
  EXPECT_EQ(ev.accounted, fresh.accounted);
  EXPECT_EQ(ev.pfn, fresh.pfn);
  EXPECT_EQ(ev.alloc_order, fresh.alloc_order);
  EXPECT_EQ(ev.fallback_order, fresh.fallback_order);
  EXPECT_EQ(ev.alloc_migratetype, fresh.alloc_migratetype);
  EXPECT_EQ(ev.fallback_migratetype, fresh.fallback_migratetype);
  EXPECT_EQ(ev.fragmenting, fresh.fragmenting);
  EXPECT_EQ(ev.change_ownership, fresh.change_ownership);
  EXPECT_EQ(ev.lost, 9u);
  // A skipped line leaves no stale type either.
  EXPECT_EQ(p.parse("# comment", ev, &err), LineStatus::skipped);
  EXPECT_EQ(ev.type, EventType::none);
  EXPECT_EQ(ev.lost, 0u);
}

TEST(TraceParseState, GfpForms) {
  TextParser p;
  TraceEvent ev;
  std::string err;
  const auto gfp_of = [&](const std::string& g) {
    const std::string line =
        "   a-1 [000] ..... 1.0: kmalloc: call_site=x ptr=1 bytes_req=1 bytes_alloc=8 "
        "gfp_flags=" +
        g;
    EXPECT_EQ(p.parse(line, ev, &err), LineStatus::event) << line << ": " << err;
    EXPECT_TRUE(ev.has_gfp);
    return ev.gfp;
  };
  EXPECT_EQ(gfp_of("none"), 0u);
  EXPECT_EQ(gfp_of("0x140dca"), 0x140dcau);
  EXPECT_EQ(gfp_of("GFP_KERNEL|__GFP_ZERO"), GFP_KERNEL | __GFP_ZERO);
  // Seen again (the cached path) and interleaved with others.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(gfp_of("GFP_KERNEL|__GFP_ZERO"), GFP_KERNEL | __GFP_ZERO);
    EXPECT_EQ(gfp_of("GFP_ATOMIC|__GFP_NOWARN"), GFP_ATOMIC | __GFP_NOWARN);
    EXPECT_EQ(gfp_of("GFP_KERNEL|__GFP_ZERO|0x10000000"), GFP_KERNEL | __GFP_ZERO | 0x10000000u);
  }
  // Many distinct strings: the cache grows (and stops growing) correctly.
  for (std::uint32_t v = 1; v < 6000; ++v)
    EXPECT_EQ(gfp_of("GFP_NOWAIT|" + std::to_string(v)), GFP_NOWAIT | v);
  EXPECT_EQ(gfp_of("GFP_KERNEL|__GFP_ZERO"), GFP_KERNEL | __GFP_ZERO);
  // A bad string stays bad on the second sight.
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(
        p.parse("kmalloc: call_site=x ptr=1 bytes_req=1 bytes_alloc=8 gfp_flags=GFP_NO", ev, &err),
        LineStatus::malformed);
  EXPECT_EQ(p.parse("kmalloc: call_site=x ptr=1 bytes_req=1 bytes_alloc=8 gfp_flags=0x1ffffffff",
                    ev, &err),
            LineStatus::malformed);
}

// A '\r' inside a line separates fields like a space (found by fuzzing: a
// name ending in '\r' lost it when a Program printed it last on a line).
TEST(TraceParseState, CarriageReturnSeparatesFields) {
  TraceEvent ev = expect_event(
      "   a-1 [000] ..... 1.0: kmem_cache_free: call_site=f+0x1/0x2 ptr=10 name=names_cache\r "
      "x=1");
  EXPECT_EQ(ev.name, "names_cache");
  EXPECT_EQ(ev.ptr, 0x10u);
  ev = expect_event("kfree: call_site=f\rptr=20\r\r");
  EXPECT_EQ(ev.call_site, "f");
  EXPECT_EQ(ev.ptr, 0x20u);
  ev = expect_event("alloc_vmap_area: va_start: 4096\rsize=8192");
  EXPECT_EQ(ev.addr, 4096u);
  EXPECT_EQ(ev.size, 8192u);
  expect_malformed("kfree: call_site=f ptr=\r");
}

// An Op keeps its CPU in 16 bits; no kernel has that many CPUs (found by
// fuzzing: [40000] became CPU -25536 in a Program, which did not parse back).
TEST(TraceParseContext, CpuColumnBeyondAnyKernel) {
  EXPECT_EQ(expect_event("   a-1 [32767] ..... 1.0: kfree: call_site=f ptr=1").cpu, 32767);
  expect_skipped("   a-1 [40000] ..... 1.0: kfree: call_site=f ptr=1");
}

TEST(TraceParseState, FormatDetection) {
  EXPECT_STREQ(text_format_name(TextFormat::unknown), "unknown");
  EXPECT_STREQ(text_format_name(TextFormat::ftrace), "ftrace");
  EXPECT_STREQ(text_format_name(TextFormat::trace_cmd_report), "trace-cmd-report");
  EXPECT_STREQ(text_format_name(TextFormat::perf_script), "perf-script");
  TraceEvent ev;
  std::string err;
  TextParser f;
  EXPECT_EQ(f.format(), TextFormat::unknown);
  f.parse("# tracer: nop", ev, &err);
  EXPECT_EQ(f.format(), TextFormat::unknown);  // comments do not decide
  f.parse("  init-1  [001] .....  0.1: kfree: call_site=x ptr=1", ev, &err);
  EXPECT_EQ(f.format(), TextFormat::ftrace);
  // Kept from then on.
  f.parse("  perf 1 [001] 0.1: kmem:kfree: call_site=x ptr=1", ev, &err);
  EXPECT_EQ(f.format(), TextFormat::ftrace);
  TextParser t;
  t.parse(
      "  workload-108   [000]     5.528268: kfree:                (f+0x40) call_site=f+0x40 "
      "ptr=(nil)",
      ev, &err);
  EXPECT_EQ(t.format(), TextFormat::trace_cmd_report);
  TextParser pf;
  pf.parse("  perf   351 [001]    48.472731:   kmem:kfree: call_site=x ptr=(nil)", ev, &err);
  EXPECT_EQ(pf.format(), TextFormat::perf_script);
}

// ---------------------------------------------------------------------------
// Truncated and garbled lines: never a crash or a read past the line (each
// prefix sits in a buffer of exactly its size, for ASan); an event only if
// every required field survived.

const std::vector<std::string>& sample_lines() {
  static const std::vector<std::string> v = {
      "            init-1       [001] .....     0.533568: kmalloc: "
      "call_site=__register_sysctl_table+0x4c4/0x9e0 ptr=ffff1516c8353900 bytes_req=251 "
      "bytes_alloc=256 gfp_flags=GFP_KERNEL|__GFP_ZERO node=-1 accounted=false",
      "              ls-364     [001] .....     7.424562: kmem_cache_free: "
      "call_site=putname+0xa4/0xc0 ptr=ffff1516c5c57000 name=names_cache",
      "              cp-267     [001] .....     4.030816: mm_page_alloc: page=fffffc545b1f3480 "
      "pfn=0x47cd2 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_COMP",
      "    kworker/u4:0-9       [000] d....     0.541977: mm_page_alloc_extfrag: "
      "page=fffffc545b180000 pfn=0x46000 alloc_order=1 fallback_order=10 pageblock_order=9 "
      "alloc_migratetype=2 fallback_migratetype=1 fragmenting=0 change_ownership=1",
      "            bash-1234    (   1230) [002] d..1.   100.123456: rss_stat: mm_id=1 curr=0 "
      "type=MM_ANONPAGES size=8192B",
      "        workload-108   [000]     5.526685: kmem_cache_alloc:     "
      "(getname_flags.part.0+0x3c) call_site=getname_flags.part.0+0x3c "
      "ptr=0xffff0cc5c267c000 bytes_req=4096 bytes_alloc=4096 gfp_flags=GFP_KERNEL node=-1 "
      "accounted=false",
      "       trace-cmd-107   [001]     5.526686: mm_page_alloc:        [FAILED TO PARSE] "
      "pfn=0x41e73 order=0 gfp_flags=0x140cca migratetype=1",
      "            perf   351 [001]    48.472731:                     kmem:kfree: "
      "call_site=__set_cpus_allowed_ptr_locked+0x18c ptr=(nil)",
      "        modprobe-700     [001] .....    50.000000: alloc_vmap_area: "
      "va_start: 18446603336221196288 size=20480 align=4096 vstart=0xffff800080000000 "
      "vend=0xfffffdffbf800000 failed=0",
      "CPU:1 [LOST 1234 EVENTS]",
      "CPU:3 [5678 EVENTS DROPPED]",
      "            init-1       [000] .....     1.845950: tracing_mark_write: ktrace phase: A",
      "          mmfuzz-1       [000] .....     1.000000: mmfuzz_kmem_cache_create: name=foo",
  };
  return v;
}

LineStatus parse_exact(TextParser& p, std::string_view s, TraceEvent& ev, std::string& err) {
  // Exactly sized heap copy: reading s[size] is a heap-buffer-overflow.
  std::unique_ptr<char[]> buf(new char[s.size() + 1]);
  std::memcpy(buf.get(), s.data(), s.size());
  return p.parse(std::string_view(buf.get(), s.size()), ev, &err);
}

TEST(TraceParseRobust, EveryTruncation) {
  for (const std::string& line : sample_lines()) {
    TextParser p;
    TraceEvent ev;
    std::string err;
    ASSERT_EQ(parse_exact(p, line, ev, err), LineStatus::event) << line << ": " << err;
    const EventType full = ev.type;
    const std::size_t colon =
        line.find(": ", line.find(']') == std::string::npos ? 0 : line.find(']'));
    for (std::size_t n = 0; n < line.size(); ++n) {
      err.clear();
      const LineStatus s = parse_exact(p, std::string_view(line).substr(0, n), ev, err);
      if (s == LineStatus::event) {
        EXPECT_TRUE(ev.type == full || full == EventType::mmfuzz_ext || full == EventType::marker)
            << line.substr(0, n);
      } else if (s == LineStatus::malformed) {
        EXPECT_FALSE(err.empty());
        EXPECT_EQ(err.find('\n'), std::string::npos);
      }
      // Cut before the event name ends: never an event.
      if (colon != std::string::npos && n <= colon && line.rfind("CPU:", 0) != 0) {
        EXPECT_NE(s, LineStatus::event) << line.substr(0, n);
      }
    }
  }
  // Cutting a required field away makes a kmem line malformed, not an event.
  const std::string k = sample_lines()[0];
  EXPECT_EQ(parse1(k.substr(0, k.find(" bytes_alloc="))).status, LineStatus::malformed);
  EXPECT_EQ(parse1(k.substr(0, k.find("GFP_KERNEL") + 5)).status, LineStatus::malformed);
}

TEST(TraceParseRobust, RandomMutations) {
  std::mt19937_64 rng(20240611);
  const std::string alphabet(" -[]():=.0x\tfF9#\r\n\0", 19);
  std::size_t events = 0, malformed = 0, skipped = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string s = sample_lines()[rng() % sample_lines().size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < edits && !s.empty(); ++i) {
      const std::size_t at = rng() % s.size();
      switch (rng() % 4) {
        case 0:
          s[at] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          s.erase(at, 1 + rng() % 8);
          break;
        case 2:
          s.insert(at, 1, alphabet[rng() % alphabet.size()]);
          break;
        default:
          s[at] = static_cast<char>(rng() % 256);
          break;
      }
    }
    TextParser p;
    TraceEvent ev;
    std::string err;
    const LineStatus st = parse_exact(p, s, ev, err);
    switch (st) {
      case LineStatus::event:
        ++events;
        EXPECT_NE(ev.type, EventType::none) << s;
        break;
      case LineStatus::malformed:
        ++malformed;
        EXPECT_FALSE(err.empty()) << s;
        EXPECT_LT(static_cast<int>(ev.type), static_cast<int>(EventType::lost_events)) << s;
        break;
      case LineStatus::skipped:
        ++skipped;
        break;
    }
  }
  // The mutations reach all three outcomes.
  EXPECT_GT(events, 1000u);
  EXPECT_GT(malformed, 100u);
  EXPECT_GT(skipped, 100u);
}

// ---------------------------------------------------------------------------
// Whole traces.

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string zstd_decompress(const std::string& raw) {
  std::string out;
  ZSTD_DStream* ds = ZSTD_createDStream();
  ZSTD_inBuffer in{raw.data(), raw.size(), 0};
  std::vector<char> buf(ZSTD_DStreamOutSize());
  std::size_t last = 1;
  while (in.pos < in.size) {
    ZSTD_outBuffer o{buf.data(), buf.size(), 0};
    last = ZSTD_decompressStream(ds, &o, &in);
    if (ZSTD_isError(last)) break;
    out.append(buf.data(), o.pos);
  }
  ZSTD_freeDStream(ds);
  EXPECT_EQ(last, 0u) << "truncated or corrupt zstd stream";
  return out;
}

// corpus/traces/<rel>: tests read only what the repository holds.
std::string find_trace(const std::string& rel) {
  // Appended, not `string + "/" + rel`: gcc 12 -O1 warns (-Warray-bounds)
  // inside that operator+ falsely.
  std::string path = MMFUZZ_TRACES_DIR;
  path.append("/").append(rel);
  return std::ifstream(path).good() ? path : std::string{};
}

struct Tally {
  std::map<EventType, std::uint64_t> by_type;
  std::uint64_t events = 0, skipped = 0, malformed = 0, lines = 0;
  std::uint64_t null_frees = 0, ts_backwards = 0, bad_context = 0;
  std::string first_error;
  TextFormat format = TextFormat::unknown;
};

Tally tally(const std::string& text) {
  Tally t;
  TextParser p;
  TraceEvent ev;
  std::string err;
  std::uint64_t last_ts = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    ++t.lines;
    switch (p.parse(line, ev, &err)) {
      case LineStatus::event:
        ++t.events;
        ++t.by_type[ev.type];
        if (ev.type == EventType::kfree && ev.ptr == 0) ++t.null_frees;
        if (ev.ts_ns < last_ts) ++t.ts_backwards;
        last_ts = ev.ts_ns;
        if (ev.comm.empty() || ev.pid < 0 || ev.cpu < 0 || ev.cpu > 1) ++t.bad_context;
        break;
      case LineStatus::skipped:
        ++t.skipped;
        break;
      case LineStatus::malformed:
        if (t.malformed++ == 0) t.first_error = err + ": " + std::string(line);
        break;
    }
  }
  t.format = p.format();
  return t;
}

TEST(TraceParseWhole, EmbeddedFtraceTrace) {
  const std::string path = std::string(MMFUZZ_TRACES_DIR) + "/arm64-6.1-boot-shell.trace.zst";
  const std::string raw = read_file(path);
  ASSERT_FALSE(raw.empty()) << path;
  const std::string text = zstd_decompress(raw);
  ASSERT_EQ(text.size(), 68026953u);
  const Tally t = tally(text);
  EXPECT_EQ(t.malformed, 0u) << t.first_error;
  EXPECT_EQ(t.format, TextFormat::ftrace);
  EXPECT_EQ(t.lines, 423644u);
  EXPECT_EQ(t.skipped, 12u);     // the header comments
  EXPECT_EQ(t.events, 423632u);  // 7 of them tracing_mark_write markers
  const std::map<EventType, std::uint64_t> want = {
      {EventType::kmem_cache_alloc, 129807},
      {EventType::kmem_cache_free, 93744},
      {EventType::mm_page_alloc, 43892},
      {EventType::mm_page_free, 37480},
      {EventType::mm_page_alloc_zone_locked, 29279},
      {EventType::kmalloc, 24101},
      {EventType::mm_page_free_batched, 21015},
      {EventType::kfree, 17548},
      {EventType::mm_page_pcpu_drain, 15945},
      {EventType::rss_stat, 10801},
      {EventType::mm_page_alloc_extfrag, 13},
      {EventType::marker, 7},
  };
  EXPECT_EQ(t.by_type, want);
  EXPECT_EQ(t.null_frees, 5784u);  // kfree(NULL) lines
  EXPECT_EQ(t.ts_backwards, 0u);   // CPUs merged by timestamp
  EXPECT_EQ(t.bad_context, 0u);
}

TEST(TraceParseWhole, TraceCmdReport) {
  const std::string path = find_trace("trace-cmd/arm64-6.1-small.report.txt.zst");
  ASSERT_FALSE(path.empty()) << "arm64-6.1-small.report.txt.zst not found";
  const Tally t = tally(zstd_decompress(read_file(path)));
  EXPECT_EQ(t.malformed, 0u) << t.first_error;
  EXPECT_EQ(t.format, TextFormat::trace_cmd_report);
  EXPECT_EQ(t.events, 130467u);
  EXPECT_EQ(t.skipped, 1u);  // "cpus=2"
  const std::map<EventType, std::uint64_t> want = {
      {EventType::kfree, 5136},
      {EventType::kmalloc, 3272},
      {EventType::kmem_cache_alloc, 37047},
      {EventType::kmem_cache_free, 39031},
      {EventType::mm_page_alloc, 12246},
      {EventType::mm_page_alloc_extfrag, 3},
      {EventType::mm_page_alloc_zone_locked, 3858},
      {EventType::mm_page_free, 13064},
      {EventType::mm_page_free_batched, 7071},
      {EventType::mm_page_pcpu_drain, 3982},
      {EventType::marker, 6},
      {EventType::rss_stat, 5751},
  };
  EXPECT_EQ(t.by_type, want);
  EXPECT_EQ(t.null_frees, 1880u);  // ptr=(nil)
  EXPECT_EQ(t.ts_backwards, 0u);
  EXPECT_EQ(t.bad_context, 0u);
}

TEST(TraceParseWhole, PerfScriptSample) {
  const std::string path = find_trace("trace-cmd/arm64-6.1-perf-script-sample.txt.zst");
  ASSERT_FALSE(path.empty()) << "arm64-6.1-perf-script-sample.txt.zst not found";
  const Tally t = tally(zstd_decompress(read_file(path)));
  EXPECT_EQ(t.malformed, 0u) << t.first_error;
  EXPECT_EQ(t.format, TextFormat::perf_script);
  EXPECT_EQ(t.events, 3000u);
  const std::map<EventType, std::uint64_t> want = {
      {EventType::kfree, 190},
      {EventType::kmalloc, 124},
      {EventType::kmem_cache_alloc, 577},
      {EventType::kmem_cache_free, 862},
      {EventType::mm_page_alloc, 334},
      {EventType::mm_page_alloc_zone_locked, 189},
      {EventType::mm_page_free, 318},
      {EventType::mm_page_free_batched, 164},
      {EventType::rss_stat, 242},
  };
  EXPECT_EQ(t.by_type, want);
  EXPECT_EQ(t.bad_context, 0u);
}

}  // namespace
}  // namespace mmfuzz::trace
