// mmfuzz workload: a short built-in, seeded alloc/free workload over the whole
// page allocator API and the slab layer with every check on. It stands in for `mmfuzz replay`
// until Programs and trace replay land.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli/options.h"
#include "invariants/checker.h"

namespace mmfuzz::cli {
namespace {

using namespace mmfuzz::mm;

struct WorkloadOptions {
  MachineOptions machine;
  std::uint64_t ops = 20000;
  std::uint64_t seed = 1;
  std::string checks = "all";
  std::uint64_t full_every = 1000;
  std::uint64_t slab_percent = 40;
  std::uint64_t vm_percent = 10;
  std::string json;
  bool quiet = false;
};

using Rng = SplitMix64;

struct Live {
  pfn_t pfn;
  unsigned order;
  bool compound;
};

struct Stats {
  std::uint64_t allocs = 0, alloc_failures = 0, capped = 0, frees = 0, splits = 0, exacts = 0,
                refs = 0, cpu_switches = 0, drains = 0, ticks = 0, peak_live_pages = 0;
};

// The slab half of the workload: kmalloc/kfree over every size class and
// GFP type, a few caches of its own (created, shrunk, destroyed, recreated),
// bulk and realloc paths and in-bounds client writes.
class SlabWorkload {
 public:
  explicit SlabWorkload(Mm& m)
      : m_(m), cap_bytes_(m.page_alloc.totalram_pages / 8 * m.profile.page_size()) {}

  // One operation; names it for the checkers' op records.
  void step(Rng& rng, inv::CheckEngine& engine, std::int64_t op) {
    Slab& sl = m_.slab;
    const std::uint64_t dice = rng.below(100);
    if (dice < 38 || live_.empty()) {
      const std::uint64_t size = pick_size(rng);
      const gfp_t gfp = kGfps[rng.below(std::size(kGfps))];
      engine.begin_op(op, "kmalloc");
      if (live_bytes_ + size > cap_bytes_) {
        ++capped;
        return;
      }
      ++kmallocs;
      if (const vaddr_t p = sl.kmalloc(size, gfp))
        add({p, size, 0});
      else
        ++failures;
    } else if (dice < 68) {
      engine.begin_op(op, "kfree");
      const Obj o = drop(rng.below(live_.size()));
      if (o.cache)
        sl.kmem_cache_free(o.cache, o.addr);
      else if (rng.below(8) == 0)
        sl.kfree_sensitive(o.addr);
      else
        sl.kfree(o.addr);
      ++frees;
    } else if (dice < 80) {
      engine.begin_op(op, "kmem_cache_alloc");
      const std::size_t k = rng.below(std::size(kCaches));
      const cache_id c = cache(k);
      if (!c) return;
      ++cache_allocs;
      if (const vaddr_t p = rng.below(4) ? sl.kmem_cache_alloc(c, GFP_KERNEL)
                                         : sl.kmem_cache_zalloc(c, GFP_KERNEL))
        add({p, kCaches[k].size, c});
      else
        ++failures;
    } else if (dice < 86) {
      engine.begin_op(op, "krealloc");
      const std::size_t k = rng.below(live_.size());
      if (live_[k].cache) return;
      const std::uint64_t size = pick_size(rng);
      if (live_bytes_ + size > cap_bytes_) return;
      ++reallocs;
      if (const vaddr_t p = sl.krealloc(live_[k].addr, size, GFP_KERNEL)) {
        live_bytes_ = live_bytes_ - live_[k].size + size;
        live_[k] = {p, size, 0};
      }
    } else if (dice < 93) {
      // What correct kernel code does with its object: write it whole.
      engine.begin_op(op, "memset");
      const Obj& o = live_[rng.below(live_.size())];
      sl.fill(o.addr, o.size, static_cast<std::uint8_t>(rng.next()));
      ++writes;
    } else if (dice < 96) {
      engine.begin_op(op, "kmem_cache_alloc_bulk");
      const std::size_t k = rng.below(std::size(kCaches));
      const cache_id c = cache(k);
      if (!c) return;
      vaddr_t objs[16];
      const std::size_t n = 1 + rng.below(16);
      const std::size_t got = sl.kmem_cache_alloc_bulk(c, GFP_KERNEL, n, objs);
      // Half go straight back in bulk, the rest stay live.
      sl.kmem_cache_free_bulk(c, got / 2, objs);
      for (std::size_t i = got / 2; i < got; ++i) add({objs[i], kCaches[k].size, c});
      ++bulks;
    } else if (dice < 98) {
      engine.begin_op(op, "kmem_cache_shrink");
      if (const cache_id c = cache(rng.below(std::size(kCaches)))) sl.kmem_cache_shrink(c);
      ++shrinks;
    } else {
      // Destroy a cache once it is empty (its objects freed first).
      engine.begin_op(op, "kmem_cache_destroy");
      const std::size_t k = rng.below(std::size(kCaches));
      if (!ids_[k]) return;
      for (std::size_t i = 0; i < live_.size();)
        if (live_[i].cache == ids_[k])
          sl.kmem_cache_free(ids_[k], drop(i).addr);
        else
          ++i;
      sl.kmem_cache_destroy(ids_[k]);
      ids_[k] = 0;
      ++destroys;
    }
  }

