#include "runtime/plan.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace sparsecpu {
namespace {

PlanOp make_op(OpKind kind, const std::string& name, int input, int output, int residual = -1) {
  PlanOp op;
  op.kind = kind;
  op.name = name;
  op.input = input;
  op.output = output;
  op.residual = residual;
  return op;
}

}  // namespace

int Plan::add_buffer(int64_t width) {
  if (width <= 0) throw std::invalid_argument("buffer width must be positive, got " + std::to_string(width));
  widths_.push_back(width);
  arena_.emplace_back();
  return static_cast<int>(widths_.size()) - 1;
}

void Plan::check_buffer(int id, const char* role, const std::string& op) const {
  if (id < 0 || id >= static_cast<int>(widths_.size()))
    throw std::invalid_argument("op '" + op + "': " + role + " buffer " + std::to_string(id) + " does not exist");
}

void Plan::set_embedding(EmbeddingTables tables, int output) {
  check_buffer(output, "output", "embeddings");
  const int64_t w = tables.width;
  if (w != widths_[static_cast<size_t>(output)] || tables.vocab <= 0 || tables.positions <= 0 ||
      static_cast<int64_t>(tables.word.size()) != tables.vocab * w ||
      static_cast<int64_t>(tables.position.size()) != tables.positions * w ||
      static_cast<int64_t>(tables.token_type.size()) != tables.token_types * w)
    throw std::invalid_argument("embeddings: table sizes do not match their width " + std::to_string(w));
  if (!ops_.empty() && ops_.front().kind == OpKind::embedding) throw std::invalid_argument("embeddings set twice");
  embedding_ = std::move(tables);
  PlanOp op = make_op(OpKind::embedding, "embeddings", -1, output);
  ops_.insert(ops_.begin(), std::move(op));
}

void Plan::check_linear(const std::string& name, int64_t in_features, int64_t out_features, int input, int output,
                        int residual) const {
  check_buffer(input, "input", name);
  check_buffer(output, "output", name);
  if (residual >= 0) check_buffer(residual, "residual", name);
  if (widths_[static_cast<size_t>(input)] != in_features || widths_[static_cast<size_t>(output)] != out_features ||
      (residual >= 0 && widths_[static_cast<size_t>(residual)] != out_features))
    throw std::invalid_argument("op '" + name + "': buffer widths do not match the layer's shape");
}

void Plan::add_linear(const std::string& name, std::shared_ptr<const LinearF32> linear, int input, int output,
                      int residual) {
  check_linear(name, linear->in_features(), linear->out_features(), input, output, residual);
  PlanOp op = make_op(OpKind::linear, name, input, output, residual);
  op.linear_f32 = std::move(linear);
  ops_.push_back(std::move(op));
}

void Plan::add_linear(const std::string& name, std::shared_ptr<const LinearS8> linear, int input, int output,
                      int residual) {
  check_linear(name, linear->in_features(), linear->out_features(), input, output, residual);
  PlanOp op = make_op(OpKind::linear, name, input, output, residual);
  op.linear_s8 = std::move(linear);
  ops_.push_back(std::move(op));
}

void Plan::add_linear(const std::string& name, std::shared_ptr<const LinearBF16> linear, int input, int output,
                      int residual) {
  check_linear(name, linear->in_features(), linear->out_features(), input, output, residual);
  PlanOp op = make_op(OpKind::linear, name, input, output, residual);
  op.linear_bf16 = std::move(linear);
  ops_.push_back(std::move(op));
}

void Plan::add_attention(const std::string& name, int qkv, int64_t q_offset, int64_t k_offset, int64_t v_offset,
                         int64_t heads, int64_t head_dim, float scale, int output,
                         AllMasked all_masked, AttentionProducts products) {
  check_buffer(qkv, "input", name);
  check_buffer(output, "output", name);
  const int64_t in_width = widths_[static_cast<size_t>(qkv)], width = heads * head_dim;
  if (heads <= 0 || head_dim <= 0 || widths_[static_cast<size_t>(output)] != width ||
      std::min({q_offset, k_offset, v_offset}) < 0 || std::max({q_offset, k_offset, v_offset}) + width > in_width)
    throw std::invalid_argument("op '" + name + "': heads x head_dim and offsets do not fit the buffers");
  PlanOp op = make_op(OpKind::attention, name, qkv, output);
  op.heads = heads;
  op.head_dim = head_dim;
  op.q_offset = q_offset;
  op.k_offset = k_offset;
  op.v_offset = v_offset;
  op.scale = scale;
  op.all_masked = all_masked;
  op.attention_products = products;
  ops_.push_back(std::move(op));
}

