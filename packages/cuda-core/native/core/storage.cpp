#include "storage.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <list>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "error.h"
#include "../cuda/device_memory.h"

namespace lrface {

namespace {
std::atomic<int64_t> g_live_count{0};
std::atomic<int64_t> g_live_bytes{0};
constexpr size_t kAlignment = 64;

#if defined(__linux__)
// Blocks of at least one 2 MiB huge page are mapped on a huge-page boundary and offered to
// transparent huge pages (where the system leaves that to madvise): a kernel reading 128
// channel rows 64 KiB apart touches 128 pages per column of pixels, each a TLB miss with 4 KiB
// pages, and first touching 64 MiB costs 16384 page faults instead of 32. Only the whole huge
// pages of a block are offered, so no block takes more memory than with small pages.
constexpr size_t kHugePage = size_t(2) << 20;

size_t os_page() {
  static const size_t value = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return value;
}
size_t mapped_bytes(size_t capacity) { return (capacity + os_page() - 1) / os_page() * os_page(); }

void* allocate_block(size_t capacity) {
  if (capacity < kHugePage) return std::aligned_alloc(kAlignment, capacity);
  const size_t bytes = mapped_bytes(capacity), span = bytes + kHugePage - os_page();
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) & ~uintptr_t(kHugePage - 1);
  if (aligned > start) munmap(raw, aligned - start);
  if (start + span > aligned + bytes) munmap(reinterpret_cast<void*>(aligned + bytes), start + span - aligned - bytes);
  // Advice only: where it is refused the block keeps small pages.
  madvise(reinterpret_cast<void*>(aligned), capacity / kHugePage * kHugePage, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(aligned);
}

void free_block(void* block, size_t capacity) {
  if (block == nullptr) return;
  if (capacity < kHugePage)
    std::free(block);
  else
    munmap(block, mapped_bytes(capacity));
}
#else
void* allocate_block(size_t capacity) { return std::aligned_alloc(kAlignment, capacity); }
void free_block(void* block, size_t) { std::free(block); }
#endif

// Freed blocks are kept by size and handed out again: large buffers would otherwise go
// back to the OS on every free and fault their pages in again on the next allocation. When a
// freed block does not fit under the limit, the blocks cached longest ago make room for it:
// the sizes a program uses now (inference after training, say) replace the ones it used
// before, instead of being returned to the OS on every free while stale ones fill the cache.
class BlockCache {
 public:
  void* take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(bytes);
    if (it == free_.end() || it->second.empty()) return nullptr;
    const auto entry = it->second.back();  // the most recent block of this size
    it->second.pop_back();
    void* p = entry->block;
    age_.erase(entry);
    cached_ -= bytes;
    return p;
  }
  void give(void* p, size_t bytes) {
    std::vector<Cached> evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (bytes <= limit()) {
        while (cached_ + bytes > limit()) evicted.push_back(evict_oldest());
        age_.push_back(Cached{p, bytes});
        free_[bytes].push_back(std::prev(age_.end()));
        cached_ += bytes;
        p = nullptr;
      }
    }
    for (const Cached& old : evicted) free_block(old.block, old.bytes);
    free_block(p, bytes);
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const Cached& c : age_) free_block(c.block, c.bytes);
    age_.clear();
    free_.clear();
    cached_ = 0;
  }
  size_t cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

 private:
  struct Cached {
    void* block;
    size_t bytes;
  };
  using Entry = std::list<Cached>::iterator;

  static size_t limit() {
    static const size_t value = [] {
      const char* env = std::getenv("LRFACE_HOST_CACHE_MB");
      long mb = env ? std::atol(env) : 1024;
      return static_cast<size_t>(mb < 0 ? 0 : mb) << 20;
    }();
    return value;
  }
  // Caller holds the lock and the cache is not empty. The oldest block of a size is the first
  // of its list (blocks are pushed and taken at the back).
  Cached evict_oldest() {
    const Cached oldest = age_.front();
    auto& same_size = free_[oldest.bytes];
    same_size.erase(same_size.begin());
    age_.pop_front();
    cached_ -= oldest.bytes;
    return oldest;
  }

  std::mutex mutex_;
  std::list<Cached> age_;                                  // every cached block, oldest first
  std::unordered_map<size_t, std::vector<Entry>> free_;    // by size, oldest first
  size_t cached_ = 0;
};

