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
// Everything has internal linkage (see kernels/tile_schedule.h).
#pragma once

#include <algorithm>
#include <cstdint>

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
