#include "runtime/linear_s8.h"

#include <cmath>
#include <stdexcept>

namespace sparsecpu {

LinearS8::LinearS8(const float* w, int64_t n, int64_t k, const float* bias, WeightLayout layout, BlockShape block,
                   Activation activation, const std::string& kernel_name)
    : n_(n), k_(k), activation_(activation) {
  QuantizedWeightsS8 q = quantize_weights_per_channel(w, n, k);
  scale_ = std::move(q.scale);
  if (bias) bias_.assign(bias, bias + n);
  for (int64_t i = 0; i < n * k; ++i) nonzeros_ += w[i] != 0.0f;
  if (layout == WeightLayout::semi24) find_semi24_indices(w, n, k);  // refuses a w that breaks 2:4 by its float values
  pack(q.values.data(), layout, block, kernel_name);
}

LinearS8::LinearS8(const int8_t* w, const float* scale, int64_t n, int64_t k, const float* bias, WeightLayout layout,
                   BlockShape block, Activation activation, const std::string& kernel_name)
    : n_(n), k_(k), scale_(static_cast<size_t>(n), 1.0f), activation_(activation) {
  if (scale) scale_.assign(scale, scale + n);
  if (bias) bias_.assign(bias, bias + n);
  for (int64_t i = 0; i < n * k; ++i) nonzeros_ += w[i] != 0;
  pack(w, layout, block, kernel_name);
}

void LinearS8::pack(const int8_t* w, WeightLayout layout, BlockShape block, const std::string& kernel_name) {
  layout_ = layout;
  row_sum_ = row_sums(w, n_, k_);
  const bool dense = layout == WeightLayout::dense, semi24 = layout == WeightLayout::semi24;
  if (dense)
    channels_ = pack_channel_groups(w, n_, k_);
  else if (semi24)
    semi24_ = pack_semi24_s8(w, n_, k_);
  else
    quads_ = pack_column_quads(w, n_, k_, block.rows, block.cols);
  if (kernel_name.empty())
    kernel_ = semi24 ? &select_spmm_s8_semi24_kernel() : &select_spmm_s8_kernel(dense);
  else
    kernel_ = &spmm_s8_kernel_by_name(kernel_name);
  if (kernel_->dense != dense || kernel_->semi24 != semi24)
    throw std::invalid_argument(std::string("kernel '") + kernel_->name + "' does not run " +
                                (dense ? "dense" : semi24 ? "2:4" : "block-sparse") + " int8 weights");
  if (kernel_->pairs && dense) widen_to_pairs(channels_);
  if (kernel_->pairs && semi24) widen_to_row_pairs(semi24_);
}

size_t LinearS8::packed_bytes() const {
  const size_t weights = layout_ == WeightLayout::dense    ? channels_.packed_bytes()
                         : layout_ == WeightLayout::semi24 ? semi24_.packed_bytes()
                                                           : quads_.packed_bytes();
  return weights + scale_.size() * sizeof(float) +
         row_sum_.size() * sizeof(int32_t);
}

SpmmS8Problem LinearS8::problem(int64_t m, S8Output output, void* y, int threads) const {
  SpmmS8Problem p;
  p.m = m;
  p.quads = layout_ == WeightLayout::blocks ? &quads_ : nullptr;
  p.channels = layout_ == WeightLayout::dense ? &channels_ : nullptr;
  p.semi24 = layout_ == WeightLayout::semi24 ? &semi24_ : nullptr;
  p.w_scale = scale_.data();
  p.w_row_sum = row_sum_.data();
  p.output = output;
  p.epilogue.bias = bias_.empty() ? nullptr : bias_.data();
  p.epilogue.activation = activation_;
  p.epilogue.ld_residual = n_;
  p.y = y;
  p.ldy = n_;
  p.threads = threads;
  return p;
}

SpmmS8Problem LinearS8::float_input_problem(const float* x, int64_t m, int64_t ldx, const float* residual,
                                            S8Output output, void* y, int threads) const {
  SpmmS8Problem p = problem(m, output, y, threads);
  p.x_f32 = x;
  p.ldx = ldx;
  p.epilogue.residual = residual;
  return p;
}

void LinearS8::forward(const float* x, int64_t m, int64_t ldx, const float* residual, float* y, int threads) const {
  kernel_->run(float_input_problem(x, m, ldx, residual, S8Output::f32, y, threads));
}

void LinearS8::forward_s8(const float* x, int64_t m, int64_t ldx, const float* residual, float out_scale, int8_t* y,
                          int threads) const {
  if (!(out_scale > 0.0f) || !std::isfinite(out_scale))
    throw std::invalid_argument("out_scale must be a positive finite number, got " + std::to_string(out_scale));
  SpmmS8Problem p = float_input_problem(x, m, ldx, residual, S8Output::s8, y, threads);
  p.out_scale = out_scale;
  kernel_->run(p);
}

void LinearS8::forward_bf16(const float* x, int64_t m, int64_t ldx, const float* residual, uint16_t* y,
                            int threads) const {
  kernel_->run(float_input_problem(x, m, ldx, residual, S8Output::bf16, y, threads));
}

void LinearS8::forward_s32(const uint8_t* x, int64_t m, int32_t* y, int threads) const {
  SpmmS8Problem p = problem(m, S8Output::s32, y, threads);
  p.x_u8 = x;
  p.ldx = k_;
  kernel_->run(p);
}

}  // namespace sparsecpu
