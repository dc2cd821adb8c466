// A linear layer with packed fp32 weights and a fused epilogue:
// y = activation(x · Wᵀ + bias) + residual.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/block_sparse.h"
#include "formats/semi_structured.h"
#include "formats/weight_layout.h"
#include "kernels/spmm_f32/spmm_f32.h"

namespace sparsecpu {

Activation activation_from_name(const std::string& name);  // "", "none", "gelu", "relu"
const char* activation_name(Activation act);

class LinearF32 {
 public:
  // w: (n, k) row-major; bias: n values or null. `block` is used by the blocks
  // layout; semi24 refuses a w that breaks 2:4. kernel_name empty = dispatch.
  LinearF32(const float* w, int64_t n, int64_t k, const float* bias, WeightLayout layout, BlockShape block,
            Activation activation, const std::string& kernel_name);

  // x: (m, k) with row stride ldx; residual: (m, n) contiguous or null; y: (m, n) contiguous.
  void forward(const float* x, int64_t m, int64_t ldx, const float* residual, float* y, int threads) const;

  int64_t out_features() const { return n_; }
  int64_t in_features() const { return k_; }
  WeightLayout layout() const { return layout_; }
  const BlockSparseMatrix& weight() const { return weight_; }  // blocks and dense layouts
  size_t packed_bytes() const;
  const SpmmF32Kernel& kernel() const { return *kernel_; }
  Activation activation() const { return activation_; }
  int64_t nonzeros() const { return nonzeros_; }

 private:
  int64_t n_, k_;
  WeightLayout layout_;
  BlockSparseMatrix weight_;
  Semi24F32 semi24_;
  std::vector<float> bias_;
  Activation activation_;
  const SpmmF32Kernel* kernel_;
  int64_t nonzeros_;
};

}  // namespace sparsecpu
