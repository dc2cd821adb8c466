#include "kernels/spmm_s8/spmm_s8.h"
#include "kernels/registry.h"

namespace sparsecpu {

// Ordered from the highest ISA level down.
const std::vector<SpmmS8Kernel>& spmm_s8_kernels() {
  static const std::vector<SpmmS8Kernel> kernels = {
      {"spmm_s8_dense_avx512_bf16", Isa::avx512_bf16, true, spmm_s8_dense_avx512_bf16},
      {"spmm_s8_quads_avx512_bf16", Isa::avx512_bf16, false, spmm_s8_quads_avx512_bf16},
      {"spmm_s8_semi24_avx512_bf16", Isa::avx512_bf16, false, spmm_s8_semi24_avx512_bf16, true},
      {"spmm_s8_dense_avx512_vnni", Isa::avx512_vnni, true, spmm_s8_dense_avx512_vnni},
      {"spmm_s8_quads_avx512_vnni", Isa::avx512_vnni, false, spmm_s8_quads_avx512_vnni},
      {"spmm_s8_semi24_avx512_vnni", Isa::avx512_vnni, false, spmm_s8_semi24_avx512_vnni, true},
      {"spmm_s8_dense_avx2_vnni", Isa::avx2_vnni, true, spmm_s8_dense_avx2_vnni},
      {"spmm_s8_quads_avx2_vnni", Isa::avx2_vnni, false, spmm_s8_quads_avx2_vnni},
      {"spmm_s8_semi24_avx2_vnni", Isa::avx2_vnni, false, spmm_s8_semi24_avx2_vnni, true},
      {"spmm_s8_dense_avx2", Isa::avx2, true, spmm_s8_dense_avx2, false, true},
      {"spmm_s8_quads_avx2", Isa::avx2, false, spmm_s8_quads_avx2},
      {"spmm_s8_semi24_avx2", Isa::avx2, false, spmm_s8_semi24_avx2, true, true},
      {"spmm_s8_dense_ref", Isa::ref, true, spmm_s8_ref},
      {"spmm_s8_quads_ref", Isa::ref, false, spmm_s8_ref},
      {"spmm_s8_semi24_ref", Isa::ref, false, spmm_s8_ref, true},
  };
  return kernels;
}

const SpmmS8Kernel& select_spmm_s8_kernel(bool dense) {
  return best_usable_kernel(spmm_s8_kernels(), [&](const SpmmS8Kernel& k) { return k.dense == dense && !k.semi24; });
}

const SpmmS8Kernel& select_spmm_s8_semi24_kernel() {
  return best_usable_kernel(spmm_s8_kernels(), [](const SpmmS8Kernel& k) { return k.semi24; });
}

const SpmmS8Kernel& spmm_s8_kernel_by_name(const std::string& name) {
  return kernel_by_name(spmm_s8_kernels(), name);
}

}  // namespace sparsecpu
