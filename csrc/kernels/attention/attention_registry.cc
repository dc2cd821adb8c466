#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/attention/attention.h"
#include "kernels/peak/peak.h"
#include "kernels/registry.h"

namespace sparsecpu {

const std::vector<AttentionKernel>& attention_kernels() {
  static const std::vector<AttentionKernel> kernels = {
      {"attention_avx512_bf16", Isa::avx512_bf16, attention_avx512_bf16, AttentionProducts::bf16, true},
      {"attention_avx512", Isa::avx512, attention_avx512},
      {"attention_avx2", Isa::avx2, attention_avx2},
      {"attention_ref", Isa::ref, attention_ref},
  };
  return kernels;
}

const AttentionKernel& select_attention_kernel(AttentionProducts allowed) {
  if (allowed == AttentionProducts::bf16 && !bf16_products().use) allowed = AttentionProducts::fp32;
  return best_usable_kernel(attention_kernels(), [&](const AttentionKernel& k) {
    return k.products == AttentionProducts::fp32 || k.products == allowed;
  });
}

const AttentionKernel& attention_kernel_by_name(const std::string& name) {
  return kernel_by_name(attention_kernels(), name);
}

AllMasked all_masked_from_name(const std::string& name) {
  if (name == "average") return AllMasked::average;
  if (name == "all_keys") return AllMasked::all_keys;
  if (name == "zeros") return AllMasked::zeros;
  throw std::invalid_argument("all_masked '" + name + "': expected 'average', 'all_keys' or 'zeros'");
}

AttentionProducts attention_products_from_name(const std::string& name) {
  if (name == "fp32") return AttentionProducts::fp32;
  if (name == "bf16") return AttentionProducts::bf16;
  throw std::invalid_argument("attention products '" + name + "': expected 'fp32' or 'bf16'");
}

void require_float_qkv(const AttentionProblem& p, const char* kernel) {
  if (!p.qkv) throw std::invalid_argument(std::string(kernel) + " takes float32 Q, K and V, not bf16");
}

void zero_context(const AttentionProblem& p, int64_t b, int64_t h, int64_t first, int64_t last) {
  for (int64_t i = first; i < last; ++i) {
    float* out = p.out + (b * p.seq + i) * p.ld_out + h * p.head_dim;
    std::fill(out, out + p.head_dim, 0.0f);
  }
}

bool attended_keys(const AttentionProblem& p, int64_t b, std::vector<int32_t>& keys) {
  keys.clear();
  const int32_t* mask = p.key_mask ? p.key_mask + b * p.seq : nullptr;
  for (int64_t s = 0; s < p.seq; ++s)
    if (!mask || mask[s] != 0) keys.push_back(static_cast<int32_t>(s));
  if (!keys.empty()) return false;
  for (int64_t s = 0; s < p.seq; ++s) keys.push_back(static_cast<int32_t>(s));
  return true;
}

}  // namespace sparsecpu