  void teardown() {
    for (const Obj& o : live_) {
      if (o.cache)
        m_.slab.kmem_cache_free(o.cache, o.addr);
      else
        m_.slab.kfree(o.addr);
    }
    live_.clear();
    for (cache_id& c : ids_)
      if (c) m_.slab.kmem_cache_destroy(std::exchange(c, 0));
  }

  std::uint64_t kmallocs = 0, cache_allocs = 0, failures = 0, capped = 0, frees = 0, reallocs = 0,
                writes = 0, bulks = 0, shrinks = 0, destroys = 0, peak_live = 0;

 private:
  struct Obj {
    vaddr_t addr;
    std::uint64_t size;
    cache_id cache;  // 0: kmalloc
  };
  struct CacheSpec {
    const char* name;
    unsigned size, align;
    slab_flags_t flags;
    bool ctor;
  };
  static constexpr CacheSpec kCaches[] = {
      {"workload_small", 24, 0, 0, false},
      {"workload_hw", 200, 0, SLAB_HWCACHE_ALIGN, false},
      {"workload_reclaim", 1000, 0, SLAB_RECLAIM_ACCOUNT, false},
      {"workload_ctor", 72, 8, SLAB_ACCOUNT, true},
      {"workload_rcu", 320, 0, SLAB_TYPESAFE_BY_RCU, false},
  };
  static constexpr gfp_t kGfps[] = {GFP_KERNEL,
                                    GFP_KERNEL_ACCOUNT,
                                    GFP_ATOMIC,
                                    GFP_NOWAIT,
                                    GFP_NOFS,
                                    GFP_KERNEL | __GFP_RECLAIMABLE,
                                    GFP_KERNEL | GFP_DMA,
                                    GFP_KERNEL | __GFP_ZERO};

  // Mostly small, as real kmalloc traffic is; now and then past the largest
  // kmalloc cache into the page allocator.
  std::uint64_t pick_size(Rng& rng) const {
    const std::uint64_t r = rng.below(100);
    if (r < 70) return 1 + rng.below(256);
    if (r < 92) return 257 + rng.below(4096 - 256);
    if (r < 99) return 4097 + rng.below(m_.slab.kmalloc_max_cache_size());
    // Large kmallocs, but never past what the page allocator can serve
    // (SLAB's kmalloc caches reach 4 MiB, its KMALLOC_MAX_SIZE).
    return 1 +
           rng.below(std::min(16 * m_.slab.kmalloc_max_cache_size(), m_.slab.kmalloc_max_size()));
  }
  // The workload's cache k, created on first use (again after a destroy).
  cache_id cache(std::size_t k) {
    if (!ids_[k]) {
      const CacheSpec& c = kCaches[k];
      slab_ctor ctor;
      ctor.present = c.ctor;
      ctor.fill = 0x3c;
      ids_[k] = m_.slab.kmem_cache_create(c.name, c.size, c.align, c.flags, ctor);
    }
    return ids_[k];
  }
  void add(Obj o) {
    live_.push_back(o);
    live_bytes_ += o.size;
    peak_live = std::max<std::uint64_t>(peak_live, live_.size());
  }
  Obj drop(std::size_t k) {
    const Obj o = live_[k];
    live_[k] = live_.back();
    live_.pop_back();
    live_bytes_ -= o.size;
    return o;
  }

  Mm& m_;
  std::uint64_t cap_bytes_;
  std::uint64_t live_bytes_ = 0;
  std::vector<Obj> live_;
  std::array<cache_id, std::size(kCaches)> ids_{};
};

// The kernel-VM part: vmalloc/vzalloc/vfree of 1..64 pages (sometimes a
// large area whose page array is itself vmalloc'd), vmap/vunmap of pages of
// its own, ioremap of a device with register reads and writes, kmap_local
// nesting, client writes and reads through the page tables.
class VmWorkload {
 public:
  explicit VmWorkload(Mm& m) : m_(m), cap_pages_(m.page_alloc.totalram_pages / 16) {}

