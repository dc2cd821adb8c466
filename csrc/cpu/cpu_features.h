// CPU feature detection and the ISA level in use.
//
// Detection runs once (cpuid + XCR0, so a feature the OS does not save in
// context switches counts as absent). SPARSECPU_ISA caps the level; the cap is
// read at the first call of active_isa() and never changes afterwards.
#pragma once

#include <string>
#include <vector>

namespace sparsecpu {

// Ordered: a kernel built for level L may run when L <= the active level and
// the CPU has L. The order is not a chain of feature supersets (a CPU may have
// avx512 without avx2_vnni), so "available" is tested per level.
enum class Isa : int { ref = 0, avx2, avx2_vnni, avx512, avx512_vnni, avx512_bf16, count };

const char* isa_name(Isa isa);
// Throws std::invalid_argument naming the text when it is no level.
Isa isa_from_name(const std::string& name);

struct CpuFeatures {
  std::string vendor;
  std::string model;
  std::vector<std::string> flags;  // what the CPU and OS both support
  bool available[static_cast<int>(Isa::count)] = {};
  int physical_cores = 1;
  int cores_in_affinity_mask = 1;
};

const CpuFeatures& cpu_features();

// The level every dispatch table uses. Throws std::runtime_error naming the
// value if SPARSECPU_ISA is unknown or names a level this CPU lacks.
Isa active_isa();

// True when code built for `isa` may run: the CPU has it and it is not above the cap.
bool isa_usable(Isa isa);

}  // namespace sparsecpu
