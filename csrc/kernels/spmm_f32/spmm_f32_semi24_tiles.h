// fp32 kernels for 2:4 weights (Semi24F32), written once over a SIMD traits
// type S and instantiated by each per-ISA file next to the block kernels.
//
// Vectors run over tokens: every kept weight is broadcast and multiplies TV
// vectors of one input row of the token panels. A 2:4 row selects its own
// input rows, so no load is shared between output rows; what keeps the loads
// cheap is that they hit L1: the input dimension is walked in blocks small
// enough for the panels' rows of one block to stay in L1 while a slice of
// output rows passes over them, with the slice's sums parked in a scratch
// buffer between blocks (one load and store per row, vector and block).
// Calls of 16 tokens or fewer run vectors over blocks of 8 rows instead on
// AVX2 (run_semi24_row_blocks_f32). Weights: Semi24F32, rows interleaved in
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

// Sums of rows [r0, r1) over groups [g0, g1) for TV vectors of tokens;
// sums[(r - r0) * TV * L + v * L + lane]. `first`: the sums start at zero.
template <class S, int TV>
void semi24_rows_f32(const Semi24F32& w, const float* const x_of[TV], int64_t g0, int64_t g1, int64_t r0, int64_t r1,
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
    if (r % 8 == 0) {  // the next block of rows, a whole row block away
      const int64_t ahead = w.indices.groups * 16;
      prefetch_ahead(value, ahead * static_cast<int64_t>(sizeof(float)), (g1 - g0) * 16 * sizeof(float));
      prefetch_ahead(position, ahead, (g1 - g0) * 16);
    }
    for (int64_t g = g0; g < g1; ++g, value += 16, position += 16)
      for (int which = 0; which < 2; ++which) {
        const Vec wj = S::bcast(value + 8 * which);
        const int64_t offset = (4 * g + position[8 * which]) * kPanelTokens;
        for (int v = 0; v < TV; ++v) acc[v] = S::fma(wj, S::load(x_of[v] + offset), acc[v]);
      }
#pragma GCC unroll 16
    for (int v = 0; v < TV; ++v) S::store(out + v * L, acc[v]);
  }
}

// One task: tokens [token0, token0 + TV * L) (fewer real ones at the end of
// the call) x output rows [r0, r1), written to y with the epilogue.
template <class S, int TV>
void semi24_task_f32(const SpmmF32Problem& p, const PanelRange& panels, int64_t token0, int64_t r0, int64_t r1) {
  using Vec = typename S::V;
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
  const float* x_of[TV];
  for (int v = 0; v < TV; ++v) x_of[v] = panels.at_token(token0 + v * L);
  const int tokens = static_cast<int>(std::min<int64_t>(kTileTokens, p.m - token0));
  const Epilogue& e = p.epilogue;
  for (int64_t s0 = r0; s0 < r1; s0 += kSliceRows) {
    const int64_t s1 = std::min(r1, s0 + kSliceRows);
    if (w.indices.groups == 0) std::fill(sums, sums + (s1 - s0) * kTileTokens, 0.0f);  // in_features 0
    for (int64_t g0 = 0; g0 < w.indices.groups; g0 += kBlockGroups)
      semi24_rows_f32<S, TV>(w, x_of, g0, std::min(w.indices.groups, g0 + kBlockGroups), s0, s1, sums, g0 == 0);
    for (int64_t r = s0; r < s1; ++r) {
      const Vec bias = S::set1(e.bias ? e.bias[r] : 0.0f);
      float* row = sums + (r - s0) * kTileTokens;
      for (int v = 0; v < TV; ++v) S::store(row + v * L, activate<S>(S::add(S::load(row + v * L), bias), e.activation));
    }
    for (int64_t c0 = s0; c0 < s1; c0 += L)
      store_staged_channels<S>(p, sums + (c0 - s0) * kTileTokens, kTileTokens, token0, tokens, c0,
                               static_cast<int>(std::min<int64_t>(L, s1 - c0)));
  }
}

// ---- vectors over rows, for calls with few tokens (S::L == 8) -------------
//
// With few tokens the loop above does a broadcast, a position and a few
// FMAs per weight: it ran 0.24x our dense kernel for one token on Zen 3
// (this one: 3-4x dense at one token, ~1.9x at 8).
// Here a block of 8 rows' kept values of a group are two vectors (slot 0 and
// 1) and their positions two permute indices; per token the group's four
// inputs are broadcast to both 128-bit halves and permuted into each row's
// lane. When k is not a multiple of 4, the last group's inputs run past the
// row: they are copied.