  void step(Rng& rng, inv::CheckEngine& engine, std::int64_t op) {
    Vmalloc& vm = m_.vmalloc;
    const std::uint64_t ps = m_.profile.page_size();
    const std::uint64_t dice = rng.below(100);
    if (dice < 30 || areas_.empty()) {
      std::uint64_t pages = 1 + rng.below(rng.below(4) == 0 ? 64 : 8);
      if (rng.below(40) == 0) pages = 600;  // page array > PAGE_SIZE: nested vmalloc
      const bool zero = rng.below(3) == 0;
      engine.begin_op(op, zero ? "vzalloc" : "vmalloc");
      if (live_pages_ + pages > cap_pages_) {
        ++capped;
        return;
      }
      const std::uint64_t size = pages * ps - rng.below(ps);
      const vaddr_t a = zero ? vm.vzalloc(size) : vm.vmalloc(size);
      ++vmallocs;
      if (!a) {
        ++failures;
        return;
      }
      areas_.push_back({a, size, {}});
      live_pages_ += pages;
    } else if (dice < 55) {
      const std::size_t k = rng.below(areas_.size());
      const Area ar = areas_[k];
      areas_[k] = areas_.back();
      areas_.pop_back();
      if (ar.pfns.empty()) {
        engine.begin_op(op, "vfree");
        vm.vfree(ar.addr);
        live_pages_ -= (ar.size + ps - 1) / ps;
      } else {
        engine.begin_op(op, "vunmap");
        vm.vunmap(ar.addr);
        for (const pfn_t p : ar.pfns) m_.page_alloc.__free_pages(p, 0);
        live_pages_ -= ar.pfns.size();
      }
      ++frees;
    } else if (dice < 65) {
      engine.begin_op(op, "vmap");
      std::vector<pfn_t> pfns;
      const std::uint64_t n = 1 + rng.below(8);
      for (std::uint64_t i = 0; i < n; ++i) {
        const pfn_t p = m_.page_alloc.alloc_pages(GFP_KERNEL, 0);
        if (p != NO_PAGE) pfns.push_back(p);
      }
      const vaddr_t a = pfns.empty() ? 0 : vm.vmap(pfns);
      ++vmaps;
      if (!a) {
        for (const pfn_t p : pfns) m_.page_alloc.__free_pages(p, 0);
        ++failures;
        return;
      }
      live_pages_ += pfns.size();
      areas_.push_back({a, pfns.size() * ps, std::move(pfns)});
    } else if (dice < 85) {
      const Area& ar = areas_[rng.below(areas_.size())];
      const std::uint64_t off = rng.below(ar.size);
      const std::uint64_t len = 1 + rng.below(std::min<std::uint64_t>(ar.size - off, 256));
      std::vector<std::uint8_t> buf(len, static_cast<std::uint8_t>(rng.next()));
      engine.begin_op(op, "vm_write");
      vm.write(ar.addr + off, buf);
      std::vector<std::uint8_t> back(len);
      vm.read(ar.addr + off, back);
      ++accesses;
    } else if (dice < 92) {
      engine.begin_op(op, "ioremap");
      const vaddr_t io = vm.ioremap(0x09000000, 0x1000);  // the virt machine's pl011
      if (io) {
        vm.writel(static_cast<std::uint32_t>(rng.next()), io + 0x24);  // UARTIBRD
        (void)vm.readl(io + 0xfe0);
        vm.iounmap(io);
      }
      ++ioremaps;
    } else if (dice < 98) {
      engine.begin_op(op, "kmap_local_page");
      const pfn_t p = m_.page_alloc.alloc_pages(GFP_KERNEL, 0);
      if (p != NO_PAGE) {
        const vaddr_t a = vm.kmap_local_page(p);
        const vaddr_t b = vm.kmap_atomic(p);
        vm.kunmap_atomic(b);
        vm.kunmap_local(a);
        m_.page_alloc.__free_pages(p, 0);
      }
      ++kmaps;
    } else {
      engine.begin_op(op, "purge_vmap_area_lazy");
      vm.purge_vmap_area_lazy();
      ++purges;
    }
  }

