#include <stdexcept>

#include "kernels/spmm_f32/spmm_f32.h"

namespace sparsecpu {

bool SpmmF32Kernel::supports(const BlockSparseMatrix& w) const {
  if (w.dense) return dense;
  for (int r : block_rows)
    if (r != 0 && r == w.block.rows) return true;
  return false;
}

// Ordered from the highest ISA level down; within a level, specific before general.
const std::vector<SpmmF32Kernel>& spmm_f32_kernels() {
  static const std::vector<SpmmF32Kernel> kernels = {
      {"spmm_f32_dense_avx512", Isa::avx512, true, {}, spmm_f32_dense_avx512},
      {"spmm_f32_bsr_r16_avx512", Isa::avx512, false, {16}, spmm_f32_bsr_r16_avx512},
      {"spmm_f32_bsr_r1to8_avx512", Isa::avx512, false, {1, 2, 4, 8}, spmm_f32_bsr_r1to8_avx512},
      {"spmm_f32_dense_avx2", Isa::avx2, true, {}, spmm_f32_dense_avx2},
      {"spmm_f32_bsr_r16_avx2", Isa::avx2, false, {16}, spmm_f32_bsr_r16_avx2},
      {"spmm_f32_bsr_r8_avx2", Isa::avx2, false, {8}, spmm_f32_bsr_r8_avx2},
      {"spmm_f32_bsr_r1to4_avx2", Isa::avx2, false, {1, 2, 4}, spmm_f32_bsr_r1to4_avx2},
      {"spmm_f32_ref", Isa::ref, true, {1, 2, 4, 8, 16}, spmm_f32_ref},
  };
  return kernels;
}

const SpmmF32Kernel& select_spmm_f32_kernel(const BlockSparseMatrix& w) {
  for (const SpmmF32Kernel& k : spmm_f32_kernels())
    if (isa_usable(k.isa) && k.supports(w)) return k;
  throw std::logic_error("no fp32 kernel supports this matrix");  // unreachable: ref supports all
}

const SpmmF32Kernel& spmm_f32_kernel_by_name(const std::string& name) {
  for (const SpmmF32Kernel& k : spmm_f32_kernels()) {
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
