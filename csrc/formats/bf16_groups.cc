#include "formats/bf16_groups.h"

#include <cstring>

namespace sparsecpu {

uint16_t bf16_from_float(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // quiet NaN
  if ((bits & 0x7f800000u) == 0) return static_cast<uint16_t>((bits >> 16) & 0x8000u);  // denormal: signed zero
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float float_from_bf16(uint16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

void round_rows_to_bf16(const float* x, int64_t m, int64_t k, int64_t ldx, float* y, int64_t ldy) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < k; ++j) y[i * ldy + j] = float_from_bf16(bf16_from_float(x[i * ldx + j]));
}

ChannelPairsBf16 pack_channel_pairs_bf16(const float* w, int64_t n, int64_t k) {
  ChannelPairsBf16 p;
  p.n = n;
  p.k = k;
  p.k_pairs = (k + 1) / 2;
  p.channel_groups = (n + 15) / 16;
  p.values.resize(static_cast<size_t>(p.channel_groups * p.k_pairs * 32));
  for (int64_t c = 0; c < n; ++c)
    for (int64_t j = 0; j < k; ++j) {
      const int64_t g = c / 16, lane = c % 16, pair = j / 2;
      p.values[static_cast<size_t>(((g * p.k_pairs + pair) * 16 + lane) * 2 + j % 2)] = bf16_from_float(w[c * k + j]);
    }
  return p;
}

}  // namespace sparsecpu
