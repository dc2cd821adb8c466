// Register-tiled fp32 block-sparse kernels, written once over a SIMD traits
// type S and instantiated by each per-ISA file (spmm_f32_avx2.cc,
// spmm_f32_avx512.cc) with that file's compiler flags.
//
// Everything here has internal linkage (anonymous namespace), so the AVX-512
// and AVX2 instantiations can never be merged by the linker.
//
// Activations are first repacked into "panels": 16 consecutive tokens stored
// k-major, panel[k][t] = x[m0 + t][k], zero-padded past m and past k. One
// input column of a block then reads one contiguous 64-byte line of a panel.
//
// Two register tilings:
//  * channel tiles (R = 8, 16, dense 16 or 32): vectors run over the R output channels of one
//    block column, each token of the panel is broadcast. Stores are
//    contiguous rows of y, so the epilogue is fully vectorized.
//  * token tiles (R = 1, 2, 4, 8): vectors run over tokens, each weight is
//    broadcast; R x V accumulators. Results are transposed on store.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "cpu/thread_pool.h"
#include "formats/aligned_buffer.h"
#include "kernels/output_rows.h"
#include "kernels/prefetch.h"
#include "kernels/simd/activation.h"
#include "kernels/simd/float_epilogue.h"
#include "kernels/tile_schedule.h"
#include "kernels/spmm_f32/spmm_f32.h"

namespace sparsecpu {
namespace {

// k rounded up to whole blocks, so a block's last columns read zeros.
inline int64_t padded_k(const BlockSparseMatrix& w) { return w.block_cols * w.block.cols; }

// Floats per input row of a panel of panel_tokens tokens: whole blocks of 16
// (the transpose writes 16 lanes).
inline int64_t panel_row_floats(int64_t panel_tokens) {
  return (panel_tokens + kPanelTokens - 1) / kPanelTokens * kPanelTokens;
}

// Panels [first, first + count) of this call's activations, packed by the
// calling thread into its own scratch. A thread that runs several tasks of the
// same token group in one call packs the group once. A panel holds
// panel_tokens tokens k-major: input i of its token t at i * row_floats + t
// (row_floats = panel_row_floats(panel_tokens); zero past k, and past the
// call's tokens within a block of 16).
struct PanelRange {
  const float* data;
  int64_t first;  // index of the first panel held
  int64_t panel_floats;
  int64_t panel_tokens = kPanelTokens;
  int64_t row_floats = kPanelTokens;

