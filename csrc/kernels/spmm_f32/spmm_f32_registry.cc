#include "kernels/spmm_f32/spmm_f32.h"
#include "kernels/registry.h"

namespace sparsecpu {

bool SpmmF32Kernel::supports(const BlockSparseMatrix& w) const {
  if (semi24) return false;
  if (w.dense)
    return dense && w.block.cols == 1 && (dense_rows == 0 ? w.block.rows <= kMaxDenseRows : w.block.rows == dense_rows);
  for (int r : block_rows)
    if (r != 0 && r == w.block.rows) return true;
  return false;
}

// Ordered from the highest ISA level down; within a level, specific before general.
const std::vector<SpmmF32Kernel>& spmm_f32_kernels() {
  static const std::vector<SpmmF32Kernel> kernels = {
      {"spmm_f32_dense_avx512", Isa::avx512, true, {}, spmm_f32_dense_avx512, false, 32},
      {"spmm_f32_bsr_r16_avx512", Isa::avx512, false, {16}, spmm_f32_bsr_r16_avx512},
      {"spmm_f32_bsr_r1to8_avx512", Isa::avx512, false, {1, 2, 4, 8}, spmm_f32_bsr_r1to8_avx512},
      {"spmm_f32_semi24_avx512", Isa::avx512, false, {}, spmm_f32_semi24_avx512, true},
      {"spmm_f32_dense_avx2", Isa::avx2, true, {}, spmm_f32_dense_avx2, false, 16},
      {"spmm_f32_bsr_r16_avx2", Isa::avx2, false, {16}, spmm_f32_bsr_r16_avx2},
      {"spmm_f32_bsr_r8_avx2", Isa::avx2, false, {8}, spmm_f32_bsr_r8_avx2},
      {"spmm_f32_bsr_r1to4_avx2", Isa::avx2, false, {1, 2, 4}, spmm_f32_bsr_r1to4_avx2},
      {"spmm_f32_semi24_avx2", Isa::avx2, false, {}, spmm_f32_semi24_avx2, true},
      {"spmm_f32_ref", Isa::ref, true, {1, 2, 4, 8, 16}, spmm_f32_ref},
      {"spmm_f32_semi24_ref", Isa::ref, false, {}, spmm_f32_ref, true},
  };
  return kernels;
}

const SpmmF32Kernel& select_spmm_f32_kernel(const BlockSparseMatrix& w) {
  return best_usable_kernel(spmm_f32_kernels(), [&](const SpmmF32Kernel& k) { return k.supports(w); });
}

const SpmmF32Kernel& select_spmm_f32_dense_kernel() {
  return best_usable_kernel(spmm_f32_kernels(), [](const SpmmF32Kernel& k) { return k.dense; });
}

const SpmmF32Kernel& select_spmm_f32_semi24_kernel() {
  return best_usable_kernel(spmm_f32_kernels(), [](const SpmmF32Kernel& k) { return k.semi24; });
}

const SpmmF32Kernel& spmm_f32_kernel_by_name(const std::string& name) {
  return kernel_by_name(spmm_f32_kernels(), name);
}

}  // namespace sparsecpu