BlockCache& cache() {
  static BlockCache* instance = new BlockCache();  // never destroyed: storages may outlive statics at exit
  return *instance;
}

// Small sizes round to the alignment, large ones to 1/8 of their power of two, so cached
// blocks fit a range of requests.
size_t round_size(size_t bytes) {
  size_t padded = ((bytes + kAlignment - 1) / kAlignment + 1) * kAlignment;
  if (padded <= (1u << 16)) return padded;
  size_t p = 1;
  while (p < padded) p <<= 1;
  size_t step = p >> 3;
  return ((padded + step - 1) / step) * step;
}
}  // namespace

size_t host_cache_bytes() { return cache().cached(); }
void host_cache_clear() { cache().clear(); }

Storage::Storage(DType dtype, int64_t numel, int device, bool zeroed) : dtype_(dtype), numel_(numel), device_(device) {
  LR_CHECK(numel >= 0, Range, "alloc: 'numel' must be >= 0, got ", numel);
  size_t bytes = this->bytes();
  if (device_ != kHost) {
    LR_CHECK(device_ >= 0, Range, "alloc: 'device' must be -1 (host) or a CUDA device index, got ", device_);
    data_ = cuda::device_malloc(device_, bytes, &capacity_);
    try {
      cuda::device_zero(device_, data_, capacity_);
    } catch (...) {
      cuda::device_free(device_, data_, capacity_);
      throw;
    }
    return;
  }
  // Padded so vector kernels may read a full register past the end of small tensors.
  capacity_ = round_size(bytes);
  data_ = cache().take(capacity_);
  if (data_ == nullptr) data_ = allocate_block(capacity_);
  if (data_ == nullptr) fail(ErrorKind::State, "alloc: out of memory allocating ", bytes, " bytes");
  // Vector kernels may read a register past the end: what they find there is zero, never
  // stale. Only that guard (to the next 64-byte line and one line more, inside round_size's
  // padding) is cleared, not the whole rounded block: a 2^k-byte tensor sits in a block a
  // quarter larger, whose rest no kernel reads (clearing it added a quarter to the writes of
  // every such op: 2 MiB more per 8 MiB concat output).
  const size_t guard_end = std::min(capacity_, ((bytes + kAlignment - 1) / kAlignment + 1) * kAlignment);
  if (zeroed)
    std::memset(data_, 0, guard_end);
  else
    std::memset(static_cast<char*>(data_) + bytes, 0, guard_end - bytes);
  g_live_count.fetch_add(1);
  g_live_bytes.fetch_add(static_cast<int64_t>(bytes));
}

Storage::~Storage() { release(); }

void Storage::release() {
  if (data_ == nullptr) return;
  if (device_ != kHost) {
    cuda::device_free(device_, data_, capacity_);
    data_ = nullptr;
    return;
  }
  cache().give(data_, capacity_);
  data_ = nullptr;
  g_live_count.fetch_sub(1);
  g_live_bytes.fetch_sub(static_cast<int64_t>(bytes()));
}

int64_t Storage::live_count() { return g_live_count.load(); }
int64_t Storage::live_bytes() { return g_live_bytes.load(); }

void configure_host_allocator() {
#if defined(__GLIBC__)
  // glibc raises its mmap threshold each time a large mmapped block is freed, so later large
  // buffers come from the heap, where freed ones fragment and are never returned: training a
  // U-Net on 128x128 batches grew the process by ~300 MB per step. A fixed threshold keeps
  // large buffers on mmap (returned on free); the block cache already reuses the hot sizes.
  static const bool done = [] {
    if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    return true;
  }();
  (void)done;
#endif
}

}  // namespace lrface
