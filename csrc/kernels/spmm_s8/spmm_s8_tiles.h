// Register-tiled int8 kernels, written once over an integer SIMD traits type S
// (with float traits S::F) and instantiated by each per-ISA file.
//
// Dense (channel groups): vectors run over output channels, each holding
// four consecutive inputs per channel; one token's four quantized activation
// bytes are broadcast as a dword. Activations stay row-major.
//
// Block patterns (column quads): vectors run over tokens. Activations are
// quantized into k-major u8 panels of one tile (4 vectors of tokens); for each
// quad the four input rows are interleaved into dwords (two rounds of
// byte/word unpacks, in 128-bit lanes) and one dot-product per output row
// consumes them. The unpacks leave tokens in a fixed lane order; the epilogue
// undoes it.
// Everything has internal linkage (see kernels/tile_schedule.h).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/output_rows.h"
#include "kernels/simd/activation.h"
#include "kernels/simd/transpose_bytes.h"
#include "kernels/spmm_s8/spmm_s8.h"
#include "kernels/tile_schedule.h"

namespace sparsecpu {
namespace {

// Tokens per k-major activation panel of the block-pattern kernels: one tile
// (4 vectors), so a panel row is what one quad column load reads and a panel
// of a wide K stays in L1/L2 (AVX2: 32 bytes per input).
template <class S>
constexpr int kS8PanelTokens = 4 * S::L;

// ---- per-token quantization (bit-identical to the reference) ---------------

template <class S>
TokenQuantization quantize_stats(const float* x, int64_t k) {
  using F = typename S::F;
  using FV = typename F::V;
  // Four independent min/max chains; NaN is tracked apart (min/max drop it).
  FV lo[4] = {F::zero(), F::zero(), F::zero(), F::zero()}, hi[4] = {lo[0], lo[0], lo[0], lo[0]};
  FV nan = F::zero();
  int64_t j = 0;
  for (; j + 4 * F::L <= k; j += 4 * F::L)
    for (int u = 0; u < 4; ++u) {
      const FV v = F::load(x + j + u * F::L);
      lo[u] = F::min(lo[u], v);
      hi[u] = F::max(hi[u], v);
      nan = F::bit_or(nan, F::unordered(v));
    }
  for (; j + F::L <= k; j += F::L) {
    const FV v = F::load(x + j);
    lo[0] = F::min(lo[0], v);
    hi[0] = F::max(hi[0], v);
    nan = F::bit_or(nan, F::unordered(v));
  }
  float l = F::reduce_min(F::min(F::min(lo[0], lo[1]), F::min(lo[2], lo[3])));
  float h = F::reduce_max(F::max(F::max(hi[0], hi[1]), F::max(hi[2], hi[3])));
  bool finite = !F::any(nan);
  for (; j < k; ++j) {
    finite = finite && !std::isnan(x[j]);
    l = std::min(l, x[j]);
    h = std::max(h, x[j]);
  }
  // An infinity reaches lo or hi and makes token_quantization return NaN.
  return finite ? token_quantization(l, h) : token_quantization(0.0f, INFINITY);
}

inline uint8_t quantize_value(float x, float inv, float zp) {
  const float v = std::nearbyint(x * inv) + zp;
  return v == v ? static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f)) : 0;
}

// ---- dense: channel groups ---------------------------------------------------

// Where input i of a group of 4 sits in an S::kPairs row (below).
constexpr int kPairRowSlot[4] = {0, 2, 1, 3};

// Quantized rows [first, first + count) of the call's tokens, row-major with
// k rounded up to 4 (zero padding), and their quantization. S::kPairs rows hold
// each group of 4 as uint16 (a0, a2, a1, a3): a 32-bit broadcast is then the
// even or odd operand of vpmaddwd as it stands.
struct S8Rows {
  const uint8_t* data;
  const TokenQuantization* quant;
  int64_t first;
  int64_t ld;
  const uint8_t* row(int64_t token) const { return data + (token - first) * ld; }  // ld in bytes
  const TokenQuantization& q(int64_t token) const { return quant[token - first]; }
};

template <class S>
S8Rows quantize_rows(const SpmmS8Problem& p, uint64_t call_id, int64_t group, int64_t first, int64_t count) {
  thread_local PanelCache<uint8_t> rows;
  thread_local PanelCache<TokenQuantization> quant;
  thread_local AlignedBuffer<uint8_t> bytes;  // one row before widening (S::kPairs)
  const int64_t k = p.k(), ld = (k + 3) / 4 * 4, ld_bytes = S::kPairs ? 2 * ld : ld;
  if (!S::kPairs && p.x_u8 && ld == p.ldx)  // given u8 rows already have the layout
    return S8Rows{p.x_u8 + first * p.ldx, nullptr, first, ld};
  if (rows.claim(call_id, group, static_cast<size_t>(count * ld_bytes))) {
    quant.claim(call_id, group, static_cast<size_t>(count));
    if (S::kPairs) bytes.reserve_discarding(static_cast<size_t>(ld));
    for (int64_t i = 0; i < count; ++i) {
      uint8_t* dst = S::kPairs ? bytes.data() : rows.data.data() + i * ld;
      std::memset(dst + k, 0, static_cast<size_t>(ld - k));
      if (p.x_u8) {
        std::memcpy(dst, p.x_u8 + (first + i) * p.ldx, static_cast<size_t>(k));
        quant.data[i] = TokenQuantization{1.0f, 0};
      } else {
        const float* x = p.x_f32 + (first + i) * p.ldx;
        const TokenQuantization t = quantize_stats<S>(x, k);
        quant.data[i] = t;
        S::quantize_row(x, k, 1.0f / t.scale, static_cast<float>(t.zero_point), dst);
      }
      if constexpr (S::kPairs) {
        uint16_t* pairs = reinterpret_cast<uint16_t*>(rows.data.data() + i * ld_bytes);
        for (int64_t j = 0; j < ld; j += 4)
          for (int input = 0; input < 4; ++input) pairs[j + kPairRowSlot[input]] = dst[j + input];
      }
    }
  }
  return S8Rows{rows.data.data(), p.x_u8 ? nullptr : quant.data.data(), first, ld_bytes};
}

