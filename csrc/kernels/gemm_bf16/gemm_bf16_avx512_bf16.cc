// AVX512-BF16 kernels. Dense: tiles of 6 tokens x 64 channels (24
// accumulators), one vdpbf16ps per token and 16 channels per input pair.
// 2:4: one vdpbf16ps per row, group and 16 tokens with vectors over tokens,
// or per 16 rows, group and token with vectors over rows (few tokens; below).
#include <algorithm>
#include <cstring>

#include "cpu/thread_pool.h"
#include "formats/aligned_buffer.h"
#include "kernels/gemm_bf16/gemm_bf16.h"
#include "kernels/prefetch.h"
#include "kernels/simd/avx512.h"
#include "kernels/simd/bf16_pairs.h"
#include "kernels/spmm_f32/spmm_f32_tiles.h"

namespace sparsecpu {
namespace {

constexpr int kTileTokens = 6;
constexpr int kTileGroups = 4;            // 64 channels
constexpr int64_t kTaskTokens = 8 * kTileTokens;

// Rows of x as bf16 pairs, one dword per input pair (odd k padded with 0).
void convert_rows(const GemmBf16Problem& p, int64_t k_pairs, uint32_t* xb) {
  const int64_t k = p.w->k;
  parallel_for((p.m + 15) / 16, p.threads, [&](int64_t block) {
    const int64_t end = std::min(p.m, (block + 1) * 16);
    for (int64_t i = block * 16; i < end; ++i) to_bf16_pairs(p.x + i * p.ldx, k, xb + i * k_pairs);
  });
}

template <int MR, int NR>
void tile(const GemmBf16Problem& p, const uint32_t* xb, int64_t k_pairs, int64_t t0, int64_t g0) {
  const ChannelPairsBf16& w = *p.w;
  __m512 acc[MR][NR];
  for (int t = 0; t < MR; ++t)
    for (int g = 0; g < NR; ++g) acc[t][g] = _mm512_setzero_ps();
  const uint16_t* groups[NR];
  for (int g = 0; g < NR; ++g) groups[g] = w.values.data() + (g0 + g) * k_pairs * 32;
  const uint32_t* rows[MR];
  for (int t = 0; t < MR; ++t) rows[t] = xb + (t0 + t) * k_pairs;
  for (int64_t pair = 0; pair < k_pairs; ++pair) {
    __m512bh wv[NR];
    for (int g = 0; g < NR; ++g) wv[g] = (__m512bh)_mm512_load_si512(groups[g] + pair * 32);
    for (int t = 0; t < MR; ++t) {
      const __m512bh xv = (__m512bh)_mm512_set1_epi32(static_cast<int>(rows[t][pair]));
      for (int g = 0; g < NR; ++g) acc[t][g] = _mm512_dpbf16_ps(acc[t][g], wv[g], xv);
    }
  }
  // One unrolled store out of registers, then the fp32 kernels' epilogue (see channel_tile).
  alignas(64) float sums[NR][MR][16];
#pragma GCC unroll 64
  for (int g = 0; g < NR; ++g)
#pragma GCC unroll 64
    for (int t = 0; t < MR; ++t) _mm512_store_ps(sums[g][t], acc[t][g]);
  store_channel_sums<Avx512F32, NR, MR>(p.output(), sums, t0, MR, g0 * 16);
}

template <int MR>
void tile_groups(const GemmBf16Problem& p, const uint32_t* xb, int64_t k_pairs, int64_t t0, int64_t g0, int groups) {
  switch (groups) {
    case 1: return tile<MR, 1>(p, xb, k_pairs, t0, g0);
    case 2: return tile<MR, 2>(p, xb, k_pairs, t0, g0);
    case 3: return tile<MR, 3>(p, xb, k_pairs, t0, g0);
    default: return tile<MR, 4>(p, xb, k_pairs, t0, g0);
  }
}

void run_tile(const GemmBf16Problem& p, const uint32_t* xb, int64_t k_pairs, int64_t t0, int tokens, int64_t g0,
              int groups) {
  switch (tokens) {
    case 1: return tile_groups<1>(p, xb, k_pairs, t0, g0, groups);
    case 2: return tile_groups<2>(p, xb, k_pairs, t0, g0, groups);
    case 3: return tile_groups<3>(p, xb, k_pairs, t0, g0, groups);
    case 4: return tile_groups<4>(p, xb, k_pairs, t0, g0, groups);
    case 5: return tile_groups<5>(p, xb, k_pairs, t0, g0, groups);
    default: return tile_groups<6>(p, xb, k_pairs, t0, g0, groups);
  }
}

// ---- 2:4 -------------------------------------------------------------------
//
// A row's two kept weights of a group are one bf16 pair, so one vdpbf16ps
// does a group where the fp32 kernel does two FMAs. Vectors run over tokens:
// once per tile of up to 128 tokens, every group's six activation pairs (the
// pairs of its four inputs, kSemi24Pairs) are built as vectors of bf16 pairs
// and shared by every row; per row and group the kernel broadcasts the weight
// pair and runs one vdpbf16ps per vector of 16 tokens, its operand read from
// the variant the row's pair index names. As in the fp32 2:4 kernel
// (spmm_f32_semi24_tiles.h), K is walked in blocks whose variants stay in L1
// (~24 KiB) while a slice of rows passes over them, the slice's sums parked
// between blocks; the sums leave through the fp32 kernels' transposed
// epilogue (store_staged_channels).

constexpr int kSemi24Vectors = 8;  // vectors of 16 tokens per tile
constexpr int64_t kSemi24TileTokens = 16 * kSemi24Vectors;

// The variants of tokens [token0, token0 + 16 * vectors) (zero past the
// call's tokens and past k): vector (g * 6 + pair) * vectors + v, lane t
// holding bf16(x[4g + i0]) << 16 | bf16(x[4g + i1]) of token token0 + 16v + t for the
// pair's positions (i0, i1) = kSemi24Pairs[pair]: slot 0 high, as the weights.
void build_semi24_variants(const GemmBf16Problem& p, int64_t token0, int vectors, uint32_t* variants) {
  const Semi24Bf16& w = *p.w24;
  const int64_t groups = w.indices.groups;
  thread_local AlignedBuffer<float> panel;  // 16 tokens k-major: input i at i * 16
  panel.reserve_discarding(static_cast<size_t>(std::max<int64_t>(1, groups * 4 * 16)));
  for (int v = 0; v < vectors; ++v) {
    const int64_t first = token0 + 16 * v;
    const int rows = static_cast<int>(std::min<int64_t>(16, p.m - first));  // >= 1: vectors hold tokens
    Avx512F32::transpose_to_panel(p.x + first * p.ldx, p.ldx, rows, w.k, panel.data(), 16);
    std::fill(panel.data() + w.k * 16, panel.data() + groups * 4 * 16, 0.0f);
    for (int64_t g = 0; g < groups; ++g) {
      const float* in = panel.data() + 4 * g * 16;
      for (int pair = 0; pair < 6; ++pair)
        interleave_bf16_pairs(in + kSemi24Pairs[pair][1] * 16, in + kSemi24Pairs[pair][0] * 16, 16,
                              variants + ((g * 6 + pair) * vectors + v) * 16);
    }
  }
}

// Sums of rows [r0, r1) over groups [g0, g1) for TV vectors of tokens;
// sums[(r - r0) * TV * 16 + v * 16 + lane]. `first`: the sums start at zero.
template <int TV>
void semi24_rows(const Semi24Bf16& w, const uint32_t* variants, int64_t g0, int64_t g1, int64_t r0, int64_t r1,
                 float* sums, bool first) {
  for (int64_t r = r0; r < r1; ++r) {
    float* out = sums + (r - r0) * TV * 16;
    __m512 acc[TV];
    for (int v = 0; v < TV; ++v) acc[v] = first ? _mm512_setzero_ps() : _mm512_load_ps(out + v * 16);
    const int64_t at = w.at(r, g0);
    const uint32_t* pair = w.pairs.data() + at;
    const uint8_t* index = w.pair_index.data() + at;
    if (r % 16 == 0) prefetch_next_row_block(pair, index, w.indices.groups * 16, (g1 - g0) * 16);
    const uint32_t* group = variants + g0 * 6 * TV * 16;
    for (int64_t g = g0; g < g1; ++g, pair += 16, index += 16, group += 6 * TV * 16) {
      const __m512bh weights = (__m512bh)_mm512_set1_epi32(static_cast<int>(*pair));
      const uint32_t* in = group + *index * TV * 16;
      __asm__("" : "+r"(in));  // one pointer plus constants (see spmm_f32_semi24_tiles.h)
      for (int v = 0; v < TV; ++v) acc[v] = _mm512_dpbf16_ps(acc[v], (__m512bh)_mm512_load_si512(in + v * 16), weights);
    }
#pragma GCC unroll 16
    for (int v = 0; v < TV; ++v) _mm512_store_ps(out + v * 16, acc[v]);
  }
}

// Tokens [token0, token0 + 16 * TV) x rows [r0, r1), written to y with the epilogue.
template <int TV>
void semi24_task(const GemmBf16Problem& p, const uint32_t* variants, int64_t token0, int64_t r0, int64_t r1) {
  constexpr int64_t kTileTokens = 16 * TV;
  constexpr int64_t kBlockGroups = std::max<int64_t>(1, (24 << 10) / (6 * TV * 64));
  constexpr int64_t kSliceRows = std::max<int64_t>(16, (128 << 10) / (kTileTokens * 4) / 16 * 16);
  thread_local AlignedBuffer<float> scratch;
  scratch.reserve_discarding(static_cast<size_t>(kSliceRows * kTileTokens));
  float* sums = scratch.data();
  const Semi24Bf16& w = *p.w24;
  const FloatOutput out = p.output();
  const int tokens = static_cast<int>(std::min<int64_t>(kTileTokens, p.m - token0));
  for (int64_t s0 = r0; s0 < r1; s0 += kSliceRows) {
    const int64_t s1 = std::min(r1, s0 + kSliceRows);
    if (w.indices.groups == 0) std::fill(sums, sums + (s1 - s0) * kTileTokens, 0.0f);  // in_features 0
    for (int64_t g0 = 0; g0 < w.indices.groups; g0 += kBlockGroups)
      semi24_rows<TV>(w, variants, g0, std::min(w.indices.groups, g0 + kBlockGroups), s0, s1, sums, g0 == 0);
    for (int t0 = 0; t0 < tokens; t0 += 16)
      for (int64_t c0 = s0; c0 < s1; c0 += 16)
        store_staged_channels<Avx512F32, true>(out, sums + (c0 - s0) * kTileTokens + t0, kTileTokens, token0 + t0,
                                               std::min(16, tokens - t0), c0,
                                               static_cast<int>(std::min<int64_t>(16, s1 - c0)));
  }
}

using Semi24TaskFn = void (*)(const GemmBf16Problem&, const uint32_t*, int64_t, int64_t, int64_t);
constexpr Semi24TaskFn kSemi24Tasks[kSemi24Vectors] = {&semi24_task<1>, &semi24_task<2>, &semi24_task<3>,
                                                       &semi24_task<4>, &semi24_task<5>, &semi24_task<6>,
                                                       &semi24_task<7>, &semi24_task<8>};

// ---- vectors over rows, for calls with few tokens -------------------------
//
// With few tokens the loop above runs its per-row, per-group steps for a
// vector of mostly padding. Here a vector is a block of 16 rows: a group's
// 16 weight pairs are one load and their pair indices become word-permute
// indices (one table lookup per group, shared by every token); per token the
// group's four bf16 inputs are broadcast and permuted into each row's pair,
// one vdpbf16ps. The fp32 kernel's row vectors do the same with two permutes
// and two FMAs (spmm_f32_semi24_tiles.h), and switch at the same count.
constexpr int64_t kSemi24RowVectorMaxTokens = 48;

// Per kSemi24Pairs index, the words (i1 low, i0 high) a row's lane takes from
// the group's four inputs.
constexpr uint32_t pair_words(int pair) {
  return static_cast<uint32_t>(kSemi24Pairs[pair][1]) | static_cast<uint32_t>(kSemi24Pairs[pair][0]) << 16;
}

// Rows [row0, row0 + 16) x tokens [token0, token0 + tokens), tokens <= T;
// xb: the call's rows as bf16, `row_pairs` dwords apart (zero past k).
template <int T>
void semi24_row_vector(const GemmBf16Problem& p, const uint32_t* xb, int64_t row_pairs, int64_t token0, int tokens,
                       int64_t row0) {
  alignas(64) static constexpr uint32_t kPairWords[16] = {pair_words(0), pair_words(1), pair_words(2),
                                                          pair_words(3), pair_words(4), pair_words(5)};
  const Semi24Bf16& w = *p.w24;
  const __m512i pair_words_table = _mm512_load_si512(kPairWords);
  const uint32_t* pairs = w.pairs.data() + w.at(row0, 0);
  const uint8_t* index = w.pair_index.data() + w.at(row0, 0);
  const uint32_t* x[T];
  for (int t = 0; t < T; ++t) x[t] = xb + (token0 + std::min(t, tokens - 1)) * row_pairs;
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t g = 0; g < w.indices.groups; ++g) {
    const __m512bh weights = (__m512bh)_mm512_load_si512(pairs + 16 * g);
    const __m512i words = _mm512_permutexvar_epi32(
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(index + 16 * g))), pair_words_table);
    for (int t = 0; t < T; ++t) {
      uint64_t inputs;  // the group's four bf16 inputs
      std::memcpy(&inputs, x[t] + 2 * g, sizeof inputs);
      const __m512i selected = _mm512_permutexvar_epi16(words, _mm512_set1_epi64(static_cast<long long>(inputs)));
      acc[t] = _mm512_dpbf16_ps(acc[t], (__m512bh)selected, weights);
    }
  }
  alignas(64) float sums[1][T][16];
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) _mm512_store_ps(sums[0][t], acc[t]);
  store_channel_sums<Avx512F32, 1, T>(p.output(), sums, token0, tokens, row0);
}

