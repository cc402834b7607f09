// RapidCheck generation and shrinking of whole Programs: a case draws a
// seed and a length from RapidCheck's Random and size and hands them to a
// Program generator; its shrinks remove chunks of ops (halves, quarters,
// ... single ops) together with every op that uses what they bound, so a
// shrunk Program never names a handle nothing allocated. The Shrinker
// (shrink/) reduces the result further.
#pragma once

#include <rapidcheck.h>

#include <cstdint>
#include <functional>
#include <ostream>

#include "program/program.h"

namespace mmfuzz::prog {
// How RapidCheck prints a counterexample: its size (the Program itself is
// saved as a file).
void showValue(const Program& p, std::ostream& os);
}  // namespace mmfuzz::prog

namespace mmfuzz::props {

using MakeProgram = std::function<prog::Program(std::uint64_t seed, std::size_t ops)>;

// Programs of up to max_ops ops (scaled by RapidCheck's size).
rc::Gen<prog::Program> gen_program(MakeProgram make, std::size_t max_ops);

// The shrinks of p, in the order RapidCheck tries them.
rc::Seq<prog::Program> shrink_program(const prog::Program& p);

}  // namespace mmfuzz::props
