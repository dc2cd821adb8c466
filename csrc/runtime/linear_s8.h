// A linear layer with int8 weights (symmetric, per output channel) and
// activations quantized per token on the fly; fused dequantize, bias,
// activation, residual; float32, bf16 or requantized int8 output.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/block_sparse.h"
#include "formats/int8_blocks.h"
#include "formats/semi_structured.h"
#include "formats/weight_layout.h"
#include "kernels/spmm_s8/spmm_s8.h"

namespace sparsecpu {

class LinearS8 {
 public:
  // Quantizes a float weight (n, k); layout and block shape as for fp32.
  LinearS8(const float* w, int64_t n, int64_t k, const float* bias, WeightLayout layout, BlockShape block,
           Activation activation, const std::string& kernel_name);
  // Weights already quantized: W ≈ scale[n] * w (scale null: 1, for exact tests
  // of the kernels). A compiled model keeps these instead of the float weights.
  LinearS8(const int8_t* w, const float* scale, int64_t n, int64_t k, const float* bias, WeightLayout layout,
           BlockShape block, Activation activation, const std::string& kernel_name);

  void forward(const float* x, int64_t m, int64_t ldx, const float* residual, float* y, int threads) const;
  void forward_s8(const float* x, int64_t m, int64_t ldx, const float* residual, float out_scale, int8_t* y,
                  int threads) const;
  // forward's results rounded to bf16 (as vcvtneps2bf16 rounds), (m, n) contiguous.
  void forward_bf16(const float* x, int64_t m, int64_t ldx, const float* residual, uint16_t* y, int threads) const;
  // Raw int32 accumulators of u8 activations (m, k) contiguous.
  void forward_s32(const uint8_t* x, int64_t m, int32_t* y, int threads) const;

  int64_t out_features() const { return n_; }
  int64_t in_features() const { return k_; }
  const SpmmS8Kernel& kernel() const { return *kernel_; }
  int64_t nonzeros() const { return nonzeros_; }
  size_t packed_bytes() const;

 private:
  void pack(const int8_t* w, WeightLayout layout, BlockShape block, const std::string& kernel_name);
  SpmmS8Problem problem(int64_t m, S8Output output, void* y, int threads) const;
  SpmmS8Problem float_input_problem(const float* x, int64_t m, int64_t ldx, const float* residual, S8Output output,
                                    void* y, int threads) const;

  int64_t n_, k_;
  WeightLayout layout_ = WeightLayout::blocks;
  QuadPackedS8 quads_;
  ChannelPackedS8 channels_;
  Semi24S8 semi24_;
  std::vector<float> scale_, bias_;
  std::vector<int32_t> row_sum_;
  Activation activation_ = Activation::none;
  const SpmmS8Kernel* kernel_ = nullptr;
  int64_t nonzeros_ = 0;
};

}  // namespace sparsecpu
