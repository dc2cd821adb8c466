#include "formats/block_sparse.h"

#include <limits>
#include <stdexcept>
#include <string>

namespace sparsecpu {
namespace {

bool valid_block_side(int v) { return v == 1 || v == 2 || v == 4 || v == 8 || v == 16; }

}  // namespace

size_t BlockSparseMatrix::packed_bytes() const {
  return values.size() * sizeof(float) + row_ptr.size() * sizeof(int64_t) +
         (dense ? 0 : col_start.size() * sizeof(int32_t));
}

BlockSparseMatrix pack_block_sparse(const float* w, int64_t n, int64_t k, int64_t ld, BlockShape block,
                                    bool keep_all) {
  const bool dense_rows = keep_all && block.rows == 32;  // the dense kernels' block row
  if (!(valid_block_side(block.rows) || dense_rows) || !valid_block_side(block.cols))
    throw std::invalid_argument("block shape " + std::to_string(block.rows) + "x" + std::to_string(block.cols) +
                                ": each side must be 1, 2, 4, 8 or 16");
  if (n < 0 || k < 0 || ld < k) throw std::invalid_argument("pack_block_sparse: bad matrix dimensions");
  if (k > std::numeric_limits<int32_t>::max() - 16)
    throw std::invalid_argument("in_features " + std::to_string(k) + " is too large for 32-bit column indices");

  const int R = block.rows, C = block.cols;
  BlockSparseMatrix m;
  m.n = n;
  m.k = k;
  m.block = block;
  m.dense = keep_all;
  m.block_rows = (n + R - 1) / R;
  m.block_cols = (k + C - 1) / C;
  m.row_ptr.assign(m.block_rows + 1, 0);

  auto at = [&](int64_t row, int64_t col) -> float {
    return (row < n && col < k) ? w[row * ld + col] : 0.0f;
  };
  auto block_is_zero = [&](int64_t br, int64_t bc) {
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c)
        if (at(br * R + r, bc * C + c) != 0.0f) return false;
    return true;
  };

  for (int64_t br = 0; br < m.block_rows; ++br) {
    for (int64_t bc = 0; bc < m.block_cols; ++bc) {
      if (keep_all || !block_is_zero(br, bc)) m.col_start.push_back(static_cast<int32_t>(bc * C));
    }
    m.row_ptr[br + 1] = static_cast<int64_t>(m.col_start.size());
  }
  m.values.resize(static_cast<size_t>(m.stored_blocks()) * R * C);
  for (int64_t br = 0; br < m.block_rows; ++br) {
    for (int64_t b = m.row_ptr[br]; b < m.row_ptr[br + 1]; ++b) {
      const int64_t col = m.col_start[b];
      float* dst = m.values.data() + b * R * C;
      for (int c = 0; c < C; ++c)
        for (int r = 0; r < R; ++r) dst[c * R + r] = at(br * R + r, col + c);
    }
  }
  if (keep_all) m.col_start.clear();
  return m;
}

}  // namespace sparsecpu
