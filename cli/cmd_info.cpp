// mmfuzz info: boot the model and print its /proc views.
#include <algorithm>
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
    {"vmallocinfo", "/proc/vmallocinfo", mm::procfs::vmallocinfo},
    {"vmstat", "/proc/vmstat", mm::procfs::vmstat},
    {"ptdump", "/sys/kernel/debug/kernel_page_tables", mm::procfs::kernel_page_tables},
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
  bool ptdump = false, vmallocinfo = false;  // shorthands for --view NAME
  bool view_given = false;
};

int run_info(InfoOptions o) {
  const mm::MmConfig cfg = o.machine.to_config();
  // --ptdump and --vmallocinfo add their view; alone they replace the default list.
  if ((o.ptdump || o.vmallocinfo) && !o.view_given) o.views.clear();
  auto add = [&o](const char* name) {
    if (std::find(o.views.begin(), o.views.end(), name) == o.views.end())
      o.views.emplace_back(name);
  };
  if (o.vmallocinfo) add("vmallocinfo");
  if (o.ptdump) add("ptdump");
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
  CLI::Option* view =
      sub->add_option("--view", opts->views,
                      "views to print, in order: iomem zoneinfo buddyinfo pagetypeinfo meminfo "
                      "slabinfo slabtop vmallocinfo vmstat ptdump bootlog")
          ->delimiter(',');
  sub->add_flag("--ptdump", opts->ptdump,
                "print /sys/kernel/debug/kernel_page_tables (same as --view ptdump)");
  sub->add_flag("--vmallocinfo", opts->vmallocinfo,
                "print /proc/vmallocinfo (same as --view vmallocinfo)");
  sub->add_flag("!--no-headers", opts->headers, "print the views without ==> name <== headers");
  sub->callback([opts, view, &run] {
    opts->view_given = view->count() > 0;
    run = [opts] { return run_info(*opts); };
  });
}

}  // namespace mmfuzz::cli
