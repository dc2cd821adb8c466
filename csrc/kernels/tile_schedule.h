// How every token-panel kernel splits one call into tasks. Included by the
// per-ISA kernel files; everything has internal linkage, so no instantiation
// can be shared between files built with different instruction sets.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>

#include "cpu/thread_pool.h"
#include "formats/aligned_buffer.h"

namespace sparsecpu {
namespace {

struct TileSchedule {
  int64_t tokens = 0;            // M
  int64_t tokens_per_tile = 1;   // what one tile_fn call covers
  int64_t tokens_per_panel = 1;  // the unit activations are packed in
  int64_t panel_bytes = 0;       // one packed panel
  int64_t block_rows = 0;
  int64_t weight_bytes = 0;      // all packed weights
  int threads = 1;               // resolved, >= 1
};

inline uint64_t next_call_id() {
  static std::atomic<uint64_t> calls{0};
  return ++calls;
}

// A thread's packed panels, tagged with the call and token group they hold,
// so a thread that runs several tasks of one group in a call packs it once.
template <class T>
struct PanelCache {
  uint64_t call_id = 0;
  int64_t group = -1;
  AlignedBuffer<T> data;

  // True when the caller must (re)pack into data, now sized for `count` elements.
  bool claim(uint64_t call, int64_t token_group, size_t count) {
    if (call == call_id && token_group == group) return false;
    data.reserve_discarding(count);
    call_id = call;
    group = token_group;
    return true;
  }
};

// Runs tile_fn(panels, tile, block_row) over all token tiles and block rows,
// where panels = pack(call_id, group, first_panel, panel_count).
// Token tiles are grouped so a group's panels stay in L2 (1 MiB) and, when
// there are enough tokens, every thread has its own groups (packing is then
// never repeated); block rows are split in chunks only when there are fewer
// groups than threads. Tasks are chunk-major, so a thread tends to keep its group. Within a
// task, block rows go in slices whose weights stay in L2 (512 KiB) while every
// tile of the group passes over them. task_end() runs on the task's thread
// after its last tile_fn (what a tile_fn left to finish later).
struct NoTaskEnd {
  void operator()() const {}
};

template <class PackFn, class TileFn, class TaskEndFn = NoTaskEnd>
void for_each_tile(const TileSchedule& s, const PackFn& pack, const TileFn& tile_fn,
                   const TaskEndFn& task_end = TaskEndFn{}) {
  if (s.tokens == 0 || s.block_rows == 0) return;
  const int64_t token_tiles = (s.tokens + s.tokens_per_tile - 1) / s.tokens_per_tile;
  constexpr int64_t kPanelBudgetBytes = 1 << 20;
  const int64_t tile_bytes = std::max<int64_t>(1, s.panel_bytes * s.tokens_per_tile / s.tokens_per_panel);
  const int64_t max_tiles_per_group = std::clamp<int64_t>(kPanelBudgetBytes / tile_bytes, 1, token_tiles);
  const int64_t groups = std::max((token_tiles + max_tiles_per_group - 1) / max_tiles_per_group,
                                  std::min<int64_t>(s.threads, token_tiles));
  const int64_t tiles_per_group = (token_tiles + groups - 1) / groups;
  // One task per thread when there are enough token groups: more, smaller
  // tasks (split over block rows) measured 5-20% slower at 2 threads.
  const int64_t wanted_tasks = s.threads;
  const int64_t chunks = std::clamp<int64_t>((wanted_tasks + groups - 1) / groups, 1, s.block_rows);
  const int64_t rows_per_chunk = (s.block_rows + chunks - 1) / chunks;
  constexpr int64_t kWeightBudgetBytes = 512 << 10;
  const int64_t weight_bytes_per_row = std::max<int64_t>(1, s.weight_bytes / s.block_rows);
  const int64_t rows_per_slice = std::max<int64_t>(1, kWeightBudgetBytes / weight_bytes_per_row);
  const uint64_t call_id = next_call_id();
  parallel_for(groups * chunks, s.threads, [&](int64_t task) {
    const int64_t group = task % groups, chunk = task / groups;
    const int64_t tile_begin = group * tiles_per_group;
    const int64_t tile_end = std::min(token_tiles, tile_begin + tiles_per_group);
    const int64_t row_end = std::min(s.block_rows, (chunk + 1) * rows_per_chunk);
    if (tile_begin >= tile_end) return;
    const int64_t first_panel = tile_begin * s.tokens_per_tile / s.tokens_per_panel;
    const int64_t last_token = std::min(s.tokens, tile_end * s.tokens_per_tile) - 1;
    const auto panels = pack(call_id, group, first_panel, last_token / s.tokens_per_panel + 1 - first_panel);
    for (int64_t slice = chunk * rows_per_chunk; slice < row_end; slice += rows_per_slice) {
      const int64_t slice_end = std::min(row_end, slice + rows_per_slice);
      for (int64_t tile = tile_begin; tile < tile_end; ++tile)
        for (int64_t br = slice; br < slice_end; ++br) tile_fn(panels, tile, br);
    }
    task_end();
  });
}

// Calls of few tokens that run vectors over rows: pass(vector, token0,
// tokens, std::integral_constant<int, T>) for every row vector and pass of at
// most 8 tokens (T = 8, 4, 2 or 1, the narrowest that holds them), the
// vectors split in one chunk per thread and each walked with its passes
// inside, so its weights come from memory once and from L1 for the other
// passes. threads: the problem's setting (0 = the process default).
template <class Pass>
void for_each_row_vector_pass(int64_t vectors, int64_t tokens_of_call, int threads, const Pass& pass) {
  constexpr int64_t kPassTokens = 8;
  if (threads <= 0) threads = default_num_threads();
  const int64_t chunks = std::clamp<int64_t>(threads, 1, vectors);
  const int64_t per_chunk = (vectors + chunks - 1) / chunks;
  parallel_for(chunks, threads, [&](int64_t chunk) {
    for (int64_t v = chunk * per_chunk; v < std::min(vectors, (chunk + 1) * per_chunk); ++v)
      for (int64_t token0 = 0; token0 < tokens_of_call; token0 += kPassTokens) {
        const int tokens = static_cast<int>(std::min(kPassTokens, tokens_of_call - token0));
        if (tokens > 4) pass(v, token0, tokens, std::integral_constant<int, 8>());
        else if (tokens > 2) pass(v, token0, tokens, std::integral_constant<int, 4>());
        else if (tokens > 1) pass(v, token0, tokens, std::integral_constant<int, 2>());
        else pass(v, token0, tokens, std::integral_constant<int, 1>());
      }
  });
}

}  // namespace
}  // namespace sparsecpu