void run_semi24_row_vectors(const GemmBf16Problem& p) {
  const Semi24Bf16& w = *p.w24;
  const int64_t row_pairs = 2 * w.indices.groups;  // a row's four inputs per group, zero past k
  AlignedBuffer<uint32_t> xb(static_cast<size_t>(std::max<int64_t>(1, p.m * row_pairs)));
  for (int64_t i = 0; i < p.m; ++i) to_bf16_pairs(p.x + i * p.ldx, w.k, xb.data() + i * row_pairs);
  for_each_row_vector_pass((w.n + 15) / 16, p.m, p.threads, [&](int64_t v, int64_t token0, int tokens, auto t) {
    semi24_row_vector<decltype(t)::value>(p, xb.data(), row_pairs, token0, tokens, 16 * v);
  });
}

}  // namespace

// Calls of at most kSemi24RowVectorMaxTokens run vectors over rows; longer
// ones tiles of 128 tokens (the last one of a call narrower), rows split
// between threads only when there are fewer tiles than threads.
void gemm_bf16_semi24_avx512_bf16(const GemmBf16Problem& p) {
  const Semi24Bf16& w = *p.w24;
  if (p.m <= 0 || w.n <= 0) return;
  if (p.m <= kSemi24RowVectorMaxTokens) return run_semi24_row_vectors(p);
  const int threads = p.threads > 0 ? p.threads : default_num_threads();
  const int64_t tiles = (p.m + kSemi24TileTokens - 1) / kSemi24TileTokens;
  const int64_t row_blocks = (w.n + 15) / 16;
  const int64_t chunks = std::clamp<int64_t>((threads + tiles - 1) / tiles, 1, row_blocks);
  const int64_t rows_per_chunk = (row_blocks + chunks - 1) / chunks * 16;
  const uint64_t call_id = next_call_id();
  parallel_for(tiles * chunks, threads, [&](int64_t task) {
    const int64_t tile = task % tiles, chunk = task / tiles;
    const int64_t r0 = chunk * rows_per_chunk, r1 = std::min(w.n, r0 + rows_per_chunk);
    if (r0 >= r1) return;
    const int64_t token0 = tile * kSemi24TileTokens;
    const int vectors = static_cast<int>((std::min(p.m, token0 + kSemi24TileTokens) - token0 + 15) / 16);
    thread_local PanelCache<uint32_t> cache;  // a thread running several chunks of a tile builds it once
    if (cache.claim(call_id, tile, static_cast<size_t>(std::max<int64_t>(1, w.indices.groups * 6 * vectors * 16))))
      build_semi24_variants(p, token0, vectors, cache.data.data());
    kSemi24Tasks[vectors - 1](p, cache.data.data(), token0, r0, r1);
  });
}

