// Stateful property of the kernel-VM layer: random vmalloc, vzalloc, vmap,
// ioremap, their frees, client writes and reads, purges and ticks against a
// reference model of every live area's bytes (and of the device registers
// written through ioremap). After every command: each live byte translates
// through the page tables to a physical address whose RAM holds the
// reference value, every freed range stays unmapped, and a full checker
// sweep finds nothing.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "invariants/checker.h"
#include "mm/mm.h"

namespace {

using namespace mmfuzz;
using namespace mmfuzz::mm;

constexpr std::uint64_t kPage = 4096;

enum class Kind { vmalloc, vmap, ioremap };

struct Area {
  Kind kind = Kind::vmalloc;
  vaddr_t base = 0;                 // page-aligned start of the mapping
  std::uint64_t size = 0;           // bytes the caller owns from the cookie on
  std::uint64_t span = 0;           // mapped bytes from base (whole pages)
  std::vector<std::uint8_t> bytes;  // RAM areas: the reference contents
  std::vector<pfn_t> pages;         // vmap: the caller's pages
  phys_addr_t phys = 0;             // ioremap: the physical address of the cookie
  // vmalloc above 512 pages: the vmalloc'd page array (start, mapped bytes).
  std::pair<vaddr_t, std::uint64_t> nested{0, 0};
};

// The devices of the default machine ioremap can reach, with their PrimeCell
// peripheral ID 0.
struct Dev {
  phys_addr_t base;
  std::uint8_t part0;
};
constexpr Dev kDevs[] = {{0x09000000, 0x11}, {0x09010000, 0x31}, {0x09030000, 0x61}};

struct Sut {
  Sut() : mm(std::make_unique<Mm>(config())), engine(*mm, opts()) {
    boot_busy = mm->vmalloc.busy().size();
    boot_free_ranges = mm->vmalloc.free_ranges();
    // Reset values of the registers (ID registers, UARTFR); the peripheral
    // ID 0 is restated here, the rest is taken from the model.
    for (const Dev& d : kDevs) {
      const IoDevice* dev = mm->vmalloc.device_at(d.base);
      RC_ASSERT(dev != nullptr);
      for (const auto& [off, val] : dev->reset) regs[dev->start + off] = val;
      RC_ASSERT(regs[d.base + 0xfe0] == d.part0);
    }
  }
  static MmConfig config() {
    MmConfig cfg;
    cfg.machine = small_machine(32 * SZ_1M);
    return cfg;
  }
  static inv::CheckOptions opts() {
    inv::CheckOptions o;
    o.capture_stacks = false;
    return o;
  }

  void begin(const char* op) { engine.begin_op(step++, op); }
  // After every command: the model agrees with the reference and no checker fires.
  void end(const char* op) {
    engine.end_op();
    engine.full_sweep();
    if (!engine.clean())
      RC_FAIL(std::string(op) + ":\n" + engine.violations().front().to_text(false));
    check_live();
    check_freed();
  }

  void check_live() {
    const PageTables& pt = mm->pgtable;
    std::vector<std::uint8_t> buf(kPage);
    vaddr_t prev_end = 0;
    for (const auto& [cookie, a] : live) {
      // Areas (with their guard page) never overlap.
      RC_ASSERT(a.base >= prev_end);
      prev_end = a.base + a.span + kPage;
      const vm_struct* vm = mm->vmalloc.find_vm_area(a.base);
      RC_ASSERT(vm != nullptr);
      RC_ASSERT(vm->area_size(kPage) == a.span);
      if (a.kind == Kind::ioremap) {
        for (std::uint64_t off = 0; off < a.span; off += kPage) {
          const auto pa = pt.translate(a.base + off);
          RC_ASSERT(pa.has_value());
          RC_ASSERT(*pa == (a.phys & ~(kPage - 1)) + off);
        }
        continue;
      }
      // Every live byte translates into RAM holding the reference value.
      RC_ASSERT(cookie == a.base);
      for (std::uint64_t off = 0; off < a.size; off += kPage) {
        const auto pa = pt.translate(cookie + off);
        RC_ASSERT(pa.has_value());
        const pfn_t pfn = *pa >> 12;
        if (a.kind == Kind::vmap)
          RC_ASSERT(pfn == a.pages[off / kPage]);
        else
          RC_ASSERT(pfn == vm->pages[off / kPage]);
        const std::size_t n = static_cast<std::size_t>(std::min(kPage, a.size - off));
        mm->ram.read(*pa, std::span<std::uint8_t>(buf.data(), n));
        if (std::memcmp(buf.data(), a.bytes.data() + off, n) != 0) {
          std::size_t i = 0;
          while (buf[i] == a.bytes[off + i]) ++i;
          RC_FAIL("byte " + std::to_string(off + i) + " of the area at " + std::to_string(cookie) +
                  " is " + std::to_string(buf[i]) + ", expected " +
                  std::to_string(a.bytes[off + i]));
        }
      }
    }
  }
  void check_freed() {
    for (const auto& [start, len] : freed)
      for (std::uint64_t off = 0; off < len; off += kPage)
        RC_ASSERT(!mm->pgtable.translate(start + off).has_value());
  }

