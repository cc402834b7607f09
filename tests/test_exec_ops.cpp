// The ops added with the typed arguments, one family at a time, built with
// ProgramBuilder and run through the Executor: what the model did, and that
// each misuse is reported.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "mm/mm.h"
#include "program/build.h"
#include "program/executor.h"
#include "program/text.h"

namespace mmfuzz::prog {
namespace {

using namespace mmfuzz::mm;

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kPl011 = 0x09000000;

MmConfig small_config() {
  MmConfig c;
  c.machine = small_machine(32 * SZ_1M);
  return c;
}

// A model, a builder and an Executor: each op added is run at once (go()),
// and the findings since the last look are at hand (ids()).
class Session {
 public:
  Session() : m_(small_config()), ex_(m_, b.program().strings) {}
  ProgramBuilder b;
  const OpResult& go() { return ex_.step(b.last()); }
  std::vector<std::string> ids() {
    std::vector<std::string> v;
    for (; seen_ < ex_.findings().size(); ++seen_)
      v.push_back(ex_.findings()[seen_].violation.invariant);
    return v;
  }
  Mm& mm() { return m_; }
  Executor& ex() { return ex_; }
  bool page_free(pfn_t pfn) {
    m_.page_alloc.drain_all_pages();
    return m_.page_alloc.is_free_buddy_page(pfn);
  }
  pfn_t pfn_of(const OpResult& r) const { return r.addr ? m_.virt_to_pfn(r.addr) : r.pfn; }
  // Every page the allocator will give, reserves included: the next
  // allocation that needs a page fails (or a mempool lends or sleeps).
  std::vector<pfn_t> exhaust_pages() {
    std::vector<pfn_t> held;
    for (const gfp_t g : {GFP_KERNEL | __GFP_NOWARN, GFP_ATOMIC | __GFP_MEMALLOC | __GFP_NOWARN})
      for (pfn_t p; (p = m_.page_alloc.alloc_pages(g, 0)) != NO_PAGE;) held.push_back(p);
    return held;
  }
  void release(const std::vector<pfn_t>& held) {
    for (const pfn_t p : held) m_.page_alloc.__free_pages(p, 0);
  }
  // The whole Program runs the same from its text form.
  void expect_text_round_trip() {
    EXPECT_EQ(parse_program(print_program(b.program())), b.program());
  }

