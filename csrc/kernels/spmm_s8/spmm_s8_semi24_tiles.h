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
// take other weights (widen_to_row_pairs: a group's two kept weights are one
// pair, so a group has only six activation variants) and, from 32 tokens on,
// run vectors over tokens (this byte design, widening every dot product,
// measured 1.06x dense on Zen 3; that one 1.4-1.5x); fewer tokens run vectors
// over channels on the same weights. See run_semi24_pair_variants.
// Everything has internal linkage (see kernels/tile_schedule.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

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
// A tile is up to 64 tokens: two of the quad kernels' u8 panels, as many
// vectors as it has tokens (NV = 1..8, vector j = tokens 8j..8j+7), so a short
// call computes little padding. Once per tile, each group's six position
// pairs are built as 16-bit pair vectors; a row then costs, per group, one
// broadcast of its weight pair and per vector one vpmaddwd reading its
// variant: no shuffle, half the vpmaddwd of dense. (With 8 vectors per
// broadcast and variant index the loop ran 1.4x faster per vpmaddwd than with
// 4 on Zen 3.) The input dimension is walked in blocks whose variants stay in
// L1 while a slice of rows passes over them, the slice's sums parked between
// blocks (as the fp32 2:4 kernel); the sums then go to the quad lane order
// and leave through the quad kernels' epilogue.

constexpr int kVariantTileTokens = 64;

// Variants of every group of a tile of NV vectors (from panels[0] and, past
// 4 vectors, panels[1]; k rows of 32 bytes each):
// out[(g * 6 + pair) * NV + j] = pairs (a_i0, a_i1) of tokens 8j..8j+7.
template <class S, int NV>
void build_pair_variants(const uint8_t* const (&panels)[2], int64_t k, int64_t groups, typename S::V* out) {
  using V = typename S::V;
  static_assert(S::L == 8 && kS8PanelTokens<S> == 32, "vectors of 8 tokens, panels of 32");
  constexpr int NP = (NV + 3) / 4;
  const V zero = S::zero();
  for (int64_t g = 0; g < groups; ++g)
    for (int h = 0; h < NP; ++h) {
      V a[4][2];  // input 4g + i as 16-bit values: tokens 0-15 and 16-31 of panel h
      for (int i = 0; i < 4; ++i) {
        const uint8_t* row = panels[h] + (4 * g + i) * 32;
        a[i][0] = 4 * g + i < k ? S::widen16(row) : zero;
        a[i][1] = 4 * g + i < k ? S::widen16(row + 16) : zero;
      }
      for (int pair = 0; pair < 6; ++pair) {
        const int i0 = kSemi24Pairs[pair][0], i1 = kSemi24Pairs[pair][1];
        V* dst = out + (g * 6 + pair) * NV;
        for (int half = 0; half < 2; ++half) {
          const int j = 4 * h + 2 * half;  // tokens 8j.. and 8(j + 1)..
          if (j >= NV) break;
          // In-lane unpacks give tokens 0-3 | 8-11 and 4-7 | 12-15 of the 16.
          const V lo = S::unpacklo16(a[i0][half], a[i1][half]), hi = S::unpackhi16(a[i0][half], a[i1][half]);
          S::store(dst + j, S::low_halves(lo, hi));
          if (j + 1 < NV) S::store(dst + j + 1, S::high_halves(lo, hi));
        }
      }
    }
}

// Row r over groups [g0, g1) of a tile's NV-vector variants, into the
// slice's sums from row r0: sums[(r - r0) * NV + j] (`first`: from zero).
template <class S, int NV>
void semi24_variant_row(const Semi24S8& w, const typename S::V* variants, int64_t g0, int64_t g1, int64_t r,
                        int64_t r0, typename S::V* sums, bool first) {
  using V = typename S::V;
  const int64_t at = w.row_pair_at(r, g0);  // then every 8th entry: rows are interleaved in blocks of 8
  const int32_t* weight_pair = w.row_pairs.data() + at;
  const uint8_t* pair_index = w.row_pair_index.data() + at;
  if (r % 8 == 0) {  // the next block of rows (slices start at multiples of 8): a few lines, a row block away
    const int64_t ahead = w.indices.groups * 8;
    prefetch_ahead(weight_pair, ahead * static_cast<int64_t>(sizeof(int32_t)), (g1 - g0) * 8 * sizeof(int32_t));
    prefetch_ahead(pair_index, ahead, (g1 - g0) * 8);
  }
  V* parked = sums + (r - r0) * NV;
  V acc[NV];
  for (int j = 0; j < NV; ++j) acc[j] = first ? S::zero() : parked[j];
  const V* group_variants = variants + g0 * 6 * NV;
  for (int64_t i = 0; i < g1 - g0; ++i, group_variants += 6 * NV) {
    const V weights = S::bcast32(weight_pair + 8 * i);
    const V* x = group_variants + pair_index[8 * i] * NV;
    for (int j = 0; j < NV; ++j) acc[j] = S::add32(acc[j], S::dot_pairs(S::load(x + j), weights));
  }
  for (int j = 0; j < NV; ++j) parked[j] = acc[j];
}

