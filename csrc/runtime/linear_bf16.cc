#include "runtime/linear_bf16.h"

#include <algorithm>
#include <stdexcept>

#include "formats/aligned_buffer.h"
#include "kernels/peak/peak.h"
#include "kernels/spmm_f32/spmm_f32.h"

namespace sparsecpu {

LinearBF16::LinearBF16(const float* w, int64_t n, int64_t k, const float* bias, WeightLayout layout,
                       BlockShape block, Activation activation, const std::string& kernel_name)
    : n_(n), k_(k), activation_(activation) {
  if (bias) bias_.assign(bias, bias + n);
  for (int64_t i = 0; i < n * k; ++i) nonzeros_ += w[i] != 0.0f;
  // Unnamed, a bf16 kernel only where bf16 products pay (kernels/peak/peak.h);
  // else fp32 kernels on the same rounded weights and activations.
  const auto dispatched = [](const GemmBf16Kernel& kernel) {
    return kernel.isa != Isa::ref && bf16_products().use ? &kernel : nullptr;
  };
  if (!kernel_name.empty()) {
    kernel_ = &gemm_bf16_kernel_by_name(kernel_name);
    if (kernel_->semi24 != (layout == WeightLayout::semi24) || layout == WeightLayout::blocks)
      throw std::invalid_argument(std::string("bf16 kernel '") + kernel_name + "' runs " +
                                  (kernel_->semi24 ? "2:4" : "dense") + " weights only");
  } else if (layout == WeightLayout::dense) {
    kernel_ = dispatched(select_gemm_bf16_kernel());
  } else if (layout == WeightLayout::semi24) {
    kernel_ = dispatched(select_gemm_bf16_semi24_kernel());
  }
  if (kernel_ && layout == WeightLayout::dense) {
    pairs_ = pack_channel_pairs_bf16(w, n, k);
    return;
  }
  if (kernel_) {
    semi24_ = pack_semi24_bf16(w, n, k);
    return;
  }
  std::vector<float> rounded(static_cast<size_t>(n * k));
  round_rows_to_bf16(w, n, k, k, rounded.data(), k);
  rounded_ = std::make_unique<LinearF32>(rounded.data(), n, k, bias, layout, block, activation, "");
}

size_t LinearBF16::packed_bytes() const {
  return kernel_ ? pairs_.packed_bytes() + semi24_.packed_bytes() : rounded_->packed_bytes();
}

std::string LinearBF16::kernel_name() const {
  return kernel_ ? kernel_->name : std::string(rounded_->kernel().name);
}

void LinearBF16::forward(const float* x, int64_t m, int64_t ldx, const float* residual, float* y, int threads) const {
  if (kernel_) {
    GemmBf16Problem p;
    p.x = x;
    p.m = m;
    p.ldx = ldx;
    if (kernel_->semi24)
      p.w24 = &semi24_;
    else
      p.w = &pairs_;
    p.epilogue.bias = bias_.empty() ? nullptr : bias_.data();
    p.epilogue.activation = activation_;
    p.epilogue.residual = residual;
    p.epilogue.ld_residual = n_;
    p.y = y;
    p.ldy = n_;
    p.threads = threads;
    kernel_->run(p);
    return;
  }
  AlignedBuffer<float> rounded(static_cast<size_t>(std::max<int64_t>(1, m * k_)));
  round_rows_to_bf16(x, m, k_, ldx, rounded.data(), k_);
  rounded_->forward(rounded.data(), m, k_, residual, y, threads);
}

}  // namespace sparsecpu