// Rows of block `block` (8 rows) x T tokens from token0 (`tokens` real).
template <class S, int T>
void semi24_row_block_f32(const SpmmF32Problem& p, int64_t token0, int tokens, int64_t block) {
  using Vec = typename S::V;
  static_assert(S::L == 8, "a vector is a block of 8 rows");
  const Semi24F32& w = *p.w24;
  const int64_t groups = w.indices.groups, inside = w.k / 4;  // groups whose four inputs lie in the row
  const float* x[T];
  for (int t = 0; t < T; ++t) x[t] = p.x + (token0 + std::min(t, tokens - 1)) * p.ldx;
  Vec acc[T];
  for (int t = 0; t < T; ++t) acc[t] = S::zero();
  const float* value = w.values.data() + w.at(8 * block, 0, 0);
  const uint8_t* position = w.positions.data() + w.at(8 * block, 0, 0);
  const auto group = [&](int64_t g, auto inputs) {
    const Vec w0 = S::load(value + 16 * g), w1 = S::load(value + 16 * g + 8);
    for (int t = 0; t < T; ++t) {
      const Vec xg = inputs(x[t] + 4 * g);
      acc[t] = S::fma(w0, S::permute(xg, position + 16 * g), acc[t]);
      acc[t] = S::fma(w1, S::permute(xg, position + 16 * g + 8), acc[t]);
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
  store_channel_sums<S, 1, T>(p, sums, token0, tokens, 8 * block);
}

// Calls of at most this many tokens run vectors over rows (where S::L == 8):
// on Zen 3 they won up to 16 tokens (1.4x the token loop there), lost from 24.
constexpr int64_t kSemi24RowBlockMaxTokens = 16;

template <class S>
void run_semi24_row_blocks_f32(const SpmmF32Problem& p) {
  const int64_t blocks = (p.w24->n + 7) / 8, tiles = (p.m + 7) / 8;
  const int threads = p.threads > 0 ? p.threads : default_num_threads();
  const int64_t chunks = std::clamp<int64_t>((threads + tiles - 1) / tiles, 1, blocks);
  const int64_t per_chunk = (blocks + chunks - 1) / chunks;
  parallel_for(tiles * chunks, threads, [&](int64_t task) {
    const int64_t token0 = task % tiles * 8, b0 = task / tiles * per_chunk;
    const int tokens = static_cast<int>(std::min<int64_t>(8, p.m - token0));
    for (int64_t b = b0; b < std::min(blocks, b0 + per_chunk); ++b) {
      if (tokens > 4) semi24_row_block_f32<S, 8>(p, token0, tokens, b);
      else if (tokens > 2) semi24_row_block_f32<S, 4>(p, token0, tokens, b);
      else if (tokens > 1) semi24_row_block_f32<S, 2>(p, token0, tokens, b);
      else semi24_row_block_f32<S, 1>(p, token0, tokens, b);
    }
  });
}

template <class S, int... TVs>
constexpr auto semi24_task_table(std::integer_sequence<int, TVs...>) {
  using Fn = void (*)(const SpmmF32Problem&, const PanelRange&, int64_t, int64_t, int64_t);
  return std::array<Fn, sizeof...(TVs)>{&semi24_task_f32<S, TVs + 1>...};
}

// Tiles of MaxTV vectors of tokens (the last one of a call narrower). Rows
// are split between threads only when there are fewer tiles than threads.
template <class S, int MaxTV>
void run_semi24_f32(const SpmmF32Problem& p) {
  constexpr int L = S::L;
  constexpr int64_t kTileTokens = MaxTV * L;
  static constexpr auto table = semi24_task_table<S>(std::make_integer_sequence<int, MaxTV>{});
  const int64_t n = p.w24->n;
  if (p.m == 0 || n == 0) return;
  if constexpr (S::L == 8) {
    if (p.m <= kSemi24RowBlockMaxTokens) return run_semi24_row_blocks_f32<S>(p);
  }
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
    const int64_t first_panel = token0 / kPanelTokens;
    const int64_t last_panel = (std::min(p.m, token0 + kTileTokens) - 1) / kPanelTokens;
    // Rows up to the groups' end (zero past k): a group's kept position may lie past k.
    const PanelRange panels = pack_panels<S>(p, call_id, tile, first_panel, last_panel - first_panel + 1,
                                             4 * p.w24->indices.groups);
    const int vectors = static_cast<int>((std::min(p.m, token0 + kTileTokens) - token0 + L - 1) / L);
    table[vectors - 1](p, panels, token0, r0, r1);
  });
}

}  // namespace
}  // namespace sparsecpu
