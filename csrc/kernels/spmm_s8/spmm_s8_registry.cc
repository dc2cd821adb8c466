#include <stdexcept>

#include "kernels/spmm_s8/spmm_s8.h"

namespace sparsecpu {

// Ordered from the highest ISA level down.
const std::vector<SpmmS8Kernel>& spmm_s8_kernels() {
  static const std::vector<SpmmS8Kernel> kernels = {
      {"spmm_s8_dense_avx512_vnni", Isa::avx512_vnni, true, spmm_s8_dense_avx512_vnni},
      {"spmm_s8_quads_avx512_vnni", Isa::avx512_vnni, false, spmm_s8_quads_avx512_vnni},
      {"spmm_s8_dense_avx2_vnni", Isa::avx2_vnni, true, spmm_s8_dense_avx2_vnni},
      {"spmm_s8_quads_avx2_vnni", Isa::avx2_vnni, false, spmm_s8_quads_avx2_vnni},
      {"spmm_s8_dense_avx2", Isa::avx2, true, spmm_s8_dense_avx2},
      {"spmm_s8_quads_avx2", Isa::avx2, false, spmm_s8_quads_avx2},
      {"spmm_s8_dense_ref", Isa::ref, true, spmm_s8_ref},
      {"spmm_s8_quads_ref", Isa::ref, false, spmm_s8_ref},
  };
  return kernels;
}

const SpmmS8Kernel& select_spmm_s8_kernel(bool dense) {
  for (const SpmmS8Kernel& k : spmm_s8_kernels())
    if (k.dense == dense && isa_usable(k.isa)) return k;
  throw std::logic_error("no int8 kernel usable");  // unreachable: the ref kernels always are
}

const SpmmS8Kernel& spmm_s8_kernel_by_name(const std::string& name) {
  for (const SpmmS8Kernel& k : spmm_s8_kernels()) {
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
