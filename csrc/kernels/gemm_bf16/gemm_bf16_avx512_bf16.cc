// AVX512-BF16 dense kernel: tiles of 6 tokens x 64 channels (24 accumulators),
// one vdpbf16ps per token and 16 channels per input pair.
#include <algorithm>

#include "cpu/thread_pool.h"
#include "formats/aligned_buffer.h"
#include "kernels/gemm_bf16/gemm_bf16.h"
#include "kernels/simd/avx512.h"
#include "kernels/simd/activation.h"
#include "kernels/simd/bf16_pairs.h"

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
  const Epilogue& e = p.epilogue;
  for (int g = 0; g < NR; ++g) {
    const int64_t c0 = (g0 + g) * 16;
    const int lanes = static_cast<int>(std::min<int64_t>(16, w.n - c0));
    const __m512 bias = e.bias ? Avx512F32::load_partial(e.bias + c0, lanes) : _mm512_setzero_ps();
    for (int t = 0; t < MR; ++t) {
      __m512 v = activate<Avx512F32>(_mm512_add_ps(acc[t][g], bias), e.activation);
      if (e.residual) v = _mm512_add_ps(v, Avx512F32::load_partial(e.residual + (t0 + t) * e.ld_residual + c0, lanes));
      Avx512F32::store_partial(p.y + (t0 + t) * p.ldy + c0, v, lanes);
    }
  }
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

}  // namespace

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
