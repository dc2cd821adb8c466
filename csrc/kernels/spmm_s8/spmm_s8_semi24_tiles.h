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
// Zen 3, this one 1.4x). See run_semi24_pair_variants.
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
// A tile's activations are the quad kernels' u8 panel (4 vectors of tokens).
// Once per tile, each group's six position pairs are built as 16-bit pair
// vectors (in the lane order of the quad interleave, so the quad kernels'
// epilogue applies); a row then costs, per group, one broadcast of its weight
// pair and per vector of tokens one vpmaddwd reading its variant: no shuffle,
// half the vpmaddwd of dense. The input dimension is walked in blocks whose
// variants stay in L1 while a slice of rows passes over them, the slice's
// sums parked between blocks (as the fp32 2:4 kernel).

// Variants of every group of a panel (k rows of 4 * S::L bytes):
// out[(g * 6 + pair) * 4 + v] = pairs (a_i0, a_i1) of vector v's tokens.
template <class S>
void build_pair_variants(const uint8_t* panel, int64_t k, int64_t groups, typename S::V* out) {
  using V = typename S::V;
  constexpr int64_t kRow = 4 * S::L;
  const V zero = S::zero();
  for (int64_t g = 0; g < groups; ++g) {
    V lo[4], hi[4];  // input 4g + i as 16-bit values: vectors 0-1 and 2-3 of the tile
    for (int i = 0; i < 4; ++i) {
      const V a = 4 * g + i < k ? S::load(panel + (4 * g + i) * kRow) : zero;
      lo[i] = S::unpacklo8(a, zero);
      hi[i] = S::unpackhi8(a, zero);
    }
    V* dst = out + g * 24;
    for (int pair = 0; pair < 6; ++pair, dst += 4) {
      const int i0 = kSemi24Pairs[pair][0], i1 = kSemi24Pairs[pair][1];
      S::store(dst + 0, S::unpacklo16(lo[i0], lo[i1]));
      S::store(dst + 1, S::unpackhi16(lo[i0], lo[i1]));
      S::store(dst + 2, S::unpacklo16(hi[i0], hi[i1]));
      S::store(dst + 3, S::unpackhi16(hi[i0], hi[i1]));
    }
  }
}

// Rows [r, r + RP) over groups [g0, g1) of a tile's variants, into the
// slice's sums from row r0: sums[(row - r0) * 4 + v] (`first`: from zero).
template <class S, int RP>
void semi24_variant_rows(const Semi24S8& w, const typename S::V* variants, int64_t g0, int64_t g1, int64_t r,
                         int64_t r0, typename S::V* sums, bool first) {
  using V = typename S::V;
  const int64_t groups = w.indices.groups;
  const int32_t* pair[RP];
  const uint16_t* variant[RP];
  V acc[RP][4];
  for (int i = 0; i < RP; ++i) {
    pair[i] = w.row_pairs.data() + (r + i) * groups + g0;
    variant[i] = w.row_variants.data() + (r + i) * groups + g0;
    prefetch_span(pair[i] + kPrefetchRows * groups, (g1 - g0) * sizeof(int32_t));
    prefetch_span(variant[i] + kPrefetchRows * groups, (g1 - g0) * sizeof(uint16_t));
    for (int v = 0; v < 4; ++v) acc[i][v] = first ? S::zero() : sums[(r + i - r0) * 4 + v];
  }
  for (int64_t j = 0; j < g1 - g0; ++j)
    for (int i = 0; i < RP; ++i) {
      const V weights = S::bcast32(pair[i] + j);
      const V* x = variants + static_cast<int64_t>(variant[i][j]) * 4;  // g * 6 + pair
      for (int v = 0; v < 4; ++v) acc[i][v] = S::add32(acc[i][v], S::dot_pairs(S::load(x + v), weights));
    }
  for (int i = 0; i < RP; ++i)
    for (int v = 0; v < 4; ++v) sums[(r + i - r0) * 4 + v] = acc[i][v];
}