void gemm_bf16_avx512_bf16(const GemmBf16Problem& p) {
  const ChannelPairsBf16& w = *p.w;
  if (p.m <= 0 || w.n <= 0) return;
  const int64_t k_pairs = w.k_pairs;
  AlignedBuffer<uint32_t> xb(static_cast<size_t>(std::max<int64_t>(1, p.m * k_pairs)));
  if (k_pairs > 0) convert_rows(p, k_pairs, xb.data());
  const int64_t channel_blocks = (w.channel_groups + kTileGroups - 1) / kTileGroups;
  const int64_t token_blocks = (p.m + kTaskTokens - 1) / kTaskTokens;
  parallel_for(channel_blocks * token_blocks, p.threads, [&](int64_t task) {
    const int64_t cb = task % channel_blocks, tb = task / channel_blocks;
    const int64_t g0 = cb * kTileGroups;
    const int groups = static_cast<int>(std::min<int64_t>(kTileGroups, w.channel_groups - g0));
    const int64_t end = std::min(p.m, (tb + 1) * kTaskTokens);
    for (int64_t t0 = tb * kTaskTokens; t0 < end; t0 += kTileTokens)
      run_tile(p, xb.data(), k_pairs, t0, static_cast<int>(std::min<int64_t>(kTileTokens, end - t0)), g0, groups);
  });
}

}  // namespace sparsecpu
