// Token embeddings of BERT-family encoders: word + position + token type,
// summed per token (the LayerNorm that follows is a separate op).
#pragma once

#include <cstdint>
#include <vector>

namespace sparsecpu {

enum class PositionIds : int {
  absolute = 0,       // token s of a sequence has position s (BERT, DistilBERT)
  after_padding = 1,  // padding_idx + running count of non-padding tokens; padding keeps padding_idx (RoBERTa)
};

struct EmbeddingTables {
  int64_t width = 0;
  int64_t vocab = 0, positions = 0, token_types = 0;  // token_types 0: no table
  std::vector<float> word, position, token_type;       // row-major (rows, width)
  PositionIds position_ids = PositionIds::absolute;
  int64_t padding_idx = 0;
};

// Checks every index before reading any table; throws std::invalid_argument
// naming the first bad value (sequence, token, value, limit).
void check_embedding_inputs(const EmbeddingTables& t, const int64_t* ids, const int64_t* token_types,
                            int64_t batch, int64_t seq);

// out: (batch · seq, width) row-major. token_types may be null (all 0).
void embed_tokens(const EmbeddingTables& t, const int64_t* ids, const int64_t* token_types, int64_t batch,
                  int64_t seq, float* out, int threads);

}  // namespace sparsecpu
