#include "props/property.h"

#include <stdexcept>

namespace mmfuzz::props {

using namespace mmfuzz::mm;

const char* gen_kind_name(GenKind g) {
  return g == GenKind::shaped ? "shaped" : "uniform";
}

namespace {

prog::ProgramHeader header_for(const std::string& name, const char* machine,
                               std::optional<SlabVariant> slab) {
  prog::ProgramHeader h;
  h.version = 2;
  h.target = "prop:" + name;
  h.machine = machine;
  h.slab = slab;
  h.oracle = true;
  h.check = prog::CheckMode::incremental;
  return h;
}

PropertySpec spec(std::string name, std::string description, Focus focus, const char* machine,
                  std::optional<SlabVariant> slab) {
  PropertySpec p;
  p.header = header_for(name, machine, slab);
  p.name = std::move(name);
  p.description = std::move(description);
  p.focus = focus;
  return p;
}

std::vector<PropertySpec> make_properties() {
  std::vector<PropertySpec> ps;
  ps.push_back(spec("buddy",
                    "page allocator: alloc_pages/free, split_page, exact, refs, pcp drains",
                    Focus::page, "small", SlabVariant::slub));
  ps.push_back(spec("slub", "SLUB: kmalloc and kmem_cache traffic", Focus::slab, "small",
                    SlabVariant::slub));
  ps.push_back(spec("slub_debug", "SLUB with slub_debug=FZPU: red zones, poison, tracking",
                    Focus::slab, "small", SlabVariant::slub));
  ps.back().header.slub_debug =
      SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER;
  ps.push_back(spec("slub_kmalloc8", "SLUB with KMALLOC_MIN_SIZE 8: the 96 and 192 caches",
                    Focus::slab, "small", SlabVariant::slub));
  ps.back().header.kmalloc_min = 8;
  ps.push_back(
      spec("slab", "SLAB: array caches, shared arrays", Focus::slab, "small", SlabVariant::slab));
  ps.push_back(spec("slob", "SLOB: page lists by size", Focus::slab, "small", SlabVariant::slob));
  ps.push_back(spec("mempool", "mempools of every kind: reserve, lending, sleepers", Focus::mempool,
                    "small", SlabVariant::slub));
  ps.push_back(spec("vmalloc", "vmalloc, vmap, ioremap: page tables, guards, lazy purge", Focus::vm,
                    "small", SlabVariant::slub));
  ps.push_back(spec("mm", "everything at once on the 16 MiB fuzz machine: pressure, failures",
                    Focus::all, "fuzz", SlabVariant::slub));
  ps.push_back(spec("pressure",
                    "everything at once on the 16 MiB fuzz machine with every free block taken "
                    "first: watermarks, ALLOC_HARDER, slow path, failures",
                    Focus::all, "fuzz", SlabVariant::slub));
  ps.back().ballast = true;
  ps.push_back(spec("mempool_pressure",
                    "mempools made at init, then every free block taken: reserves lent and "
                    "refilled, sleepers",
                    Focus::mempool, "fuzz", SlabVariant::slub));
  ps.back().ballast = true;
  ps.push_back(spec("diff_slab", "differential: SLUB, SLAB and SLOB agree on what callers see",
                    Focus::slab, "small", SlabVariant::slub));
  ps.back().header.diff = prog::DiffMode::slab;
  ps.push_back(spec("diff_profile",
                    "differential: the 6.1 and 5.10 profiles agree where their rules do",
                    Focus::all, "small", SlabVariant::slub));
  ps.back().header.diff = prog::DiffMode::profile;
  ps.back().header.ram = 64 * SZ_1M;  // the 5.10 memmap needs more than 16 MiB
  // The lazy vmap purge threshold scaled as the fuzz targets scale it
  // (16 k lazily freed pages on two CPUs is out of reach of 200-op
  // Programs; 32 is not): the purge and its TLB flush are reached.
  for (PropertySpec& p : ps)
    if (p.name == "vmalloc" || p.name == "mm" || p.name == "pressure") p.header.lazy_max_pages = 32;
  for (PropertySpec& p : ps) p.header = p.header.resolved();
  return ps;
}

}  // namespace

const std::vector<PropertySpec>& all_properties() {
  static const std::vector<PropertySpec> kProps = make_properties();
  return kProps;
}

const PropertySpec* find_property(const std::string& name) {
  for (const PropertySpec& p : all_properties())
    if (p.name == name) return &p;
  return nullptr;
}

prog::MachineFacts machine_facts(const PropertySpec& p) {
  const Mm m(p.header.mm_config());
  return prog::MachineFacts::of(m);
}

Shape shape_for(const PropertySpec& p, GenKind g, const analysis::ProfileData* profile) {
  const prog::MachineFacts m = machine_facts(p);
  if (g == GenKind::uniform) return uniform_shape(m);
  return shape_of(profile ? *profile : builtin_profile().data(), m);
}

prog::Program generate_case(const PropertySpec& p, const Shape& shape, std::uint64_t seed,
                            std::size_t ops, PlantedDefect planted) {
  static thread_local std::map<std::string, prog::MachineFacts> facts;
  auto it = facts.find(p.name);
  if (it == facts.end()) it = facts.emplace(p.name, machine_facts(p)).first;
  GenOptions o;
  o.seed = seed;
  o.ops = ops;
  o.focus = p.focus;
  o.ballast = p.ballast;
  prog::Program prog = generate(shape, it->second, o);
  prog.header = p.header;
  prog.header.planted = planted;
  return prog;
}

CaseRunner::CaseRunner(const prog::ProgramHeader& h)
    : header_(h),
      snap_(std::make_unique<Mm>(h.mm_config())),
      work_(std::make_unique<Mm>(h.mm_config())) {
  configs_ = prog::diff_configs(h);
  for (const prog::DiffConfig& c : configs_) {
    diff_snaps_.push_back(std::make_unique<Mm>(c.header.mm_config()));
    diff_work_.push_back(std::make_unique<Mm>(c.header.mm_config()));
  }
}

namespace {

// What a Program reached beyond the boot: the event counters' growth.
void add_reach(const Mm& snap, const Mm& work, Reach* reach) {
  if (!reach) return;
  const mm::VmEvents& before = snap.events();
  const mm::VmEvents& after = work.events();
  for (unsigned i = 0; i < mm::NR_VM_EVENT_ITEMS; ++i)
    if (const std::uint64_t d = after.event[i] - before.event[i])
      (*reach)[mm::vm_event_name(static_cast<mm::vm_event_item>(i))] += d;
}

}  // namespace

std::vector<prog::Finding> CaseRunner::run_differential(const prog::Program& p, Reach* reach) {
  std::vector<Mm*> models;
  for (std::size_t i = 0; i < configs_.size(); ++i) {
    diff_work_[i]->restore_from(*diff_snaps_[i]);
    models.push_back(diff_work_[i].get());
  }
  prog::Differential d(models, configs_, p.strings, false);
  for (const prog::Op& op : p.ops)
    if (!d.step(op)) break;
  const auto& f = d.finish();
  for (std::size_t i = 0; i < configs_.size(); ++i)
    add_reach(*diff_snaps_[i], *diff_work_[i], reach);
  return f ? std::vector<prog::Finding>{*f} : std::vector<prog::Finding>{};
}

CaseRunner::~CaseRunner() = default;

std::vector<prog::Finding> CaseRunner::run(const prog::Program& p, Reach* reach) {
  if (!p.header.same_run(header_)) throw std::logic_error("CaseRunner: another model's Program");
  if (!configs_.empty()) return run_differential(p, reach);
  work_->restore_from(*snap_);
  prog::ExecOptions o = p.header.exec_options();
  o.capture_stacks = false;
  prog::Executor ex(*work_, p.strings, o);
  for (const prog::Op& op : p.ops) ex.step(op);
  prog::Verdict v = ex.finish();
  add_reach(*snap_, *work_, reach);
  return std::move(v.findings);
}

}  // namespace mmfuzz::props
