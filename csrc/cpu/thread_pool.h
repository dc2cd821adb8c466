// A process-wide pool of persistent worker threads.
//
// parallel_for hands out task indices dynamically; the calling thread works
// too. Calls from several application threads at once are serialised, so a
// kernel never oversubscribes the cores it was given.
#pragma once

#include <cstdint>
#include <functional>

namespace sparsecpu {

// Threads used when a caller asks for 0: SPARSECPU_NUM_THREADS at first use,
// else every core in the affinity mask.
int default_num_threads();
// n == 0 restores "every core in the affinity mask". Throws std::invalid_argument for n < 0.
void set_default_num_threads(int n);
int cores_in_affinity_mask();

// Runs fn(task) for every task in [0, n_tasks) on at most `threads` threads
// (0 = the default). Returns when all tasks are done; rethrows the first
// exception a task threw.
void parallel_for(int64_t n_tasks, int threads, const std::function<void(int64_t task)>& fn);

}  // namespace sparsecpu
