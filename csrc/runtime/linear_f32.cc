#include "runtime/linear_f32.h"

#include <stdexcept>

namespace sparsecpu {

Activation activation_from_name(const std::string& name) {
  if (name.empty() || name == "none") return Activation::none;
  if (name == "gelu") return Activation::gelu;
  if (name == "relu") return Activation::relu;
  throw std::invalid_argument("activation '" + name + "': expected None, 'gelu' or 'relu'");
}

const char* activation_name(Activation act) {
  switch (act) {
    case Activation::gelu: return "gelu";
    case Activation::relu: return "relu";
    case Activation::none: break;
  }
  return "none";
}

LinearF32::LinearF32(const float* w, int64_t n, int64_t k, const float* bias, WeightLayout layout, BlockShape block,
                     Activation activation, const std::string& kernel_name)
    : n_(n), k_(k), layout_(layout), activation_(activation) {
  if (bias) bias_.assign(bias, bias + n);
  if (layout == WeightLayout::semi24) {
    semi24_ = pack_semi24_f32(w, n, k);
    kernel_ = kernel_name.empty() ? &select_spmm_f32_semi24_kernel() : &spmm_f32_kernel_by_name(kernel_name);
    if (!kernel_->semi24)
      throw std::invalid_argument(std::string("kernel '") + kernel_->name + "' does not run 2:4 weights");
  } else {
    const bool dense = layout == WeightLayout::dense;
    if (dense) {  // the kernel first: it says how many channels a packed block row holds
      kernel_ = kernel_name.empty() ? &select_spmm_f32_dense_kernel() : &spmm_f32_kernel_by_name(kernel_name);
      weight_ = pack_block_sparse(w, n, k, k, BlockShape{dense_block_rows(*kernel_), 1}, true);
    } else {
      weight_ = pack_block_sparse(w, n, k, k, block, false);
      kernel_ = kernel_name.empty() ? &select_spmm_f32_kernel(weight_) : &spmm_f32_kernel_by_name(kernel_name);
    }
    if (!kernel_->supports(weight_))
      throw std::invalid_argument(std::string("kernel '") + kernel_->name + "' does not run " +
                                  (dense ? std::string("dense") : std::to_string(block.rows) + "x" +
                                                                      std::to_string(block.cols)) +
                                  " weights");
  }
  nonzeros_ = 0;
  for (int64_t i = 0; i < n * k; ++i) nonzeros_ += w[i] != 0.0f;
}

size_t LinearF32::packed_bytes() const {
  return layout_ == WeightLayout::semi24 ? semi24_.packed_bytes() : weight_.packed_bytes();
}

void LinearF32::forward(const float* x, int64_t m, int64_t ldx, const float* residual, float* y,
                        int threads) const {
  SpmmF32Problem p;
  p.x = x;
  p.m = m;
  p.ldx = ldx;
  if (layout_ == WeightLayout::semi24)
    p.w24 = &semi24_;
  else
    p.w = &weight_;
  p.epilogue.bias = bias_.empty() ? nullptr : bias_.data();
  p.epilogue.activation = activation_;
  p.epilogue.residual = residual;
  p.epilogue.ld_residual = n_;
  p.y = y;
  p.ldy = n_;
  p.threads = threads;
  kernel_->run(p);
}

}  // namespace sparsecpu
