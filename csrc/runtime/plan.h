// A compiled encoder: embeddings followed by a list of ops over a buffer
// arena, run entirely in C++.
//
// Every buffer holds one row per token (batch · seq rows) of a fixed width;
// the compiler assigns buffers to values and reuses them once a value is
// dead. The arena grows to the largest call seen and is reused. Calls on one
// Plan serialize (the arena is shared); separate Plans run concurrently.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "formats/aligned_buffer.h"
#include "kernels/attention/attention.h"
#include "kernels/layernorm/layernorm.h"
#include "runtime/embedding.h"
#include "runtime/linear_bf16.h"
#include "runtime/linear_f32.h"
#include "runtime/linear_s8.h"

namespace sparsecpu {

enum class OpKind : int { embedding = 0, linear, attention, layernorm };

struct PlanOp {
  OpKind kind = OpKind::linear;
  std::string name;
  int input = -1, output = -1, residual = -1;  // buffer ids
  std::shared_ptr<const LinearF32> linear_f32;
  std::shared_ptr<const LinearS8> linear_s8;
  std::shared_ptr<const LinearBF16> linear_bf16;
  // attention
  int64_t heads = 0, head_dim = 0, q_offset = 0, k_offset = 0, v_offset = 0;
  float scale = 1.0f;
  AllMasked all_masked = AllMasked::average;
  AttentionProducts attention_products = AttentionProducts::fp32;  // allowed, if the CPU has a kernel
  // layernorm
  std::vector<float> gamma, beta;
  float eps = 0.0f;
  // statistics since the last reset
  double seconds = 0.0;
  int64_t calls = 0;
  std::vector<double> input_square_sums;  // linear ops, while collecting
};

class Plan {
 public:
  int add_buffer(int64_t width);
  void set_embedding(EmbeddingTables tables, int output);
  void add_linear(const std::string& name, std::shared_ptr<const LinearF32> linear, int input, int output,
                  int residual);
  void add_linear(const std::string& name, std::shared_ptr<const LinearS8> linear, int input, int output,
                  int residual);
  void add_linear(const std::string& name, std::shared_ptr<const LinearBF16> linear, int input, int output,
                  int residual);
  void add_attention(const std::string& name, int qkv, int64_t q_offset, int64_t k_offset, int64_t v_offset,
                     int64_t heads, int64_t head_dim, float scale, int output,
                     AllMasked all_masked = AllMasked::average,
                     AttentionProducts products = AttentionProducts::fp32);
  void add_layernorm(const std::string& name, int input, int output, std::vector<float> gamma,
                     std::vector<float> beta, float eps);
  void set_output(int buffer);

  // ids, token_types: (batch, seq) int64, token_types may be null (all 0);
  // key_mask: (batch, seq), nonzero = attend, may be null. out: (batch · seq, output width).
  void run(const int64_t* ids, const int64_t* token_types, const int32_t* key_mask, int64_t batch, int64_t seq,
           float* out, int threads);

  int64_t output_width() const;
  const std::vector<PlanOp>& ops() const { return ops_; }
  std::string kernel_of(const PlanOp& op) const;
  void reset_statistics();
  // While on, each linear op adds the squares of its input columns (over all
  // tokens of every call) to input_square_sums: calibration for pruning.
  void collect_input_square_sums(bool on);
  // Whether an int8 linear whose output only an attention with a bf16_qkv
  // kernel reads writes it as bf16 (on by default: the attention would round
  // it so itself; half the bytes to write and read). Off: float, as elsewhere.
  bool bf16_attention_inputs() const { return bf16_attention_inputs_; }
  void set_bf16_attention_inputs(bool on);
  // Per op: whether it writes (linear) or reads (attention) bf16 Q, K and V
  // with the kernels selected now (see bf16_attention_inputs).
  std::vector<bool> bf16_qkv_ops() const;
  // Sequences run through all ops together, as many as fit in this many tokens (at least one).
  int64_t tokens_per_pass() const { return tokens_per_pass_; }
  void set_tokens_per_pass(int64_t tokens) { tokens_per_pass_ = std::max<int64_t>(1, tokens); }

 private:
  void check_buffer(int id, const char* role, const std::string& op) const;
  void check_linear(const std::string& name, int64_t in_features, int64_t out_features, int input, int output,
                    int residual) const;
  void run_op(PlanOp& op, bool bf16_qkv, int64_t tokens, const int64_t* ids, const int64_t* token_types,
              const int32_t* key_mask, int64_t batch, int64_t seq, float* out, int threads);
  float* buffer(int id, float* out) { return id == output_ ? out : arena_[static_cast<size_t>(id)].data(); }

  std::vector<int64_t> widths_;
  std::vector<AlignedBuffer<float>> arena_;
  EmbeddingTables embedding_;
  std::vector<PlanOp> ops_;
  int output_ = -1;
  bool collecting_ = false;
  bool bf16_attention_inputs_ = true;
  int64_t tokens_per_pass_ = 256;
  std::mutex mutex_;
};

}  // namespace sparsecpu
