// int8 kernels for 2:4 weights (Semi24S8), written once over an integer SIMD
// traits type S and instantiated by each per-ISA file next to the other int8
// kernels.
//
// Vectors run over output channels, as in the dense kernel. For one token and
// one chunk of 8 inputs, the chunk's 8 activation bytes are broadcast to every
// 128-bit lane; one byte shuffle then gives each channel the four bytes its
// kept weights multiply, and one dot product consumes them: per 8 inputs a
// channel vector costs a shuffle and a dot product where dense costs two dot
// products. Activations are quantized row-major, as for dense weights.
//
// (Vectors over tokens, with the 36 interleavings of a chunk's activations
// built once and selected per row, need a fresh load for every dot product;
// on cores where 512-bit loads issue at about one per cycle that measured
// 0.6x the dense kernel.)
//
// Kernels that multiply 16-bit pairs (S::kPairs: vpmaddwd, AVX2 without VNNI)
// do run vectors over tokens: there a group's two kept weights are one pair,
// so a group has only six activation variants and the shuffle design would
// pay a shuffle and the widening per dot product (it measured 1.06x dense on
// Zen 3, this one 1.5x). See run_semi24_pair_variants.
// Everything has internal linkage (see kernels/tile_schedule.h).
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/prefetch.h"
#include "kernels/spmm_s8/spmm_s8_tiles.h"