// One whole vector of float results into float or bf16 outputs.
template <class F>
[[gnu::always_inline]] inline void store_vector(float* y, typename F::V v) {
  F::store(y, v);
}
template <class F>
[[gnu::always_inline]] inline void store_vector(uint16_t* y, typename F::V v) {
  F::store_bf16_partial(y, v, F::L);
}

// Whether p writes float or bf16 outputs (the ones with_float_output types).
inline bool writes_floats(const SpmmS8Problem& p) {
  return p.output == S8Output::f32 || p.output == S8Output::bf16;
}

// fn(y) with p.y typed as the float or bf16 outputs it holds (only those).
template <class Fn>
[[gnu::always_inline]] inline void with_float_output(const SpmmS8Problem& p, const Fn& fn) {
  if (p.output == S8Output::bf16) return fn(static_cast<uint16_t*>(p.y));
  fn(static_cast<float*>(p.y));
}

// The last step of every float epilogue: y[token][c0 .. c0 + lanes) = v +
// residual, stored as float or bf16, or requantized to int8.
template <class S>
[[gnu::always_inline]] inline void store_output_row(const SpmmS8Problem& p, typename S::F::V v, int64_t token,
                                                    int64_t c0, int lanes) {
  using F = typename S::F;
  const Epilogue& e = p.epilogue;
  if (e.residual) v = F::add(v, F::load_partial(e.residual + token * e.ld_residual + c0, lanes));
  if (p.output == S8Output::f32) {
    F::store_partial(static_cast<float*>(p.y) + token * p.ldy + c0, v, lanes);
    return;
  }
  if (p.output == S8Output::bf16) {
    F::store_bf16_partial(static_cast<uint16_t*>(p.y) + token * p.ldy + c0, v, lanes);
    return;
  }
  alignas(64) float tmp[F::L];
  F::store(tmp, v);
  int8_t* y = static_cast<int8_t*>(p.y) + token * p.ldy + c0;
  for (int i = 0; i < lanes; ++i) y[i] = requantize_ref(tmp[i], p.out_scale);
}

// Per-channel epilogue operands of S::L consecutive channels, loaded once per tile.
template <class S>
struct ChannelEpilogue {
  typename S::V row_sum;
  typename S::F::V scale, bias;

  ChannelEpilogue() : row_sum(S::zero()), scale(S::F::zero()), bias(S::F::zero()) {}  // s32 output: unused
  ChannelEpilogue(const SpmmS8Problem& p, int64_t c0, int lanes)
      : row_sum(S::load_partial32(p.w_row_sum + c0, lanes)),
        scale(S::F::load_partial(p.w_scale + c0, lanes)),
        bias(p.epilogue.bias ? S::F::load_partial(p.epilogue.bias + c0, lanes) : S::F::zero()) {}
};

// One vector of L consecutive channels of one token, dequantized and biased
// (the activation comes after).
template <class S>
[[gnu::always_inline]] inline typename S::F::V dequantize_channels(typename S::V acc, const TokenQuantization& t,
                                                                   const ChannelEpilogue<S>& ch) {
  using F = typename S::F;
  const typename F::V v = S::to_float(S::sub32(acc, S::mul32(S::set1_32(t.zero_point), ch.row_sum)));
  return F::fma(v, F::mul(F::set1(t.scale), ch.scale), ch.bias);
}

// Stores one vector of L consecutive channels of one token, with the epilogue.
template <class S>
[[gnu::always_inline]] inline void store_channels(const SpmmS8Problem& p, typename S::V acc, int64_t token,
                                                  const TokenQuantization& t, const ChannelEpilogue<S>& ch, int64_t c0,
                                                  int lanes) {
  using F = typename S::F;
  if (p.output == S8Output::s32) {
    alignas(64) int32_t tmp[S::L];
    S::store(tmp, acc);
    std::memcpy(static_cast<int32_t*>(p.y) + token * p.ldy + c0, tmp, sizeof(int32_t) * lanes);
    return;
  }
  store_output_row<S>(p, activate<F>(dequantize_channels<S>(acc, t, ch), p.epilogue.activation), token, c0, lanes);
}

// The sums of a channel tile (WV vectors of S::L channels from channel block
// cb0, T tokens from token0, `tokens` of them real) -> y with the epilogue.
template <class S, int WV, int T>
void store_channel_tile(const SpmmS8Problem& p, const S8Rows& rows, const int32_t (&sums)[WV][T][S::L],
                        int64_t token0, int tokens, int64_t cb0) {
  const TokenQuantization unit{1.0f, 0};
  for (int v = 0; v < WV; ++v) {
    const int64_t c0 = cb0 * 16 + v * S::L;
    const int lanes = static_cast<int>(std::clamp<int64_t>(p.n() - c0, 0, S::L));
    if (lanes == 0) break;
    const ChannelEpilogue<S> channel(p, c0, lanes);
    for (int t = 0; t < tokens; ++t)
      store_channels<S>(p, S::load(sums[v][t]), token0 + t, rows.quant ? rows.q(token0 + t) : unit, channel, c0,
                        lanes);
  }
}

