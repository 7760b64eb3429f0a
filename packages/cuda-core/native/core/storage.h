// A flat buffer: 64-byte aligned host memory, or a block of a CUDA device's memory from the
// caching allocator (device >= 0). Tensors are contiguous views (storage + element offset).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "dtype.h"

namespace lrface {

class Storage {
 public:
  static constexpr int kHost = -1;
  // device: kHost, or the index of a CUDA device.
  // zeroed = false leaves host memory as the block cache hands it out (for outputs a kernel
  // overwrites whole); the padding past the last element is zeroed either way.
  Storage(DType dtype, int64_t numel, int device = kHost, bool zeroed = true);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void release();
  bool released() const { return data_ == nullptr && numel_ > 0; }
  void* data() const { return data_; }
  DType dtype() const { return dtype_; }
  int64_t numel() const { return numel_; }
  int device() const { return device_; }
  bool on_host() const { return device_ == kHost; }
  size_t bytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }

  // Host storages only; device memory is counted by the allocator (cuda/device_memory.h).
  static int64_t live_count();
  static int64_t live_bytes();

 private:
  void* data_ = nullptr;
  DType dtype_;
  int64_t numel_;
  int device_ = kHost;
  bool was_released_ = false;
  size_t capacity_ = 0;
};

// Makes the C allocator hand large blocks back to the system when they are freed (see storage.cpp).
void configure_host_allocator();

// Bytes held in the host block cache (freed storages kept for reuse), and emptying it.
size_t host_cache_bytes();
void host_cache_clear();

}  // namespace lrface
