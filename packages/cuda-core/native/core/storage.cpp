#include "storage.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "error.h"

namespace lrface {

namespace {
std::atomic<int64_t> g_live_count{0};
std::atomic<int64_t> g_live_bytes{0};
constexpr size_t kAlignment = 64;
}  // namespace

Storage::Storage(DType dtype, int64_t numel) : dtype_(dtype), numel_(numel) {
  LR_CHECK(numel >= 0, Range, "alloc: 'numel' must be >= 0, got ", numel);
  size_t bytes = this->bytes();
  // Round up so vector kernels may read a full register past the end of small tensors.
  size_t padded = ((bytes + kAlignment - 1) / kAlignment + 1) * kAlignment;
  data_ = std::aligned_alloc(kAlignment, padded);
  if (data_ == nullptr) fail(ErrorKind::State, "alloc: out of memory allocating ", bytes, " bytes");
  std::memset(data_, 0, padded);
  g_live_count.fetch_add(1);
  g_live_bytes.fetch_add(static_cast<int64_t>(bytes));
}

Storage::~Storage() { release(); }

void Storage::release() {
  if (data_ == nullptr) return;
  std::free(data_);
  data_ = nullptr;
  g_live_count.fetch_sub(1);
  g_live_bytes.fetch_sub(static_cast<int64_t>(bytes()));
}

int64_t Storage::live_count() { return g_live_count.load(); }
int64_t Storage::live_bytes() { return g_live_bytes.load(); }

}  // namespace lrface