  const float* at_token(int64_t token) const {
    return data + (token / panel_tokens - first) * panel_floats + token % panel_tokens;
  }
};

template <class S>
PanelRange pack_panels(const SpmmF32Problem& p, uint64_t call_id, int64_t group, int64_t first, int64_t count,
                       int64_t k_pad, int64_t panel_tokens = kPanelTokens) {
  thread_local PanelCache<float> cache;
  const int64_t row_floats = panel_row_floats(panel_tokens);
  const int64_t panel_floats = k_pad * row_floats;
  if (panel_floats > 0 && cache.claim(call_id, group, static_cast<size_t>(count * panel_floats))) {
    const int64_t k = p.k();
    for (int64_t i = 0; i < count; ++i) {
      float* dst = cache.data.data() + i * panel_floats;
      const int64_t m0 = (first + i) * panel_tokens;
      // Blocks of 16 tokens past the call's end are neither packed nor read.
      for (int64_t t0 = 0; t0 < panel_tokens && m0 + t0 < p.m; t0 += kPanelTokens) {
        const int rows = static_cast<int>(std::min<int64_t>({kPanelTokens, panel_tokens - t0, p.m - m0 - t0}));
        S::transpose_to_panel(p.x + (m0 + t0) * p.ldx, p.ldx, rows, k, dst + t0, row_floats);
        for (int64_t i_k = k; i_k < k_pad; ++i_k) std::fill_n(dst + i_k * row_floats + t0, kPanelTokens, 0.0f);
      }
    }
  }
  return PanelRange{cache.data.data(), first, panel_floats, panel_tokens, row_floats};
}

template <class S, class TileFn>
void for_each_tile(const SpmmF32Problem& p, int64_t tokens_per_tile, const TileFn& tile_fn) {
  const int64_t k_pad = padded_k(*p.w);
  TileSchedule s;
  s.tokens = p.m;
  s.tokens_per_tile = tokens_per_tile;
  s.tokens_per_panel = kPanelTokens;
  s.panel_bytes = k_pad * kPanelTokens * static_cast<int64_t>(sizeof(float));
  s.block_rows = p.w->block_rows;
  s.weight_bytes = static_cast<int64_t>(p.w->values.size() * sizeof(float));
  s.threads = p.threads > 0 ? p.threads : default_num_threads();
  for_each_tile(
      s,
      [&](uint64_t call_id, int64_t group, int64_t first, int64_t count) {
        return pack_panels<S>(p, call_id, group, first, count, k_pad);
      },
      tile_fn);
}

// ---- channel tiles: WV vectors of output channels x T tokens --------------
//
// A block row holds R = w.block.rows = WV * S::L channels: one pass covers it
// (dense block rows are packed that tall, see dense_block_rows).

// Channel sums of WV vectors from channel n0 x T tokens (`tokens` of them
// real) -> y, with bias, activation and residual.
template <class S, int WV, int T>
void store_channel_sums(const FloatOutput& out, const float (&sums)[WV][T][S::L], int64_t token0, int tokens,
                        int64_t n0) {
  using V = typename S::V;
  constexpr int L = S::L;
  for (int v = 0; v < WV; ++v) {
    const int64_t c0 = n0 + v * L;
    const int lanes = static_cast<int>(std::clamp<int64_t>(out.n - c0, 0, L));
    if (lanes == 0) break;
    const V bias = load_bias<S>(out.epilogue, c0, lanes);
    for (int t = 0; t < tokens; ++t)
      store_float_channels<S>(out, activate<S>(S::add(S::load(sums[v][t]), bias), out.epilogue.activation),
                              token0 + t, c0, lanes);
  }
}

// Stream: prefetch the weights a few columns ahead. A call of few tokens reads
// each weight from L3 or memory once or a few times; on Zen 3 (AVX2, block
// rows of 16 channels, 64 contiguous bytes per column) prefetching measured
// 1.06-1.22x faster for 1-16 tokens (3072x768 at one token: 1.1 ms, numpy 1.1)
// and 0.90-0.95x from 32 tokens on, where the weights come back from L2.
constexpr int kStreamAhead = 16;
constexpr int64_t kStreamTokens = 16;

template <class S, int WV, int T, bool Dense, bool Stream = false>
void channel_tile(const SpmmF32Problem& p, const PanelRange& panels, int64_t token0, int tokens, int64_t br) {
  using V = typename S::V;
  constexpr int L = S::L;
  const BlockSparseMatrix& w = *p.w;
  const int R = w.block.rows, C = w.block.cols;
  const int64_t b0 = w.row_ptr[br], nb = w.row_ptr[br + 1] - b0;
  const float* wp = w.values.data() + b0 * R * C;
  const int32_t* cols = Dense ? nullptr : w.col_start.data() + b0;
  const float* xp0 = panels.at_token(token0);

  V acc[WV][T];
  for (int v = 0; v < WV; ++v)
    for (int t = 0; t < T; ++t) acc[v][t] = S::zero();

  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = xp0 + (Dense ? b * C : cols[b]) * kPanelTokens;
    for (int c = 0; c < C; ++c, wp += R, xb += kPanelTokens) {
      if constexpr (Stream)  // 16 columns ahead: this pass's channels
        prefetch_ahead(wp, kStreamAhead * R * static_cast<int64_t>(sizeof(float)), WV * L * sizeof(float));
      V wv[WV];
      for (int v = 0; v < WV; ++v) wv[v] = S::load(wp + v * L);
      for (int t = 0; t < T; ++t) {
        const V xt = S::bcast(xb + t);
        for (int v = 0; v < WV; ++v) acc[v][t] = S::fma(wv[v], xt, acc[v][t]);
      }
    }
  }

  // The accumulators leave registers through one fully unrolled store; the
  // epilogue then reads memory. Indexing acc from the (larger, not unrolled)
  // epilogue would make the compiler mirror every accumulator to the stack
  // inside the hot loop above.
  alignas(64) float sums[WV][T][L];
#pragma GCC unroll 64
  for (int v = 0; v < WV; ++v)
#pragma GCC unroll 64
    for (int t = 0; t < T; ++t) S::store(sums[v][t], acc[v][t]);