// WV vectors (of S::L channels) x T tokens. A channel block of 16 holds
// 16 / S::L vectors.
template <class S, int WV, int T>
void dense_tile(const SpmmS8Problem& p, const S8Rows& rows, int64_t token0, int tokens, int64_t cb0) {
  using V = typename S::V;
  constexpr int kPerBlock = 16 / S::L;
  const ChannelPackedS8& w = *p.channels;
  // Vector v's weights of group g: 4 bytes per channel at wv[v] + g * 64, or
  // (S::kPairs) the even and odd 16-bit pairs at wp[v] + g * 64 and + 32.
  const int8_t* wv[WV];
  const int16_t* wp[WV];
  for (int v = 0; v < WV; ++v) {
    const int64_t group0 = (cb0 + v / kPerBlock) * w.k_groups * 64;
    if constexpr (S::kPairs)
      wp[v] = w.pairs.data() + group0 + (v % kPerBlock) * S::L * 2;
    else
      wv[v] = w.values.data() + group0 + (v % kPerBlock) * S::L * 4;
  }
  const uint8_t* xr[T];
  const uint16_t* xp[T];  // the same rows as pairs (S::kPairs)
  for (int t = 0; t < T; ++t) {
    xr[t] = rows.row(token0 + std::min(t, tokens - 1));
    xp[t] = reinterpret_cast<const uint16_t*>(xr[t]);
  }

  V acc[WV][T];
  for (int v = 0; v < WV; ++v)
    for (int t = 0; t < T; ++t) acc[v][t] = S::zero();
  for (int64_t g = 0; g < w.k_groups; ++g) {
    typename S::B b[WV];
    for (int v = 0; v < WV; ++v) {
      if constexpr (S::kPairs)
        b[v] = {S::load(wp[v] + g * 64), S::load(wp[v] + g * 64 + 32)};
      else
        b[v] = S::prep_b(S::load(wv[v] + g * 64));
    }
    for (int t = 0; t < T; ++t) {
      typename S::A a;
      if constexpr (S::kPairs)
        a = {S::bcast32(xp[t] + g * 4), S::bcast32(xp[t] + g * 4 + 2)};
      else
        a = S::prep_a(S::bcast32(xr[t] + g * 4));
      for (int v = 0; v < WV; ++v) acc[v][t] = S::dot(acc[v][t], a, b[v]);
    }
  }
  alignas(64) int32_t sums[WV][T][S::L];  // leave registers in one unrolled store (see spmm_f32_tiles.h)
#pragma GCC unroll 64
  for (int v = 0; v < WV; ++v)
#pragma GCC unroll 64
    for (int t = 0; t < T; ++t) S::store(sums[v][t], acc[v][t]);
  store_channel_tile<S, WV, T>(p, rows, sums, token0, tokens, cb0);
}

// Calls fn(std::integral_constant<int, T'>) with the smallest of T,
// ceil(T / 2), ceil(T / 4), ..., 1 that holds `tokens`: a channel tile
// computes all its T tokens, so a call's last, short tile takes a narrower
// one (on AVX-512 a one-token call computed 12).
template <int T, class Fn>
void with_tile_tokens(int tokens, const Fn& fn) {
  if constexpr (T > 1) {
    constexpr int kHalf = (T + 1) / 2;
    if (tokens <= kHalf) return with_tile_tokens<kHalf>(tokens, fn);
  }
  fn(std::integral_constant<int, T>{});
}

// Channel tiles of WV vectors x T tokens over row-major quantized
// activations, for any weights stored in blocks of 16 channels:
// tile(rows, token0, tokens, cb0, t) runs WV * S::L / 16 blocks from cb0;
// tail(rows, token0, tokens, cb, t) one block; t: the tile's token count as
// a std::integral_constant, T or less for a call's last, short tile.
template <class S, int WV, int T, class Tile, class Tail>
void run_channel_tiles(const SpmmS8Problem& p, int64_t channel_blocks, int64_t weight_bytes, const Tile& tile,
                       const Tail& tail) {
  static_assert(WV * S::L % 16 == 0, "a channel tile covers whole channel blocks");
  constexpr int kBlocksPerTile = WV * S::L / 16;
  TileSchedule s;
  s.tokens = p.m;
  s.tokens_per_tile = T;
  s.tokens_per_panel = 1;
  s.panel_bytes = (p.k() + 3) / 4 * 4 * (S::kPairs ? 2 : 1);
  s.block_rows = (channel_blocks + kBlocksPerTile - 1) / kBlocksPerTile;
  s.weight_bytes = weight_bytes;
  s.threads = p.threads > 0 ? p.threads : default_num_threads();
  for_each_tile(
      s,
      [&](uint64_t call_id, int64_t group, int64_t first, int64_t count) {
        return quantize_rows<S>(p, call_id, group, first, count);
      },
      [&](const S8Rows& rows, int64_t tile_index, int64_t br) {
        const int64_t token0 = tile_index * T;
        const int tokens = static_cast<int>(std::min<int64_t>(T, p.m - token0));
        const int64_t cb0 = br * kBlocksPerTile;
        with_tile_tokens<T>(tokens, [&](auto t) {
          if (cb0 + kBlocksPerTile <= channel_blocks) {
            tile(rows, token0, tokens, cb0, t);
          } else {
            for (int64_t cb = cb0; cb < channel_blocks; ++cb) tail(rows, token0, tokens, cb, t);
          }
        });
      });
}

template <class S, int WV, int T>
void run_dense(const SpmmS8Problem& p) {
  const ChannelPackedS8& w = *p.channels;
  run_channel_tiles<S, WV, T>(
      p, w.channel_blocks, static_cast<int64_t>(w.packed_bytes()),
      [&](const S8Rows& rows, int64_t token0, int tokens, int64_t cb0, auto t) {
        dense_tile<S, WV, decltype(t)::value>(p, rows, token0, tokens, cb0);
      },
      [&](const S8Rows& rows, int64_t token0, int tokens, int64_t cb, auto t) {
        dense_tile<S, 16 / S::L, decltype(t)::value>(p, rows, token0, tokens, cb);
      });
}

// ---- block patterns: column quads ---------------------------------------------

// k-major u8 panels of kS8PanelTokens<S> tokens (P = 4 vectors: [k][P]) and
// each token's quantization, in token order (scale 1 and zero point 0 for u8
// activations, which are used as given, and for padding tokens).
struct S8Panels {
  const uint8_t* data;
  const TokenQuantization* quant;  // [panel][P]
  int64_t first;
  int64_t panel_bytes;
};

