#include "kernels/gemm_bf16/gemm_bf16.h"
#include "kernels/registry.h"

namespace sparsecpu {

const std::vector<GemmBf16Kernel>& gemm_bf16_kernels() {
  static const std::vector<GemmBf16Kernel> kernels = {
      {"gemm_bf16_avx512_bf16", Isa::avx512_bf16, gemm_bf16_avx512_bf16},
      {"gemm_bf16_ref", Isa::ref, gemm_bf16_ref},
      {"gemm_bf16_semi24_avx512_bf16", Isa::avx512_bf16, gemm_bf16_semi24_avx512_bf16, true},
      {"gemm_bf16_semi24_ref", Isa::ref, gemm_bf16_semi24_ref, true},
  };
  return kernels;
}

const GemmBf16Kernel& select_gemm_bf16_kernel() {
  return best_usable_kernel(gemm_bf16_kernels(), [](const GemmBf16Kernel& k) { return !k.semi24; });
}

const GemmBf16Kernel& select_gemm_bf16_semi24_kernel() {
  return best_usable_kernel(gemm_bf16_kernels(), [](const GemmBf16Kernel& k) { return k.semi24; });
}

const GemmBf16Kernel& gemm_bf16_kernel_by_name(const std::string& name) {
  return kernel_by_name(gemm_bf16_kernels(), name);
}

}  // namespace sparsecpu
