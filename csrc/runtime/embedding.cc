#include "runtime/embedding.h"

#include <stdexcept>
#include <string>

#include "cpu/thread_pool.h"

namespace sparsecpu {
namespace {

// Position of every token of sequence b, written to pos[0..seq).
void positions_of(const EmbeddingTables& t, const int64_t* ids, int64_t seq, int64_t* pos) {
  if (t.position_ids == PositionIds::absolute) {
    for (int64_t s = 0; s < seq; ++s) pos[s] = s;
    return;
  }
  int64_t count = 0;
  for (int64_t s = 0; s < seq; ++s) {
    const bool padding = ids[s] == t.padding_idx;
    if (!padding) ++count;
    pos[s] = padding ? t.padding_idx : t.padding_idx + count;
  }
}

std::string where(int64_t b, int64_t s) {
  return "sequence " + std::to_string(b) + ", token " + std::to_string(s);
}

}  // namespace

void check_embedding_inputs(const EmbeddingTables& t, const int64_t* ids, const int64_t* token_types,
                            int64_t batch, int64_t seq) {
  std::vector<int64_t> pos(static_cast<size_t>(seq));
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t* row = ids + b * seq;
    for (int64_t s = 0; s < seq; ++s)
      if (row[s] < 0 || row[s] >= t.vocab)
        throw std::invalid_argument("input_ids: " + where(b, s) + " is " + std::to_string(row[s]) +
                                    ", outside the vocabulary [0, " + std::to_string(t.vocab) + ")");
    if (token_types) {
      const int64_t* types = token_types + b * seq;
      const int64_t limit = t.token_types ? t.token_types : 1;
      for (int64_t s = 0; s < seq; ++s)
        if (types[s] < 0 || types[s] >= limit)
          throw std::invalid_argument("token_type_ids: " + where(b, s) + " is " + std::to_string(types[s]) +
                                      ", outside [0, " + std::to_string(limit) + ")");
    }
    positions_of(t, row, seq, pos.data());
    for (int64_t s = 0; s < seq; ++s)
      if (pos[s] >= t.positions)
        throw std::invalid_argument("input_ids: " + where(b, s) + " needs position " + std::to_string(pos[s]) +
                                    " but the model has " + std::to_string(t.positions) +
                                    " position embeddings; use shorter sequences");
  }
}

void embed_tokens(const EmbeddingTables& t, const int64_t* ids, const int64_t* token_types, int64_t batch,
                  int64_t seq, float* out, int threads) {
  const int64_t w = t.width;
  parallel_for(batch, threads, [&](int64_t b) {
    std::vector<int64_t> pos(static_cast<size_t>(seq));
    positions_of(t, ids + b * seq, seq, pos.data());
    for (int64_t s = 0; s < seq; ++s) {
      const int64_t token = b * seq + s;
      const float* word = t.word.data() + ids[token] * w;
      const float* position = t.position.data() + pos[s] * w;
      float* y = out + token * w;
      for (int64_t c = 0; c < w; ++c) y[c] = word[c] + position[c];
      if (t.token_types) {
        const float* type = t.token_type.data() + (token_types ? token_types[token] : 0) * w;
        for (int64_t c = 0; c < w; ++c) y[c] += type[c];
      }
    }
  });
}

}  // namespace sparsecpu
