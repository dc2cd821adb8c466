// fp32 block-sparse (and dense) matrix products: y = act(x · Wᵀ + bias) + residual.
//
// x is (m, k) row-major, W (logical shape (n, k)) is a BlockSparseMatrix or a
// 2:4 Semi24F32, y is (m, n) row-major. Every kernel of the family has this signature; the
// registry lists them all, and dispatch, tests and benchmarks read it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "formats/block_sparse.h"
#include "formats/semi_structured.h"
#include "kernels/epilogue.h"

namespace sparsecpu {

struct SpmmF32Problem {
  const float* x = nullptr;
  int64_t m = 0;
  int64_t ldx = 0;
  const BlockSparseMatrix* w = nullptr;  // one of w and w24
  const Semi24F32* w24 = nullptr;
  Epilogue epilogue;
  float* y = nullptr;
  int64_t ldy = 0;
  int threads = 0;  // 0 = the process default

  int64_t n() const { return w ? w->n : w24->n; }
  int64_t k() const { return w ? w->k : w24->k; }
  FloatOutput output() const { return FloatOutput{y, ldy, n(), epilogue}; }
};

using SpmmF32Fn = void (*)(const SpmmF32Problem&);

struct SpmmF32Kernel {
  const char* name;
  Isa isa;
  bool dense;         // runs matrices packed with every block kept, dense_rows x 1 blocks
  int block_rows[5];  // supported R values (0 = unused slot); empty for dense kernels
  SpmmF32Fn run;
  bool semi24 = false;  // runs 2:4 weights (Semi24F32) only
  int dense_rows = 0;   // dense kernels: channels per packed block row (0: any up to kMaxDenseRows)

  bool supports(const BlockSparseMatrix& w) const;
};

const std::vector<SpmmF32Kernel>& spmm_f32_kernels();
// The kernel of the highest usable ISA level that supports w.
const SpmmF32Kernel& select_spmm_f32_kernel(const BlockSparseMatrix& w);
const SpmmF32Kernel& select_spmm_f32_semi24_kernel();
// The dense kernel of the highest usable ISA level; pack for it with dense_block_rows(kernel).
const SpmmF32Kernel& select_spmm_f32_dense_kernel();
// Throws std::invalid_argument if unknown, or if the CPU or cap forbids it.
const SpmmF32Kernel& spmm_f32_kernel_by_name(const std::string& name);

// The tallest block a dense layer is packed with (all blocks kept): dense
// kernels read two weight vectors per input column, each a contiguous run of
// 2 x S::L channels (32 for AVX-512; 16 for AVX2, where a 32-channel row
// read in two passes at a 128-byte stride ran 0.5-0.65x OpenBLAS, 16 at
// 0.7-0.75x).
constexpr int kMaxDenseRows = 32;

inline int dense_block_rows(const SpmmF32Kernel& k) { return k.dense_rows > 0 ? k.dense_rows : kMaxDenseRows; }

// Kernel entry points, one set per ISA file.
void spmm_f32_ref(const SpmmF32Problem& p);
void spmm_f32_bsr_r16_avx2(const SpmmF32Problem& p);
void spmm_f32_bsr_r8_avx2(const SpmmF32Problem& p);
void spmm_f32_bsr_r1to4_avx2(const SpmmF32Problem& p);
void spmm_f32_dense_avx2(const SpmmF32Problem& p);
void spmm_f32_bsr_r16_avx512(const SpmmF32Problem& p);
void spmm_f32_bsr_r1to8_avx512(const SpmmF32Problem& p);
void spmm_f32_dense_avx512(const SpmmF32Problem& p);
void spmm_f32_semi24_avx2(const SpmmF32Problem& p);
void spmm_f32_semi24_avx512(const SpmmF32Problem& p);

}  // namespace sparsecpu