  // A new area: its range (and guard) is no longer a freed range.
  // The same for a vmalloc area's nested page array.
  void adopt(vaddr_t cookie, Area a) {
    RC_ASSERT(cookie != 0u);
    RC_ASSERT(mm->vmalloc.is_vmalloc_addr(cookie));
    RC_ASSERT(a.base % kPage == 0u);
    if (const vm_struct* vm = mm->vmalloc.find_vm_area(a.base); vm && vm->pages_vmalloced) {
      const vm_struct* arr = mm->vmalloc.find_vm_area(vm->pages_array);
      RC_ASSERT(arr != nullptr);
      a.nested = {arr->addr, arr->area_size(kPage)};
    }
    unfree(a.base, a.span);
    if (a.nested.second) unfree(a.nested.first, a.nested.second);
    live.emplace(cookie, std::move(a));
  }
  void unfree(vaddr_t base, std::uint64_t span) {
    const vaddr_t lo = base, hi = base + span + kPage;
    std::erase_if(freed, [&](const auto& f) { return f.first < hi && lo < f.first + f.second; });
  }
  void forget(std::map<vaddr_t, Area>::iterator it) {
    freed.emplace_back(it->second.base, it->second.span);
    if (it->second.nested.second) freed.push_back(it->second.nested);
    live.erase(it);
  }
  // The k-th live area of one kind, or of any kind (end() if none).
  std::map<vaddr_t, Area>::iterator pick(std::size_t k, std::optional<Kind> kind = {}) {
    std::vector<std::map<vaddr_t, Area>::iterator> c;
    for (auto it = live.begin(); it != live.end(); ++it)
      if (!kind || it->second.kind == *kind) c.push_back(it);
    return c.empty() ? live.end() : c[k % c.size()];
  }

  std::uint32_t reg32(phys_addr_t pa) const {
    std::uint32_t v = 0;
    for (unsigned i = 0; i < 4; ++i) {
      auto it = regs.find(pa + i);
      v |= std::uint32_t{it == regs.end() ? std::uint8_t{0} : it->second} << (8 * i);
    }
    return v;
  }