namespace sparsecpu {
namespace {

// WV vectors (of S::L channels) from channel block cb0 x T tokens.
template <class S, int WV, int T>
void semi24_tile(const SpmmS8Problem& p, const S8Rows& rows, int64_t token0, int tokens, int64_t cb0) {
  using V = typename S::V;
  constexpr int kPerBlock = 16 / S::L;
  const Semi24S8& w = *p.semi24;
  const int8_t* wv[WV];
  const uint8_t* pv[WV];
  for (int v = 0; v < WV; ++v) {
    const int64_t offset = (cb0 + v / kPerBlock) * w.chunks * 64 + (v % kPerBlock) * S::L * 4;
    wv[v] = w.values.data() + offset;
    pv[v] = w.positions.data() + offset;
  }
  const uint8_t* xr[T];
  for (int t = 0; t < T; ++t) xr[t] = rows.row(token0 + std::min(t, tokens - 1));

  V acc[WV][T];
  for (int v = 0; v < WV; ++v)
    for (int t = 0; t < T; ++t) acc[v][t] = S::zero();
  // The last chunk may hold a single group inside the row's padded length:
  // it broadcasts 4 bytes (its second group has zero weights).
  const int64_t full_chunks = rows.ld / 8;
  for (int64_t c = 0; c < w.chunks; ++c) {
    typename S::B b[WV];
    V position[WV];
    for (int v = 0; v < WV; ++v) {
      b[v] = S::prep_b(S::load(wv[v] + c * 64));
      position[v] = S::load(pv[v] + c * 64);
    }
    for (int t = 0; t < T; ++t) {
      const V x = c < full_chunks ? S::bcast64(xr[t] + c * 8) : S::bcast32(xr[t] + c * 8);
      for (int v = 0; v < WV; ++v) acc[v][t] = S::dot(acc[v][t], S::prep_a(S::shuffle8(x, position[v])), b[v]);
    }
  }
  alignas(64) int32_t sums[WV][T][S::L];  // leave registers in one unrolled store (see spmm_f32_tiles.h)
#pragma GCC unroll 64
  for (int v = 0; v < WV; ++v)
#pragma GCC unroll 64
    for (int t = 0; t < T; ++t) S::store(sums[v][t], acc[v][t]);
  store_channel_tile<S, WV, T>(p, rows, sums, token0, tokens, cb0);
}

// ---- vectors over tokens (S::kPairs): the six pair variants of a group ------
//
// A tile is two of the quad kernels' u8 panels (8 vectors of tokens; the last
// tile of a call may hold one). Once per tile, each group's six position
// pairs are built as 16-bit pair vectors (in the lane order of the quad
// interleave, so the quad kernels' epilogue applies); a row then costs, per
// group, one broadcast of its weight pair and per vector of tokens one
// vpmaddwd reading its variant: no shuffle, half the vpmaddwd of dense. (Two
// panels per tile: the broadcast and the variant index serve 8 vectors; with
// 4, the inner loop measured 1.4x slower per vpmaddwd on Zen 3.) The input
// dimension is walked in blocks whose variants stay in L1 while a slice of
// rows passes over them, the slice's sums parked between blocks (as the fp32
// 2:4 kernel).

// Variants of every group of NP panels (k rows of 4 * S::L bytes each):
// out[((g * 6 + pair) * NP + h) * 4 + v] = pairs (a_i0, a_i1) of vector v of panel h.
template <class S, int NP>
void build_pair_variants(const uint8_t* const (&panels)[NP], int64_t k, int64_t groups, typename S::V* out) {
  using V = typename S::V;
  constexpr int64_t kRow = 4 * S::L;
  const V zero = S::zero();
  for (int64_t g = 0; g < groups; ++g)
    for (int h = 0; h < NP; ++h) {
      V lo[4], hi[4];  // input 4g + i as 16-bit values: vectors 0-1 and 2-3 of the panel
      for (int i = 0; i < 4; ++i) {
        const V a = 4 * g + i < k ? S::load(panels[h] + (4 * g + i) * kRow) : zero;
        lo[i] = S::unpacklo8(a, zero);
        hi[i] = S::unpackhi8(a, zero);
      }
      for (int pair = 0; pair < 6; ++pair) {
        const int i0 = kSemi24Pairs[pair][0], i1 = kSemi24Pairs[pair][1];
        V* dst = out + ((g * 6 + pair) * NP + h) * 4;
        S::store(dst + 0, S::unpacklo16(lo[i0], lo[i1]));
        S::store(dst + 1, S::unpackhi16(lo[i0], lo[i1]));
        S::store(dst + 2, S::unpacklo16(hi[i0], hi[i1]));
        S::store(dst + 3, S::unpackhi16(hi[i0], hi[i1]));
      }
    }
}

// Row r over groups [g0, g1) of a tile's NP-panel variants, into the slice's
// sums from row r0: sums[(h * slice_rows + r - r0) * 4 + v] (`first`: from zero).
template <class S, int NP>
void semi24_variant_row(const Semi24S8& w, const typename S::V* variants, int64_t g0, int64_t g1, int64_t r,
                        int64_t r0, int64_t slice_rows, typename S::V* sums, bool first) {
  using V = typename S::V;
  constexpr int NV = 4 * NP;
  const int64_t groups = w.indices.groups;
  const int32_t* weight_pair = w.row_pairs.data() + r * groups + g0;
  const uint8_t* pair_index = w.row_pair_index.data() + r * groups + g0;
  prefetch_ahead(weight_pair, kPrefetchRows * groups * sizeof(int32_t), (g1 - g0) * sizeof(int32_t));
  prefetch_ahead(pair_index, kPrefetchRows * groups, g1 - g0);
  V* parked[NP];
  for (int h = 0; h < NP; ++h) parked[h] = sums + (h * slice_rows + r - r0) * 4;
  V acc[NV];
  for (int v = 0; v < NV; ++v) acc[v] = first ? S::zero() : parked[v / 4][v % 4];
  const V* group_variants = variants + g0 * 6 * NV;
  for (int64_t j = 0; j < g1 - g0; ++j, group_variants += 6 * NV) {
    const V weights = S::bcast32(weight_pair + j);
    const V* x = group_variants + pair_index[j] * NV;
    for (int v = 0; v < NV; ++v) acc[v] = S::add32(acc[v], S::dot_pairs(S::load(x + v), weights));
  }
  for (int v = 0; v < NV; ++v) parked[v / 4][v % 4] = acc[v];
}

// A token group's u8 panels and, per tile of two panels, the pair variants of all its groups.
template <class S>
struct S8PairVariants {
  S8Panels panels;
  int64_t panel_count;
  const typename S::V* data;
  int64_t per_tile;  // vectors
  const typename S::V* tile(int64_t first_tile, int64_t t) const { return data + (t - first_tile) * per_tile; }
};

template <class S>
S8PairVariants<S> pack_pair_variants(const SpmmS8Problem& p, uint64_t call_id, int64_t group, int64_t first,
                                     int64_t count) {
  thread_local PanelCache<typename S::V> variants;
  const S8Panels panels = pack_quad_panels<S>(p, call_id, group, first, count);
  const int64_t groups = p.semi24->indices.groups, per_tile = groups * 6 * 2 * 4;
  const int64_t tiles = (count + 1) / 2;
  if (variants.claim(call_id, group, static_cast<size_t>(std::max<int64_t>(1, tiles * per_tile))))
    for (int64_t t = 0; t < tiles; ++t) {
      const uint8_t* panel = panels.data + 2 * t * panels.panel_bytes;
      typename S::V* out = variants.data.data() + t * per_tile;
      if (2 * t + 1 < count)  // the last tile of a call may hold one panel
        build_pair_variants<S, 2>({panel, panel + panels.panel_bytes}, p.k(), groups, out);
      else
        build_pair_variants<S, 1>({panel}, p.k(), groups, out);
    }
  return S8PairVariants<S>{panels, count, variants.data.data(), per_tile};
}

// One tile of NP panels x the rows of one slice.
template <class S, int NP>
void semi24_variant_tile(const SpmmS8Problem& p, const S8PairVariants<S>& x, int64_t tile, int64_t r0, int64_t r1) {
  using V = typename S::V;
  constexpr int64_t kPanelTokens = 4 * S::L;
  // Variants of one block of groups, about 24 KiB (6 pairs x NP x 4 vectors
  // per group): measured better than 12 or 96 KiB on Zen 3.
  constexpr int64_t kBlockGroups = std::max<int64_t>(1, (24 << 10) / (24 * NP * static_cast<int64_t>(sizeof(V))));
  const Semi24S8& w = *p.semi24;
  const int64_t groups = w.indices.groups, slice_rows = r1 - r0;
  const int64_t first_tile = x.panels.first / 2;
  thread_local AlignedBuffer<V> sums;
  sums.reserve_discarding(static_cast<size_t>(slice_rows * 4 * NP));
  const V* variants = x.tile(first_tile, tile);
  if (groups == 0) std::fill(sums.data(), sums.data() + slice_rows * 4 * NP, S::zero());  // in_features 0
  for (int64_t g0 = 0; g0 < groups; g0 += kBlockGroups) {
    const int64_t g1 = std::min(groups, g0 + kBlockGroups);
    for (int64_t r = r0; r < r1; ++r)
      semi24_variant_row<S, NP>(w, variants, g0, g1, r, r0, slice_rows, sums.data(), g0 == 0);
  }
  alignas(64) float stage[S::L * kPanelTokens];
  for (int h = 0; h < NP; ++h) {
    const int64_t panel = 2 * tile + h;
    const auto* panel_sums = reinterpret_cast<const int32_t(*)[4][S::L]>(sums.data() + h * slice_rows * 4);
    for (int64_t c0 = r0; c0 < r1; c0 += S::L) {
      const int channels = static_cast<int>(std::min<int64_t>(S::L, r1 - c0));
      finish_token_sums<S, 4, 0>(p, x.panels, panel, panel_sums + (c0 - r0), c0, channels, stage);
      if (p.output != S8Output::s32) store_staged<S>(p, stage, panel * kPanelTokens, c0, channels);
    }
  }
}

template <class S>
void run_semi24_pair_variants(const SpmmS8Problem& p) {
  using V = typename S::V;
  constexpr int64_t kTileTokens = 2 * kS8PanelTokens<S>;
  constexpr int64_t kSliceRows = 256;  // the unit of the schedule
  const Semi24S8& w = *p.semi24;
  TileSchedule s;
  s.tokens = p.m;
  s.tokens_per_tile = kTileTokens;
  s.tokens_per_panel = kS8PanelTokens<S>;
  s.panel_bytes = w.k * kS8PanelTokens<S> + w.indices.groups * 6 * 4 * static_cast<int64_t>(sizeof(V));
  s.block_rows = (w.n + kSliceRows - 1) / kSliceRows;
  s.weight_bytes = static_cast<int64_t>(w.packed_bytes());
  s.threads = p.threads > 0 ? p.threads : default_num_threads();
  for_each_tile(
      s,
      [&](uint64_t call_id, int64_t group, int64_t first, int64_t count) {
        return pack_pair_variants<S>(p, call_id, group, first, count);
      },
      [&](const S8PairVariants<S>& x, int64_t tile, int64_t slice) {
        const int64_t r0 = slice * kSliceRows, r1 = std::min(w.n, r0 + kSliceRows);
        if (2 * tile + 1 < x.panels.first + x.panel_count)
          semi24_variant_tile<S, 2>(p, x, tile, r0, r1);
        else
          semi24_variant_tile<S, 1>(p, x, tile, r0, r1);
      });
}

template <class S, int WV, int T>
void run_semi24(const SpmmS8Problem& p) {
  const Semi24S8& w = *p.semi24;
  run_channel_tiles<S, WV, T>(  // S reads int8 rows (S::kPairs false)
      p, w.channel_blocks, static_cast<int64_t>(w.packed_bytes()),
      [&](const S8Rows& rows, int64_t token0, int tokens, int64_t cb0) {
        semi24_tile<S, WV, T>(p, rows, token0, tokens, cb0);
      },
      [&](const S8Rows& rows, int64_t token0, int tokens, int64_t cb) {
        semi24_tile<S, 16 / S::L, T>(p, rows, token0, tokens, cb);
      });
}

}  // namespace
}  // namespace sparsecpu