  store_channel_sums<S, WV, T>(p.output(), sums, token0, tokens, br * R);
}

// One panel of 16 tokens: tiles of T tokens, then one of 16 % T.
template <class S, int WV, int T, bool Dense>
void run_channel_tiles(const SpmmF32Problem& p) {
  constexpr int kTail = kPanelTokens % T;
  if (p.w->n == 0) return;
  if (p.w->block.rows != WV * S::L)  // the registry pairs kernels and block heights
    throw std::logic_error("a channel-tile kernel of " + std::to_string(WV * S::L) + " channels got blocks of " +
                           std::to_string(p.w->block.rows) + " rows");
  const auto run = [&](auto stream) {
    constexpr bool Stream = decltype(stream)::value;
    for_each_tile<S>(p, kPanelTokens, [&](const PanelRange& panels, int64_t panel, int64_t br) {
      const int64_t panel_end = std::min<int64_t>(p.m, (panel + 1) * kPanelTokens);
      int64_t token0 = panel * kPanelTokens;
      for (; token0 + T <= panel_end; token0 += T) channel_tile<S, WV, T, Dense, Stream>(p, panels, token0, T, br);
      if (token0 == panel_end) return;
      const int tokens = static_cast<int>(panel_end - token0);
      if constexpr (kTail > 0) {
        if (tokens <= kTail)
          return channel_tile<S, WV, (kTail > 0 ? kTail : 1), Dense, Stream>(p, panels, token0, tokens, br);
      }
      channel_tile<S, WV, T, Dense, Stream>(p, panels, token0, tokens, br);
    });
  };
  if constexpr (Dense) {
    if (p.m <= kStreamTokens) return run(std::true_type());
  }
  run(std::false_type());
}

// ---- token tiles: R output channels x V vectors of S::L tokens -----------

// Whether the token tiles of R-row blocks pack a tile as one panel, its
// vectors side by side in each input row (run_token_tiles), or as 16-token
// panels. With R = 2 each loaded vector serves two FMAs, one of which takes
// it as a memory operand: one pointer with constant offsets for the V loads
// ran 2x4 1.21-1.39x faster (AVX-512 and AVX2) than V bases with an index.
// R = 1 (one load per FMA, bound by the loads either way) measured 0.96-1.08x;
// R = 4 and 8 keep their loads in registers, and wide tiles ran 1.00-1.06x
// there on AVX-512 and 0.80-0.93x on AVX2 (24-token tiles in rows padded to
// 32 floats).
template <int R>
constexpr bool kWideTokenPanels = R == 2;

// finish: add the bias and activate in the stage (else the staged write-out does).
template <class S, int R, int V>
void token_tile(const SpmmF32Problem& p, const PanelRange& panels, int64_t token0, int64_t br, float* stage,
                int64_t stage_stride, bool finish) {
  using Vec = typename S::V;
  constexpr int L = S::L;
  const BlockSparseMatrix& w = *p.w;
  const int C = w.block.cols;
  const int64_t b0 = w.row_ptr[br], b1 = w.row_ptr[br + 1];
  const float* x_of[V];
  for (int v = 0; v < V; ++v) x_of[v] = panels.at_token(token0 + v * L);
  const int64_t row_floats = kWideTokenPanels<R> ? panels.row_floats : kPanelTokens;

  Vec acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = S::zero();

  const float* wp = w.values.data() + b0 * R * C;
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t col_offset = static_cast<int64_t>(w.col_start[b]) * row_floats;
    for (int c = 0; c < C; ++c, wp += R) {
      Vec xv[V];
      if constexpr (kWideTokenPanels<R>) {
        // One pointer for the V loads, kept in a register so they take it plus a
        // constant: they fold into the FMAs (one use each), and base + index
        // operands ran those ~1.3-1.7x slower (see spmm_f32_semi24_tiles.h).
        const float* in = x_of[0] + col_offset + c * row_floats;
        __asm__("" : "+r"(in));
        for (int v = 0; v < V; ++v) xv[v] = S::load(in + v * L);
      } else {
        for (int v = 0; v < V; ++v) xv[v] = S::load(x_of[v] + col_offset + c * row_floats);
      }
      for (int r = 0; r < R; ++r) {
        const Vec wr = S::bcast(wp + r);
        for (int v = 0; v < V; ++v) acc[r][v] = S::fma(wr, xv[v], acc[r][v]);
      }
    }
  }

  // Leave registers in one unrolled store (see channel_tile), then add the
  // bias and activate in place: stage row r holds output channel br * R + r.
#pragma GCC unroll 64
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 64
    for (int v = 0; v < V; ++v) S::store(stage + r * stage_stride + v * L, acc[r][v]);
  if (!finish) return;
  const Epilogue& e = p.epilogue;
  const int64_t n0 = br * R;
  const int rows = static_cast<int>(std::min<int64_t>(R, w.n - n0));
  for (int r = 0; r < rows; ++r) {
    const Vec bias = S::set1(e.bias ? e.bias[n0 + r] : 0.0f);
    float* row = stage + r * stage_stride;
    for (int v = 0; v < V; ++v) S::store(row + v * L, activate<S>(S::add(S::load(row + v * L), bias), e.activation));
  }
}