// Vectors of a tile of `tokens` tokens.
inline int variant_vectors(int64_t tokens) { return static_cast<int>(std::min<int64_t>(8, (tokens + 7) / 8)); }

// Calls fn(std::integral_constant<int, NV>) for NV = vectors (1..8).
template <class Fn>
void with_variant_vectors(int vectors, const Fn& fn) {
  switch (vectors) {
    case 1: return fn(std::integral_constant<int, 1>());
    case 2: return fn(std::integral_constant<int, 2>());
    case 3: return fn(std::integral_constant<int, 3>());
    case 4: return fn(std::integral_constant<int, 4>());
    case 5: return fn(std::integral_constant<int, 5>());
    case 6: return fn(std::integral_constant<int, 6>());
    case 7: return fn(std::integral_constant<int, 7>());
    default: return fn(std::integral_constant<int, 8>());
  }
}

// A token group's u8 panels and, per tile, the pair variants of all its groups.
template <class S>
struct S8PairVariants {
  S8Panels panels;
  const typename S::V* data;
  int64_t per_tile;  // vectors
  const typename S::V* tile(int64_t t) const { return data + (t - panels.first / 2) * per_tile; }
};

template <class S>
S8PairVariants<S> pack_pair_variants(const SpmmS8Problem& p, uint64_t call_id, int64_t group, int64_t first,
                                     int64_t count) {
  thread_local PanelCache<typename S::V> variants;
  const S8Panels panels = pack_quad_panels<S>(p, call_id, group, first, count);
  const int64_t groups = p.semi24->indices.groups, per_tile = groups * 6 * 8;
  // first is even: tiles hold two panels (the call's last tile, one or two)
  const int64_t tiles = (count + 1) / 2;
  if (variants.claim(call_id, group, static_cast<size_t>(std::max<int64_t>(1, tiles * per_tile))))
    for (int64_t t = 0; t < tiles; ++t) {
      const uint8_t* panel = panels.data + 2 * t * panels.panel_bytes;
      const uint8_t* const pair_of_panels[2] = {panel, 2 * t + 1 < count ? panel + panels.panel_bytes : nullptr};
      const int64_t token0 = (first + 2 * t) * kS8PanelTokens<S>;
      with_variant_vectors(variant_vectors(p.m - token0), [&](auto nv) {
        build_pair_variants<S, decltype(nv)::value>(pair_of_panels, p.k(), groups,
                                                    variants.data.data() + t * per_tile);
      });
    }
  return S8PairVariants<S>{panels, variants.data.data(), per_tile};
}

// One tile of NV vectors x the rows [r0, r1) of one slice.
template <class S, int NV>
void semi24_variant_tile(const SpmmS8Problem& p, const S8PairVariants<S>& x, int64_t tile, int64_t r0, int64_t r1) {
  using V = typename S::V;
  // Variants of one block of groups, about 24 KiB at 8 vectors (6 pairs x NV
  // vectors per group): measured better than 12 or 96 KiB on Zen 3.
  constexpr int64_t kBlockGroups = std::max<int64_t>(1, (24 << 10) / (6 * 8 * static_cast<int64_t>(sizeof(V))));
  const Semi24S8& w = *p.semi24;
  const int64_t groups = w.indices.groups;
  thread_local AlignedBuffer<V> sums;
  sums.reserve_discarding(static_cast<size_t>((r1 - r0) * NV));
  const V* variants = x.tile(tile);
  if (groups == 0) std::fill(sums.data(), sums.data() + (r1 - r0) * NV, S::zero());  // in_features 0
  for (int64_t g0 = 0; g0 < groups; g0 += kBlockGroups) {
    const int64_t g1 = std::min(groups, g0 + kBlockGroups);
    for (int64_t r = r0; r < r1; ++r) semi24_variant_row<S, NV>(w, variants, g0, g1, r, r0, sums.data(), g0 == 0);
  }
  // sums: per row, NV vectors of tokens in order.
  const int64_t token0 = tile * kVariantTileTokens;
  const TokenQuantization* quant = x.panels.quant + (token0 - x.panels.first * kS8PanelTokens<S>);
  for (int64_t c0 = r0; c0 < r1; c0 += S::L)
    store_channel_sums<S, NV>(
        p, reinterpret_cast<const int32_t*>(sums.data() + (c0 - r0) * NV), NV * S::L, token0,
        [](int v, int i) { return v * S::L + i; }, quant, c0, static_cast<int>(std::min<int64_t>(S::L, r1 - c0)),
        ChannelSumsTo::y());
}

// ---- vectors over channels (S::kPairs), for calls with few tokens ----------
//
// Below 32 tokens the per-row, per-group cost of the variant design (a
// broadcast, an index, a loop step) outweighs its few vpmaddwd: there, 8 rows
// of a group are one vector of weight pairs, their indices become a byte
// shuffle (one table lookup per vector and group, shared by every token),
// and per token the group's four 16-bit activations are broadcast and
// shuffled into each row's pair.

