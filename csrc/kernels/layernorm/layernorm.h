// Layer normalization over the rows of a matrix:
// y[i, :] = (x[i, :] - mean) / sqrt(var + eps) · gamma + beta (biased variance).
// y may alias x.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"

namespace sparsecpu {

struct LayerNormProblem {
  const float* x = nullptr;
  int64_t ldx = 0;
  int64_t rows = 0, width = 0;
  const float* gamma = nullptr;
  const float* beta = nullptr;
  float eps = 1e-12f;
  float* y = nullptr;
  int64_t ldy = 0;
  int threads = 0;  // 0 = the process default
};

using LayerNormFn = void (*)(const LayerNormProblem&);

struct LayerNormKernel {
  const char* name;
  Isa isa;
  LayerNormFn run;
};

const std::vector<LayerNormKernel>& layernorm_kernels();
const LayerNormKernel& select_layernorm_kernel();
const LayerNormKernel& layernorm_kernel_by_name(const std::string& name);

// Rows per parallel task: small enough to share a few hundred tokens between cores.
constexpr int64_t kLayerNormRowsPerTask = 16;

void layernorm_ref(const LayerNormProblem& p);
void layernorm_avx2(const LayerNormProblem& p);
void layernorm_avx512(const LayerNormProblem& p);

}  // namespace sparsecpu
