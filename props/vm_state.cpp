// Stateful property of the kernel-VM layer: random vmalloc, vzalloc, vmap,
// ioremap, their frees, client writes and reads and ticks against a
// reference model of every live area's bytes. After every command: each live
// byte translates through the page tables to a physical address whose RAM
// holds the reference value, every freed range stays unmapped, and a full
// checker sweep finds nothing. Each command is an op of a Program the
// Executor runs (props/program_run.h).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "mm/mm.h"
#include "props/program_run.h"
#include "props/selftest.h"

namespace {

using namespace mmfuzz;
using namespace mmfuzz::mm;
using prog::Handle;
using prog::OpResult;
using prog::Space;

constexpr std::uint64_t kPage = 4096;

enum class Kind { vmalloc, vmap, ioremap };

struct Area {
  Kind kind = Kind::vmalloc;
  Handle h = 0;
  vaddr_t base = 0;                 // page-aligned start of the mapping
  std::uint64_t size = 0;           // bytes the caller owns from the cookie on
  std::uint64_t span = 0;           // mapped bytes from base (whole pages)
  std::vector<std::uint8_t> bytes;  // RAM areas: the reference contents
  std::vector<pfn_t> pages;         // vmap: the pages the op allocated
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

// The pages allocated during an op, in order (the vmap op's own pages come
// first: the Executor allocates them before vmap() runs).
struct PageLog : MmObserver {
  explicit PageLog(Mm& m) : mm(m) { mm.attach(this); }
  ~PageLog() override { mm.detach(this); }
  void mm_page_alloc(pfn_t pfn, unsigned order, gfp_t, int) override {
    pages.emplace_back(pfn, order);
  }
  Mm& mm;
  std::vector<std::pair<pfn_t, unsigned>> pages;
};

MmConfig vm_config() {
  MmConfig cfg;
  cfg.machine = small_machine(32 * SZ_1M);
  return cfg;
}

prog::ExecOptions exec_options() {
  prog::ExecOptions o;
  o.capture_stacks = false;
  return o;
}

// A device register's value: what was written, else its reset value.
std::uint8_t reg(const IoDevice& d, phys_addr_t pa) {
  if (auto it = d.regs.find(pa - d.start); it != d.regs.end()) return it->second;
  auto it = d.reset.find(pa - d.start);
  return it == d.reset.end() ? 0 : it->second;
}

struct Sut {
  explicit Sut(const MmConfig& cfg) : run(cfg, exec_options()), log(run.mm()) {
    boot_busy = mm().vmalloc.busy().size();
    boot_free_ranges = mm().vmalloc.free_ranges();
  }
  Mm& mm() { return run.mm(); }
  void setup() {
    for (const Dev& d : kDevs) {
      const IoDevice* dev = mm().vmalloc.device_at(d.base);
      RC_ASSERT(dev != nullptr);
      RC_ASSERT(reg(*dev, d.base + 0xfe0) == d.part0);
    }
  }

  // Runs the ops just appended; they ran, on the CPU the Program names.
  OpResult step() {
    log.pages.clear();
    const OpResult r = run.step();
    RC_ASSERT(r.ran);
    RC_ASSERT(mm().cpu() == cpu);
    return r;
  }
  // After every command: a full sweep finds nothing and the model agrees
  // with the reference.
  void end() {
    run.b().check();
    step();
    RC_ASSERT(run.ex().live_areas() == live.size());
    check_live();
    check_freed();
  }

  // The bytes at a mapped kernel address, read through the page tables.
  std::vector<std::uint8_t> peek(vaddr_t va, std::uint64_t len) {
    std::vector<std::uint8_t> out(len);
    for (std::uint64_t off = 0; off < len; off += kPage) {
      const auto pa = mm().pgtable.translate(va + off);
      RC_ASSERT(pa.has_value());
      const std::size_t n = static_cast<std::size_t>(std::min(kPage, len - off));
      mm().ram.read(*pa, std::span<std::uint8_t>(out.data() + off, n));
    }
    return out;
  }