// Stage rows (channels [c0, c0 + channels), channels <= S::L) of `tokens`
// tokens from token0 -> rows of y, S::L tokens at a time through an
// in-register transpose, so each token's channels leave in one store; or,
// with `rows`, whole vectors into staged rows (token t of the tile at rows +
// t * ld_rows) for write_output_rows (see kernels/output_rows.h).
// kFinish (straight to y only): the stage holds bare sums; bias and activation
// are applied here, on vectors of channels.
template <class S, bool kFinish = false>
void store_staged_channels(const FloatOutput& out, const float* stage, int64_t stage_stride, int64_t token0,
                           int tokens, int64_t c0, int channels, float* rows = nullptr, int64_t ld_rows = 0) {
  using Vec = typename S::V;
  constexpr int L = S::L;
  const Vec bias = kFinish ? load_bias<S>(out.epilogue, c0, channels) : S::zero();
  for (int t0 = 0; t0 < tokens; t0 += L) {
    Vec block[L];
    for (int c = 0; c < L; ++c) block[c] = c < channels ? S::load(stage + c * stage_stride + t0) : S::zero();
    S::transpose_square(block);  // block[i]: the channels of token t0 + i
    if (rows) {
      for (int i = 0; i < L; ++i) S::store(rows + (t0 + i) * ld_rows, block[i]);
      continue;
    }
    const int count = std::min(L, tokens - t0);
    for (int i = 0; i < count; ++i)
      store_float_channels<S>(out, kFinish ? activate<S>(S::add(block[i], bias), out.epilogue.activation) : block[i],
                              token0 + t0 + i, c0, channels);
  }
}

// Staged rows of tokens [token0, token0 + tokens) x channels [c0, c0 +
// channels) -> y with bias, activation (A, a constant) and residual: the
// activation's arithmetic between the stores lets them drain.
template <class S, Activation A>
void write_output_rows(const FloatOutput& out, const float* rows, int64_t ld_rows, int64_t token0, int tokens,
                       int64_t c0, int channels) {
  using Vec = typename S::V;
  constexpr int L = S::L;
  constexpr int kVectors = kOutputRowChannels / L;
  const Epilogue& e = out.epilogue;
  Vec bias[kVectors];
  for (int v = 0; v < kVectors; ++v) {
    const int lanes = std::clamp(channels - v * L, 0, L);
    bias[v] = lanes > 0 ? load_bias<S>(e, c0 + v * L, lanes) : S::zero();
  }
  for (int t = 0; t < tokens; ++t) {
    const float* row = rows + t * ld_rows;
    float* y = out.y + (token0 + t) * out.ldy + c0;
    const float* residual = e.residual ? e.residual + (token0 + t) * e.ld_residual + c0 : nullptr;
    if (channels == kOutputRowChannels) {  // whole vectors, unrolled
      Vec out[kVectors];
      for (int v = 0; v < kVectors; ++v) out[v] = activate<S>(S::add(S::load(row + v * L), bias[v]), A);
      if (residual)
        for (int v = 0; v < kVectors; ++v) out[v] = S::add(out[v], S::load(residual + v * L));
      for (int v = 0; v < kVectors; ++v) S::store(y + v * L, out[v]);
      continue;
    }
    for (int v = 0; v * L < channels; ++v) {
      const int lanes = std::min(L, channels - v * L);
      Vec out = activate<S>(S::add(S::load_partial(row + v * L, lanes), bias[v]), A);
      if (residual) out = S::add(out, S::load_partial(residual + v * L, lanes));
      S::store_partial(y + v * L, out, lanes);
    }
  }
}

template <class S>
void write_output_rows(const FloatOutput& out, const float* rows, int64_t ld_rows, int64_t token0, int tokens,
                       int64_t c0, int channels) {
  with_activation(out.epilogue.activation, [&](auto a) {
    write_output_rows<S, decltype(a)::value>(out, rows, ld_rows, token0, tokens, c0, channels);
  });
}

template <class S, int R, int... Vs>
constexpr auto token_tile_table(std::integer_sequence<int, Vs...>) {
  using Fn = void (*)(const SpmmF32Problem&, const PanelRange&, int64_t, int64_t, float*, int64_t, bool);
  return std::array<Fn, sizeof...(Vs)>{&token_tile<S, R, Vs + 1>...};
}

// Tokens of a tile whose results are staged (kernels/output_rows.h): 20 KiB of rows.
constexpr int kStagedTileTokens = 64;