// Traits with kHalfTokenOrder = true (the quad kernels, see quad_rows) pack
// each panel so that the first half of a tile (vectors 0 and 1) holds its
// first half of tokens: a call's last tile of at most 2 * S::L tokens then
// computes one half. The interleave leaves vectors 0 and 1 holding the 8-token
// blocks 0, 2, 4, ... of panel positions, so token block b goes to position
// block 2b in the first half and 2(b - half) + 1 in the second.
template <class S, class = void>
struct HalfTokenOrder : std::false_type {};
template <class S>
struct HalfTokenOrder<S, std::void_t<decltype(S::kHalfTokenOrder)>> : std::bool_constant<S::kHalfTokenOrder> {};

// Where token t of a panel lies in it.
template <class S>
constexpr int panel_position(int t) {
  if constexpr (HalfTokenOrder<S>::value) {
    constexpr int kHalfBlocks = kS8PanelTokens<S> / 16;
    const int block = t / 8;
    return 8 * (block < kHalfBlocks ? 2 * block : 2 * (block - kHalfBlocks) + 1) + t % 8;
  }
  return t;
}

// Which token of a panel lies at position `position` (panel_position's inverse).
template <class S>
constexpr int panel_token(int position) {
  if constexpr (HalfTokenOrder<S>::value) {
    constexpr int kHalfBlocks = kS8PanelTokens<S> / 16;
    const int block = position / 8;
    return 8 * (block % 2 == 0 ? block / 2 : kHalfBlocks + block / 2) + position % 8;
  }
  return position;
}

template <class S>
constexpr bool panel_order_is_a_permutation() {
  for (int t = 0; t < kS8PanelTokens<S>; ++t)
    if (panel_token<S>(panel_position<S>(t)) != t) return false;
  return true;
}

// Vector u (< 4) of a panel, lane i holds token token_of_lane(u, i) of it:
// the order the quad interleave's unpacks (within 128-bit lanes) leave.
template <class S>
constexpr int token_of_lane(int u, int i) {
  static_assert(panel_order_is_a_permutation<S>(), "panel_token inverts panel_position");
  return panel_token<S>(16 * (i / 4) + 4 * u + i % 4);
}

// Calls of at most S::L tokens (a short query) run one vector of each tile
// (quad_rows with NV = 1), and their panel is packed in the order that puts
// token t in lane t of vector 0: lane i of vector u holds position
// 16 * (i / 4) + 4 * u + i % 4 (the quad interleave's unpacks within 128-bit
// lanes), so token t = S::L * u + i lies at that position. Its transpose
// writes runs of four tokens, twice the stores of the half token order's runs
// of eight, which is why longer calls keep that order.
template <class S>
constexpr int one_vector_position(int t) {
  return 16 * (t % S::L / 4) + 4 * (t / S::L) + t % 4;
}

// kOneVector: the panel of a call of at most S::L tokens, in token order
// (one_vector_position); else in the half token order (panel_position).
template <class S, bool kOneVector = false>
S8Panels pack_quad_panels(const SpmmS8Problem& p, uint64_t call_id, int64_t group, int64_t first, int64_t count) {
  thread_local PanelCache<uint8_t> panels;
  thread_local PanelCache<TokenQuantization> quants;
  thread_local AlignedBuffer<uint8_t> token_rows;  // 16 quantized rows, k rounded up to 16 (zero padded)
  const int64_t k = p.k(), panel_bytes = k * kS8PanelTokens<S>, ld = (k + 15) / 16 * 16;
  if (panels.claim(call_id, group, static_cast<size_t>(std::max<int64_t>(1, count * panel_bytes)))) {
    quants.claim(call_id, group, static_cast<size_t>(count * kS8PanelTokens<S>));
    token_rows.reserve_discarding(static_cast<size_t>(std::max<int64_t>(1, 16 * ld)));
    for (int64_t i = 0; i < count; ++i) {
      uint8_t* dst = panels.data.data() + i * panel_bytes;
      TokenQuantization* quant = quants.data.data() + i * kS8PanelTokens<S>;
      // 16 tokens at a time: quantized as rows (contiguous, where per-token
      // scales are scalars), then transposed as bytes into the k-major panel.
      for (int sub = 0; sub < kS8PanelTokens<S> / 16; ++sub) {
        const int64_t m0 = (first + i) * kS8PanelTokens<S> + sub * 16;
        if (m0 >= p.m) {  // padding only (a short call's last panel): its bytes are left as they are, their
          // lanes' sums never leave the kernel (every output is of a token of the call)
          std::fill_n(quant + sub * 16, 16, TokenQuantization{1.0f, 0});
          continue;
        }
        for (int t = 0; t < 16; ++t) {
          uint8_t* row = token_rows.data() + t * ld;
          const int64_t token = m0 + t;
          quant[sub * 16 + t] = TokenQuantization{1.0f, 0};
          if (token >= p.m) {
            std::memset(row, 0, static_cast<size_t>(ld));
            continue;
          }
          if (p.x_u8) {
            std::memcpy(row, p.x_u8 + token * p.ldx, static_cast<size_t>(k));
          } else {
            const float* x = p.x_f32 + token * p.ldx;
            const TokenQuantization q = quantize_stats<S>(x, k);
            quant[sub * 16 + t] = q;
            S::quantize_row(x, k, 1.0f / q.scale, static_cast<float>(q.zero_point), row);
          }
          std::memset(row + k, 0, static_cast<size_t>(ld - k));
        }
        if constexpr (kOneVector) {
          const int runs[4] = {one_vector_position<S>(sub * 16), one_vector_position<S>(sub * 16 + 4),
                               one_vector_position<S>(sub * 16 + 8), one_vector_position<S>(sub * 16 + 12)};
          transpose_rows16_bytes_in_runs4(token_rows.data(), ld, k, dst, kS8PanelTokens<S>, runs);
        } else {
          transpose_rows16_bytes(token_rows.data(), ld, k, dst, kS8PanelTokens<S>, panel_position<S>(sub * 16),
                                 panel_position<S>(sub * 16 + 8));
        }
      }
    }
  }
  return S8Panels{panels.data.data(), quants.data.data(), first, panel_bytes};
}

