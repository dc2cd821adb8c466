// Scalar reference: the definition every optimized kernel is tested against.
#include "kernels/spmm_f32/spmm_f32.h"

namespace sparsecpu {

void spmm_f32_ref(const SpmmF32Problem& p) {
  const BlockSparseMatrix& w = *p.w;
  const int R = w.block.rows, C = w.block.cols;
  for (int64_t i = 0; i < p.m; ++i) {
    const float* x = p.x + i * p.ldx;
    float* y = p.y + i * p.ldy;
    for (int64_t br = 0; br < w.block_rows; ++br) {
      float acc[kDenseBlock.rows] = {};  // the tallest block
      for (int64_t b = w.row_ptr[br]; b < w.row_ptr[br + 1]; ++b) {
        const int64_t col = w.dense ? (b - w.row_ptr[br]) * C : w.col_start[b];
        const float* values = w.values.data() + b * R * C;
        for (int c = 0; c < C && col + c < w.k; ++c)
          for (int r = 0; r < R; ++r) acc[r] += values[c * R + r] * x[col + c];
      }
      for (int r = 0; r < R && br * R + r < w.n; ++r) {
        const int64_t j = br * R + r;
        float v = acc[r] + (p.epilogue.bias ? p.epilogue.bias[j] : 0.0f);
        v = apply_activation_ref(v, p.epilogue.activation);
        if (p.epilogue.residual) v += p.epilogue.residual[i * p.epilogue.ld_residual + j];
        y[j] = v;
      }
    }
  }
}

}  // namespace sparsecpu
