// int8 matrix products: u8 activations x s8 weights, int32 accumulation.
//
// Float activations are quantized per token inside the kernel (asymmetric u8:
// scale = (max - min) / 255 over the token's row, with 0 always representable)
// and the result is dequantized in the epilogue:
//   y[m, n] = act((acc[m, n] - zp[m] * row_sum[n]) * x_scale[m] * w_scale[n] + bias[n]) + residual[m, n]
// Outputs: float32; bf16 (the float32 result rounded as vcvtneps2bf16 rounds,
// for a consumer that would round it so anyway: the bf16 attention); int8 (y
// requantized as round(y / out_scale), saturated); or the raw int32
// accumulators of u8 activations given as they are (tests).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "formats/int8_blocks.h"
#include "formats/semi_structured.h"
#include "kernels/epilogue.h"

namespace sparsecpu {

enum class S8Output : int { f32 = 0, s8, s32, bf16 };

struct SpmmS8Problem {
  // Activations (m, k): float (quantized per token here) or u8 (used as given).
  const float* x_f32 = nullptr;
  const uint8_t* x_u8 = nullptr;
  int64_t m = 0;
  int64_t ldx = 0;
  // Weights: column quads (block patterns), channel groups (dense) or 2:4.
  const QuadPackedS8* quads = nullptr;
  const ChannelPackedS8* channels = nullptr;
  const Semi24S8* semi24 = nullptr;
  const float* w_scale = nullptr;      // (n), for f32 and s8 outputs
  const int32_t* w_row_sum = nullptr;  // (n), for f32 and s8 outputs
  S8Output output = S8Output::f32;
  Epilogue epilogue;
  float out_scale = 1.0f;  // s8 output
  void* y = nullptr;       // float, int8, int32 or bf16 (uint16_t) by `output`
  int64_t ldy = 0;
  int threads = 0;

  int64_t n() const { return quads ? quads->n : channels ? channels->n : semi24->n; }
  int64_t k() const { return quads ? quads->k : channels ? channels->k : semi24->k; }
};

using SpmmS8Fn = void (*)(const SpmmS8Problem&);

struct SpmmS8Kernel {
  const char* name;
  Isa isa;
  bool dense;   // runs ChannelPackedS8 (else QuadPackedS8, or Semi24S8 with semi24)
  SpmmS8Fn run;
  bool semi24 = false;
  bool pairs = false;  // reads weights widened to 16-bit pairs (dense: widen_to_pairs, 2:4: widen_to_row_pairs)
};

const std::vector<SpmmS8Kernel>& spmm_s8_kernels();
const SpmmS8Kernel& select_spmm_s8_kernel(bool dense);
const SpmmS8Kernel& select_spmm_s8_semi24_kernel();
// Throws std::invalid_argument if unknown, or if the CPU or cap forbids it.
const SpmmS8Kernel& spmm_s8_kernel_by_name(const std::string& name);

// Per-token quantization of one row, the definition every kernel follows
// bit for bit: lo = min(0, min x), hi = max(0, max x), scale = (hi - lo) / 255
// (1 if 0; NaN if the row holds NaN or Inf, so its outputs are NaN),
// zp = clamp(nearbyint(-lo / scale), 0, 255),
// q = clamp(nearbyint(x * (1 / scale)) + zp, 0, 255).
struct TokenQuantization {
  float scale;
  int32_t zero_point;
};
TokenQuantization token_quantization(float lo, float hi);

// The epilogue of one output value (scalar reference).
float dequantize_ref(int32_t acc, const TokenQuantization& t, float w_scale, int32_t w_row_sum);
int8_t requantize_ref(float y, float out_scale);

void spmm_s8_ref(const SpmmS8Problem& p);
void spmm_s8_quads_avx2(const SpmmS8Problem& p);
void spmm_s8_dense_avx2(const SpmmS8Problem& p);
void spmm_s8_quads_avx2_vnni(const SpmmS8Problem& p);
void spmm_s8_dense_avx2_vnni(const SpmmS8Problem& p);
void spmm_s8_quads_avx512_vnni(const SpmmS8Problem& p);
void spmm_s8_dense_avx512_vnni(const SpmmS8Problem& p);
void spmm_s8_semi24_avx2(const SpmmS8Problem& p);
void spmm_s8_semi24_avx2_vnni(const SpmmS8Problem& p);
void spmm_s8_semi24_avx512_vnni(const SpmmS8Problem& p);
void spmm_s8_quads_avx512_bf16(const SpmmS8Problem& p);
void spmm_s8_dense_avx512_bf16(const SpmmS8Problem& p);
void spmm_s8_semi24_avx512_bf16(const SpmmS8Problem& p);

}  // namespace sparsecpu
