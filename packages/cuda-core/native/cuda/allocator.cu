// The caching device allocator, the per-device streams and the pinned staging buffers.
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "check.h"
#include "context.h"
#include "device_memory.h"

namespace lrface::cuda {

namespace {

constexpr size_t kSmallGranularity = 512;  // cudaMalloc's own alignment
constexpr size_t kStagingChunk = size_t(8) << 20;

// Small sizes round to 512 bytes, large ones to 1/8 of their power of two, so a cached block
// fits a range of requests and the cache does not fragment by exact size.
size_t round_size(size_t bytes) {
  size_t padded = ((bytes + kSmallGranularity - 1) / kSmallGranularity) * kSmallGranularity;
  if (padded == 0) padded = kSmallGranularity;
  if (padded <= (size_t(1) << 20)) return padded;
  size_t p = 1;
  while (p < padded) p <<= 1;
  size_t step = p >> 3;
  return ((padded + step - 1) / step) * step;
}

// Uploads go through a ring of pinned buffers, each reused only once the copy that last read
// it has run (its event), so an upload queues and returns instead of waiting for all the work
// ahead of it on the stream.
constexpr int kUploadSlots = 4;
struct UploadSlot {
  void* buffer = nullptr;  // pinned host memory
  size_t bytes = 0;
  cudaEvent_t read = nullptr;  // recorded after the copy that reads `buffer`
};

struct DeviceState {
  bool initialised = false;
  cudaStream_t stream = nullptr;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;
  UploadSlot uploads[kUploadSlots];
  int next_upload = 0;
  void* staging = nullptr;  // pinned host memory for downloads
  size_t staging_bytes = 0;
  int64_t in_use = 0;
  int64_t cached = 0;
  int64_t blocks = 0;
};

std::mutex g_mutex;
std::vector<DeviceState>& states() {
  static auto* instance = new std::vector<DeviceState>();  // never destroyed: storages may outlive statics
  return *instance;
}
int64_t g_mallocs = 0;

// Caller holds g_mutex.
DeviceState& state(int device) {
  auto& all = states();
  if (all.empty()) {
    int count = 0;
    LR_CUDA_CHECK(cudaGetDeviceCount(&count));
    all.resize(static_cast<size_t>(count));
  }
  LR_CHECK(device >= 0 && device < static_cast<int>(all.size()), Range, "cuda: device ", device, " does not exist (",
           all.size(), " CUDA devices)");
  DeviceState& s = all[static_cast<size_t>(device)];
  if (!s.initialised) {
    DeviceGuard guard(device);
    LR_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
    s.initialised = true;
  }
  return s;
}

// Caller holds g_mutex and has the device current.
void release_cached(DeviceState& s) {
  for (auto& [size, blocks] : s.free_blocks)
    for (void* p : blocks) cudaFree(p);
  s.free_blocks.clear();
  s.cached = 0;
}

// The next upload slot with room for min(bytes, kStagingChunk), once its last copy has read it.
// Caller holds g_mutex and has the device current.
UploadSlot& upload_slot(DeviceState& s, size_t bytes) {
  UploadSlot& slot = s.uploads[s.next_upload];
  s.next_upload = (s.next_upload + 1) % kUploadSlots;
  if (slot.read) LR_CUDA_CHECK(cudaEventSynchronize(slot.read));
  else LR_CUDA_CHECK(cudaEventCreateWithFlags(&slot.read, cudaEventDisableTiming));
  const size_t want = bytes < kStagingChunk ? bytes : kStagingChunk;
  if (slot.bytes < want) {
    if (slot.buffer) LR_CUDA_CHECK(cudaFreeHost(slot.buffer));
    slot.buffer = nullptr;
    slot.bytes = 0;
    LR_CUDA_CHECK_ALLOC(cudaMallocHost(&slot.buffer, want), want);
    slot.bytes = want;
  }
  return slot;
}

// Caller holds g_mutex and has the device current; the stream has finished.
void release_uploads(DeviceState& s) {
  for (UploadSlot& slot : s.uploads) {
    if (slot.buffer) cudaFreeHost(slot.buffer);
    if (slot.read) cudaEventDestroy(slot.read);
    slot = UploadSlot{};
  }
}

void ensure_staging(DeviceState& s, size_t bytes) {
  size_t want = bytes < kStagingChunk ? bytes : kStagingChunk;
  if (s.staging_bytes >= want) return;
  if (s.staging) LR_CUDA_CHECK(cudaFreeHost(s.staging));
  s.staging = nullptr;
  s.staging_bytes = 0;
  LR_CUDA_CHECK_ALLOC(cudaMallocHost(&s.staging, want), want);
  s.staging_bytes = want;
}

}  // namespace

DeviceGuard::DeviceGuard(int device) {
  LR_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != device) LR_CUDA_CHECK(cudaSetDevice(device));
}