  void check_live() {
    const PageTables& pt = mm().pgtable;
    std::vector<std::uint8_t> buf(kPage);
    vaddr_t prev_end = 0;
    for (const auto& [cookie, a] : live) {
      // Areas (with their guard page) never overlap.
      RC_ASSERT(a.base >= prev_end);
      prev_end = a.base + a.span + kPage;
      const vm_struct* vm = mm().vmalloc.find_vm_area(a.base);
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
        RC_ASSERT(pfn == (a.kind == Kind::vmap ? a.pages : vm->pages)[off / kPage]);
        const std::size_t n = static_cast<std::size_t>(std::min(kPage, a.size - off));
        mm().ram.read(*pa, std::span<std::uint8_t>(buf.data(), n));
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
        RC_ASSERT(!mm().pgtable.translate(start + off).has_value());
  }

  // A new area: its range (and guard) is no longer a freed range.
  // The same for a vmalloc area's nested page array.
  void adopt(vaddr_t cookie, Area a) {
    RC_ASSERT(cookie != 0u);
    RC_ASSERT(mm().vmalloc.is_vmalloc_addr(cookie));
    RC_ASSERT(a.base % kPage == 0u);
    if (const vm_struct* vm = mm().vmalloc.find_vm_area(a.base); vm && vm->pages_vmalloced) {
      const vm_struct* arr = mm().vmalloc.find_vm_area(vm->pages_array);
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
  // The k-th live area `keep` accepts (end() if none).
  std::map<vaddr_t, Area>::iterator pick(std::size_t k, const std::function<bool(Kind)>& keep) {
    std::vector<std::map<vaddr_t, Area>::iterator> c;
    for (auto it = live.begin(); it != live.end(); ++it)
      if (keep(it->second.kind)) c.push_back(it);
    return c.empty() ? live.end() : c[k % c.size()];
  }
  std::map<vaddr_t, Area>::iterator pick(std::size_t k, Kind kind) {
    return pick(k, [kind](Kind x) { return x == kind; });
  }

  // The vmalloc space no area holds: the free ranges and the lazily freed
  // areas awaiting a purge, merged.
  std::map<vaddr_t, vaddr_t> unused_ranges() {
    std::map<vaddr_t, vaddr_t> r = mm().vmalloc.free_ranges();
    for (const auto& [start, va] : mm().vmalloc.purge_list()) r.emplace(va.va_start, va.va_end);
    for (auto it = r.begin(); it != r.end();) {
      auto next = std::next(it);
      if (next != r.end() && next->first <= it->second) {
        it->second = std::max(it->second, next->second);
        r.erase(next);
      } else {
        it = next;
      }
    }
    return r;
  }

  props::ProgramRun run;
  PageLog log;                   // detaches before run's model goes
  std::map<vaddr_t, Area> live;  // by the cookie the API returned
  std::vector<std::pair<vaddr_t, std::uint64_t>> freed;
  std::size_t boot_busy = 0;
  std::map<vaddr_t, vaddr_t> boot_free_ranges;
  int cpu = 0;
};

bool in_ram(Kind k) {
  return k != Kind::ioremap;
}

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
    using prog::VmallocApi;
    static const VmallocApi apis[] = {VmallocApi::vmalloc, VmallocApi::vzalloc, VmallocApi::vmalloc,
                                      VmallocApi::vmalloc_32};
    const Handle h = s.run.b().vmalloc(size, apis[api], api == 2 ? GFP_KERNEL | __GFP_ZERO : 0);
    const OpResult r = s.step();
    if (!r.failed) {
      Area ar;
      ar.kind = Kind::vmalloc;
      ar.h = h;
      ar.base = r.addr;
      ar.size = size;
      ar.span = round_up(size, kPage);
      // Zeroed memory: __GFP_ZERO, or init_on_alloc for plain vmalloc.
      ar.bytes.assign(size, 0);
      if ((api == 0 || api == 3) && !s.mm().profile.init_on_alloc) ar.bytes = s.peek(r.addr, size);
      s.adopt(r.addr, std::move(ar));
    }
    s.end();
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
    auto it = s.pick(k, Kind::vmalloc);
    if (it != s.live.end()) {
      s.run.b().vfree(it->second.h);
      s.step();
      s.forget(it);
    }
    s.end();
  }
  void show(std::ostream& os) const override { os << "vfree(vmalloc #" << k << ")"; }
};

// The vmap op allocates its pages and vunmap frees them, once.
struct VunmapCmd : Cmd {
  std::size_t k = *rc::gen::inRange<std::size_t>(0, 1 << 16);
  void run(const Model&, Sut& s) const override {
    auto it = s.pick(k, Kind::vmap);
    if (it != s.live.end()) {
      for (const pfn_t p : it->second.pages) RC_ASSERT(s.mm().pfn_to_page(p)._refcount == 1);
      s.run.b().vunmap(it->second.h);
      s.step();
      for (const pfn_t p : it->second.pages) RC_ASSERT(s.mm().pfn_to_page(p)._refcount == 0);
      s.forget(it);
    }
    s.end();
  }
  void show(std::ostream& os) const override { os << "vunmap(vmap #" << k << ")"; }
};

struct VmapCmd : Cmd {
  unsigned n = *rc::gen::inRange(1u, 9u);
  std::uint8_t seed = *rc::gen::arbitrary<std::uint8_t>();
  void run(const Model&, Sut& s) const override {
    const Handle h = s.run.b().vmap(n);
    const OpResult r = s.step();
    if (!r.failed) {
      Area ar;
      ar.kind = Kind::vmap;
      ar.h = h;
      ar.base = r.addr;
      ar.size = ar.span = n * kPage;
      RC_ASSERT(s.log.pages.size() >= n);
      for (unsigned i = 0; i < n; ++i) {
        RC_ASSERT(s.log.pages[i].second == 0u);
        ar.pages.push_back(s.log.pages[i].first);
      }
      ar.bytes = s.peek(r.addr, ar.size);
      s.adopt(r.addr, std::move(ar));
      // The owner writes each page with a byte of its own: the mapping
      // keeps the pages apart and in order.
      Area& a = s.live.at(r.addr);
      for (unsigned i = 0; i < n; ++i) {
        const auto b = static_cast<std::uint8_t>(seed + i);
        s.run.b().write(Space::area, h, i * kPage, kPage, b);
        RC_ASSERT(!s.step().failed);
        std::fill_n(a.bytes.begin() + static_cast<long>(i * kPage), kPage, b);
      }
    }
    s.end();
  }
  void show(std::ostream& os) const override { os << "vmap(" << n << " pages)"; }
};

struct IoremapCmd : Cmd {
  std::size_t dev = *rc::gen::inRange<std::size_t>(0, std::size(kDevs));
  std::uint64_t offset = *rc::gen::inRange<std::uint64_t>(0, kPage / 4) * 4;
  std::uint64_t size = *rc::gen::inRange<std::uint64_t>(1, kPage);
  int api = *rc::gen::inRange(0, 3);
  void run(const Model&, Sut& s) const override {
    const std::uint64_t len = std::min(size, kPage - offset);
    const phys_addr_t phys = kDevs[dev].base + offset;
    const Handle h = s.run.b().ioremap(phys, len, static_cast<prog::IoremapApi>(api));
    const OpResult r = s.step();
    RC_ASSERT(!r.failed);
    const vaddr_t a = r.addr;
    RC_ASSERT(a % kPage == offset);
    Area ar;
    ar.kind = Kind::ioremap;
    ar.h = h;
    ar.base = a - offset;
    ar.size = len;
    ar.span = kPage;
    ar.phys = phys;
    s.adopt(a, std::move(ar));
    // The mapping reaches the device: its ID register is where it belongs.
    const auto pa = s.mm().pgtable.translate(a - offset + 0xfe0);
    RC_ASSERT(pa.has_value());
    const IoDevice* d = s.mm().vmalloc.device_at(*pa);
    RC_ASSERT(d != nullptr);
    RC_ASSERT(d->start == kDevs[dev].base);
    RC_ASSERT(reg(*d, *pa) == kDevs[dev].part0);
    s.end();
  }
  void show(std::ostream& os) const override {
    static const char* const names[] = {"ioremap", "ioremap_wc", "ioremap_np"};
    os << names[api] << "(dev #" << dev << " + " << offset << ", " << size << ")";
  }
};

struct IounmapCmd : Cmd {
  std::size_t k = *rc::gen::inRange<std::size_t>(0, 1 << 16);
  void run(const Model&, Sut& s) const override {
    auto it = s.pick(k, Kind::ioremap);
    if (it != s.live.end()) {
      s.run.b().iounmap(it->second.h);
      s.step();
      s.forget(it);
    }
    s.end();
  }
  void show(std::ostream& os) const override { os << "iounmap(ioremap #" << k << ")"; }
};

// Client writes and reads of RAM areas through the CPU's TLB. (Register
// accesses through ioremap come back once the op set has io accessors.)
struct WriteCmd : Cmd {
  std::size_t k = *rc::gen::inRange<std::size_t>(0, 1 << 16);
  std::uint64_t off = *rc::gen::inRange<std::uint64_t>(0, 1 << 22);
  std::uint64_t len = *rc::gen::inRange<std::uint64_t>(1, 3 * kPage);
  std::uint8_t seed = *rc::gen::arbitrary<std::uint8_t>();
  void run(const Model&, Sut& s) const override {
    auto it = s.pick(k, in_ram);
    if (it != s.live.end()) {
      Area& a = it->second;
      const std::uint64_t o = off % a.size;
      const std::uint64_t n = std::min(len, a.size - o);
      s.run.b().write(Space::area, a.h, o, n, seed);
      RC_ASSERT(!s.step().failed);
      std::fill_n(a.bytes.begin() + static_cast<long>(o), n, seed);
    }
    s.end();
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
    auto it = s.pick(k, in_ram);
    if (it != s.live.end()) {
      const Area& a = it->second;
      const std::uint64_t o = off % a.size;
      const std::uint64_t n = std::min(len, a.size - o);
      s.run.b().read(Space::area, a.h, o, n);
      RC_ASSERT(!s.step().failed);
      const auto got = s.run.ex().last_access();
      RC_ASSERT(got.size() == n);
      RC_ASSERT(std::equal(got.begin(), got.end(), a.bytes.begin() + static_cast<long>(o)));
    }
    s.end();
  }
  void show(std::ostream& os) const override {
    os << "read(live #" << k << ", +" << off << ", " << len << ")";
  }
};

// A tick purges the lazily freed areas once they pass the lazy threshold.
// (An explicit purge_vmap_area_lazy() comes back once the op set has it.)
struct HousekeepingCmd : Cmd {
  int what = *rc::gen::inRange(0, 2);
  void run(const Model&, Sut& s) const override {
    if (what == 0) {
      Vmalloc& v = s.mm().vmalloc;
      const bool due = v.vmap_lazy_nr > v.lazy_max_pages();
      s.run.b().tick();
      s.step();
      if (due) {
        RC_ASSERT(v.purge_list().empty());
        RC_ASSERT(v.vmap_lazy_nr == 0u);
      }
    } else {  // the CPU the following ops run on
      s.cpu = 1 - s.cpu;
      s.run.b().set_cpu(s.cpu);
    }
    s.end();
  }
  void show(std::ostream& os) const override { os << (what == 0 ? "tick" : "switch_cpu"); }
};

void vm_property(const MmConfig& cfg) {
  Sut s(cfg);
  props::with_program(s.run, [&] {
    s.setup();
    rc::state::check(Model{}, s,
                     rc::state::gen::execOneOfWithArgs<VmallocCmd, VmallocCmd, VfreeCmd, VmapCmd,
                                                       VunmapCmd, IoremapCmd, IounmapCmd, WriteCmd,
                                                       WriteCmd, ReadCmd, HousekeepingCmd>());
    // Teardown: everything goes back; the vmalloc address space is exactly
    // what boot left, once the areas awaiting a purge are counted as free.
    while (!s.live.empty()) {
      auto it = s.live.begin();
      if (it->second.kind == Kind::vmalloc)
        s.run.b().vfree(it->second.h);
      else if (it->second.kind == Kind::vmap)
        s.run.b().vunmap(it->second.h);
      else
        s.run.b().iounmap(it->second.h);
      s.forget(it);
    }
    s.end();
    RC_ASSERT(s.mm().vmalloc.busy().size() == s.boot_busy);
    RC_ASSERT(s.unused_ranges() == s.boot_free_ranges);
    RC_ASSERT(s.mm().vmalloc.nr_vmalloc_pages == 0u);
    s.run.finish();
  });
}

RC_GTEST_PROP(VmState, AreasKeepTheirBytesAndFreedRangesStayUnmapped, ()) {
  vm_property(vm_config());
}

// A planted guard page bug: the property fails with a Program that replays
// to the same finding.
TEST(VmState, FailureCarriesAReplayableProgram) {
  MmConfig cfg = vm_config();
  cfg.planted = PlantedDefect::vmalloc_no_guard;
  props::expect_failure_with_program([&] { vm_property(cfg); }, cfg, "vmalloc.guard");
}

}  // namespace
