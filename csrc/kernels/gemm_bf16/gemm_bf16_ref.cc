// Scalar reference: bf16-rounded operands, float64 sums.
#include <vector>

#include "cpu/thread_pool.h"
#include "kernels/gemm_bf16/gemm_bf16.h"

namespace sparsecpu {

void gemm_bf16_ref(const GemmBf16Problem& p) {
  const ChannelPairsBf16& w = *p.w;
  parallel_for(p.m, p.threads, [&](int64_t i) {
    std::vector<double> x(static_cast<size_t>(w.k_pairs * 2), 0.0);
    for (int64_t j = 0; j < w.k; ++j) x[j] = float_from_bf16(bf16_from_float(p.x[i * p.ldx + j]));
    for (int64_t c = 0; c < w.n; ++c) {
      const uint16_t* group = w.values.data() + (c / 16) * w.k_pairs * 32 + (c % 16) * 2;
      double sum = 0.0;
      for (int64_t pair = 0; pair < w.k_pairs; ++pair)
        sum += float_from_bf16(group[pair * 32]) * x[2 * pair] + float_from_bf16(group[pair * 32 + 1]) * x[2 * pair + 1];
      float v = static_cast<float>(sum);
      if (p.epilogue.bias) v += p.epilogue.bias[c];
      v = apply_activation_ref(v, p.epilogue.activation);
      if (p.epilogue.residual) v += p.epilogue.residual[i * p.epilogue.ld_residual + c];
      p.y[i * p.ldy + c] = v;
    }
  });
}

// 2:4: per row and group the kept pair's products, summed in float64.
void gemm_bf16_semi24_ref(const GemmBf16Problem& p) {
  const Semi24Bf16& w = *p.w24;
  parallel_for(p.m, p.threads, [&](int64_t i) {
    std::vector<double> x(static_cast<size_t>(w.indices.groups * 4), 0.0);  // 0 past k
    for (int64_t j = 0; j < w.k; ++j) x[j] = float_from_bf16(bf16_from_float(p.x[i * p.ldx + j]));
    for (int64_t c = 0; c < w.n; ++c) {
      double sum = 0.0;
      for (int64_t g = 0; g < w.indices.groups; ++g) {
        const uint32_t pair = w.pairs[static_cast<size_t>(w.at(c, g))];
        const int* positions = kSemi24Pairs[w.pair_index[static_cast<size_t>(w.at(c, g))]];
        sum += static_cast<double>(float_from_bf16(static_cast<uint16_t>(pair >> 16))) * x[4 * g + positions[0]] +
               static_cast<double>(float_from_bf16(static_cast<uint16_t>(pair & 0xffffu))) * x[4 * g + positions[1]];
      }
      float v = static_cast<float>(sum);
      if (p.epilogue.bias) v += p.epilogue.bias[c];
      v = apply_activation_ref(v, p.epilogue.activation);
      if (p.epilogue.residual) v += p.epilogue.residual[i * p.epilogue.ld_residual + c];
      p.y[i * p.ldy + c] = v;
    }
  });
}

}  // namespace sparsecpu
