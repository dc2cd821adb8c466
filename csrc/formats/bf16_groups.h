// bf16 weights for the AVX512-BF16 kernels: 16 output channels x 2
// consecutive inputs per 64-byte group, [n/16][k/2][16][2], so one vdpbf16ps
// multiplies one token's input pair into 16 channels at once.
#pragma once

#include <cstdint>

#include "formats/aligned_buffer.h"

namespace sparsecpu {

// As vcvtneps2bf16 converts: round to nearest even; NaN stays a (quiet) NaN;
// a denormal becomes a zero of its sign (the instruction treats denormal
// inputs as zero, measured on Zen 5).
uint16_t bf16_from_float(float v);
float float_from_bf16(uint16_t v);
// y[i, :k] = float(bf16(x[i, :k])), rows ldx apart in x and ldy apart in y.
void round_rows_to_bf16(const float* x, int64_t m, int64_t k, int64_t ldx, float* y, int64_t ldy);

struct ChannelPairsBf16 {
  int64_t n = 0, k = 0;
  int64_t k_pairs = 0;         // ceil(k / 2)
  int64_t channel_groups = 0;  // ceil(n / 16)
  AlignedBuffer<uint16_t> values;  // [channel_groups][k_pairs][16][2], zero padded
  size_t packed_bytes() const { return values.size() * sizeof(uint16_t); }
};

ChannelPairsBf16 pack_channel_pairs_bf16(const float* w, int64_t n, int64_t k);

}  // namespace sparsecpu