// Where store_channel_sums puts a token's results: straight into y, or
// (float and int8 outputs) dequantized into staged rows, token t of the tile
// at rows + t * ld_rows, whole vectors, padding tokens included;
// write_output_rows then activates them, adds the residual and writes y (see
// output_rows.h): the activation's arithmetic between its stores lets them
// drain (with GELU in the staging pass instead, a 3072-channel layer ran 0.83x
// the straight stores; without an activation, 1.33x).
struct ChannelSumsTo {
  float* rows;
  int64_t ld_rows;
  static ChannelSumsTo y() { return {nullptr, 0}; }
};

// Loads S::L channel rows of staged int32 sums (vector v of each, `channels`
// real) and transposes them: block[i] holds lane i's channels.
template <class S>
[[gnu::always_inline]] inline void load_transposed_sums(const int32_t* sums, int64_t stride, int v, int channels,
                                                        typename S::F::V (&block)[S::L]) {
#pragma GCC unroll 16
  for (int c = 0; c < S::L; ++c)  // int32 bit patterns: only shuffled
    block[c] = c < channels ? S::float_bits(S::load(sums + c * stride + v * S::L)) : S::F::zero();
  S::F::transpose_square(block);
}

// The common case of store_channel_sums, unrolled whole: S::L channels of NV *
// S::L tokens of the call, float or bf16 outputs into `dst` (token
// token_of(v, i) at dst + token_of(v, i) * ld: y, or staged rows), activated with A, plus the
// residual when kResidual (constants: no branch per vector). It takes what it
// needs of p as arguments: a vector store may alias anything, so fields read
// through p would be reloaded after every store.
// `channels` (<= S::L) rows of sums are read; staged rows take whole vectors
// whatever the count (lanes past it are never written out).
template <class S, int NV, Activation A, bool kResidual, class TokenOf, class Out>
void store_whole_channel_sums(const int32_t* sums, int64_t stride, int channels, const TokenOf& token_of,
                              const TokenQuantization* quant, const ChannelEpilogue<S>& ch, Out* dst, int64_t ld,
                              const float* residual, int64_t ld_residual) {
  using F = typename S::F;
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    typename F::V block[S::L];
    if (channels == S::L)  // a constant count: no test per row
      load_transposed_sums<S>(sums, stride, v, S::L, block);
    else
      load_transposed_sums<S>(sums, stride, v, channels, block);
#pragma GCC unroll 16
    for (int i = 0; i < S::L; ++i) {  // token_of(v, i): a constant
      typename F::V out = activate<F>(dequantize_channels<S>(S::int_bits(block[i]), quant[token_of(v, i)], ch), A);
      if constexpr (kResidual) out = F::add(out, F::load(residual + token_of(v, i) * ld_residual));
      store_vector<F>(dst + token_of(v, i) * ld, out);
    }
  }
}

// Staged int32 sums of `channels` (<= S::L) consecutive output channels from
// c0, one row of `stride` per channel whose vector v lane i holds token
// token0 + token_of(v, i) -> `to`, with the epilogue. S::L x S::L blocks are
// transposed in registers, so the epilogue runs on vectors of channels with
// per-channel operands loaded once (as the dense kernels' does).
// quant: the quantization of token token0 + t at quant[t], for every lane.
template <class S, int NV, class TokenOf>
void store_channel_sums(const SpmmS8Problem& p, const int32_t* sums, int64_t stride, int64_t token0,
                        const TokenOf& token_of, const TokenQuantization* quant, int64_t c0, int channels,
                        ChannelSumsTo to) {
  using F = typename S::F;
  // A short call's last tile: vectors holding only padding tokens are not
  // transposed (at 8 tokens, 2 of a quad tile's 4 hold tokens of the call).
  const auto holds_tokens = [&](int v) {
    int first = token_of(v, 0);
    for (int i = 1; i < S::L; ++i) first = std::min(first, token_of(v, i));
    return token0 + first < p.m;
  };
  if (p.output == S8Output::s32) {
    for (int v = 0; v < NV; ++v) {
      if (!holds_tokens(v)) continue;
      typename F::V block[S::L];
      load_transposed_sums<S>(sums, stride, v, channels, block);
      for (int i = 0; i < S::L; ++i) {
        const int64_t token = token0 + token_of(v, i);
        if (token >= p.m) continue;
        alignas(64) int32_t tmp[S::L];
        S::store(tmp, S::int_bits(block[i]));
        std::memcpy(static_cast<int32_t*>(p.y) + token * p.ldy + c0, tmp, sizeof(int32_t) * channels);
      }
    }
    return;
  }
  const ChannelEpilogue<S> ch(p, c0, channels);
  if (to.rows)  // staged rows hold whole vectors, padding tokens included; activated at the write-out
    return store_whole_channel_sums<S, NV, Activation::none, false>(sums, stride, channels, token_of, quant, ch,
                                                                    to.rows, to.ld_rows, nullptr, 0);
  const Epilogue& e = p.epilogue;
  if (writes_floats(p) && channels == S::L && token0 + NV * S::L <= p.m) {  // every lane a token of the call
    const float* residual = e.residual ? e.residual + token0 * e.ld_residual + c0 : nullptr;
    return with_float_output(p, [&](auto* y_of_call) {
      auto* y = y_of_call + token0 * p.ldy + c0;
      with_activation(e.activation, [&](auto a) {
        if (residual)
          return store_whole_channel_sums<S, NV, decltype(a)::value, true>(sums, stride, S::L, token_of, quant, ch,
                                                                           y, p.ldy, residual, e.ld_residual);
        store_whole_channel_sums<S, NV, decltype(a)::value, false>(sums, stride, S::L, token_of, quant, ch, y,
                                                                   p.ldy, nullptr, 0);
      });
    });
  }
  for (int v = 0; v < NV; ++v) {
    if (!holds_tokens(v)) continue;
    typename F::V block[S::L];
    load_transposed_sums<S>(sums, stride, v, channels, block);
#pragma GCC unroll 16
    for (int i = 0; i < S::L; ++i) {  // token_of(v, i): a constant
      const int64_t token = token0 + token_of(v, i);
      if (token < p.m)
        store_output_row<S>(
            p, activate<F>(dequantize_channels<S>(S::int_bits(block[i]), quant[token_of(v, i)], ch), e.activation),
            token, c0, channels);
    }
  }
}

