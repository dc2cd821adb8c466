// A task's float results, staged in L1 as short rows and written to y one
// token at a time, by the kernels whose vectors run over tokens (their
// epilogues transpose S::L channels x S::L tokens into one vector per token).
//
// Why: written straight to y, a tile's results are one 64-byte store per
// token into the same columns, rows ldy apart. When ldy is a multiple of
// 1024 floats (3072 or 4096 channels, a BERT FFN or a QKV-sized layer of a
// larger model) every one of those lines falls into the same L1 set (two
// sets at odd multiples of 512: staged too, not measured apart), and the
// stores drain at a fraction of their usual rate: on Zen 5, 128 x 3072 outputs
// stored 64 tokens per column took 182 us, with rows 16 floats longer 25 us,
// and by rows of 64 channels per token 18-24 us. The int8 4x1 kernel's
// epilogue ran 2.5-3x slower at 3072 and 4096 channels than at 2304 or 3136.
//
// Everything has internal linkage (see kernels/tile_schedule.h).
#pragma once

#include <cstdint>
#include <numeric>

namespace sparsecpu {
namespace {

// Channels a task stages per token before writing them out: a run of whole
// lines per token spreads each pass over four or more L1 sets.
constexpr int kOutputRowChannels = 64;

// Tokens x kOutputRowChannels floats. A row has a vector of slack, so a kernel
// may store whole vectors from any column below kOutputRowChannels (a piece of
// 12 channels at column 48); only the channels it names are written out.
template <int Tokens, int L>
struct OutputRows {
  // 80 floats on AVX-512 (5 lines: rows fall in distinct L1 sets), 72 on AVX2 (rows straddle lines).
  static constexpr int64_t kLd = kOutputRowChannels + L;
  alignas(64) float data[Tokens * kLd];

  float* column(int64_t c) { return data + c; }
};

// True when rows of y, row_bytes apart, fall into fewer than 4 of the 64
// sets of a 48 KiB, 12-way L1 (a row of 1024 floats: one set): then a tile's
// stores are staged. With 4 or more (768 channels: 4) straight stores
// measured faster: staging costs a store and a load per vector, and at 768
// channels the int8 4x1 kernel ran 0.85-0.88x with it.
inline bool rows_crowd_l1_sets(int64_t row_bytes) {
  constexpr int64_t kLine = 64, kSets = 64;
  if (row_bytes % kLine != 0) return false;  // rows straddle lines: their sets drift
  const int64_t sets = kSets / std::gcd(row_bytes / kLine % kSets, kSets);  // gcd(0, 64) = 64: one set
  return sets < 4;
}

// Whether a call of m tokens writing rows row_bytes apart stages them: the
// rows crowd the L1, and the call has tokens enough to fill a set's ways
// (12) more than twice over, so staging's extra store and load pay.
inline bool stage_output_rows(int64_t m, int64_t row_bytes) {
  constexpr int64_t kMinTokens = 32;
  return m >= kMinTokens && rows_crowd_l1_sets(row_bytes);
}

// How many block rows of `rows` channels a task covers: pieces of
// `rows_per_piece` block rows (what one stage holds) up to kOutputRowChannels.
inline int64_t block_rows_per_output_unit(int64_t rows, int64_t rows_per_piece) {
  const int64_t pieces = kOutputRowChannels / (rows_per_piece * rows);
  return rows_per_piece * (pieces > 1 ? pieces : 1);
}

}  // namespace
}  // namespace sparsecpu
