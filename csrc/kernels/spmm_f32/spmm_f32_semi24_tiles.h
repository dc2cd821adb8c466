// fp32 kernels for 2:4 weights (Semi24F32), written once over a SIMD traits
// type S and instantiated by each per-ISA file next to the block kernels.
//
// Vectors run over tokens: every kept weight is broadcast and multiplies TV
// vectors of one input row of the tile's panel (one row holds all the tile's
// tokens, so the TV loads take one pointer). A 2:4 row selects its own
// input rows, so no load is shared between output rows; what keeps the loads
// cheap is that they hit L1: the input dimension is walked in blocks small
// enough for the panels' rows of one block to stay in L1 while a slice of
// output rows passes over them, with the slice's sums parked in a scratch
// buffer between blocks (one load and store per row, vector and block).
// Calls of few tokens run vectors over rows instead
// (run_semi24_row_vectors_f32). Weights: Semi24F32, rows interleaved in
// blocks of 8, which both read.
// Everything has internal linkage (see kernels/tile_schedule.h).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "kernels/prefetch.h"
#include "kernels/spmm_f32/spmm_f32_tiles.h"

namespace sparsecpu {
namespace {

// Sums of rows [r0, r1) over groups [g0, g1) for TV vectors of tokens of a
// tile's panel x (rows of kRowFloats floats); sums[(r - r0) * TV * L + v * L + lane]. `first`: the sums
// start at zero.
template <class S, int TV, int64_t kRowFloats>
void semi24_rows_f32(const Semi24F32& w, const float* x, int64_t g0, int64_t g1, int64_t r0, int64_t r1,
                     float* sums, bool first) {
  using Vec = typename S::V;
  constexpr int L = S::L;
  for (int64_t r = r0; r < r1; ++r) {
    float* out = sums + (r - r0) * TV * L;
    Vec acc[TV];
    for (int v = 0; v < TV; ++v) acc[v] = first ? S::zero() : S::load(out + v * L);
    // A row's entries of a group lie 8 apart (rows interleaved in blocks of 8), groups 16 apart.
    const int64_t at = w.at(r, g0, 0);
    const float* value = w.values.data() + at;
    const uint8_t* position = w.positions.data() + at;
    if (r % 8 == 0) prefetch_next_row_block(value, position, w.indices.groups * 16, (g1 - g0) * 16);
    const float* group = x + 4 * g0 * kRowFloats;  // the group's first input row
    for (int64_t g = g0; g < g1; ++g, value += 16, position += 16, group += 4 * kRowFloats)
      for (int which = 0; which < 2; ++which) {
        const Vec wj = S::bcast(value + 8 * which);
        const float* in = group + position[8 * which] * kRowFloats;
        // Kept in one register, so the loads below take it plus a constant:
        // folded into base + index operands, the FMAs ran ~1.3-1.7x slower
        // (on a Sapphire Rapids-class core).
        __asm__("" : "+r"(in));
        for (int v = 0; v < TV; ++v) acc[v] = S::fma(wj, S::load(in + v * L), acc[v]);
      }
#pragma GCC unroll 16
    for (int v = 0; v < TV; ++v) S::store(out + v * L, acc[v]);
  }
}

// One task: tokens [token0, token0 + TV * L) (fewer real ones at the end of
// the call) of the tile's panel x x output rows [r0, r1), written to y with
// the epilogue.
template <class S, int TV, int64_t kRowFloats>
void semi24_task_f32(const SpmmF32Problem& p, const float* x, int64_t token0, int64_t r0, int64_t r1) {
  constexpr int L = S::L;
  constexpr int64_t kTileTokens = TV * L;
  // Panel rows of one block of groups: 4 inputs x kTileTokens floats each, about 24 KiB.
  constexpr int64_t kBlockGroups = std::max<int64_t>(4, (24 << 10) / (4 * kTileTokens * 4));
  // Sums of one slice of rows: 128 KiB.
  constexpr int64_t kSliceRows = std::max<int64_t>(L, (128 << 10) / (kTileTokens * 4) / L * L);
  thread_local AlignedBuffer<float> scratch;
  scratch.reserve_discarding(static_cast<size_t>(kSliceRows * kTileTokens));
  float* sums = scratch.data();

  const Semi24F32& w = *p.w24;
  const FloatOutput out = p.output();
  const int tokens = static_cast<int>(std::min<int64_t>(kTileTokens, p.m - token0));
  for (int64_t s0 = r0; s0 < r1; s0 += kSliceRows) {
    const int64_t s1 = std::min(r1, s0 + kSliceRows);
    if (w.indices.groups == 0) std::fill(sums, sums + (s1 - s0) * kTileTokens, 0.0f);  // in_features 0
    for (int64_t g0 = 0; g0 < w.indices.groups; g0 += kBlockGroups)
      semi24_rows_f32<S, TV, kRowFloats>(w, x, g0, std::min(w.indices.groups, g0 + kBlockGroups), s0, s1, sums,
                                         g0 == 0);
    // A vector of tokens at a time over all the slice's channels: y's rows may be a multiple of 4 KiB
    // apart, and the stores of one token then spread over L1 sets where those of a vector of tokens in
    // the same channels would crowd into one (1.04-1.19x).
    for (int t0 = 0; t0 < tokens; t0 += L)
      for (int64_t c0 = s0; c0 < s1; c0 += L)
        store_staged_channels<S, true>(out, sums + (c0 - s0) * kTileTokens + t0, kTileTokens, token0 + t0,
                                       std::min(L, tokens - t0), c0, static_cast<int>(std::min<int64_t>(L, s1 - c0)));
  }
}

// ---- vectors over rows, for calls with few tokens -------------------------
//
// With few tokens the loop above does a broadcast, a position and a few
// FMAs per weight, most of them on padding tokens: 0.24x our dense kernel
// for one token on Zen 3 (AVX2), 0.21x on a Sapphire Rapids-class core
// (AVX-512, 16-token vectors). Here a vector is S::L rows (one or two row
// blocks of 8): a group's kept values are two vectors (slot 0 and 1) and
// their positions two in-lane permute indices, loaded once for all the
// tokens; per token the group's four inputs are broadcast to every 4 lanes
// and permuted into each row's lane. A task walks its row vectors in the
// outer loop and the tokens in the inner one, so a vector's weights come
// from memory once and from L1 for the other tokens. When k is not a
// multiple of 4, the last group's inputs run past the row: they are copied.

// Rows [row0, row0 + S::L) x tokens [token0, token0 + tokens), tokens <= T.
template <class S, int T>
void semi24_row_vector_f32(const SpmmF32Problem& p, int64_t token0, int tokens, int64_t row0) {
  using Vec = typename S::V;
  using Index = typename S::Index;
  static_assert(S::L == 8 || S::L == 16, "a vector is one or two blocks of 8 rows");
  const Semi24F32& w = *p.w24;
  const int64_t groups = w.indices.groups, inside = w.k / 4;  // groups whose four inputs lie in the row
  const bool high_block = S::L == 16 && row0 + 8 < w.n;
  const float* value_low = w.values.data() + w.at(row0, 0, 0);
  const float* value_high = high_block ? w.values.data() + w.at(row0 + 8, 0, 0) : nullptr;
  const uint8_t* position_low = w.positions.data() + w.at(row0, 0, 0);
  const uint8_t* position_high = high_block ? w.positions.data() + w.at(row0 + 8, 0, 0) : nullptr;
  const float* x[T];
  for (int t = 0; t < T; ++t) x[t] = p.x + (token0 + std::min(t, tokens - 1)) * p.ldx;
  Vec acc[T];
  for (int t = 0; t < T; ++t) acc[t] = S::zero();
  const auto group = [&](int64_t g, auto inputs) {
    // A row block's entries of group g: slot 0 at 16 * g, slot 1 at 16 * g + 8.
    const auto high = [&](const auto* base, int at) { return base ? base + 16 * g + at : nullptr; };
    const Vec w0 = S::load_row_blocks(value_low + 16 * g, high(value_high, 0));
    const Vec w1 = S::load_row_blocks(value_low + 16 * g + 8, high(value_high, 8));
    const Index i0 = S::row_block_positions(position_low + 16 * g, high(position_high, 0));
    const Index i1 = S::row_block_positions(position_low + 16 * g + 8, high(position_high, 8));
    for (int t = 0; t < T; ++t) {
      const Vec xg = inputs(x[t] + 4 * g);
      acc[t] = S::fma(w0, S::select_in_groups(xg, i0), acc[t]);
      acc[t] = S::fma(w1, S::select_in_groups(xg, i1), acc[t]);
    }
  };
  for (int64_t g = 0; g < inside; ++g) group(g, [](const float* in) { return S::bcast4(in); });
  for (int64_t g = inside; g < groups; ++g)
    group(g, [&](const float* in) {
      alignas(16) float copy[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      std::copy(in, in + (w.k - 4 * g), copy);
      return S::bcast4(copy);
    });
  alignas(64) float sums[1][T][S::L];
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) S::store(sums[0][t], acc[t]);
  store_channel_sums<S, 1, T>(p.output(), sums, token0, tokens, row0);
}

// Calls of at most this many tokens run vectors over rows. Against the token
// loop, one thread, on a Sapphire Rapids-class core: AVX-512 won up to 48
// tokens (768x768: 3.0x our dense at 1 token where the token loop ran 0.22x,
// 1.21x at 16; at 48 ahead at two of three FFN and attention shapes), lost
// at 64; AVX2 (forced there) ran as before up to 16 and won at 24 and 32
// (1.64x vs 1.16x dense at 24), even at 48, lost at 64. (The earlier AVX2
// design, passing over all the weights per 8 tokens, lost from 24 on Zen 3.)
template <class S>
constexpr int64_t kSemi24RowVectorMaxTokens = S::L == 16 ? 48 : 32;

template <class S>
void run_semi24_row_vectors_f32(const SpmmF32Problem& p) {
  const int64_t vectors = (p.w24->n + S::L - 1) / S::L;
  for_each_row_vector_pass(vectors, p.m, p.threads, [&](int64_t v, int64_t token0, int tokens, auto t) {
    semi24_row_vector_f32<S, decltype(t)::value>(p, token0, tokens, v * S::L);
  });
}

template <class S, int64_t kRowFloats, int... TVs>
constexpr auto semi24_task_table(std::integer_sequence<int, TVs...>) {
  using Fn = void (*)(const SpmmF32Problem&, const float*, int64_t, int64_t, int64_t);
  return std::array<Fn, sizeof...(TVs)>{&semi24_task_f32<S, TVs + 1, kRowFloats>...};
}

// Tiles of MaxTV vectors of tokens (the last one of a call narrower). Rows
// are split between threads only when there are fewer tiles than threads.
template <class S, int MaxTV>
void run_semi24_f32(const SpmmF32Problem& p) {
  constexpr int L = S::L;
  constexpr int64_t kTileTokens = MaxTV * L;
  static_assert(kTileTokens % kPanelTokens == 0, "the tasks' row stride is the panel's (panel_row_floats)");
  static constexpr auto table =
      semi24_task_table<S, kTileTokens>(std::make_integer_sequence<int, MaxTV>{});
  const int64_t n = p.w24->n;
  if (p.m == 0 || n == 0) return;
  if (p.m <= kSemi24RowVectorMaxTokens<S>) return run_semi24_row_vectors_f32<S>(p);
  const int threads = p.threads > 0 ? p.threads : default_num_threads();
  const int64_t tiles = (p.m + kTileTokens - 1) / kTileTokens;
  const int64_t row_vectors = (n + L - 1) / L;
  const int64_t chunks = std::clamp<int64_t>((threads + tiles - 1) / tiles, 1, row_vectors);
  const int64_t rows_per_chunk = (row_vectors + chunks - 1) / chunks * L;
  const uint64_t call_id = next_call_id();
  parallel_for(tiles * chunks, threads, [&](int64_t task) {
    const int64_t tile = task % tiles, chunk = task / tiles;
    const int64_t r0 = chunk * rows_per_chunk, r1 = std::min(n, r0 + rows_per_chunk);
    if (r0 >= r1) return;
    const int64_t token0 = tile * kTileTokens;
    // The tile as one panel, its vectors side by side in each input row; rows up to the groups' end
    // (zero past k): a group's kept position may lie past k.
    const float* x = pack_panels<S>(p, call_id, tile, tile, 1, 4 * p.w24->indices.groups, kTileTokens).data;
    const int vectors = static_cast<int>((std::min(p.m, token0 + kTileTokens) - token0 + L - 1) / L);
    table[vectors - 1](p, x, token0, r0, r1);
  });
}

}  // namespace
}  // namespace sparsecpu