// Whole staged rows of kOutputRowChannels -> float or bf16 y (y_of_call),
// activated (A, a constant: no branch per vector), with the residual.
template <class S, Activation A, class Out>
void write_whole_output_rows(const SpmmS8Problem& p, Out* y_of_call, const float* rows, int64_t ld_rows,
                             int64_t token0, int tokens, int64_t c0) {
  using F = typename S::F;
  constexpr int kVectors = kOutputRowChannels / F::L;
  const Epilogue& e = p.epilogue;
  for (int t = 0; t < tokens; ++t) {
    const float* row = rows + t * ld_rows;
    Out* y = y_of_call + (token0 + t) * p.ldy + c0;
    typename F::V v[kVectors];
    for (int i = 0; i < kVectors; ++i) v[i] = activate<F>(F::load(row + i * F::L), A);
    if (e.residual) {
      const float* residual = e.residual + (token0 + t) * e.ld_residual + c0;
      for (int i = 0; i < kVectors; ++i) v[i] = F::add(v[i], F::load(residual + i * F::L));
    }
    for (int i = 0; i < kVectors; ++i) store_vector<F>(y + i * F::L, v[i]);  // unrolled: no memcpy call
  }
}

// Tokens [token0, token0 + tokens) x channels [c0, c0 + channels) of staged
// rows (token t at rows + (t - token0) * ld_rows) -> y, activated, with the
// residual, as float or bf16 or requantized to int8.
template <class S>
void write_output_rows(const SpmmS8Problem& p, const float* rows, int64_t ld_rows, int64_t token0, int tokens,
                       int64_t c0, int channels) {
  using F = typename S::F;
  const Activation activation = p.epilogue.activation;
  if (writes_floats(p) && channels == kOutputRowChannels)
    return with_float_output(p, [&](auto* y) {
      with_activation(activation, [&](auto a) {
        write_whole_output_rows<S, decltype(a)::value>(p, y, rows, ld_rows, token0, tokens, c0);
      });
    });
  for (int t = 0; t < tokens; ++t)
    for (int c = 0; c < channels; c += F::L) {
      const int lanes = std::min(F::L, channels - c);  // lanes past the unit's channels were never written
      store_output_row<S>(p, activate<F>(F::load_partial(rows + t * ld_rows + c, lanes), activation), token0 + t,
                          c0 + c, lanes);
    }
}

