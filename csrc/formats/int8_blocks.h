// int8 weights for the VNNI-style kernels: symmetric per-output-channel
// quantization and two packed layouts.
//
//  * Column quads (any R x C block pattern): each block row (R output rows)
//    keeps the input columns where any of its rows is nonzero, in groups of
//    four ("quads"; the last padded with zero weights). A quad stores its four
//    column indices and, per row, the four weights as one dword, so one
//    u8 x s8 dot-product instruction consumes one quad for one row.
//  * Channel groups (dense): 16 output channels x 4 consecutive inputs per
//    64-byte group, [n/16][k/4][16][4], for kernels that broadcast one token's
//    four activation bytes against 16 channels at once.
#pragma once

#include <cstdint>
#include <vector>

#include "formats/aligned_buffer.h"

namespace sparsecpu {

struct QuantizedWeightsS8 {
  int64_t n = 0, k = 0;
  std::vector<int8_t> values;  // (n, k) row-major
  std::vector<float> scale;    // per output channel; W ≈ scale[n] * values
};

// scale = max|W[n,:]| / 127 (1 for an all-zero row); values = round(W / scale) in [-127, 127].
QuantizedWeightsS8 quantize_weights_per_channel(const float* w, int64_t n, int64_t k);

struct QuadPackedS8 {
  int64_t n = 0, k = 0;
  int rows = 1;              // R: output rows per block row
  int64_t block_rows = 0;    // ceil(n / R)
  std::vector<int64_t> row_ptr;       // quads of block row i: [row_ptr[i], row_ptr[i+1])
  std::vector<int32_t> cols;          // 4 per quad
  AlignedBuffer<int8_t> values;       // per quad, R dwords: values[(q * R + r) * 4 + slot]
  size_t packed_bytes() const;
};

// w: (n, k) int8 row-major. Columns are kept per block row of `rows` outputs
// when any weight of the block row in that column is nonzero, so the product
// is exact for any w; `block_cols` only widens what is kept to whole blocks.
QuadPackedS8 pack_column_quads(const int8_t* w, int64_t n, int64_t k, int rows, int block_cols);

struct ChannelPackedS8 {
  int64_t n = 0, k = 0;
  int64_t k_groups = 0;        // ceil(k / 4)
  int64_t channel_blocks = 0;  // ceil(n / 16)
  AlignedBuffer<int8_t> values;  // [channel_blocks][k_groups][16][4]
  // Or (widen_to_pairs) [channel_blocks][k_groups][even, odd][16][2] int16: the
  // (w0, w2) and (w1, w3) pairs of each channel's dword; values is then empty.
  AlignedBuffer<int16_t> pairs;
  size_t packed_bytes() const { return values.size() + pairs.size() * sizeof(int16_t); }
};

ChannelPackedS8 pack_channel_groups(const int8_t* w, int64_t n, int64_t k);

// The weights as sign-extended 16-bit pairs, for kernels that multiply with
// vpmaddwd (AVX2 without VNNI): a load or 32-bit broadcast gives the operand
// ready, where widening the bytes in the loop costs three instructions per
// weight vector. Twice the bytes; the int8 values are released.
void widen_to_pairs(ChannelPackedS8& w);

// Σ_k w[n, k] per output channel: the zero-point compensation of u8 activations.
std::vector<int32_t> row_sums(const int8_t* w, int64_t n, int64_t k);

}  // namespace sparsecpu
