// Block-sparse (BSR-like) storage of a weight W of shape (out, in) = (n, k).
//
// W is cut into blocks of R consecutive output rows by C consecutive input
// columns; every block that holds a nonzero is stored, so the product with
// the packed matrix is exact for any W. Rows past n and columns past k inside
// the last blocks are stored as zeros. A "dense" matrix is the same structure
// with every block kept and no column index needed.
#pragma once

#include <cstdint>
#include <vector>

#include "formats/aligned_buffer.h"

namespace sparsecpu {

struct BlockShape {
  int rows = 1;  // R: consecutive output rows
  int cols = 1;  // C: consecutive input columns
};

struct BlockSparseMatrix {
  int64_t n = 0, k = 0;  // logical (out, in)
  BlockShape block;
  bool dense = false;        // every block kept, in column order; col_start unused
  int64_t block_rows = 0;    // ceil(n / R)
  int64_t block_cols = 0;    // ceil(k / C)
  // Blocks of block row i are [row_ptr[i], row_ptr[i+1]).
  std::vector<int64_t> row_ptr;
  // First input column of each block (a multiple of C).
  std::vector<int32_t> col_start;
  // Block b holds C columns of R values: values[(b*C + c)*R + r] = W[i*R + r, col + c],
  // so one input column of a block is R contiguous output values (one vector).
  AlignedBuffer<float> values;

  int64_t stored_blocks() const { return row_ptr.empty() ? 0 : row_ptr.back(); }
  size_t packed_bytes() const;
};

// Packs a row-major (n, k) float matrix with leading dimension ld.
BlockSparseMatrix pack_block_sparse(const float* w, int64_t n, int64_t k, int64_t ld, BlockShape block, bool keep_all);

}  // namespace sparsecpu