// RP rows of a block row (starting at row0 of the block) x NV of the 4 vectors
// of tokens of a tile (the panel of 4 * S::L tokens from token0), from vector
// V0: a tile in two halves (NV = 2) holds half the activation registers, which
// leaves room for more rows per pass where the dot product needs widened
// operands (AVX2 without VNNI).
// The int32 sums go to `stage`, one row of 4 * S::L lanes per output channel
// (lanes in token_of_lane order), for store_channel_sums.
template <class S, int RP, int NV = 4, int V0 = 0>
void quad_tile(const SpmmS8Problem& p, const S8Panels& panels, int64_t token0, int64_t br, int row0,
               int32_t* stage) {
  static_assert((NV == 4 && V0 == 0) || (NV == 2 && (V0 == 0 || V0 == 2)) || (NV == 1 && V0 == 0),
                "whole tiles, halves, or the first vector (a call of one vector of tokens)");
  using V = typename S::V;
  constexpr int kLanes = 4 * S::L;
  const QuadPackedS8& w = *p.quads;
  const int R = w.rows;
  const int64_t panel = token0 / kS8PanelTokens<S>;
  static_assert(kS8PanelTokens<S> == kLanes, "a panel is one tile");
  const uint8_t* x = panels.data + (panel - panels.first) * panels.panel_bytes;
  const int64_t q0 = w.row_ptr[br], q1 = w.row_ptr[br + 1];
  const int32_t* cols = w.cols.data() + q0 * 4;
  static_assert(!S::kPairs, "block weights stay int8");
  const int8_t* wq = w.values.data() + q0 * R * 4 + row0 * 4;

  V acc[RP][NV];
  for (int r = 0; r < RP; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = S::zero();
  for (int64_t q = q0; q < q1; ++q, cols += 4, wq += R * 4) {
    const V a = S::load(x + static_cast<int64_t>(cols[0]) * kS8PanelTokens<S>);
    const V b = S::load(x + static_cast<int64_t>(cols[1]) * kS8PanelTokens<S>);
    const V c = S::load(x + static_cast<int64_t>(cols[2]) * kS8PanelTokens<S>);
    const V d = S::load(x + static_cast<int64_t>(cols[3]) * kS8PanelTokens<S>);
    typename S::A quad[NV];
    if constexpr (NV == 1) {
      quad[0] = S::prep_a(S::unpacklo16(S::unpacklo8(a, b), S::unpacklo8(c, d)));
    } else if constexpr (NV == 4 || V0 == 0) {
      const V ab_lo = S::unpacklo8(a, b), cd_lo = S::unpacklo8(c, d);
      quad[0] = S::prep_a(S::unpacklo16(ab_lo, cd_lo));
      quad[1] = S::prep_a(S::unpackhi16(ab_lo, cd_lo));
    }
    if constexpr (NV == 4 || (NV == 2 && V0 == 2)) {
      const V ab_hi = S::unpackhi8(a, b), cd_hi = S::unpackhi8(c, d);
      quad[NV - 2] = S::prep_a(S::unpacklo16(ab_hi, cd_hi));
      quad[NV - 1] = S::prep_a(S::unpackhi16(ab_hi, cd_hi));
    }
    for (int r = 0; r < RP; ++r) {
      const typename S::B wr = S::prep_b(S::bcast32(wq + r * 4));
      for (int v = 0; v < NV; ++v) acc[r][v] = S::dot(acc[r][v], quad[v], wr);
    }
  }

#pragma GCC unroll 64
  for (int r = 0; r < RP; ++r)
#pragma GCC unroll 64
    for (int v = 0; v < NV; ++v) S::store(stage + r * kLanes + (V0 + v) * S::L, acc[r][v]);
}

// Staged sums of channels [c0, c0 + channels) (channels <= S::L) over the
// tile at token0 (a panel) -> `to` (see store_channel_sums).
template <class S>
void store_quad_sums(const SpmmS8Problem& p, const S8Panels& panels, const int32_t* stage, int64_t token0, int64_t c0,
                     int channels, ChannelSumsTo to) {
  const int64_t panel = token0 / kS8PanelTokens<S>;
  const TokenQuantization* quant = panels.quant + (panel - panels.first) * kS8PanelTokens<S>;
  store_channel_sums<S, 4>(
      p, stage, 4 * S::L, token0, [](int v, int i) { return token_of_lane<S>(v, i); }, quant, c0, channels, to);
}

// The same for a call of one vector of tokens (token t in lane t of vector 0).
template <class S>
void store_one_vector_sums(const SpmmS8Problem& p, const S8Panels& panels, const int32_t* stage, int64_t c0,
                           int channels) {
  store_channel_sums<S, 1>(
      p, stage, 4 * S::L, 0, [](int, int i) { return i; }, panels.quant, c0, channels, ChannelSumsTo::y());
}

// R rows of a block row over a tile, whole (NV = 4) or in halves (NV = 2), or
// its first vector only (NV = 1: a call of at most S::L tokens, packed in
// token order). The second half (the tile's tokens from 2 * S::L on, by the
// half token order) is skipped when it holds no token of the call (a short
// query or a call's last tile), its stage rows zeroed.
template <class S, int NV, int R>
void quad_rows(const SpmmS8Problem& p, const S8Panels& panels, int64_t token0, int64_t br, int row0,
               int32_t* stage) {
  static_assert(HalfTokenOrder<S>::value, "the first half of a tile must hold its first tokens");
  constexpr int kLanes = 4 * S::L;
  const bool second_half = token0 + kLanes / 2 < p.m;
  if constexpr (NV == 1) {
    return quad_tile<S, R, 1, 0>(p, panels, token0, br, row0, stage);
  } else if constexpr (NV == 4) {
    if (second_half) return quad_tile<S, R>(p, panels, token0, br, row0, stage);
    quad_tile<S, R, 2, 0>(p, panels, token0, br, row0, stage);
  } else {
    quad_tile<S, R, 2, 0>(p, panels, token0, br, row0, stage);
    if (second_half) return quad_tile<S, R, 2, 2>(p, panels, token0, br, row0, stage);
  }
  for (int r = 0; r < R; ++r) std::fill_n(stage + r * kLanes + kLanes / 2, kLanes / 2, 0);
}

// The sums of one block row over a tile into its stage rows: passes of RP
// rows, then of 2 and 1 for what is left (R < RP).
template <class S, int RP, int NV>
[[gnu::always_inline]] inline void quad_block_row(const SpmmS8Problem& p, const S8Panels& panels, int64_t token0, int64_t br,
                                                  int32_t* stage) {
  constexpr int kTileTokens = 4 * S::L;
  const int R = p.quads->rows;
  int row0 = 0;
  for (; row0 + RP <= R; row0 += RP) quad_rows<S, NV, RP>(p, panels, token0, br, row0, stage + row0 * kTileTokens);
  if constexpr (RP > 2)
    for (; row0 + 2 <= R; row0 += 2) quad_rows<S, NV, 2>(p, panels, token0, br, row0, stage + row0 * kTileTokens);
  for (; row0 < R; ++row0) quad_rows<S, NV, 1>(p, panels, token0, br, row0, stage + row0 * kTileTokens);
}

// A thread's staged rows, written out while the next unit is computed: a
// unit's rows go to y a few tokens after each of the next unit's block rows
// (the unit's write-out otherwise is a burst of 64 tokens x 4 lines, all in
// the same few L1 sets where staging is chosen, stalled behind its
// fetches for ownership). The task's last unit is written out at its end.
// Measured on a noisy Sapphire Rapids-class core, int8 4x1 at 90%, A/B in
// one process (five runs): 1.02-1.10x at 128 x 3072 x 768, 1.02-1.05x at
// 384 x 1024 x 1024, 0.95-1.07x at 384 x 4096 x 1024, 1.00x at
// 384 x 1024 x 4096; writing the rows out over the next unit's first piece
// only, with one buffer, gained about half as much.
template <class S>
struct DeferredOutputRows {
  static constexpr int kTileTokens = 4 * S::L;
  OutputRows<kTileTokens, S::L> rows[2];
  int filling = 0;  // the unit being computed stages into rows[filling]; rows[filling ^ 1] waits
  int64_t token0 = 0, c0 = 0;
  int tokens = 0, channels = 0, written = 0;

  OutputRows<kTileTokens, S::L>& staging() { return rows[filling]; }

  // Writes the waiting unit's tokens up to `until` (of `tokens`).
  void write_until(const SpmmS8Problem& p, int until) {
    if (until <= written) return;
    const auto& waiting = rows[filling ^ 1];
    write_output_rows<S>(p, waiting.data + written * waiting.kLd, waiting.kLd, token0 + written, until - written, c0,
                         channels);
    written = until;
  }
  void write_all(const SpmmS8Problem& p) { write_until(p, tokens); }

  // Writes out what still waits; the unit just staged waits in its turn.
  void swap(const SpmmS8Problem& p, int64_t unit_token0, int unit_tokens, int64_t unit_c0, int unit_channels) {
    write_all(p);
    token0 = unit_token0;
    tokens = unit_tokens;
    c0 = unit_c0;
    channels = unit_channels;
    written = 0;
    filling ^= 1;
  }
};

template <class S>
thread_local DeferredOutputRows<S> deferred_output_rows;

// NV: vectors of the tile per pass, 4 or 2 (see quad_tile). RP: rows per
// pass over a block row's quads (the register budget). A piece is the block
// rows whose sums fill one stage: up to S::L channels (whole-vector stores per
// token), or one block row when it is taller. The schedule's unit is one
// piece, or, where stage_output_rows says so, the pieces of about
// kOutputRowChannels channels, written out through OutputRows (see
// output_rows.h), one unit late (DeferredOutputRows).
template <class S, int RP, int NV = 4>
void run_quads(const SpmmS8Problem& p) {
  const QuadPackedS8& w = *p.quads;
  constexpr int kTileTokens = 4 * S::L;
  static_assert(16 <= kOutputRowChannels, "a block row (at most 16 channels) fits an output unit");
  const int64_t rows_per_piece = std::max(1, S::L / w.rows);
  const int64_t y_row_bytes = p.ldy * (p.output == S8Output::s8 ? 1 : p.output == S8Output::bf16 ? 2 : 4);
  // A call of at most one vector of tokens (a short query): packed in token
  // order, its tiles run one vector (on AVX-512 a half tile computed 32 lanes
  // for up to 16 tokens, and paid its interleave for two vectors).
  const bool one_vector = p.m <= S::L;
  const bool staged = !one_vector && p.output != S8Output::s32 && stage_output_rows(p.m, y_row_bytes);
  const int64_t rows_per_unit = staged ? block_rows_per_output_unit(w.rows, rows_per_piece) : rows_per_piece;
  TileSchedule s;
  s.tokens = p.m;
  s.tokens_per_tile = kTileTokens;
  s.tokens_per_panel = kS8PanelTokens<S>;
  s.panel_bytes = w.k * kS8PanelTokens<S>;
  s.block_rows = (w.block_rows + rows_per_unit - 1) / rows_per_unit;
  s.weight_bytes = static_cast<int64_t>(w.packed_bytes());
  s.threads = p.threads > 0 ? p.threads : default_num_threads();
  for_each_tile(
      s,
      [&](uint64_t call_id, int64_t group, int64_t first, int64_t count) {
        return one_vector ? pack_quad_panels<S, true>(p, call_id, group, first, count)
                          : pack_quad_panels<S>(p, call_id, group, first, count);
      },
      [&](const S8Panels& panels, int64_t tile, int64_t unit) {
        alignas(64) int32_t stage[16 * kTileTokens];  // one piece: at most 16 channels
        const int64_t token0 = tile * kTileTokens;
        const int64_t br_begin = unit * rows_per_unit, br_end = std::min(w.block_rows, br_begin + rows_per_unit);
        const int64_t unit_c0 = br_begin * w.rows;
        const int unit_channels = static_cast<int>(std::min(w.n, br_end * w.rows) - unit_c0);
        // vectors: std::integral_constant of the tile's vectors, NV or 1 (one_vector).
        const auto run_pieces = [&](auto vectors, auto to_of_channel, auto after_block_row) {
          constexpr int kVectors = decltype(vectors)::value;
          for (int64_t piece = br_begin; piece < br_end; piece += rows_per_piece) {
            const int64_t piece_end = std::min(br_end, piece + rows_per_piece);
            for (int64_t br = piece; br < piece_end; ++br) {
              quad_block_row<S, RP, kVectors>(p, panels, token0, br, stage + (br - piece) * w.rows * kTileTokens);
              after_block_row(br - br_begin + 1, br_end - br_begin);
            }
            const int64_t c0 = piece * w.rows;
            const int channels = static_cast<int>(std::min(w.n, piece_end * w.rows) - c0);
            for (int c = 0; c < channels; c += S::L) {  // more than once only for blocks taller than a vector
              if constexpr (kVectors == 1)
                store_one_vector_sums<S>(p, panels, stage + c * kTileTokens, c0 + c, std::min(S::L, channels - c));
              else
                store_quad_sums<S>(p, panels, stage + c * kTileTokens, token0, c0 + c, std::min(S::L, channels - c),
                                   to_of_channel(c0 + c));
            }
          }
        };
        const auto to_y = [](int64_t) { return ChannelSumsTo::y(); };
        if (one_vector) return run_pieces(std::integral_constant<int, 1>(), to_y, [](int64_t, int64_t) {});
        if (!staged) return run_pieces(std::integral_constant<int, NV>(), to_y, [](int64_t, int64_t) {});
        DeferredOutputRows<S>& deferred = deferred_output_rows<S>;
        OutputRows<kTileTokens, S::L>& out = deferred.staging();
        run_pieces(std::integral_constant<int, NV>(), [&](int64_t c) { return ChannelSumsTo{out.column(c - unit_c0), out.kLd}; },
                   [&](int64_t done, int64_t of) {
                     deferred.write_until(p, static_cast<int>(done * deferred.tokens / of));
                   });
        deferred.swap(p, token0, static_cast<int>(std::min<int64_t>(kTileTokens, p.m - token0)), unit_c0,
                      unit_channels);
      },
      [&] {
        if (staged) deferred_output_rows<S>.write_all(p);
      });
}

}  // namespace
}  // namespace sparsecpu