// A token group's u8 panels and, per tile, the pair variants of all its groups.
template <class S>
struct S8PairVariants {
  S8Panels panels;
  const typename S::V* data;
  int64_t per_tile;  // vectors
  const typename S::V* tile(int64_t t) const { return data + (t - panels.first) * per_tile; }
};

template <class S>
S8PairVariants<S> pack_pair_variants(const SpmmS8Problem& p, uint64_t call_id, int64_t group, int64_t first,
                                     int64_t count) {
  thread_local PanelCache<typename S::V> variants;
  const S8Panels panels = pack_quad_panels<S>(p, call_id, group, first, count);
  const int64_t groups = p.semi24->indices.groups, per_tile = groups * 24;
  if (variants.claim(call_id, group, static_cast<size_t>(std::max<int64_t>(1, count * per_tile))))
    for (int64_t i = 0; i < count; ++i)
      build_pair_variants<S>(panels.data + i * panels.panel_bytes, p.k(), groups, variants.data.data() + i * per_tile);
  return S8PairVariants<S>{panels, variants.data.data(), per_tile};
}

template <class S>
void run_semi24_pair_variants(const SpmmS8Problem& p) {
  using V = typename S::V;
  constexpr int64_t kTileTokens = 4 * S::L;
  static_assert(kS8PanelTokens<S> == kTileTokens, "a panel is one tile");
  // Variants of one block of groups, about 24 KiB (6 pairs x 4 vectors per
  // group): measured better than 12 or 96 KiB on Zen 3.
  constexpr int64_t kBlockGroups = std::max<int64_t>(1, (24 << 10) / (24 * static_cast<int64_t>(sizeof(V))));
  constexpr int64_t kSliceRows = 256;  // the unit of the schedule; sums: 256 x 4 vectors
  const Semi24S8& w = *p.semi24;
  const int64_t groups = w.indices.groups;
  TileSchedule s;
  s.tokens = p.m;
  s.tokens_per_tile = kTileTokens;
  s.tokens_per_panel = kTileTokens;
  s.panel_bytes = w.k * kTileTokens + groups * 24 * static_cast<int64_t>(sizeof(V));
  s.block_rows = (w.n + kSliceRows - 1) / kSliceRows;
  s.weight_bytes = static_cast<int64_t>(w.packed_bytes());
  s.threads = p.threads > 0 ? p.threads : default_num_threads();
  for_each_tile(
      s,
      [&](uint64_t call_id, int64_t group, int64_t first, int64_t count) {
        return pack_pair_variants<S>(p, call_id, group, first, count);
      },
      [&](const S8PairVariants<S>& x, int64_t tile, int64_t slice) {
        thread_local AlignedBuffer<V> sums;
        sums.reserve_discarding(static_cast<size_t>(kSliceRows * 4));
        const V* variants = x.tile(tile);
        const int64_t r0 = slice * kSliceRows, r1 = std::min(w.n, r0 + kSliceRows);
        for (int64_t g0 = 0; g0 < groups; g0 += kBlockGroups) {
          const int64_t g1 = std::min(groups, g0 + kBlockGroups);
          int64_t r = r0;
          for (; r + 2 <= r1; r += 2) semi24_variant_rows<S, 2>(w, variants, g0, g1, r, r0, sums.data(), g0 == 0);
          if (r < r1) semi24_variant_rows<S, 1>(w, variants, g0, g1, r, r0, sums.data(), g0 == 0);
        }
        alignas(64) float stage[S::L * kTileTokens];
        const auto* row_sums = reinterpret_cast<const int32_t(*)[4][S::L]>(sums.data());
        for (int64_t c0 = r0; c0 < r1; c0 += S::L) {
          const int channels = static_cast<int>(std::min<int64_t>(S::L, r1 - c0));
          finish_token_sums<S, 4, 0>(p, x.panels, tile, row_sums + (c0 - r0), c0, channels, stage);
          if (p.output != S8Output::s32) store_staged<S>(p, stage, tile * kTileTokens, c0, channels);
        }
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