void Plan::add_layernorm(const std::string& name, int input, int output, std::vector<float> gamma,
                         std::vector<float> beta, float eps) {
  check_buffer(input, "input", name);
  check_buffer(output, "output", name);
  const int64_t w = widths_[static_cast<size_t>(input)];
  if (widths_[static_cast<size_t>(output)] != w || static_cast<int64_t>(gamma.size()) != w ||
      static_cast<int64_t>(beta.size()) != w || !(eps >= 0.0f))
    throw std::invalid_argument("op '" + name + "': gamma, beta and buffers must all have width " +
                                std::to_string(w) + " and eps must be >= 0");
  PlanOp op = make_op(OpKind::layernorm, name, input, output);
  op.gamma = std::move(gamma);
  op.beta = std::move(beta);
  op.eps = eps;
  ops_.push_back(std::move(op));
}

void Plan::set_output(int buffer) {
  check_buffer(buffer, "output", "plan");
  output_ = buffer;
}

int64_t Plan::output_width() const { return output_ < 0 ? 0 : widths_[static_cast<size_t>(output_)]; }

std::string Plan::kernel_of(const PlanOp& op) const {
  switch (op.kind) {
    case OpKind::embedding: return "embedding_gather";
    case OpKind::linear:
      if (op.linear_f32) return op.linear_f32->kernel().name;
      if (op.linear_s8) return op.linear_s8->kernel().name;
      return op.linear_bf16->kernel_name();
    case OpKind::attention: return select_attention_kernel(op.attention_products).name;
    case OpKind::layernorm: return select_layernorm_kernel().name;
  }
  return "";
}

void Plan::reset_statistics() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (PlanOp& op : ops_) {
    op.seconds = 0.0;
    op.calls = 0;
    op.input_square_sums.clear();
  }
}

void Plan::collect_input_square_sums(bool on) {
  std::lock_guard<std::mutex> lock(mutex_);
  collecting_ = on;
}

void Plan::set_bf16_attention_inputs(bool on) {
  std::lock_guard<std::mutex> lock(mutex_);
  bf16_attention_inputs_ = on;
}

std::vector<bool> Plan::bf16_qkv_ops() const {
  std::vector<bool> bf16(ops_.size(), false);
  if (!bf16_attention_inputs_) return bf16;
  const auto reads = [](const PlanOp& op, int id) { return op.input == id || op.residual == id; };
  for (size_t i = 0; i < ops_.size(); ++i) {
    const PlanOp& linear = ops_[i];
    const int x = linear.output;
    // x must not be the linear's own input or residual either: bf16 values
    // land at other floats' addresses, which other tiles may not have read.
    if (linear.kind != OpKind::linear || !linear.linear_s8 || x == output_ || reads(linear, x)) continue;
    // The next op that touches x must be the attention reading it, and after
    // that none may read x before it is written again.
    size_t j = i + 1;
    while (j < ops_.size() && !reads(ops_[j], x) && ops_[j].output != x) ++j;
    if (j == ops_.size()) continue;
    const PlanOp& attention = ops_[j];
    if (attention.kind != OpKind::attention || attention.input != x || attention.output == x ||
        !select_attention_kernel(attention.attention_products).bf16_qkv)
      continue;
    size_t k = j + 1;
    while (k < ops_.size() && !reads(ops_[k], x) && ops_[k].output != x) ++k;
    if (k < ops_.size() && reads(ops_[k], x)) continue;
    bf16[i] = bf16[j] = true;
  }
  return bf16;
}

