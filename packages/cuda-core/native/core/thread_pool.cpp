#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "error.h"

namespace lrface {

namespace {

thread_local bool t_inside_pool = false;

class ThreadPool {
 public:
  explicit ThreadPool(int threads) { resize(threads); }
  ~ThreadPool() { stop_workers(); }

  int size() const { return size_; }

  void resize(int threads) {
    std::lock_guard<std::mutex> run_lock(run_mutex_);
    stop_workers();
    size_ = std::max(1, threads);
    stopping_ = false;
    uint64_t start_generation;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      start_generation = generation_;
    }
    // The system may refuse threads (limits, memory): run with those it gave rather than abort.
    for (int i = 1; i < size_; ++i) {
      try {
        workers_.emplace_back([this, i, start_generation] { worker_loop(i, start_generation); });
      } catch (const std::system_error&) {
        size_ = i;
        break;
      }
    }
  }

  // Chunks are claimed from a shared counter rather than dealt out one per thread: on a shared
  // machine a worker can sit descheduled for a whole time slice, and the threads that are
  // running then take over its chunks instead of waiting for it.
  void run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    const int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(1, grain));
    const int64_t chunks = std::min<int64_t>(int64_t(size_) * kChunksPerThread, max_chunks);
    const int helpers = static_cast<int>(std::min<int64_t>(size_, chunks)) - 1;
    if (helpers <= 0 || t_inside_pool) {
      fn(0, n);
      return;
    }
    std::lock_guard<std::mutex> run_lock(run_mutex_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &fn;
      job_n_ = n;
      job_chunks_ = chunks;
      job_helpers_ = helpers;
      next_chunk_.store(0, std::memory_order_relaxed);
      open_ = true;
      ++generation_;
      published_.store(generation_, std::memory_order_release);
    }
    cv_.notify_all();
    t_inside_pool = true;
    work();
    t_inside_pool = false;
    // Every chunk is claimed; close the job to late workers and wait for those still in a chunk.
    for (int spin = 0; spin < 20000 && joined_.load(std::memory_order_acquire) != 0; ++spin) __builtin_ia32_pause();
    std::unique_lock<std::mutex> lock(mutex_);
    open_ = false;
    done_cv_.wait(lock, [this] { return joined_.load(std::memory_order_acquire) == 0; });
    job_ = nullptr;
  }

 private:
  static constexpr int64_t kChunksPerThread = 4;

  void work() {
    for (;;) {
      const int64_t c = next_chunk_.fetch_add(1, std::memory_order_relaxed);
      if (c >= job_chunks_) return;
      const int64_t begin = job_n_ * c / job_chunks_, end = job_n_ * (c + 1) / job_chunks_;
      if (begin < end) (*job_)(begin, end);
    }
  }

  // `seen` starts at the generation current when the worker was made, so a resized pool's
  // new workers do not mistake the last finished job for a new one.
  void worker_loop(int index, uint64_t seen) {
    t_inside_pool = true;
    for (;;) {
      // Spin briefly before sleeping: kernels issue many short parallel regions back to back,
      // and a condition-variable wake-up costs more than most of them.
      for (int spin = 0; spin < 20000; ++spin) {
        if (published_.load(std::memory_order_acquire) != seen) break;
        __builtin_ia32_pause();
      }
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      // A job already closed (its chunks all done) or one that wants fewer threads.
      if (!open_ || index > job_helpers_) continue;
      joined_.fetch_add(1, std::memory_order_relaxed);
      lock.unlock();
      work();
      lock.lock();
      if (joined_.fetch_sub(1, std::memory_order_acq_rel) == 1) done_cv_.notify_one();
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  int size_ = 1;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int64_t job_chunks_ = 0;
  int job_helpers_ = 0;
  bool open_ = false;  // workers may still join the current job
  std::atomic<int64_t> next_chunk_{0};
  std::atomic<int> joined_{0};  // workers inside the current job
  uint64_t generation_ = 0;
  std::atomic<uint64_t> published_{0};
  bool stopping_ = false;
};

int default_threads() {
  // The TypeScript loader rejects malformed values with a message; here only a whole number in
  // setNumThreads' range is taken, anything else leaves the machine's count.
  if (const char* env = std::getenv("LRFACE_NUM_THREADS")) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n >= 1 && n <= 1024) return static_cast<int>(n);
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

ThreadPool& pool() {
  static ThreadPool instance(default_threads());
  return instance;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) {
  LR_CHECK(n >= 1 && n <= 1024, Range, "setNumThreads: 'n' must be in [1, 1024], got ", n);
  pool().resize(n);
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  pool().run(n, grain, fn);
}

}  // namespace lrface
