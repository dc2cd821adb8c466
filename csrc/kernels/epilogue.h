// What every kernel family applies to its sums before storing:
// y = activation(sum + bias) + residual.
#pragma once

#include <cstdint>

namespace sparsecpu {

enum class Activation : int { none = 0, gelu, relu };

struct Epilogue {
  const float* bias = nullptr;      // (n) or null
  Activation activation = Activation::none;
  const float* residual = nullptr;  // (m, n) with leading dimension ld_residual, or null
  int64_t ld_residual = 0;
};

// Scalar activation, the definition the vector versions are tested against
// (GELU in erf form; NaN stays NaN).
float apply_activation_ref(float v, Activation act);

}  // namespace sparsecpu