void Plan::run(const int64_t* ids, const int64_t* token_types, const int32_t* key_mask, int64_t batch, int64_t seq,
               float* out, int threads) {
  if (ops_.empty() || ops_.front().kind != OpKind::embedding || output_ < 0)
    throw std::logic_error("plan is incomplete: it needs embeddings and an output buffer");
  if (batch <= 0 || seq <= 0) return;
  check_embedding_inputs(embedding_, ids, token_types, batch, seq);
  std::lock_guard<std::mutex> lock(mutex_);
  // Whole sequences per pass, about tokens_per_pass_ tokens: the buffers of a pass stay in L2
  // (a batch of 8 x 128 tokens in one pass ran 1.6x slower per token than one sequence).
  const int64_t per_pass = std::max<int64_t>(1, std::min<int64_t>(batch, tokens_per_pass_ / seq));
  const int64_t tokens = per_pass * seq;
  for (size_t i = 0; i < arena_.size(); ++i)
    if (static_cast<int>(i) != output_) arena_[i].reserve_discarding(static_cast<size_t>(tokens * widths_[i]));
  const int64_t width = output_width();
  const std::vector<bool> bf16_qkv = bf16_qkv_ops();
  for (int64_t first = 0; first < batch; first += per_pass) {
    const int64_t count = std::min(per_pass, batch - first);
    const int64_t offset = first * seq;
    for (size_t i = 0; i < ops_.size(); ++i) {
      PlanOp& op = ops_[i];
      const auto start = std::chrono::steady_clock::now();
      run_op(op, bf16_qkv[i], count * seq, ids + offset, token_types ? token_types + offset : nullptr,
             key_mask ? key_mask + offset : nullptr, count, seq, out + offset * width, threads);
      op.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  }
  for (PlanOp& op : ops_) ++op.calls;
}

void Plan::run_op(PlanOp& op, bool bf16_qkv, int64_t tokens, const int64_t* ids, const int64_t* token_types,
                  const int32_t* key_mask, int64_t batch, int64_t seq, float* out, int threads) {
  float* y = buffer(op.output, out);
  switch (op.kind) {
    case OpKind::embedding:
      embed_tokens(embedding_, ids, token_types, batch, seq, y, threads);
      return;
    case OpKind::linear: {
      const float* x = buffer(op.input, out);
      const float* residual = op.residual >= 0 ? buffer(op.residual, out) : nullptr;
      const int64_t k = widths_[static_cast<size_t>(op.input)];
      if (collecting_) {
        op.input_square_sums.resize(static_cast<size_t>(k), 0.0);
        for (int64_t t = 0; t < tokens; ++t)
          for (int64_t c = 0; c < k; ++c) op.input_square_sums[c] += static_cast<double>(x[t * k + c]) * x[t * k + c];
      }
      if (bf16_qkv)  // the buffer's floats hold twice the bf16 values needed
        op.linear_s8->forward_bf16(x, tokens, k, residual, reinterpret_cast<uint16_t*>(y), threads);
      else if (op.linear_f32)
        op.linear_f32->forward(x, tokens, k, residual, y, threads);
      else if (op.linear_s8)
        op.linear_s8->forward(x, tokens, k, residual, y, threads);
      else
        op.linear_bf16->forward(x, tokens, k, residual, y, threads);
      return;
    }
    case OpKind::attention: {
      AttentionProblem p;
      if (bf16_qkv)
        p.qkv_bf16 = reinterpret_cast<const uint16_t*>(buffer(op.input, out));
      else
        p.qkv = buffer(op.input, out);
      p.ld_qkv = widths_[static_cast<size_t>(op.input)];
      p.q_offset = op.q_offset;
      p.k_offset = op.k_offset;
      p.v_offset = op.v_offset;
      p.out = y;
      p.ld_out = widths_[static_cast<size_t>(op.output)];
      p.batch = batch;
      p.seq = seq;
      p.heads = op.heads;
      p.head_dim = op.head_dim;
      p.key_mask = key_mask;
      p.scale = op.scale;
      p.all_masked = op.all_masked;
      p.threads = threads;
      select_attention_kernel(op.attention_products).run(p);
      return;
    }
    case OpKind::layernorm: {
      LayerNormProblem p;
      p.x = buffer(op.input, out);
      p.ldx = p.ldy = p.width = widths_[static_cast<size_t>(op.input)];
      p.rows = tokens;
      p.gamma = op.gamma.data();
      p.beta = op.beta.data();
      p.eps = op.eps;
      p.y = y;
      p.threads = threads;
      select_layernorm_kernel().run(p);
      return;
    }
  }
}

}  // namespace sparsecpu