// The byte shuffle that moves pair `index` of a group's activations, held as
// 16-bit (a0, a2, a1, a3) as the dense pair rows hold them, into one dword.
constexpr uint32_t pair_shuffle(int index) {
  const uint32_t s0 = 2 * kPairRowSlot[kSemi24Pairs[index][0]], s1 = 2 * kPairRowSlot[kSemi24Pairs[index][1]];
  return s0 | (s0 + 1) << 8 | s1 << 16 | (s1 + 1) << 24;
}

// 16 rows (two blocks of 8) from channel block cb0 x T tokens.
template <class S, int T>
void semi24_pair_channel_tile(const SpmmS8Problem& p, const S8Rows& rows, int64_t token0, int tokens, int64_t cb0) {
  using V = typename S::V;
  static_assert(S::L == 8, "a vector is a block of 8 rows");
  alignas(32) static constexpr uint32_t kShuffles[8] = {pair_shuffle(0), pair_shuffle(1), pair_shuffle(2),
                                                        pair_shuffle(3), pair_shuffle(4), pair_shuffle(5), 0, 0};
  const Semi24S8& w = *p.semi24;
  const V shuffles = S::load(kShuffles);
  const int32_t* wp[2];
  const uint8_t* ip[2];
  for (int v = 0; v < 2; ++v) {
    wp[v] = w.row_pairs.data() + w.row_pair_at(16 * cb0 + 8 * v, 0);
    ip[v] = w.row_pair_index.data() + w.row_pair_at(16 * cb0 + 8 * v, 0);
  }
  const uint16_t* xr[T];  // pair rows: group g at 4g
  for (int t = 0; t < T; ++t)
    xr[t] = reinterpret_cast<const uint16_t*>(rows.row(token0 + std::min(t, tokens - 1)));

  V acc[2][T];
  for (int v = 0; v < 2; ++v)
    for (int t = 0; t < T; ++t) acc[v][t] = S::zero();
  for (int64_t g = 0; g < w.indices.groups; ++g) {
    V b[2], shuffle[2];
    for (int v = 0; v < 2; ++v) {
      b[v] = S::load(wp[v] + 8 * g);
      shuffle[v] = S::permute32(shuffles, S::widen32(ip[v] + 8 * g));
    }
    for (int t = 0; t < T; ++t) {
      const V x = S::bcast64(xr[t] + 4 * g);
      for (int v = 0; v < 2; ++v) acc[v][t] = S::add32(acc[v][t], S::dot_pairs(S::shuffle8(x, shuffle[v]), b[v]));
    }
  }
  alignas(64) int32_t sums[2][T][S::L];  // leave registers in one unrolled store (see spmm_f32_tiles.h)
#pragma GCC unroll 64
  for (int v = 0; v < 2; ++v)
#pragma GCC unroll 64
    for (int t = 0; t < T; ++t) S::store(sums[v][t], acc[v][t]);
  store_channel_tile<S, 2, T>(p, rows, sums, token0, tokens, cb0);
}

// Calls of fewer tokens than this run the channel design.
constexpr int64_t kVariantMinTokens = 32;

template <class S>
void run_semi24_pair_variants(const SpmmS8Problem& p) {
  using V = typename S::V;
  constexpr int64_t kSliceRows = 256;  // the unit of the schedule
  static_assert(!HalfTokenOrder<S>::value, "the variants and their sums assume panels in token order");
  const Semi24S8& w = *p.semi24;
  if (p.m < kVariantMinTokens) {
    const auto tile = [&](const S8Rows& rows, int64_t token0, int tokens, int64_t cb, auto t) {
      semi24_pair_channel_tile<S, decltype(t)::value>(p, rows, token0, tokens, cb);
    };
    return run_channel_tiles<S, 2, 4>(p, w.channel_blocks, static_cast<int64_t>(w.packed_bytes()), tile, tile);
  }
  TileSchedule s;
  s.tokens = p.m;
  s.tokens_per_tile = kVariantTileTokens;
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
        with_variant_vectors(variant_vectors(p.m - tile * kVariantTileTokens), [&](auto nv) {
          semi24_variant_tile<S, decltype(nv)::value>(p, x, tile, r0, r1);
        });
      });
}

template <class S, int WV, int T>
void run_semi24(const SpmmS8Problem& p) {
  const Semi24S8& w = *p.semi24;
  run_channel_tiles<S, WV, T>(  // S reads int8 rows (S::kPairs false)
      p, w.channel_blocks, static_cast<int64_t>(w.packed_bytes()),
      [&](const S8Rows& rows, int64_t token0, int tokens, int64_t cb0, auto t) {
        semi24_tile<S, WV, decltype(t)::value>(p, rows, token0, tokens, cb0);
      },
      [&](const S8Rows& rows, int64_t token0, int tokens, int64_t cb, auto t) {
        semi24_tile<S, 16 / S::L, decltype(t)::value>(p, rows, token0, tokens, cb);
      });
}

}  // namespace
}  // namespace sparsecpu
