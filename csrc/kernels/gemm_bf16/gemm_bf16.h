// bf16 matrix products: y = act(bf16(x) · bf16(W)ᵀ + bias) + residual,
// products of bf16 values summed in fp32 (vdpbf16ps).
//
// x is (m, k) fp32 row-major; kernels round it to bf16 (nearest even) on the
// way in. W is dense, packed as channel pairs (formats/bf16_groups.h), or 2:4
// (Semi24Bf16, formats/semi_structured.h) for the semi24 kernels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "formats/bf16_groups.h"
#include "formats/semi_structured.h"
#include "kernels/epilogue.h"

namespace sparsecpu {

struct GemmBf16Problem {
  const float* x = nullptr;
  int64_t m = 0;
  int64_t ldx = 0;
  const ChannelPairsBf16* w = nullptr;  // one of w and w24
  const Semi24Bf16* w24 = nullptr;
  Epilogue epilogue;
  float* y = nullptr;
  int64_t ldy = 0;
  int threads = 0;  // 0 = the process default

  int64_t n() const { return w ? w->n : w24->n; }
  FloatOutput output() const { return FloatOutput{y, ldy, n(), epilogue}; }
};

using GemmBf16Fn = void (*)(const GemmBf16Problem&);

struct GemmBf16Kernel {
  const char* name;
  Isa isa;
  GemmBf16Fn run;
  bool semi24 = false;  // runs 2:4 weights (Semi24Bf16) only
};

const std::vector<GemmBf16Kernel>& gemm_bf16_kernels();
const GemmBf16Kernel& select_gemm_bf16_kernel();
const GemmBf16Kernel& select_gemm_bf16_semi24_kernel();
const GemmBf16Kernel& gemm_bf16_kernel_by_name(const std::string& name);

void gemm_bf16_ref(const GemmBf16Problem& p);
void gemm_bf16_avx512_bf16(const GemmBf16Problem& p);
void gemm_bf16_semi24_ref(const GemmBf16Problem& p);
void gemm_bf16_semi24_avx512_bf16(const GemmBf16Problem& p);

}  // namespace sparsecpu
