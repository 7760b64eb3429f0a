// Device memory as the rest of the engine sees it: plain C++, no CUDA headers, so storage and
// binding code compile with or without the toolkit. Implemented by allocator.cu when built
// with CUDA, otherwise by device_query_stub.cpp (every call then fails with the build reason).
#pragma once
#include <cstddef>
#include <cstdint>

namespace lrface::cuda {

// Takes a block of at least `bytes` from the device's cache (cudaMalloc only on a miss);
// *capacity receives the block's rounded size, to be passed back to device_free.
void* device_malloc(int device, size_t bytes, size_t* capacity);
// Returns a block to the cache. Work queued on the device's stream may still use it: the
// stream orders that work before any later use of the block.
void device_free(int device, void* ptr, size_t capacity);
// Queues a zero fill on the device's stream.
void device_zero(int device, void* ptr, size_t bytes);

// Copies between host and device through pinned staging buffers; the host buffer may be
// reused at once after either. host_to_device copies into a pinned buffer and queues the
// transfer without waiting for the work ahead of it; device_to_host waits for that work and
// the data. device_to_device only queues.
void host_to_device(int device, void* dst, const void* src, size_t bytes);
void device_to_host(int device, void* dst, const void* src, size_t bytes);
void device_to_device(int device, void* dst, const void* src, size_t bytes);
// Waits for all work queued on the device's stream.
void synchronize(int device);

// A temporary device block from the cache, returned by the destructor. Safe while work queued
// on the device's stream still uses it: the cache hands a freed block out again only to work
// queued later on that same stream.
class DeviceBuffer {
 public:
  DeviceBuffer(int device, size_t bytes) : device_(device), bytes_(bytes) {
    if (bytes > 0) ptr_ = device_malloc(device, bytes, &capacity_);
  }
  ~DeviceBuffer() { device_free(device_, ptr_, capacity_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <typename T = void>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

 private:
  int device_;
  size_t bytes_;
  void* ptr_ = nullptr;
  size_t capacity_ = 0;
};

// A device copy of a small host array (index or weight tables), queued through host_to_device,
// so the host array may go away at once and nothing waits for the stream.
template <typename T>
class DeviceCopy {
 public:
  DeviceCopy(int device, const T* host, int64_t count) : buffer_(device, sizeof(T) * static_cast<size_t>(count)) {
    if (count > 0) host_to_device(device, buffer_.as<T>(), host, buffer_.bytes());
  }
  T* get() const { return buffer_.as<T>(); }

 private:
  DeviceBuffer buffer_;
};

struct DeviceMemoryStats {
  int64_t in_use_bytes;  // bytes of live device storages (rounded block sizes)
  int64_t cached_bytes;  // bytes of freed blocks kept for reuse
  int64_t blocks_in_use;
  int64_t device_mallocs;  // cudaMalloc calls so far (a cache hit makes none)
};
DeviceMemoryStats device_memory_stats();
// Frees every cached block and staging buffer (cudaFree); blocks in use are kept.
void device_cache_clear();

}  // namespace lrface::cuda
