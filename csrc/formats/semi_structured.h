// 2:4 semi-structured weights: in every group of four consecutive inputs of
// an output row at most two weights are nonzero (the last group of a row may
// be shorter). Every group keeps exactly two positions i0 < i1, 2 bits each;
// a group with fewer nonzeros is completed with its lowest zero positions.
//
// Three kernel layouts are built on the same positions:
//  * fp32: per block of 8 rows, group and kept slot, the rows' values and
//    their positions in the group.
//  * bf16: per block of 16 rows and group, each row's two kept weights as one
//    bf16 pair and which of the group's six position pairs they multiply.
//  * int8: blocks of 16 output channels; per chunk of two groups (8 inputs)
//    each channel's four kept values form one dword, next to the chunk
//    positions of the four activation bytes they multiply; or, for vpmaddwd
//    kernels (widen_to_row_pairs), per group and row (rows interleaved in
//    blocks of 8) a 16-bit weight pair and which of the six position pairs it
//    multiplies.
#pragma once

#include <cstdint>
#include <vector>

#include "formats/aligned_buffer.h"

namespace sparsecpu {

// The six position pairs (i0 < i1) a 2:4 group can keep.
constexpr int kSemi24Pairs[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};

struct Semi24Indices {
  int64_t n = 0, k = 0;
  int64_t groups = 0;          // ceil(k / 4)
  int64_t bytes_per_row = 0;   // ceil(groups / 2)
  // Group g of row r: nibble i0 | i1 << 2 of codes[r * bytes_per_row + g / 2], low nibble first.
  std::vector<uint8_t> codes;

  int position(int64_t row, int64_t group, int which) const {
    const int nibble = (codes[static_cast<size_t>(row * bytes_per_row + group / 2)] >> (4 * (group % 2))) & 15;
    return which == 0 ? nibble & 3 : nibble >> 2;
  }
  // Which of kSemi24Pairs group g of row r keeps.
  uint8_t pair(int64_t row, int64_t group) const {
    const int i0 = position(row, group, 0), i1 = position(row, group, 1);
    uint8_t pair = 0;
    while (kSemi24Pairs[pair][0] != i0 || kSemi24Pairs[pair][1] != i1) ++pair;
    return pair;
  }
  size_t packed_bytes() const { return codes.size(); }
};

// The kept positions of w (n, k) row-major. Throws std::invalid_argument naming
// the first row and group holding more than two nonzeros (or a non-finite weight).
template <class T>
Semi24Indices find_semi24_indices(const T* w, int64_t n, int64_t k);

struct Semi24F32 {
  int64_t n = 0, k = 0;
  Semi24Indices indices;
  // Per block of 8 rows, group, kept slot (0, 1) and row
  // ([ceil(n / 8)][groups][2][8]; padding rows hold zeros): the kept values
  // and their positions in the group (0..3; input column 4g + position).
  AlignedBuffer<float> values;
  std::vector<uint8_t> positions;
  int64_t at(int64_t row, int64_t group, int which) const {
    return (((row / 8) * indices.groups + group) * 2 + which) * 8 + row % 8;
  }
  size_t packed_bytes() const { return values.size() * sizeof(float) + positions.size(); }
};

Semi24F32 pack_semi24_f32(const float* w, int64_t n, int64_t k);

struct Semi24Bf16 {
  int64_t n = 0, k = 0;
  Semi24Indices indices;
  // Per block of 16 rows, group and row ([ceil(n / 16)][groups][16]; padding
  // rows hold zeros): the two kept weights rounded to bf16 as one pair, slot 0
  // in the high half (vdpbf16ps multiplies the high halves first, so a group
  // sums in the fp32 kernel's order), and which of the group's six position
  // pairs (kSemi24Pairs) they multiply.
  AlignedBuffer<uint32_t> pairs;
  std::vector<uint8_t> pair_index;
  int64_t at(int64_t row, int64_t group) const { return ((row / 16) * indices.groups + group) * 16 + row % 16; }
  size_t packed_bytes() const { return pairs.size() * sizeof(uint32_t) + pair_index.size(); }
};

// w: (n, k) fp32 row-major, 2:4; its kept values are rounded to bf16 (nearest even).
Semi24Bf16 pack_semi24_bf16(const float* w, int64_t n, int64_t k);

struct Semi24S8 {
  int64_t n = 0, k = 0;
  int64_t chunks = 0;           // ceil(k / 8)
  int64_t channel_blocks = 0;   // ceil(n / 16)
  Semi24Indices indices;
  // [channel_blocks][chunks][16 channels][4]: a chunk's four kept weights of a
  // channel as one dword, and the positions (0..7 within the chunk) of the
  // activation bytes they multiply, as byte-shuffle indices.
  AlignedBuffer<int8_t> values;
  AlignedBuffer<uint8_t> positions;
  // Where slot 0..3 of a chunk of a row lies in values and positions.
  int64_t at(int64_t row, int64_t chunk, int slot) const {
    return ((row / 16 * chunks + chunk) * 16 + row % 16) * 4 + slot;
  }
  // Or (widen_to_row_pairs) per block of 8 rows, group and row
  // ([ceil(n / 16) * 2][groups][8]: rows padded to a multiple of 16 with zero
  // weights): the two kept weights as one 16-bit pair (w_i0 in the low half),
  // and which of the group's six position pairs they multiply (the
  // kSemi24Pairs index). values and positions are then empty.
  AlignedBuffer<int32_t> row_pairs;
  std::vector<uint8_t> row_pair_index;
  // Where row r's pair and index for group g lie in row_pairs and row_pair_index.
  int64_t row_pair_at(int64_t r, int64_t g) const { return ((r / 8) * indices.groups + g) * 8 + r % 8; }
  size_t packed_bytes() const {
    return values.size() + positions.size() + row_pairs.size() * sizeof(int32_t) + row_pair_index.size();
  }
};

// w: (n, k) int8 row-major, already 2:4.
Semi24S8 pack_semi24_s8(const int8_t* w, int64_t n, int64_t k);

// The layout of kernels without VNNI, whose vpmaddwd multiplies 16-bit pairs:
// a 2:4 group is one pair, so a lane does a group where dense does half of
// one. Releases values and positions.
void widen_to_row_pairs(Semi24S8& w);

}  // namespace sparsecpu
