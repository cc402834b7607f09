// mmfuzz info: boot the model and print its /proc views.
#include <cstdio>
#include <sstream>

#include "cli/commands.h"
#include "cli/options.h"
#include "mm/procfs/procfs.h"

namespace mmfuzz::cli {
namespace {

struct View {
  const char* name;
  const char* header;
  std::string (*show)(const mm::Mm&);
};

std::string bootlog(const mm::Mm& m) {
  std::string out;
  for (const auto& l : m.boot_log) out += l + "\n";
  return out;
}

constexpr View kViews[] = {
    {"iomem", "/proc/iomem", mm::procfs::iomem},
    {"zoneinfo", "/proc/zoneinfo", mm::procfs::zoneinfo},
    {"buddyinfo", "/proc/buddyinfo", mm::procfs::buddyinfo},
    {"pagetypeinfo", "/proc/pagetypeinfo", mm::procfs::pagetypeinfo},
    {"meminfo", "/proc/meminfo", mm::procfs::meminfo},
    {"slabinfo", "/proc/slabinfo", mm::procfs::slabinfo},
    {"slabtop", "slabtop -o", mm::procfs::slabtop},
    {"bootlog", "boot log", bootlog},
};

const View* find_view(const std::string& name) {
  for (const auto& v : kViews)
    if (name == v.name) return &v;
  return nullptr;
}

struct InfoOptions {
  MachineOptions machine;
  std::vector<std::string> views{"iomem", "zoneinfo", "buddyinfo"};
  bool headers = true;
};

int run_info(const InfoOptions& o) {
  const mm::MmConfig cfg = o.machine.to_config();
  for (const auto& v : o.views) {
    if (find_view(v)) continue;
    std::string known;
    for (const auto& k : kViews) known += (known.empty() ? "" : ", ") + std::string(k.name);
    throw mm::ConfigError("unknown view '" + v + "' (views: " + known + ")");
  }
  mm::Mm m(cfg);
  std::ostringstream out;
  for (const auto& name : o.views) {
    const View* v = find_view(name);
    if (o.headers) out << "==> " << v->header << " <==\n";
    out << v->show(m);
    if (o.headers) out << "\n";
  }
  std::fputs(out.str().c_str(), stdout);
  return EXIT_OK;
}

}  // namespace

void register_info(CLI::App& app, std::function<int()>& run) {
  auto opts = std::make_shared<InfoOptions>();
  CLI::App* sub = app.add_subcommand(
      "info", "boot the model and print iomem, zoneinfo and buddyinfo (or other views)");
  opts->machine.add_to(*sub);
  sub->add_option("--view", opts->views,
                  "views to print, in order: iomem zoneinfo buddyinfo pagetypeinfo meminfo "
                  "slabinfo slabtop bootlog")
      ->delimiter(',');
  sub->add_flag("!--no-headers", opts->headers, "print the views without ==> name <== headers");
  sub->callback([opts, &run] { run = [opts] { return run_info(*opts); }; });
}

}  // namespace mmfuzz::cli
