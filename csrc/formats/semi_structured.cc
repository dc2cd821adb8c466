#include "formats/semi_structured.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "formats/bf16_groups.h"

namespace sparsecpu {

namespace {

bool finite(float v) { return std::isfinite(v); }
bool finite(int8_t) { return true; }

}  // namespace

template <class T>
Semi24Indices find_semi24_indices(const T* w, int64_t n, int64_t k) {
  Semi24Indices s;
  s.n = n;
  s.k = k;
  s.groups = (k + 3) / 4;
  s.bytes_per_row = (s.groups + 1) / 2;
  s.codes.assign(static_cast<size_t>(n * s.bytes_per_row), 0);
  for (int64_t r = 0; r < n; ++r) {
    const T* row = w + r * k;
    for (int64_t g = 0; g < s.groups; ++g) {
      bool keep[4] = {false, false, false, false};
      int count = 0;
      for (int i = 0; i < 4 && g * 4 + i < k; ++i) {
        const T v = row[g * 4 + i];
        if (!finite(v))
          throw std::invalid_argument("weight row " + std::to_string(r) + " column " + std::to_string(g * 4 + i) +
                                      " is not finite");
        if (v == T(0)) continue;
        if (count == 2)
          throw std::invalid_argument("weight breaks 2:4: row " + std::to_string(r) + ", group " + std::to_string(g) +
                                      " (inputs " + std::to_string(g * 4) + ".." +
                                      std::to_string(std::min(g * 4 + 3, k - 1)) +
                                      ") holds more than 2 nonzeros; prune it first with prune_weight(W, '2:4')");
        keep[i] = true;
        ++count;
      }
      for (int i = 0; count < 2; ++i)  // complete with the lowest free positions
        if (!keep[i]) {
          keep[i] = true;
          ++count;
        }
      int kept[2], found = 0;
      for (int i = 0; i < 4; ++i)
        if (keep[i]) kept[found++] = i;
      const uint8_t nibble = static_cast<uint8_t>(kept[0] | kept[1] << 2);
      s.codes[static_cast<size_t>(r * s.bytes_per_row + g / 2)] |= static_cast<uint8_t>(nibble << (4 * (g % 2)));
    }
  }
  return s;
}

template Semi24Indices find_semi24_indices<float>(const float*, int64_t, int64_t);
template Semi24Indices find_semi24_indices<int8_t>(const int8_t*, int64_t, int64_t);

Semi24F32 pack_semi24_f32(const float* w, int64_t n, int64_t k) {
  Semi24F32 s;
  s.n = n;
  s.k = k;
  s.indices = find_semi24_indices(w, n, k);
  const size_t size = static_cast<size_t>((n + 7) / 8 * 8 * 2 * s.indices.groups);
  s.values.resize(size);  // zero: padding rows multiply nothing
  s.positions.assign(size, 0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t g = 0; g < s.indices.groups; ++g)
      for (int which = 0; which < 2; ++which) {
        const int position = s.indices.position(r, g, which);
        const int64_t col = g * 4 + position, at = s.at(r, g, which);
        s.positions[static_cast<size_t>(at)] = static_cast<uint8_t>(position);
        s.values[static_cast<size_t>(at)] = col < k ? w[r * k + col] : 0.0f;  // past k: a zero weight
      }
  return s;
}

Semi24Bf16 pack_semi24_bf16(const float* w, int64_t n, int64_t k) {
  Semi24Bf16 s;
  s.n = n;
  s.k = k;
  s.indices = find_semi24_indices(w, n, k);
  const size_t size = static_cast<size_t>((n + 15) / 16 * 16 * s.indices.groups);
  s.pairs.resize(size);  // zero: padding rows multiply nothing
  s.pair_index.assign(size, 0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t g = 0; g < s.indices.groups; ++g) {
      const uint8_t pair = s.indices.pair(r, g);
      const auto kept = [&](int position) {  // past k: a zero weight
        return g * 4 + position < k ? bf16_from_float(w[r * k + g * 4 + position]) : uint16_t{0};
      };
      const int64_t at = s.at(r, g);
      s.pairs[static_cast<size_t>(at)] = static_cast<uint32_t>(kept(kSemi24Pairs[pair][0])) << 16 |
                                          kept(kSemi24Pairs[pair][1]);
      s.pair_index[static_cast<size_t>(at)] = pair;
    }
  return s;
}

Semi24S8 pack_semi24_s8(const int8_t* w, int64_t n, int64_t k) {
  Semi24S8 s;
  s.n = n;
  s.k = k;
  s.chunks = (k + 7) / 8;
  s.channel_blocks = (n + 15) / 16;
  s.indices = find_semi24_indices(w, n, k);
  s.values.resize(static_cast<size_t>(s.channel_blocks * s.chunks * 64));
  s.positions.resize(static_cast<size_t>(s.channel_blocks * s.chunks * 64));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < s.chunks; ++c)
      for (int slot = 0; slot < 4; ++slot) {
        const int64_t g = 2 * c + slot / 2;
        const int64_t at = s.at(r, c, slot);
        // A chunk past the last group (odd group count) multiplies zero weights.
        const int position = g < s.indices.groups ? s.indices.position(r, g, slot % 2) : slot % 2;
        const int64_t col = g * 4 + position;
        s.values[static_cast<size_t>(at)] = g < s.indices.groups && col < k ? w[r * k + col] : 0;
        s.positions[static_cast<size_t>(at)] = static_cast<uint8_t>(4 * (slot / 2) + position);
      }
  return s;
}

void widen_to_row_pairs(Semi24S8& w) {
  const int64_t groups = w.indices.groups, padded_rows = (w.n + 15) / 16 * 16;
  w.row_pairs.resize(static_cast<size_t>(padded_rows * groups));  // zero: padding rows multiply nothing
  w.row_pair_index.assign(static_cast<size_t>(padded_rows * groups), 0);
  for (int64_t r = 0; r < w.n; ++r)
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t pair = w.indices.pair(r, g);
      const size_t from = static_cast<size_t>(w.at(r, g / 2, 2 * (g % 2)));
      const uint32_t lo = static_cast<uint16_t>(int16_t{w.values[from]});
      const uint32_t hi = static_cast<uint16_t>(int16_t{w.values[from + 1]});
      w.row_pairs[static_cast<size_t>(w.row_pair_at(r, g))] = static_cast<int32_t>(lo | hi << 16);
      w.row_pair_index[static_cast<size_t>(w.row_pair_at(r, g))] = pair;
    }
  w.values = AlignedBuffer<int8_t>();
  w.positions = AlignedBuffer<uint8_t>();
}

}  // namespace sparsecpu
