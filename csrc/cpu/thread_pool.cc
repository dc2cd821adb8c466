#include "cpu/thread_pool.h"

#include <immintrin.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cpu/cpu_features.h"

namespace sparsecpu {
namespace {

int threads_from_environment() {
  const char* text = std::getenv("SPARSECPU_NUM_THREADS");
  if (text == nullptr || text[0] == '\0') return 0;
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < 0 || value > 4096)
    throw std::invalid_argument(std::string("SPARSECPU_NUM_THREADS='") + text +
                                "': expected a whole number >= 0 (0 = all cores)");
  return static_cast<int>(value);
}

std::atomic<int>& requested_threads() {
  static std::atomic<int> requested{threads_from_environment()};
  return requested;
}

// Spinning this long before sleeping keeps back-to-back calls (one layer after
// another) from paying a futex wake-up each, which costs more than a small layer.
constexpr auto kSpinBeforeSleep = std::chrono::microseconds(200);

template <class Ready>
bool spin_until(const Ready& ready) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinBeforeSleep;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
      _mm_pause();
    }
    if (std::chrono::steady_clock::now() > deadline) return ready();
  }
}

class Pool {
 public:
  static Pool& instance() {
    static Pool* pool = new Pool();  // never destroyed: workers may outlive static teardown
    return *pool;
  }

  void run(int64_t n_tasks, int threads, const std::function<void(int64_t)>& fn) {
    std::lock_guard<std::mutex> serial(call_mutex_);
    const int helpers = static_cast<int>(std::min<int64_t>(threads, n_tasks)) - 1;
    ensure_workers(helpers);
    fn_ = &fn;
    n_tasks_ = n_tasks;
    next_.store(0);
    helpers_wanted_ = helpers;
    helpers_running_.store(helpers);
    error_ = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    work();
    auto helpers_done = [&] { return helpers_running_.load(std::memory_order_acquire) == 0; };
    if (!spin_until(helpers_done)) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, helpers_done);
    }
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

  // After fork() only the forking thread exists in the child: forget the workers.
  void forget_workers_after_fork() {
    new (&mutex_) std::mutex();
    new (&call_mutex_) std::mutex();
    new (&wake_) std::condition_variable();
    new (&done_) std::condition_variable();
    for (auto& t : workers_) t.detach();
    workers_.clear();
  }

 private:
  Pool() {
    pthread_atfork(nullptr, nullptr, [] { Pool::instance().forget_workers_after_fork(); });
  }

  void ensure_workers(int count) {
    while (static_cast<int>(workers_.size()) < count) {
      int index = static_cast<int>(workers_.size());
      uint64_t current = generation_.load();
      workers_.emplace_back([this, index, current] { worker_loop(index, current); });
    }
  }

  void work() {
    for (;;) {
      int64_t task = next_.fetch_add(1);
      if (task >= n_tasks_) return;
      try {
        (*fn_)(task);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
        next_.store(n_tasks_);
      }
    }
  }

  void worker_loop(int index, uint64_t seen) {
    for (;;) {
      auto new_job = [&] { return generation_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(new_job)) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, new_job);
      }
      seen = generation_.load(std::memory_order_acquire);
      if (index >= helpers_wanted_) continue;
      work();
      if (helpers_running_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_one();
      }
    }
  }

  std::mutex call_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  // Written by the caller before generation_ is bumped (release); read by
  // workers after they see the new generation (acquire).
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t n_tasks_ = 0;
  int helpers_wanted_ = 0;
  std::exception_ptr error_;
  std::atomic<int64_t> next_{0};
  std::atomic<int> helpers_running_{0};
  std::atomic<uint64_t> generation_{0};
};

}  // namespace

int cores_in_affinity_mask() { return cpu_features().cores_in_affinity_mask; }

int default_num_threads() {
  int requested = requested_threads().load();
  return requested > 0 ? requested : cores_in_affinity_mask();
}

void set_default_num_threads(int n) {
  if (n < 0) throw std::invalid_argument("number of threads must be >= 0 (0 = all cores), got " + std::to_string(n));
  requested_threads().store(n);
}

void parallel_for(int64_t n_tasks, int threads, const std::function<void(int64_t)>& fn) {
  if (n_tasks <= 0) return;
  if (threads <= 0) threads = default_num_threads();
  if (threads == 1 || n_tasks == 1) {
    for (int64_t task = 0; task < n_tasks; ++task) fn(task);
    return;
  }
  Pool::instance().run(n_tasks, threads, fn);
}

}  // namespace sparsecpu
