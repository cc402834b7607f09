// The properties `mmfuzz prop` runs (docs/properties.md). A property is a
// model configuration (a Program header: machine, allocator, debug options,
// oracle on), a generator of Programs for it, and a judgment: the Program
// run by the one Executor must give no finding: no invariant, no misuse
// report, no oracle post-condition (program/oracle.h), and for differential
// properties no disagreement between configurations.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mm/mm.h"
#include "program/differential.h"
#include "program/executor.h"
#include "program/generate.h"
#include "program/header.h"
#include "program/program.h"
#include "props/generate.h"

namespace mmfuzz::props {

// Which generator draws the Programs: shaped by a workload profile (the
// bundled real trace's unless --profile names one) or uniform.
enum class GenKind : std::uint8_t { shaped, uniform };
const char* gen_kind_name(GenKind g);

struct PropertySpec {
  std::string name;
  std::string description;
  prog::ProgramHeader header;  // resolved, oracle on
  Focus focus = Focus::all;
  bool ballast = false;  // GenOptions::ballast: run at the watermark
};

// Every property, in the order `mmfuzz prop` runs them.
const std::vector<PropertySpec>& all_properties();
const PropertySpec* find_property(const std::string& name);

// What generators need of a property's machine (booted once per property).
prog::MachineFacts machine_facts(const PropertySpec& p);

// The shape a property's cases are drawn from: the profile's (`profile`,
// else the built-in one) on the property's machine, or the uniform one.
Shape shape_for(const PropertySpec& p, GenKind g, const analysis::ProfileData* profile = nullptr);

// One case: the Program the generator writes from `shape` for `seed`, at
// most `ops` ops before its teardown, headed by the property's header (with
// `planted`).
prog::Program generate_case(const PropertySpec& p, const Shape& shape, std::uint64_t seed,
                            std::size_t ops, mm::PlantedDefect planted);

// The allocator states a run reached: the model's event counters summed.
using Reach = std::map<std::string, std::uint64_t>;

// Runs Programs of one property on a booted model restored from its
// snapshot before each one (no boot per case).
class CaseRunner {
 public:
  explicit CaseRunner(const prog::ProgramHeader& h);
  ~CaseRunner();
  // The findings of p (its header must run the same model as the runner's);
  // a `diff:` header runs every configuration and compares them.
  std::vector<prog::Finding> run(const prog::Program& p, Reach* reach = nullptr);

 private:
  std::vector<prog::Finding> run_differential(const prog::Program& p, Reach* reach);
  prog::ProgramHeader header_;
  std::unique_ptr<mm::Mm> snap_, work_;
  // diff: one configuration each, booted once and restored per case.
  std::vector<prog::DiffConfig> configs_;
  std::vector<std::unique_ptr<mm::Mm>> diff_snaps_, diff_work_;
};

}  // namespace mmfuzz::props
