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

// Where a float-output kernel's results go: rows of y (ldy floats apart) of n
// channels, through the epilogue. The fp32 and bf16 kernel families share
// their epilogue code through it (SpmmF32Problem::output(), GemmBf16Problem::output()).
struct FloatOutput {
  float* y = nullptr;
  int64_t ldy = 0;
  int64_t n = 0;
  Epilogue epilogue;
};

// Scalar activation, the definition the vector versions are tested against
// (GELU in erf form; NaN stays NaN).
float apply_activation_ref(float v, Activation act);

}  // namespace sparsecpu