 private:
  Mm m_;
  Executor ex_;
  std::size_t seen_ = 0;
};

using Ids = std::vector<std::string>;

// ---- page allocator ----

TEST(ExecPageOps, GetPageAndPutPageCountReferences) {
  Session s;
  const Handle pg = s.b.alloc_pages(0, GFP_KERNEL);
  const pfn_t pfn = s.go().pfn;
  s.b.get_page(pg);
  s.go();
  EXPECT_EQ(s.mm().pfn_to_page(pfn)._refcount, 2);
  s.b.put_page(pg);
  s.go();
  EXPECT_EQ(s.ex().live_page_allocs(), 1u);  // one reference left
  EXPECT_FALSE(s.page_free(pfn));
  s.b.put_page(pg);  // the last one frees the page: the handle is dead
  s.go();
  EXPECT_EQ(s.ex().live_page_allocs(), 0u);
  EXPECT_TRUE(s.page_free(pfn));
  EXPECT_EQ(s.ids(), Ids{});
  s.b.put_page(pg);
  s.go();
  EXPECT_EQ(s.ids(), Ids{"page_alloc.refcount_underflow"});
  s.b.get_page(pg);
  s.go();
  EXPECT_EQ(s.ids(), Ids{"page_alloc.bad_state"});  // get_page() of a free page
  s.expect_text_round_trip();
}

TEST(ExecPageOps, LastPutPageOfABlockNeedsACompoundPage) {
  Session s;
  const Handle plain = s.b.alloc_pages(1, GFP_KERNEL);
  s.go();
  s.b.put_page(plain);  // would free only the first page: refused
  s.go();
  EXPECT_EQ(s.ids(), Ids{"page_alloc.wrong_order"});
  EXPECT_EQ(s.ex().live_page_allocs(), 1u);
  s.b.free_pages(plain, 1);
  s.go();
  const Handle comp = s.b.alloc_pages(1, GFP_KERNEL | __GFP_COMP);
  const pfn_t pfn = s.go().pfn;
  s.b.put_page(comp);  // frees the whole compound page
  s.go();
  EXPECT_TRUE(s.page_free(pfn) && s.page_free(pfn + 1));
  EXPECT_EQ(s.ex().live_page_allocs(), 0u);
  EXPECT_EQ(s.ids(), Ids{});
}

TEST(ExecPageOps, FreePagesByAddress) {
  Session s;
  const Handle pg = s.b.alloc_pages(2, GFP_KERNEL);
  const pfn_t pfn = s.go().pfn;
  s.b.free_pages_addr(pg, 2);
  s.go();
  EXPECT_TRUE(s.page_free(pfn));
  EXPECT_EQ(s.ex().live_page_allocs(), 0u);
  EXPECT_EQ(s.ids(), Ids{});
  const Handle bad = s.b.alloc_pages(2, GFP_KERNEL);
  s.go();
  s.b.free_pages_addr(bad, 1);
  s.go();
  const auto& f = s.ex().findings().back().violation;
  EXPECT_EQ(s.ids(), Ids{"page_alloc.wrong_order"});
  EXPECT_NE(std::find(f.details.begin(), f.details.end(), "caller: free_pages(order 1)"),
            f.details.end());
  s.expect_text_round_trip();
}

TEST(ExecPageOps, AllocPagesExactKeepsWhatTheSizeCovers) {
  Session s;
  const Handle pg = s.b.alloc_pages_exact(5 * kPage - 100, GFP_KERNEL);
  const OpResult r = s.go();
  ASSERT_FALSE(r.failed);
  const pfn_t pfn = s.pfn_of(r);
  for (pfn_t i = 0; i < 5; ++i) EXPECT_FALSE(s.page_free(pfn + i)) << i;
  for (pfn_t i = 5; i < 8; ++i) EXPECT_TRUE(s.page_free(pfn + i)) << i;  // the order-3 rest
  s.b.write(Space::page, pg, 4 * kPage, kPage - 100, 0x77);
  s.go();
  s.b.free_pages_exact(pg, 5 * kPage - 100);
  s.go();
  for (pfn_t i = 0; i < 8; ++i) EXPECT_TRUE(s.page_free(pfn + i)) << i;
  EXPECT_EQ(s.ex().live_page_allocs(), 0u);
  EXPECT_EQ(s.ids(), Ids{});
  s.b.free_pages_exact(pg, 5 * kPage - 100);
  s.go();
  const Ids again = s.ids();
  ASSERT_FALSE(again.empty());
  EXPECT_EQ(again.front(), "page_alloc.double_free");
  s.expect_text_round_trip();
}

TEST(ExecPageOps, KmapFamilyNestsAndBalances) {
  Session s;
  const Handle a = s.b.alloc_pages(0, GFP_KERNEL);
  const pfn_t pa = s.go().pfn;
  const Handle c = s.b.alloc_pages(0, GFP_KERNEL);
  s.go();
  s.b.kmap(a);
  EXPECT_EQ(s.go().addr, s.mm().page_address(pa));
  s.b.kunmap(a);
  s.go();
  s.b.kmap_local_page(a);
  s.go();
  s.b.kmap_atomic(c);
  s.go();
  EXPECT_EQ(s.mm().preempt_count(), 1);
  s.b.kunmap_atomic(c);
  s.go();
  s.b.kunmap_local(a);
  s.go();
  EXPECT_EQ(s.mm().preempt_count(), 0);
  EXPECT_EQ(s.ids(), Ids{});
  s.b.kunmap(a);  // not kmap()ed
  s.go();
  EXPECT_EQ(s.ids(), Ids{"kmap.unbalanced"});
  s.b.kmap_local_page(a);
  s.go();
  s.b.kmap_local_page(c);
  s.go();
  s.b.kunmap_local(a);  // not the innermost
  s.go();
  EXPECT_EQ(s.ids(), Ids{"kmap.nesting"});
  s.b.kunmap_local(c);
  s.go();
  s.b.kmap_atomic(a);
  s.go();
  s.b.vmalloc(kPage);  // sleeps in atomic context
  s.go();
  EXPECT_EQ(s.ids(), Ids{"vmalloc.sleep_in_atomic"});
  s.expect_text_round_trip();
}

// ---- slab ----

TEST(ExecSlabOps, KreallocRebindsTheHandle) {
  Session s;
  const Handle h = s.b.kmalloc(100, GFP_KERNEL);
  const vaddr_t first = s.go().addr;
  s.b.write(Space::object, h, 0, 100, 0x5a);
  s.go();
  s.b.krealloc(h, 64, GFP_KERNEL);  // fits: the same object
  EXPECT_EQ(s.go().addr, first);
  EXPECT_EQ(s.b.krealloc(h, 3000, GFP_KERNEL), h);  // moves, with the bytes
  const vaddr_t moved = s.go().addr;
  ASSERT_NE(moved, 0u);
  EXPECT_NE(moved, first);
  std::vector<std::uint8_t> got(64);
  s.mm().ram.read(s.mm().__pa(moved), got);
  EXPECT_EQ(std::count(got.begin(), got.end(), 0x5a), 64);
  EXPECT_EQ(s.ex().live_objects(), 1u);
  EXPECT_EQ(s.ex().live_kmalloc_bytes(), 3000u);
  s.b.write(Space::object, h, 0, 3000, 0x11);  // the handle is the new object
  s.go();
  s.b.kfree(h);
  s.go();
  EXPECT_EQ(s.ids(), Ids{});
  // krealloc(NULL) allocates; size 0 frees (the caller keeps ZERO_SIZE_PTR,
  // which kfree ignores).
  const Handle n = s.b.krealloc(0, 200, GFP_KERNEL);
  EXPECT_NE(s.go().addr, 0u);
  EXPECT_EQ(s.ex().live_objects(), 1u);
  s.b.krealloc(n, 0, GFP_KERNEL);
  EXPECT_EQ(s.go().addr, ZERO_SIZE_PTR);
  EXPECT_EQ(s.ex().live_objects(), 0u);
  s.b.kfree(n);
  s.go();
  EXPECT_EQ(s.ids(), Ids{});
  s.b.krealloc(h, 500, GFP_KERNEL);  // h was freed
  EXPECT_TRUE(s.go().failed);
  EXPECT_EQ(s.ids(), Ids{"kasan.use_after_free"});
  s.expect_text_round_trip();
}

TEST(ExecSlabOps, KfreeSensitiveZeroesTheObject) {
  Session s;
  const Handle h = s.b.kmalloc(64, GFP_KERNEL);
  const vaddr_t p = s.go().addr;
  s.b.write(Space::object, h, 0, 64, 0xaa);
  s.go();
  s.b.kfree_sensitive(h);
  s.go();
  EXPECT_EQ(s.ex().live_objects(), 0u);
  std::vector<std::uint8_t> got(64);
  s.mm().ram.read(s.mm().__pa(p), got);
  EXPECT_GE(std::count(got.begin(), got.end(), 0), 64 - 8);  // all but a free pointer
  EXPECT_EQ(s.ids(), Ids{});
  s.b.kfree_sensitive(h);
  s.go();
  const Ids again = s.ids();
  EXPECT_NE(std::find(again.begin(), again.end(), "slab.double_free"), again.end());
}

TEST(ExecSlabOps, BulkAllocAndFreeARunOfHandles) {
  Session s;
  s.b.kmem_cache_create("bulk_cache", 96, 0, 0);
  s.go();
  const Handle first = s.b.kmem_cache_alloc_bulk("bulk_cache", GFP_KERNEL, 5);
  EXPECT_NE(s.go().addr, 0u);
  EXPECT_EQ(s.ex().live_objects(), 5u);
  for (Handle h = first; h < first + 5; ++h) {
    s.b.write(Space::object, h, 0, 96, static_cast<std::uint8_t>(h));
    EXPECT_TRUE(s.go().ran);
  }
  const Handle after = s.b.kmalloc(8, GFP_KERNEL);
  EXPECT_EQ(after, first + 5);  // the run's handles are its own
  s.go();
  s.b.kmem_cache_free_bulk("bulk_cache", first, 5);
  s.go();
  EXPECT_EQ(s.ex().live_objects(), 1u);
  EXPECT_EQ(s.ids(), Ids{});
  s.b.kmem_cache_free_bulk("bulk_cache", first, 5);
  s.go();
  const Ids again = s.ids();
  ASSERT_FALSE(again.empty());
  EXPECT_EQ(again.front(), "slab.double_free");
  // No cache: kfree_bulk(), each object to its own.
  const Handle k = s.b.kmalloc(40, GFP_KERNEL);
  s.go();
  s.b.kmalloc(4000, GFP_KERNEL);
  s.go();
  s.b.kmem_cache_free_bulk("", k, 2);
  s.go();
  s.b.kfree(after);
  s.go();
  EXPECT_EQ(s.ex().live_objects(), 0u);
  EXPECT_EQ(s.ids(), Ids{});
  s.expect_text_round_trip();
}

TEST(ExecSlabOps, KvmallocObjectsAreLinearOrVmallocAddresses) {
  Session s;
  const Handle small = s.b.kvmalloc(100, GFP_KERNEL);
  const vaddr_t a = s.go().addr;
  EXPECT_TRUE(s.mm().virt_addr_valid(a));
  const std::uint64_t big_size = s.mm().slab.kmalloc_max_size() + kPage;
  const Handle big = s.b.kvzalloc(big_size, GFP_KERNEL);
  const vaddr_t v = s.go().addr;
  EXPECT_TRUE(s.mm().vmalloc.is_vmalloc_addr(v));
  // Client accesses of the vmalloc'd object walk the page tables.
  s.b.write(Space::object, big, 0, big_size, 0x42);
  s.go();
  s.b.write(Space::object, small, 0, 100, 0x42);
  s.go();
  EXPECT_EQ(s.ids(), Ids{});
  s.b.write(Space::object, big, big_size, 1, 0x42);  // the guard page
  s.go();
  EXPECT_EQ(s.ids(), Ids{"vm.fault"});
  s.b.kfree(big);  // kfree of a vmalloc address
  s.go();
  EXPECT_EQ(s.ids(), Ids{"slab.invalid_free"});
  s.b.kvfree(big);
  s.go();
  s.b.kvfree(small);
  s.go();
  EXPECT_EQ(s.ids(), Ids{});
  EXPECT_EQ(s.ex().live_objects(), 0u);
  s.expect_text_round_trip();
}

TEST(ExecSlabOps, MempoolResizeGrowsAndShrinksTheReserve) {
  Session s;
  const Handle pool = s.b.mempool_create(2, PoolKind::kmalloc, "", 128, 0, GFP_KERNEL);
  s.go();
  const mempool_t* p = s.mm().mempools.pool(static_cast<mempool_id>(s.mm().mempools.size()));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->curr_nr(), 2);
  s.b.mempool_resize(pool, 5);
  EXPECT_FALSE(s.go().failed);
  EXPECT_EQ(p->min_nr, 5);
  EXPECT_EQ(p->curr_nr(), 5);
  s.b.mempool_resize(pool, 1);
  s.go();
  EXPECT_EQ(p->curr_nr(), 1);
  EXPECT_EQ(s.ids(), Ids{});
  s.b.mempool_resize(pool, 0);  // BUG_ON(new_min_nr <= 0)
  EXPECT_TRUE(s.go().failed);
  EXPECT_EQ(s.ids(), Ids{"slab.bad_cache"});
  s.b.mempool_destroy(pool);
  s.go();
  s.expect_text_round_trip();
}

// A blocking mempool_alloc on an empty pool sleeps; the mempool_free that
// refills the reserve hands its element to the sleeper's handle.
TEST(ExecSlabOps, MempoolFreeWakesASleepingAlloc) {
  Session s;
  const Handle pool = s.b.mempool_create(1, PoolKind::pages, "", 0, 0, GFP_KERNEL);
  s.go();
  // No page left for the pool's allocator: only its reserve of one.
  const std::vector<pfn_t> held = s.exhaust_pages();
  const Handle a = s.b.mempool_alloc(pool, GFP_KERNEL);
  const vaddr_t elem = s.go().addr;
  ASSERT_NE(elem, 0u);
  const Handle b = s.b.mempool_alloc(pool, GFP_KERNEL);
  const OpResult r = s.go();
  EXPECT_TRUE(r.blocked);
  EXPECT_FALSE(r.failed);
  EXPECT_EQ(s.ex().live_objects(), 1u);
  s.b.write(Space::object, b, 0, 8, 1);  // asleep: nothing to write to yet
  EXPECT_FALSE(s.go().ran);
  s.b.mempool_free(pool, a);  // wakes b with a's element
  s.go();
  EXPECT_EQ(s.ex().live_objects(), 1u);
  s.b.write(Space::object, b, 0, kPage, 0x33);
  EXPECT_TRUE(s.go().ran);
  std::vector<std::uint8_t> got(1);
  s.mm().ram.read(s.mm().__pa(elem), got);
  EXPECT_EQ(got[0], 0x33);  // b's element is the one a gave back
  s.b.mempool_free(pool, b);
  EXPECT_TRUE(s.go().ran);
  s.b.mempool_destroy(pool);
  s.go();
  s.release(held);
  EXPECT_EQ(s.ex().live_objects(), 0u);
  EXPECT_EQ(s.ids(), Ids{});
  // No leak: every page is back.
  s.mm().page_alloc.drain_all_pages();
  EXPECT_TRUE(s.page_free(s.mm().virt_to_pfn(elem)));
  s.expect_text_round_trip();
}

// ---- kernel VM ----

TEST(ExecVmOps, IoAccessorsReachDeviceRegistersAndMemory) {
  Session s;
  const Handle io = s.b.ioremap(kPl011, kPage);
  s.go();
  s.b.writel(io, 0x38, 0x12345678);
  s.go();
  s.b.readl(io, 0x38);
  EXPECT_EQ(s.go().addr, 0x12345678u);
  s.b.readw(io, 0x38);
  EXPECT_EQ(s.go().addr, 0x5678u);
  s.b.iowrite8(io, 0x40, 0xab);
  s.go();
  s.b.ioread8(io, 0x40);
  EXPECT_EQ(s.go().addr, 0xabu);
  s.b.iowrite16(io, 0x44, 0xbeef);
  s.go();
  s.b.ioread32(io, 0x44);
  EXPECT_EQ(s.go().addr, 0xbeefu);
  s.b.writeb(io, 0x48, 7);
  s.go();
  s.b.readb(io, 0x48);
  EXPECT_EQ(s.go().addr, 7u);
  s.b.writew(io, 0x4a, 9);
  s.go();
  s.b.ioread16(io, 0x4a);
  EXPECT_EQ(s.go().addr, 9u);
  EXPECT_EQ(s.ids(), Ids{});
  s.b.readl(io, 0x3a);  // unaligned
  s.go();
  EXPECT_EQ(s.ids(), Ids{"ioremap.bad_access"});
  s.b.iowrite32(io, kPage, 1);  // the guard page
  s.go();
  EXPECT_EQ(s.ids(), Ids{"ioremap.bad_access"});
  // On a vmalloc area the accessors reach its pages.
  const Handle v = s.b.vmalloc(2 * kPage);
  s.go();
  s.b.iowrite32(v, kPage + 8, 0xdeadbeef);
  s.go();
  s.b.readl(v, kPage + 8);
  EXPECT_EQ(s.go().addr, 0xdeadbeefu);
  s.b.read(Space::area, v, kPage + 8, 4);
  s.go();
  EXPECT_EQ(s.ids(), Ids{});
  s.b.vfree(v);
  s.go();
  s.b.iounmap(io);
  s.go();
  EXPECT_EQ(s.ids(), Ids{});
  s.expect_text_round_trip();
}

// Every builder method, in one Program: it runs clean and reads back from
// its text form as it was built.
TEST(ProgramBuilderOps, NewCallsRunCleanAndRoundTrip) {
  ProgramBuilder b;
  const Handle pg = b.alloc_pages(0, GFP_KERNEL);
  b.get_page(pg);
  b.kmap(pg);
  b.kunmap(pg);
  b.kmap_local_page(pg);
  b.kmap_atomic(pg);
  b.kunmap_atomic(pg);
  b.kunmap_local(pg);
  b.put_page(pg);
  b.free_pages_addr(pg, 0);
  const Handle ex = b.alloc_pages_exact(3 * kPage, GFP_KERNEL);
  b.free_pages_exact(ex, 3 * kPage);
  const Handle r = b.krealloc(0, 10, GFP_KERNEL);
  b.kfree_sensitive(r);
  const Handle kv = b.kvmalloc(10000, GFP_KERNEL);
  b.kvfree(kv);
  b.kmem_cache_create("c", 32, 0, 0);
  const Handle bulk = b.kmem_cache_alloc_bulk("c", GFP_KERNEL, 3);
  b.kmem_cache_free_bulk("c", bulk, 3);
  b.kmem_cache_destroy("c");
  const Handle pool = b.mempool_create(1, PoolKind::kmalloc, "", 64, 0, GFP_KERNEL);
  b.mempool_resize(pool, 3);
  b.mempool_destroy(pool);
  const Handle io = b.ioremap(kPl011, kPage);
  b.readl(io, 0);
  b.writel(io, 4, 1);
  b.iounmap(io);
  const Program p = b.program();
  EXPECT_TRUE(p.ops[1].is<GetPage>());
  EXPECT_EQ(p.ops[9].as<FreePages>(), (FreePages{.page = pg, .by_addr = true}));
  EXPECT_EQ(p.ops[6].as<Kunmap>().api, KunmapApi::kunmap_atomic);
  const Verdict v = Executor::run(p, small_config());
  for (const auto& f : v.findings) ADD_FAILURE() << f.violation.to_text(false);
  EXPECT_EQ(v.skipped_ops, 0u);
  EXPECT_EQ(parse_program(print_program(p)), p);
}

// A cache name binds what its last kmem_cache_create returned: after a
// create that failed the name binds nothing, so the Program's later ops on it
// are skipped, not run on the destroyed cache of that name.
TEST(ExecSlabOps, FailedCreateUnbindsTheName) {
  Session s;
  s.b.kmem_cache_create("wl_cache", 64, 8, 0);
  EXPECT_FALSE(s.go().failed);
  s.b.kmem_cache_destroy("wl_cache");
  s.go();
  s.b.kmem_cache_create("wl_cache", std::uint64_t{1} << 40, 8, 0);  // too large: NULL
  EXPECT_TRUE(s.go().failed);
  EXPECT_EQ(s.ids(), Ids{"slab.bad_create"});
  const Handle h = s.b.kmem_cache_alloc("wl_cache", GFP_KERNEL);
  EXPECT_FALSE(s.go().ran);
  const Handle bulk = s.b.kmem_cache_alloc_bulk("wl_cache", GFP_KERNEL, 4);
  EXPECT_FALSE(s.go().ran);
  EXPECT_TRUE(s.ids().empty());
  // Their allocations failed with the cache: the frees are skipped quietly,
  // not frees of pointers never allocated (trace.unknown_free).
  s.b.kmem_cache_free("wl_cache", h);
  EXPECT_FALSE(s.go().ran);
  s.b.kmem_cache_free("wl_cache", bulk + 3);
  EXPECT_FALSE(s.go().ran);
  EXPECT_EQ(s.ids(), Ids{});
}

// Memory handed to the wrong allocator is misuse the model reports and
// refuses before it can corrupt it (a fuzz_slob input freed a SLOB large
// kmalloc through a page mempool: the slab layer still counted the pages,
// and a later check reported slab.overlap on an unmodified model).
TEST(ExecSlabOps, LargeKmallocPagesAreNotThePageAllocatorsToFree) {
  Session s;
  const Handle big = s.b.kmalloc(3 * kPage, GFP_KERNEL);  // large: order 2
  const OpResult r = s.go();
  ASSERT_NE(r.addr, 0u);
  const pfn_t head = s.mm().virt_to_pfn(r.addr);
  ASSERT_TRUE(s.mm().slab.large_kmalloc_size(head));
  // Straight to the page allocator: refused (reported with the next op).
  s.mm().page_alloc.free_pages(r.addr, 2);
  EXPECT_TRUE(s.mm().slab.large_kmalloc_size(head));
  // Through a page pool with a full reserve (pool->free), and through one
  // whose reserve is short (the element would join the reserve): refused.
  const Handle full = s.b.mempool_create(1, PoolKind::pages, "", 0, 2, GFP_KERNEL);
  s.go();
  s.b.mempool_free(full, big);
  s.go();
  EXPECT_EQ(s.ids(), (Ids{"page_alloc.free_kmalloc", "page_alloc.free_kmalloc"}));
  const Handle shorted = s.b.mempool_create(2, PoolKind::pages, "", 0, 2, GFP_KERNEL);
  s.go();
  const Handle lent = s.b.mempool_alloc(shorted, GFP_KERNEL);
  s.go();
  s.b.kfree(lent);  // the pool's pages are not kmalloc's either
  s.go();
  EXPECT_EQ(s.ids(), Ids{"slab.invalid_free"});
  s.b.mempool_free(shorted, big);
  s.go();
  EXPECT_EQ(s.ids(), Ids{"page_alloc.free_kmalloc"});
  // The large kmalloc is still whole: kfree() frees it, and a sweep is clean.
  s.b.kfree(big);
  s.go();
  EXPECT_FALSE(s.mm().slab.large_kmalloc_size(head));
  s.b.mempool_free(shorted, lent);
  s.go();
  s.b.mempool_destroy(full);
  s.go();
  s.b.mempool_destroy(shorted);
  s.go();
  s.b.check();
  s.go();
  EXPECT_EQ(s.ids(), Ids{});
}

// A slab pool takes back only objects of its own cache: into a short
// reserve (the pool lent its elements) as well as to its cache.
TEST(ExecSlabOps, SlabPoolRefusesAnotherCachesObject) {
  Session s;
  s.b.kmem_cache_create("pool_elems", 96, 0, 0);
  s.go();
  s.b.kmem_cache_create("other", 200, 0, 0);  // another size: not merged
  s.go();
  const Handle pool = s.b.mempool_create(2, PoolKind::slab, "pool_elems", 0, 0, GFP_KERNEL);
  s.go();
  const Handle stranger = s.b.kmem_cache_alloc("other", GFP_KERNEL);
  s.go();
  s.b.mempool_free(pool, stranger);  // the reserve is full: to the pool's cache
  s.go();
  EXPECT_EQ(s.ids(), Ids{"slab.wrong_cache"});
  // Drain the cache's slabs and the reserve with no page left to grow.
  const std::vector<pfn_t> held = s.exhaust_pages();
  std::vector<Handle> taken;
  for (int i = 0; i < 256; ++i) {
    taken.push_back(s.b.mempool_alloc(pool, GFP_ATOMIC));
    if (!s.go().addr) break;
  }
  ASSERT_LT(taken.size(), 256u);
  s.b.mempool_free(pool, stranger);  // the reserve is short: it would keep it
  s.go();
  EXPECT_EQ(s.ids(), Ids{"slab.wrong_cache"});
  for (const Handle t : taken) {
    s.b.mempool_free(pool, t);
    s.go();
  }
  s.b.kmem_cache_free("other", stranger);
  s.go();
  s.b.mempool_destroy(pool);
  s.go();
  s.release(held);
  s.b.kmem_cache_destroy("other");
  s.go();
  s.b.kmem_cache_destroy("pool_elems");
  s.go();
  EXPECT_EQ(s.ids(), Ids{});
}

// A Program that frees a handle whose mempool_alloc still sleeps: the task
// frees its element as soon as it gets it (its own ops in its own order),
// so nothing leaks and the pool's cache can be destroyed.
TEST(ExecSlabOps, MempoolFreeOfASleeperFreesItOnWake) {
  Session s;
  s.b.kmem_cache_create("elems", 512, 0, 0);
  s.go();
  const Handle pool = s.b.mempool_create(1, PoolKind::slab, "elems", 0, 0, GFP_KERNEL);
  s.go();
  const std::vector<pfn_t> held = s.exhaust_pages();
  // Take every free object of the cache's slabs, then the reserve.
  std::vector<Handle> taken;
  for (int i = 0; i < 64; ++i) {
    taken.push_back(s.b.mempool_alloc(pool, GFP_ATOMIC));
    if (!s.go().addr) break;
  }
  const Handle sleeper = s.b.mempool_alloc(pool, GFP_KERNEL);
  ASSERT_TRUE(s.go().blocked);
  s.b.mempool_free(pool, sleeper);  // asleep: deferred to its wake
  s.go();
  for (const Handle t : taken) {
    s.b.mempool_free(pool, t);  // the first wakes the sleeper, which frees at once
    s.go();
  }
  s.b.mempool_destroy(pool);
  s.go();
  s.b.kmem_cache_destroy("elems");
  s.go();
  s.release(held);
  EXPECT_EQ(s.ex().live_objects(), 0u);
  EXPECT_EQ(s.ids(), Ids{});  // no slab.destroy_busy: nothing left in the cache
}

}  // namespace
}  // namespace mmfuzz::prog
