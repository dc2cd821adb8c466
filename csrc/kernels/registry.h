// Lookups every kernel family's registry shares. A registry is a vector of
// kernel descriptions with `name` and `isa`, ordered from the highest ISA
// level down.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"

namespace sparsecpu {

// The first usable kernel for which accepts(kernel) holds.
template <class Kernel, class Accepts>
const Kernel& best_usable_kernel(const std::vector<Kernel>& kernels, const Accepts& accepts) {
  for (const Kernel& k : kernels)
    if (isa_usable(k.isa) && accepts(k)) return k;
  throw std::logic_error("no usable kernel");  // unreachable while every family registers a ref kernel
}

// Throws std::invalid_argument if no kernel has that name, or if the CPU or SPARSECPU_ISA forbids it.
template <class Kernel>
const Kernel& kernel_by_name(const std::vector<Kernel>& kernels, const std::string& name) {
  for (const Kernel& k : kernels) {
    if (name != k.name) continue;
    if (!isa_usable(k.isa))
      throw std::invalid_argument("kernel '" + name + "' needs ISA level " + isa_name(k.isa) +
                                  ", which this CPU lacks or SPARSECPU_ISA excludes (active: " +
                                  isa_name(active_isa()) + ")");
    return k;
  }
  throw std::invalid_argument("unknown kernel '" + name + "'");
}

}  // namespace sparsecpu