  std::unique_ptr<Mm> mm;
  inv::CheckEngine engine;
  std::map<vaddr_t, Area> live;  // by the cookie the API returned
  std::vector<std::pair<vaddr_t, std::uint64_t>> freed;
  std::map<phys_addr_t, std::uint8_t> regs;  // device registers by physical byte
  std::size_t boot_busy = 0;
  std::map<vaddr_t, vaddr_t> boot_free_ranges;
  std::int64_t step = 0;
};

struct Model {};  // the reference lives in Sut: addresses are not predictable
using Cmd = rc::state::Command<Model, Sut>;

rc::Gen<std::uint64_t> area_size() {
  return rc::gen::weightedOneOf<std::uint64_t>(
      {{8, rc::gen::inRange<std::uint64_t>(1, 4 * kPage)},
       {3, rc::gen::inRange<std::uint64_t>(4 * kPage, 24 * kPage)},
       {1, rc::gen::inRange<std::uint64_t>(513 * kPage, 600 * kPage)}});  // vmalloc'd page array
}

struct VmallocCmd : Cmd {
  std::uint64_t size = *area_size();
  int api = *rc::gen::inRange(0, 4);  // vmalloc, vzalloc, __vmalloc(__GFP_ZERO), vmalloc_32
  void run(const Model&, Sut& s) const override {
    s.begin("vmalloc");
    Vmalloc& v = s.mm->vmalloc;
    const vaddr_t a = api == 0   ? v.vmalloc(size)
                      : api == 1 ? v.vzalloc(size)
                      : api == 2 ? v.__vmalloc(size, GFP_KERNEL | __GFP_ZERO)
                                 : v.vmalloc_32(size);
    if (a) {
      Area ar;
      ar.kind = Kind::vmalloc;
      ar.base = a;
      ar.size = size;
      ar.span = round_up(size, kPage);
      // Zeroed memory: __GFP_ZERO, or init_on_alloc for plain vmalloc.
      ar.bytes.assign(size, 0);
      if ((api == 0 || api == 3) && !s.mm->profile.init_on_alloc) RC_ASSERT(v.read(a, ar.bytes));
      s.adopt(a, std::move(ar));
    }
    s.end("vmalloc");
  }
  void show(std::ostream& os) const override {
    static const char* const names[] = {"vmalloc", "vzalloc", "__vmalloc(__GFP_ZERO)",
                                        "vmalloc_32"};
    os << names[api] << "(" << size << ")";
  }
};

struct VfreeCmd : Cmd {
  std::size_t k = *rc::gen::inRange<std::size_t>(0, 1 << 16);
  void run(const Model&, Sut& s) const override {
    s.begin("vfree");
    auto it = s.pick(k, Kind::vmalloc);
    if (it != s.live.end()) {
      s.mm->vmalloc.vfree(it->first);
      s.forget(it);
    }
    s.end("vfree");
  }
  void show(std::ostream& os) const override { os << "vfree(vmalloc #" << k << ")"; }
};

// vunmap() leaves the pages to their owner, who frees them afterwards.
struct VunmapCmd : Cmd {
  std::size_t k = *rc::gen::inRange<std::size_t>(0, 1 << 16);
  void run(const Model&, Sut& s) const override {
    s.begin("vunmap");
    auto it = s.pick(k, Kind::vmap);
    if (it != s.live.end()) {
      s.mm->vmalloc.vunmap(it->first);
      for (const pfn_t p : it->second.pages) {
        RC_ASSERT(s.mm->pfn_to_page(p)._refcount == 1);
        s.mm->page_alloc.__free_pages(p, 0);
      }
      s.forget(it);
    }
    s.end("vunmap");
  }
  void show(std::ostream& os) const override { os << "vunmap(vmap #" << k << ")"; }
};

struct VmapCmd : Cmd {
  unsigned n = *rc::gen::inRange(1u, 9u);
  std::uint8_t seed = *rc::gen::arbitrary<std::uint8_t>();
  void run(const Model&, Sut& s) const override {
    s.begin("vmap");
    std::vector<pfn_t> pages;
    for (unsigned i = 0; i < n; ++i) {
      const pfn_t p = s.mm->page_alloc.alloc_pages(GFP_KERNEL | __GFP_NOWARN, 0);
      if (p == NO_PAGE) break;
      pages.push_back(p);
    }
    if (pages.size() < n) {
      for (const pfn_t p : pages) s.mm->page_alloc.__free_pages(p, 0);
      s.end("vmap");
      return;
    }
    // Reverse order: the vmap address space need not follow the pfns.
    std::reverse(pages.begin(), pages.end());
    // The owner writes through the linear map first.
    Area ar;
    ar.kind = Kind::vmap;
    ar.size = n * kPage;
    ar.span = ar.size;
    ar.bytes.resize(ar.size);
    for (std::size_t i = 0; i < ar.bytes.size(); ++i)
      ar.bytes[i] = static_cast<std::uint8_t>(seed + i / 512);
    for (unsigned i = 0; i < n; ++i)
      RC_ASSERT(
          s.mm->vmalloc.write(s.mm->page_address(pages[i]),
                              std::span<const std::uint8_t>(ar.bytes.data() + i * kPage, kPage)));
    const vaddr_t a = s.mm->vmalloc.vmap(pages);
    if (!a) {
      for (const pfn_t p : pages) s.mm->page_alloc.__free_pages(p, 0);
    } else {
      ar.base = a;
      ar.pages = std::move(pages);
      s.adopt(a, std::move(ar));
    }
    s.end("vmap");
  }
  void show(std::ostream& os) const override { os << "vmap(" << n << " pages)"; }
};

struct IoremapCmd : Cmd {
  std::size_t dev = *rc::gen::inRange<std::size_t>(0, std::size(kDevs));
  std::uint64_t offset = *rc::gen::inRange<std::uint64_t>(0, kPage / 4) * 4;
  std::uint64_t size = *rc::gen::inRange<std::uint64_t>(1, kPage);
  int api = *rc::gen::inRange(0, 3);
  void run(const Model&, Sut& s) const override {
    s.begin("ioremap");
    const std::uint64_t len = std::min(size, kPage - offset);
    const phys_addr_t phys = kDevs[dev].base + offset;
    Vmalloc& v = s.mm->vmalloc;
    const vaddr_t a = api == 0   ? v.ioremap(phys, len)
                      : api == 1 ? v.ioremap_wc(phys, len)
                                 : v.ioremap_np(phys, len);
    RC_ASSERT(a != 0u);
    RC_ASSERT(a % kPage == offset);
    Area ar;
    ar.kind = Kind::ioremap;
    ar.base = a - offset;
    ar.size = len;
    ar.span = kPage;
    ar.phys = phys;
    s.adopt(a, std::move(ar));
    // The device answers through the new mapping.
    if (offset == 0) RC_ASSERT(v.readl(a + 0xfe0) == kDevs[dev].part0);
    s.end("ioremap");
  }
  void show(std::ostream& os) const override {
    static const char* const names[] = {"ioremap", "ioremap_wc", "ioremap_np"};
    os << names[api] << "(dev #" << dev << " + " << offset << ", " << size << ")";
  }
};

struct IounmapCmd : Cmd {
  std::size_t k = *rc::gen::inRange<std::size_t>(0, 1 << 16);
  void run(const Model&, Sut& s) const override {
    s.begin("iounmap");
    auto it = s.pick(k, Kind::ioremap);
    if (it != s.live.end()) {
      s.mm->vmalloc.iounmap(it->first);
      s.forget(it);
    }
    s.end("iounmap");
  }
  void show(std::ostream& os) const override { os << "iounmap(ioremap #" << k << ")"; }
};

struct WriteCmd : Cmd {
  std::size_t k = *rc::gen::inRange<std::size_t>(0, 1 << 16);
  std::uint64_t off = *rc::gen::inRange<std::uint64_t>(0, 1 << 22);
  std::uint64_t len = *rc::gen::inRange<std::uint64_t>(1, 3 * kPage);
  std::uint8_t seed = *rc::gen::arbitrary<std::uint8_t>();
  void run(const Model&, Sut& s) const override {
    s.begin("write");
    auto it = s.pick(k);
    if (it != s.live.end()) {
      Area& a = it->second;
      if (a.kind == Kind::ioremap) {
        // A 32-bit register write inside what the caller mapped (below the ID registers).
        const std::uint64_t room =
            std::min<std::uint64_t>(a.size, 0xfe0 - std::min<std::uint64_t>(0xfe0, a.phys % kPage));
        if (room >= 4) {
          const std::uint64_t o = (off % (room / 4)) * 4;
          const std::uint32_t val = 0x01010101u * seed + static_cast<std::uint32_t>(o);
          s.mm->vmalloc.writel(val, it->first + o);
          for (unsigned i = 0; i < 4; ++i)
            s.regs[a.phys + o + i] = static_cast<std::uint8_t>(val >> (8 * i));
        }
      } else {
        const std::uint64_t o = off % a.size;
        const std::uint64_t n = std::min(len, a.size - o);
        std::vector<std::uint8_t> b(n);
        for (std::uint64_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(seed + 3 * i);
        RC_ASSERT(s.mm->vmalloc.write(it->first + o, b));
        std::copy(b.begin(), b.end(), a.bytes.begin() + static_cast<long>(o));
      }
    }
    s.end("write");
  }
  void show(std::ostream& os) const override {
    os << "write(live #" << k << ", +" << off << ", " << len << ")";
  }
};

struct ReadCmd : Cmd {
  std::size_t k = *rc::gen::inRange<std::size_t>(0, 1 << 16);
  std::uint64_t off = *rc::gen::inRange<std::uint64_t>(0, 1 << 22);
  std::uint64_t len = *rc::gen::inRange<std::uint64_t>(1, 3 * kPage);
  void run(const Model&, Sut& s) const override {
    s.begin("read");
    auto it = s.pick(k);
    if (it != s.live.end()) {
      const Area& a = it->second;
      if (a.kind == Kind::ioremap) {
        // Through the current CPU's TLB, like any accessor.
        for (std::uint64_t o = 0; o + 4 <= a.size; o += 4 * (1 + off % 64))
          RC_ASSERT(s.mm->vmalloc.readl(it->first + o) == s.reg32(a.phys + o));
      } else {
        const std::uint64_t o = off % a.size;
        const std::uint64_t n = std::min(len, a.size - o);
        std::vector<std::uint8_t> b(n);
        RC_ASSERT(s.mm->vmalloc.read(it->first + o, b));
        RC_ASSERT(std::equal(b.begin(), b.end(), a.bytes.begin() + static_cast<long>(o)));
      }
    }
    s.end("read");
  }
  void show(std::ostream& os) const override {
    os << "read(live #" << k << ", +" << off << ", " << len << ")";
  }
};

struct HousekeepingCmd : Cmd {
  int what = *rc::gen::inRange(0, 3);
  void run(const Model&, Sut& s) const override {
    s.begin("housekeeping");
    switch (what) {
      case 0:
        s.mm->tick();
        break;
      case 1:
        // The lazy threshold (fls(2) * 32 MiB) is above this machine's RAM:
        // purge directly so freed address space comes back into play.
        s.mm->vmalloc.purge_vmap_area_lazy();
        RC_ASSERT(s.mm->vmalloc.purge_list().empty());
        RC_ASSERT(s.mm->vmalloc.vmap_lazy_nr == 0u);
        break;
      default:
        RC_ASSERT(s.mm->set_cpu(1 - s.mm->cpu()));
        break;
    }
    s.end("housekeeping");
  }
  void show(std::ostream& os) const override {
    static const char* const names[] = {"tick", "purge_vmap_area_lazy", "switch_cpu"};
    os << names[what];
  }
};

RC_GTEST_PROP(VmState, AreasKeepTheirBytesAndFreedRangesStayUnmapped, ()) {
  Sut s;
  rc::state::check(Model{}, s,
                   rc::state::gen::execOneOfWithArgs<VmallocCmd, VmallocCmd, VfreeCmd, VmapCmd,
                                                     VunmapCmd, IoremapCmd, IounmapCmd, WriteCmd,
                                                     WriteCmd, ReadCmd, HousekeepingCmd>());
  // Teardown: everything goes back; after a purge the vmalloc address space
  // is exactly what boot left.
  s.begin("teardown");
  while (!s.live.empty()) {
    auto it = s.live.begin();
    if (it->second.kind == Kind::vmalloc) {
      s.mm->vmalloc.vfree(it->first);
    } else if (it->second.kind == Kind::vmap) {
      s.mm->vmalloc.vunmap(it->first);
      for (const pfn_t p : it->second.pages) s.mm->page_alloc.__free_pages(p, 0);
    } else {
      s.mm->vmalloc.iounmap(it->first);
    }
    s.forget(it);
  }
  s.mm->vmalloc.purge_vmap_area_lazy();
  s.end("teardown");
  RC_ASSERT(s.mm->vmalloc.busy().size() == s.boot_busy);
  RC_ASSERT(s.mm->vmalloc.free_ranges() == s.boot_free_ranges);
  RC_ASSERT(s.mm->vmalloc.nr_vmalloc_pages == 0u);
  s.engine.finish();
  if (!s.engine.clean()) RC_FAIL(s.engine.violations().front().to_text(false));
}

}  // namespace