  void teardown() {
    for (const Area& ar : areas_) {
      if (ar.pfns.empty()) {
        m_.vmalloc.vfree(ar.addr);
      } else {
        m_.vmalloc.vunmap(ar.addr);
        for (const pfn_t p : ar.pfns) m_.page_alloc.__free_pages(p, 0);
      }
    }
    areas_.clear();
    m_.vmalloc.purge_vmap_area_lazy();
  }

  std::uint64_t vmallocs = 0, vmaps = 0, frees = 0, failures = 0, capped = 0, accesses = 0,
                ioremaps = 0, kmaps = 0, purges = 0;

 private:
  struct Area {
    vaddr_t addr;
    std::uint64_t size;
    std::vector<pfn_t> pfns;  // vmap: the caller's pages
  };
  Mm& m_;
  std::uint64_t cap_pages_;
  std::uint64_t live_pages_ = 0;
  std::vector<Area> areas_;
};

int run_workload(const WorkloadOptions& o) {
  const MmConfig cfg = o.machine.to_config();
  Mm m(cfg);
  inv::CheckOptions co;
  co.checks = o.checks;
  co.full_every = o.full_every;
  inv::CheckEngine engine(m, co);
  Rng rng{o.seed};
  std::vector<Live> live;
  std::uint64_t live_pages = 0;
  Stats st;
  static const gfp_t kGfps[] = {GFP_KERNEL,
                                GFP_KERNEL_ACCOUNT,
                                GFP_ATOMIC,
                                GFP_NOWAIT,
                                GFP_NOIO,
                                GFP_NOFS,
                                GFP_USER,
                                GFP_HIGHUSER_MOVABLE,
                                GFP_KERNEL | __GFP_RECLAIMABLE,
                                GFP_DMA | GFP_KERNEL,
                                GFP_DMA32 | GFP_KERNEL,
                                GFP_KERNEL | __GFP_COMP,
                                GFP_KERNEL | __GFP_ZERO,
                                GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN};
  const std::uint64_t cap_pages = m.page_alloc.totalram_pages * 3 / 4;
  auto drop = [&](std::size_t k) {
    const Live l = live[k];
    live[k] = live.back();
    live.pop_back();
    live_pages -= std::uint64_t{1} << l.order;
    return l;
  };
  std::optional<SlabWorkload> slab;
  if (m.slab.initialized()) slab.emplace(m);
  std::optional<VmWorkload> vmw;
  if (m.vmalloc.initialized()) vmw.emplace(m);
  for (std::uint64_t i = 0; i < o.ops; ++i) {
    m.op_seq = static_cast<std::uint32_t>(i + 1);
    const std::uint64_t part = rng.below(100);
    if (slab && part < o.slab_percent) {
      slab->step(rng, engine, static_cast<std::int64_t>(i));
      engine.end_op();
      continue;
    }
    if (vmw && part < o.slab_percent + o.vm_percent) {
      vmw->step(rng, engine, static_cast<std::int64_t>(i));
      engine.end_op();
      continue;
    }
    const std::uint64_t dice = rng.below(100);
    std::string name;
    if (dice < 45 || live.empty()) {
      unsigned order = 0;
      const std::uint64_t r = rng.below(100);
      if (r >= 70)
        order =
            r < 90 ? 1 + static_cast<unsigned>(rng.below(3)) : static_cast<unsigned>(rng.below(11));
      gfp_t gfp = kGfps[rng.below(sizeof kGfps / sizeof kGfps[0])];
      if (rng.below(50) == 0) {
        order = m.profile.pageblock_order;
        gfp = GFP_TRANSHUGE_LIGHT;
      }
      name = "alloc_pages";
      engine.begin_op(static_cast<std::int64_t>(i), name);
      // Keep a quarter of RAM free so the workload exercises more than OOM.
      const bool over_cap = live_pages + (std::uint64_t{1} << order) > cap_pages;
      const pfn_t p = over_cap ? NO_PAGE : m.page_alloc.alloc_pages(gfp, order);
      ++st.allocs;
      if (over_cap) {
        ++st.capped;
      } else if (p == NO_PAGE) {
        ++st.alloc_failures;
      } else {
        live.push_back({p, order, order && (gfp & __GFP_COMP)});
        live_pages += std::uint64_t{1} << order;
        st.peak_live_pages = std::max(st.peak_live_pages, live_pages);
      }
    } else if (dice < 80) {
      const Live l = drop(rng.below(live.size()));
      name = "__free_pages";
      engine.begin_op(static_cast<std::int64_t>(i), name);
      if (rng.below(4) == 0) {
        name = "free_pages";
        m.page_alloc.free_pages(m.page_address(l.pfn), l.order);
      } else {
        m.page_alloc.__free_pages(l.pfn, l.order);
      }
      ++st.frees;
    } else if (dice < 84) {
      name = "split_page";
      engine.begin_op(static_cast<std::int64_t>(i), name);
      const std::size_t k = rng.below(live.size());
      if (live[k].order && !live[k].compound) {
        const Live l = drop(k);
        m.page_alloc.split_page(l.pfn, l.order);
        for (pfn_t p = l.pfn; p < l.pfn + (pfn_t{1} << l.order); ++p) live.push_back({p, 0, false});
        live_pages += std::uint64_t{1} << l.order;
        ++st.splits;
      }
    } else if (dice < 87) {
      name = "alloc_pages_exact";
      engine.begin_op(static_cast<std::int64_t>(i), name);
      const std::uint64_t size = 1 + rng.below(64 * m.profile.page_size());
      const vaddr_t va = m.page_alloc.alloc_pages_exact(size, GFP_KERNEL);
      if (va) m.page_alloc.free_pages_exact(va, size);
      ++st.exacts;
    } else if (dice < 91) {
      name = "get_page";
      engine.begin_op(static_cast<std::int64_t>(i), name);
      const Live& l = live[rng.below(live.size())];
      m.page_alloc.get_page(l.pfn);
      m.page_alloc.put_page(l.pfn);
      ++st.refs;
    } else if (dice < 96) {
      name = "switch_cpu";
      engine.begin_op(static_cast<std::int64_t>(i), name);
      m.set_cpu(static_cast<int>(rng.below(m.nr_cpus())));
      ++st.cpu_switches;
    } else if (dice < 98) {
      name = "drain_all_pages";
      engine.begin_op(static_cast<std::int64_t>(i), name);
      m.page_alloc.drain_all_pages();
      ++st.drains;
    } else {
      name = "tick";
      engine.begin_op(static_cast<std::int64_t>(i), name);
      m.tick();
      ++st.ticks;
    }
    engine.end_op();
  }
  engine.begin_op(static_cast<std::int64_t>(o.ops), "teardown");
  if (vmw) vmw->teardown();
  if (slab) slab->teardown();
  for (const auto& l : live) m.page_alloc.__free_pages(l.pfn, l.order);
  m.page_alloc.drain_all_pages();
  engine.end_op();
  engine.finish();

  const auto& v = engine.violations();
  if (!o.quiet) {
    std::printf("workload: %llu ops on %s, machine %s (%llu MiB, %u CPUs, %u nodes), seed %llu\n",
                static_cast<unsigned long long>(o.ops), m.profile.name.c_str(),
                m.machine.name.c_str(), static_cast<unsigned long long>(m.machine.ram_size >> 20),
                m.machine.nr_cpus, m.machine.nr_nodes, static_cast<unsigned long long>(o.seed));
    std::printf(
        "  allocations %llu (%llu failed, %llu skipped at the live-set cap), frees %llu, splits "
        "%llu,\n"
        "  exact %llu, get/put %llu, cpu switches %llu, drains %llu, ticks %llu, peak %llu pages "
        "live\n",
        static_cast<unsigned long long>(st.allocs),
        static_cast<unsigned long long>(st.alloc_failures),
        static_cast<unsigned long long>(st.capped), static_cast<unsigned long long>(st.frees),
        static_cast<unsigned long long>(st.splits), static_cast<unsigned long long>(st.exacts),
        static_cast<unsigned long long>(st.refs), static_cast<unsigned long long>(st.cpu_switches),
        static_cast<unsigned long long>(st.drains), static_cast<unsigned long long>(st.ticks),
        static_cast<unsigned long long>(st.peak_live_pages));
    if (slab)
      std::printf(
          "  slab (%s, %u%% of ops): kmalloc %llu, kmem_cache_alloc %llu (%llu failed, %llu "
          "skipped at the cap),\n"
          "  frees %llu, krealloc %llu, writes %llu, bulk %llu, shrinks %llu, destroys %llu, peak "
          "%llu objects live\n",
          slab_variant_name(m.slab.variant), static_cast<unsigned>(o.slab_percent),
          static_cast<unsigned long long>(slab->kmallocs),
          static_cast<unsigned long long>(slab->cache_allocs),
          static_cast<unsigned long long>(slab->failures),
          static_cast<unsigned long long>(slab->capped),
          static_cast<unsigned long long>(slab->frees),
          static_cast<unsigned long long>(slab->reallocs),
          static_cast<unsigned long long>(slab->writes),
          static_cast<unsigned long long>(slab->bulks),
          static_cast<unsigned long long>(slab->shrinks),
          static_cast<unsigned long long>(slab->destroys),
          static_cast<unsigned long long>(slab->peak_live));
    if (vmw)
      std::printf(
          "  vm (%u%% of ops): vmalloc %llu, vmap %llu (%llu failed, %llu skipped at the cap), "
          "frees %llu,\n"
          "  accesses %llu, ioremap %llu, kmap %llu, purges %llu (%llu purges that flushed)\n",
          static_cast<unsigned>(o.vm_percent), static_cast<unsigned long long>(vmw->vmallocs),
          static_cast<unsigned long long>(vmw->vmaps),
          static_cast<unsigned long long>(vmw->failures),
          static_cast<unsigned long long>(vmw->capped), static_cast<unsigned long long>(vmw->frees),
          static_cast<unsigned long long>(vmw->accesses),
          static_cast<unsigned long long>(vmw->ioremaps),
          static_cast<unsigned long long>(vmw->kmaps), static_cast<unsigned long long>(vmw->purges),
          static_cast<unsigned long long>(m.vmalloc.nr_purges));
    const auto& pa = m.page_alloc;
    std::printf("  page allocation failures: %llu, %llu of them warned\n",
                static_cast<unsigned long long>(pa.nr_alloc_failures),
                static_cast<unsigned long long>(pa.nr_alloc_warnings));
    for (std::size_t i = 0; i < std::min<std::size_t>(pa.alloc_warnings.size(), 3); ++i)
      std::printf("    op #%u: %s\n", pa.alloc_warnings[i].op_seq,
                  format_alloc_failure(pa.alloc_warnings[i]).c_str());
    std::printf("  checks '%s': incremental after every op, %llu full sweeps\n", o.checks.c_str(),
                static_cast<unsigned long long>(engine.nr_sweeps()));
    for (const auto& x : v) std::fputs(x.to_text().c_str(), stdout);
    std::printf("verdict: %s (%zu violation%s)\n", v.empty() ? "clean" : "VIOLATIONS", v.size(),
                v.size() == 1 ? "" : "s");
  }
  if (!o.json.empty()) {
    nlohmann::json j;
    j["verdict"] = v.empty() ? "clean" : "violations";
    j["ops"] = o.ops;
    j["seed"] = o.seed;
    j["profile"] = m.profile.name;
    j["full_sweeps"] = engine.nr_sweeps();
    j["violations"] = nlohmann::json::array();
    for (const auto& x : v) j["violations"].push_back(x.to_json());
    write_file_atomic(o.json, j.dump(2) + "\n");
  }
  return v.empty() ? EXIT_OK : EXIT_VIOLATIONS;
}

}  // namespace

void register_workload(CLI::App& app, std::function<int()>& run) {
  auto opts = std::make_shared<WorkloadOptions>();
  CLI::App* sub = app.add_subcommand(
      "workload",
      "run a seeded alloc/free workload over the page allocator and the slab layer with all "
      "checks");
  opts->machine.add_to(*sub);
  sub->add_option("--ops", opts->ops, "number of operations (default 20000)")
      ->check(CLI::Range(1ull, 100000000ull));
  sub->add_option("--seed", opts->seed, "workload seed (default 1)");
  sub->add_option("--checks", opts->checks,
                  "invariants to check: globs, '-' excludes (default all; see mmfuzz checks)");
  sub->add_option("--full-every", opts->full_every,
                  "full invariant sweep every N ops; 0: only at the end (default 1000)");
  sub->add_option("--slab-percent", opts->slab_percent,
                  "percentage of ops that go to the slab layer (default 40)")
      ->check(CLI::Range(0ull, 100ull));
  sub->add_option("--vm-percent", opts->vm_percent,
                  "percentage of ops that go to vmalloc/vmap/ioremap/kmap (default 10)")
      ->check(CLI::Range(0ull, 100ull));
  sub->add_option("--json", opts->json, "write the verdict and violations as JSON to this file");
  sub->add_flag("--quiet", opts->quiet, "print nothing; the exit code is the verdict");
  sub->callback([opts, &run] { run = [opts] { return run_workload(*opts); }; });
}

}  // namespace mmfuzz::cli
