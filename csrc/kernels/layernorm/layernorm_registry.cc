#include "kernels/layernorm/layernorm.h"
#include "kernels/registry.h"

namespace sparsecpu {

const std::vector<LayerNormKernel>& layernorm_kernels() {
  static const std::vector<LayerNormKernel> kernels = {
      {"layernorm_avx512", Isa::avx512, layernorm_avx512},
      {"layernorm_avx2", Isa::avx2, layernorm_avx2},
      {"layernorm_ref", Isa::ref, layernorm_ref},
  };
  return kernels;
}

const LayerNormKernel& select_layernorm_kernel() {
  return best_usable_kernel(layernorm_kernels(), [](const LayerNormKernel&) { return true; });
}

const LayerNormKernel& layernorm_kernel_by_name(const std::string& name) {
  return kernel_by_name(layernorm_kernels(), name);
}

}  // namespace sparsecpu