DeviceGuard::~DeviceGuard() {
  int current = -1;
  if (cudaGetDevice(&current) == cudaSuccess && current != previous_ && previous_ >= 0) cudaSetDevice(previous_);
}

cudaStream_t device_stream(int device) {
  std::lock_guard<std::mutex> lock(g_mutex);
  return state(device).stream;
}

void* device_malloc(int device, size_t bytes, size_t* capacity) {
  std::lock_guard<std::mutex> lock(g_mutex);
  DeviceState& s = state(device);
  const size_t size = round_size(bytes);
  *capacity = size;
  auto it = s.free_blocks.find(size);
  if (it != s.free_blocks.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    s.cached -= static_cast<int64_t>(size);
    s.in_use += static_cast<int64_t>(size);
    ++s.blocks;
#ifdef LRFACE_CUDA_EMULATION
    // Test build: a block from the cache comes back filled with NaN, as a new one does, so an
    // output a kernel leaves partly unwritten shows instead of holding an earlier result.
    LR_CUDA_CHECK(cudaMemsetAsync(p, 0xff, size, s.stream));
#endif
    return p;
  }
  DeviceGuard guard(device);
  void* p = nullptr;
  cudaError_t status = cudaMalloc(&p, size);
  if (status == cudaErrorMemoryAllocation) {
    // The cache may hold enough in blocks of other sizes: give them back and try once more.
    cudaGetLastError();
    release_cached(s);
    status = cudaMalloc(&p, size);
  }
  if (status != cudaSuccess) fail_status(status, "cudaMalloc(&p, size)", __FILE__, __LINE__, size);
  ++g_mallocs;
  s.in_use += static_cast<int64_t>(size);
  ++s.blocks;
  return p;
}

void device_free(int device, void* ptr, size_t capacity) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  DeviceState& s = state(device);
  s.free_blocks[capacity].push_back(ptr);
  s.in_use -= static_cast<int64_t>(capacity);
  s.cached += static_cast<int64_t>(capacity);
  --s.blocks;
}

void device_zero(int device, void* ptr, size_t bytes) {
  if (bytes == 0) return;
  cudaStream_t stream = device_stream(device);
  DeviceGuard guard(device);
  LR_CUDA_CHECK(cudaMemsetAsync(ptr, 0, bytes, stream));
}

void host_to_device(int device, void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  std::lock_guard<std::mutex> lock(g_mutex);  // one user of the upload ring at a time
  DeviceState& s = state(device);
  DeviceGuard guard(device);
  for (size_t done = 0; done < bytes;) {
    UploadSlot& slot = upload_slot(s, bytes - done);
    const size_t n = bytes - done < slot.bytes ? bytes - done : slot.bytes;
    std::memcpy(slot.buffer, static_cast<const char*>(src) + done, n);
    LR_CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(dst) + done, slot.buffer, n, cudaMemcpyHostToDevice, s.stream));
    LR_CUDA_CHECK(cudaEventRecord(slot.read, s.stream));
    done += n;
  }
}

void device_to_host(int device, void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  DeviceState& s = state(device);
  DeviceGuard guard(device);
  ensure_staging(s, bytes);
  for (size_t done = 0; done < bytes; done += s.staging_bytes) {
    size_t n = bytes - done < s.staging_bytes ? bytes - done : s.staging_bytes;
    // Queued after every kernel already on the stream, so the data read is up to date.
    LR_CUDA_CHECK(cudaMemcpyAsync(s.staging, static_cast<const char*>(src) + done, n, cudaMemcpyDeviceToHost, s.stream));
    LR_CUDA_CHECK(cudaStreamSynchronize(s.stream));
    std::memcpy(static_cast<char*>(dst) + done, s.staging, n);
  }
}

void device_to_device(int device, void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  cudaStream_t stream = device_stream(device);
  DeviceGuard guard(device);
  LR_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
}

void synchronize(int device) {
  cudaStream_t stream = device_stream(device);
  DeviceGuard guard(device);
  LR_CUDA_CHECK(cudaStreamSynchronize(stream));
}

DeviceMemoryStats device_memory_stats() {
  std::lock_guard<std::mutex> lock(g_mutex);
  DeviceMemoryStats out{0, 0, 0, g_mallocs};
  for (const DeviceState& s : states()) {
    out.in_use_bytes += s.in_use;
    out.cached_bytes += s.cached;
    out.blocks_in_use += s.blocks;
  }
  return out;
}

void device_cache_clear() {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto& all = states();
  for (size_t d = 0; d < all.size(); ++d) {
    DeviceState& s = all[d];
    if (!s.initialised) continue;
    DeviceGuard guard(static_cast<int>(d));
    // Queued work may still read a cached block's last contents: let it finish first.
    LR_CUDA_CHECK(cudaStreamSynchronize(s.stream));
    release_cached(s);
    release_uploads(s);
    if (s.staging) cudaFreeHost(s.staging);
    s.staging = nullptr;
    s.staging_bytes = 0;
  }
}

}  // namespace lrface::cuda
