#include "formats/int8_blocks.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace sparsecpu {

QuantizedWeightsS8 quantize_weights_per_channel(const float* w, int64_t n, int64_t k) {
  QuantizedWeightsS8 q;
  q.n = n;
  q.k = k;
  q.values.resize(static_cast<size_t>(n * k));
  q.scale.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float* row = w + i * k;
    float peak = 0.0f;
    for (int64_t j = 0; j < k; ++j) {
      if (!std::isfinite(row[j]))
        throw std::invalid_argument("weight row " + std::to_string(i) + " column " + std::to_string(j) +
                                    " is not finite; int8 quantization needs finite weights");
      peak = std::max(peak, std::fabs(row[j]));
    }
    const float scale = peak > 0.0f ? peak / 127.0f : 1.0f;
    q.scale[i] = scale;
    for (int64_t j = 0; j < k; ++j) {
      const float v = std::nearbyint(row[j] / scale);
      q.values[i * k + j] = static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
    }
  }
  return q;
}

size_t QuadPackedS8::packed_bytes() const {
  return values.size() + cols.size() * sizeof(int32_t) + row_ptr.size() * sizeof(int64_t);
}

void widen_to_pairs(ChannelPackedS8& w) {
  w.pairs.resize(w.values.size());
  for (size_t group = 0; group < w.values.size(); group += 64) {  // 16 channels x 4 inputs
    const int8_t* v = w.values.data() + group;
    int16_t* even = w.pairs.data() + group;
    int16_t* odd = even + 32;
    for (int c = 0; c < 16; ++c) {
      even[2 * c] = v[4 * c];
      even[2 * c + 1] = v[4 * c + 2];
      odd[2 * c] = v[4 * c + 1];
      odd[2 * c + 1] = v[4 * c + 3];
    }
  }
  w.values = AlignedBuffer<int8_t>();
}

QuadPackedS8 pack_column_quads(const int8_t* w, int64_t n, int64_t k, int rows, int block_cols) {
  if (rows < 1 || rows > 16 || block_cols < 1 || block_cols > 16)
    throw std::invalid_argument("int8 block shape " + std::to_string(rows) + "x" + std::to_string(block_cols) +
                                ": each side must be 1, 2, 4, 8 or 16");
  if (k > (int64_t{1} << 30)) throw std::invalid_argument("in_features " + std::to_string(k) + " is too large");
  QuadPackedS8 p;
  p.n = n;
  p.k = k;
  p.rows = rows;
  p.block_rows = (n + rows - 1) / rows;
  p.row_ptr.assign(p.block_rows + 1, 0);
  std::vector<int32_t> kept;
  std::vector<int8_t> values;
  for (int64_t br = 0; br < p.block_rows; ++br) {
    const int64_t r0 = br * rows, r1 = std::min(n, r0 + rows);
    kept.clear();
    for (int64_t c0 = 0; c0 < k; c0 += block_cols) {
      const int64_t c1 = std::min(k, c0 + block_cols);
      bool nonzero = false;
      for (int64_t r = r0; r < r1 && !nonzero; ++r)
        for (int64_t c = c0; c < c1 && !nonzero; ++c) nonzero = w[r * k + c] != 0;
      if (!nonzero) continue;
      for (int64_t c = c0; c < c1; ++c) kept.push_back(static_cast<int32_t>(c));
    }
    const int64_t quads = (static_cast<int64_t>(kept.size()) + 3) / 4;
    for (int64_t q = 0; q < quads; ++q) {
      for (int slot = 0; slot < 4; ++slot) {
        const int64_t i = q * 4 + slot;
        // A padding slot repeats a real column with weight 0: always a valid read.
        p.cols.push_back(i < static_cast<int64_t>(kept.size()) ? kept[i] : kept[q * 4]);
      }
      for (int r = 0; r < rows; ++r) {
        for (int slot = 0; slot < 4; ++slot) {
          const int64_t i = q * 4 + slot, row = r0 + r;
          const bool real = i < static_cast<int64_t>(kept.size()) && row < n;
          values.push_back(real ? w[row * k + kept[i]] : int8_t{0});
        }
      }
    }
    p.row_ptr[br + 1] = p.row_ptr[br] + quads;
  }
  p.values.resize(values.size());
  std::copy(values.begin(), values.end(), p.values.data());
  return p;
}

ChannelPackedS8 pack_channel_groups(const int8_t* w, int64_t n, int64_t k) {
  ChannelPackedS8 p;
  p.n = n;
  p.k = k;
  p.k_groups = (k + 3) / 4;
  p.channel_blocks = (n + 15) / 16;
  p.values.resize(static_cast<size_t>(p.channel_blocks * p.k_groups * 64));
  for (int64_t cb = 0; cb < p.channel_blocks; ++cb)
    for (int64_t g = 0; g < p.k_groups; ++g)
      for (int c = 0; c < 16; ++c)
        for (int b = 0; b < 4; ++b) {
          const int64_t row = cb * 16 + c, col = g * 4 + b;
          p.values[((cb * p.k_groups + g) * 16 + c) * 4 + b] = (row < n && col < k) ? w[row * k + col] : 0;
        }
  return p;
}

std::vector<int32_t> row_sums(const int8_t* w, int64_t n, int64_t k) {
  std::vector<int32_t> sums(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) sums[i] += w[i * k + j];
  return sums;
}

}  // namespace sparsecpu
