// A linear layer in bf16: weights and activations rounded to bf16 (nearest
// even), products summed in fp32, fused epilogue as for fp32.
//
// Dense and 2:4 layers run the bf16 kernels (vdpbf16ps) where bf16 products
// pay (bf16_products(), kernels/peak/peak.h). Block-sparse layers, and the
// others elsewhere, run the fp32 kernels on the bf16-rounded weights with
// activations rounded on the way in: the same products, summed in fp32 in
// another order (2:4: in the same order).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "formats/bf16_groups.h"
#include "kernels/gemm_bf16/gemm_bf16.h"
#include "runtime/linear_f32.h"

namespace sparsecpu {

class LinearBF16 {
 public:
  // kernel_name: "" = dispatch; a gemm_bf16 kernel name forces it (a dense
  // kernel for dense weights, a semi24 one for 2:4 weights).
  LinearBF16(const float* w, int64_t n, int64_t k, const float* bias, WeightLayout layout, BlockShape block,
             Activation activation, const std::string& kernel_name);

  void forward(const float* x, int64_t m, int64_t ldx, const float* residual, float* y, int threads) const;

  int64_t out_features() const { return n_; }
  int64_t in_features() const { return k_; }
  int64_t nonzeros() const { return nonzeros_; }
  size_t packed_bytes() const;
  std::string kernel_name() const;

 private:
  int64_t n_, k_;
  int64_t nonzeros_ = 0;
  std::vector<float> bias_;
  Activation activation_;
  ChannelPairsBf16 pairs_;                   // when a dense bf16 kernel runs
  Semi24Bf16 semi24_;                        // when a 2:4 bf16 kernel runs
  const GemmBf16Kernel* kernel_ = nullptr;
  std::unique_ptr<LinearF32> rounded_;       // otherwise: fp32 kernels on bf16-rounded weights
};

}  // namespace sparsecpu
