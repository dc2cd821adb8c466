// Scalar reference of the int8 family: the definition every optimized kernel
// matches (int32 accumulators bit for bit; float outputs within tolerance).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "formats/bf16_groups.h"
#include "kernels/spmm_s8/spmm_s8.h"

namespace sparsecpu {

TokenQuantization token_quantization(float lo, float hi) {
  if (!std::isfinite(hi - lo)) return {std::numeric_limits<float>::quiet_NaN(), 0};
  float scale = (hi - lo) / 255.0f;
  if (scale == 0.0f) scale = 1.0f;
  const float zp = std::nearbyint(-lo / scale);
  return {scale, static_cast<int32_t>(std::clamp(zp, 0.0f, 255.0f))};
}

float dequantize_ref(int32_t acc, const TokenQuantization& t, float w_scale, int32_t w_row_sum) {
  return static_cast<float>(acc - t.zero_point * w_row_sum) * (t.scale * w_scale);
}

int8_t requantize_ref(float y, float out_scale) {
  const float q = std::nearbyint(y * (1.0f / out_scale));
  if (!(q == q)) return 0;  // NaN
  return static_cast<int8_t>(std::clamp(q, -128.0f, 127.0f));
}

namespace {

TokenQuantization quantize_row(const float* x, int64_t k, uint8_t* q) {
  float lo = 0.0f, hi = 0.0f;
  bool finite = true;
  for (int64_t j = 0; j < k; ++j) {
    finite = finite && std::isfinite(x[j]);
    lo = std::min(lo, x[j]);
    hi = std::max(hi, x[j]);
  }
  const TokenQuantization t = finite ? token_quantization(lo, hi) : token_quantization(0.0f, INFINITY);
  const float inv = 1.0f / t.scale;
  for (int64_t j = 0; j < k; ++j) {
    const float v = std::nearbyint(x[j] * inv) + static_cast<float>(t.zero_point);
    q[j] = finite ? static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f)) : 0;
  }
  return t;
}

}  // namespace

void spmm_s8_ref(const SpmmS8Problem& p) {
  const int64_t n = p.n(), k = p.k();
  std::vector<uint8_t> row(static_cast<size_t>(k));
  std::vector<int32_t> acc(static_cast<size_t>(n));
  for (int64_t i = 0; i < p.m; ++i) {
    const uint8_t* x;
    TokenQuantization t{1.0f, 0};
    if (p.x_u8) {
      x = p.x_u8 + i * p.ldx;
    } else {
      t = quantize_row(p.x_f32 + i * p.ldx, k, row.data());
      x = row.data();
    }
    std::fill(acc.begin(), acc.end(), 0);
    if (p.quads) {
      const QuadPackedS8& w = *p.quads;
      for (int64_t br = 0; br < w.block_rows; ++br)
        for (int64_t q = w.row_ptr[br]; q < w.row_ptr[br + 1]; ++q)
          for (int r = 0; r < w.rows && br * w.rows + r < n; ++r)
            for (int slot = 0; slot < 4; ++slot)
              acc[br * w.rows + r] += x[w.cols[q * 4 + slot]] * w.values[(q * w.rows + r) * 4 + slot];
    } else if (p.semi24) {
      const Semi24S8& w = *p.semi24;
      for (int64_t j = 0; j < n; ++j)
        for (int64_t c = 0; c < w.chunks; ++c)
          for (int slot = 0; slot < 4; ++slot) {
            const int64_t at = w.at(j, c, slot);
            const int64_t col = 8 * c + w.positions[at];
            if (col < k) acc[j] += x[col] * w.values[at];
          }
    } else {
      const ChannelPackedS8& w = *p.channels;
      for (int64_t j = 0; j < n; ++j)
        for (int64_t g = 0; g < w.k_groups; ++g)
          for (int b = 0; b < 4 && g * 4 + b < k; ++b)
            acc[j] += x[g * 4 + b] * w.values[(((j / 16) * w.k_groups + g) * 16 + j % 16) * 4 + b];
    }
    for (int64_t j = 0; j < n; ++j) {
      if (p.output == S8Output::s32) {
        static_cast<int32_t*>(p.y)[i * p.ldy + j] = acc[j];
        continue;
      }
      float v = dequantize_ref(acc[j], t, p.w_scale[j], p.w_row_sum[j]);
      if (p.epilogue.bias) v += p.epilogue.bias[j];
      v = apply_activation_ref(v, p.epilogue.activation);
      if (p.epilogue.residual) v += p.epilogue.residual[i * p.epilogue.ld_residual + j];
      if (p.output == S8Output::f32)
        static_cast<float*>(p.y)[i * p.ldy + j] = v;
      else if (p.output == S8Output::bf16)
        static_cast<uint16_t*>(p.y)[i * p.ldy + j] = bf16_from_float(v);
      else
        static_cast<int8_t*>(p.y)[i * p.ldy + j] = requantize_ref(v, p.out_scale);
    }
  }
}

}  // namespace sparsecpu