// MaxV vectors of tokens per tile; the last tile of a call uses fewer. The
// schedule's unit is a group of block rows covering S::L channels, staged
// and stored as whole rows of y.
template <class S, int R, int MaxV>
void run_token_tiles(const SpmmF32Problem& p) {
  static_assert(R <= S::L, "token tiles cover at most one vector of channels");
  if (p.w->n == 0) return;
  constexpr int kRowsPerGroup = S::L / R;
  static constexpr auto table = token_tile_table<S, R>(std::make_integer_sequence<int, MaxV>{});
  const BlockSparseMatrix& w = *p.w;
  const int64_t k_pad = padded_k(w);
  // Fewer token vectors when K is long, so one tile's activations stay in L2:
  // every weight reloads them, and with few rows per block there is little
  // reuse to hide a miss.
  constexpr int64_t kTilePanelBudgetBytes = 512 << 10;
  const int64_t vector_bytes = std::max<int64_t>(1, S::L * k_pad * static_cast<int64_t>(sizeof(float)));
  // ... and no more than an even share of the tokens per thread, so threads get equal tiles.
  const int threads = p.threads > 0 ? p.threads : default_num_threads();
  const int64_t token_vectors = (p.m + S::L - 1) / S::L;
  const int64_t fair_share = (token_vectors + threads - 1) / threads;
  // Where y's rows would put a tile's stores in one or two L1 sets (3072 or
  // 4096 channels), the unit grows to kOutputRowChannels channels staged in L1
  // rows, and tiles to at most kStagedVectors vectors so the rows fit L1.
  constexpr int kStagedVectors = kStagedTileTokens / S::L;
  const bool staged = stage_output_rows(p.m, p.ldy * static_cast<int64_t>(sizeof(float)));
  const int vectors = static_cast<int>(std::clamp<int64_t>(
      std::min(kTilePanelBudgetBytes / vector_bytes, fair_share), 1, staged ? std::min(MaxV, kStagedVectors) : MaxV));
  const int kTileTokens = vectors * S::L;
  const int64_t groups_per_unit = staged ? kOutputRowChannels / S::L : 1;
  const int64_t row_groups = (w.block_rows + kRowsPerGroup - 1) / kRowsPerGroup;
  TileSchedule s;
  s.tokens = p.m;
  s.tokens_per_tile = kTileTokens;
  const int64_t panel_tokens = kWideTokenPanels<R> ? kTileTokens : kPanelTokens;
  s.tokens_per_panel = panel_tokens;
  s.panel_bytes = k_pad * panel_row_floats(panel_tokens) * static_cast<int64_t>(sizeof(float));
  s.block_rows = (row_groups + groups_per_unit - 1) / groups_per_unit;
  s.weight_bytes = static_cast<int64_t>(w.values.size() * sizeof(float));
  s.threads = threads;
  for_each_tile(
      s,
      [&](uint64_t call_id, int64_t group, int64_t first, int64_t count) {
        return pack_panels<S>(p, call_id, group, first, count, k_pad, panel_tokens);
      },
      [&](const PanelRange& panels, int64_t tile, int64_t unit) {
        alignas(64) float stage[S::L * MaxV * S::L];  // up to MaxV vectors of tokens per channel
        const int64_t token0 = tile * kTileTokens;
        const int tokens = static_cast<int>(std::min<int64_t>(kTileTokens, p.m - token0));
        const auto run_group = [&](int64_t row_group, float* rows, int64_t ld_rows) {
          const int64_t br0 = row_group * kRowsPerGroup;
          const int64_t br_end = std::min(w.block_rows, br0 + kRowsPerGroup);
          for (int64_t br = br0; br < br_end; ++br)
            table[(tokens + S::L - 1) / S::L - 1](p, panels, token0, br, stage + (br - br0) * R * kTileTokens,
                                                  kTileTokens, rows == nullptr);
          const int64_t c0 = br0 * R;
          store_staged_channels<S>(p.output(), stage, kTileTokens, token0, tokens, c0,
                                   static_cast<int>(std::min<int64_t>(w.n, br_end * R) - c0), rows, ld_rows);
        };
        if (!staged) return run_group(unit, nullptr, 0);
        OutputRows<kStagedTileTokens, S::L> out;
        const int64_t g0 = unit * groups_per_unit, g1 = std::min(row_groups, g0 + groups_per_unit);
        const int64_t unit_c0 = g0 * kRowsPerGroup * R;
        for (int64_t g = g0; g < g1; ++g) run_group(g, out.column(g * kRowsPerGroup * R - unit_c0), out.kLd);
        write_output_rows<S>(p.output(), out.data, out.kLd, token0, tokens, unit_c0,
                             static_cast<int>(std::min<int64_t>(w.n, g1 * kRowsPerGroup * R) - unit_c0));
      });
}

}  // namespace
}  // namespace sparsecpu
