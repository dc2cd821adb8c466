// Scalar reference: the definition every optimized kernel is tested against.
#include "kernels/spmm_f32/spmm_f32.h"

namespace sparsecpu {

namespace {

float finish(const SpmmF32Problem& p, float sum, int64_t i, int64_t j) {
  float v = sum + (p.epilogue.bias ? p.epilogue.bias[j] : 0.0f);
  v = apply_activation_ref(v, p.epilogue.activation);
  if (p.epilogue.residual) v += p.epilogue.residual[i * p.epilogue.ld_residual + j];
  return v;
}

void semi24_ref(const SpmmF32Problem& p) {
  const Semi24F32& w = *p.w24;
  for (int64_t i = 0; i < p.m; ++i) {
    const float* x = p.x + i * p.ldx;
    for (int64_t j = 0; j < w.n; ++j) {
      float acc = 0.0f;
      for (int64_t g = 0; g < w.indices.groups; ++g)
        for (int which = 0; which < 2; ++which) {
          const int64_t at = w.at(j, g, which), col = 4 * g + w.positions[static_cast<size_t>(at)];
          if (col < w.k) acc += w.values[static_cast<size_t>(at)] * x[col];
        }
      p.y[i * p.ldy + j] = finish(p, acc, i, j);
    }
  }
}

}  // namespace

void spmm_f32_ref(const SpmmF32Problem& p) {
  if (p.w24) return semi24_ref(p);
  const BlockSparseMatrix& w = *p.w;
  const int R = w.block.rows, C = w.block.cols;
  for (int64_t i = 0; i < p.m; ++i) {
    const float* x = p.x + i * p.ldx;
    float* y = p.y + i * p.ldy;
    for (int64_t br = 0; br < w.block_rows; ++br) {
      float acc[kMaxDenseRows] = {};  // the tallest block
      for (int64_t b = w.row_ptr[br]; b < w.row_ptr[br + 1]; ++b) {
        const int64_t col = w.dense ? (b - w.row_ptr[br]) * C : w.col_start[b];
        const float* values = w.values.data() + b * R * C;
        for (int c = 0; c < C && col + c < w.k; ++c)
          for (int r = 0; r < R; ++r) acc[r] += values[c * R + r] * x[col + c];
      }
      for (int r = 0; r < R && br * R + r < w.n; ++r) {
        const int64_t j = br * R + r;
        y[j] = finish(p, acc[r], i, j);
      }
    }
  }
}

}  // namespace sparsecpu
