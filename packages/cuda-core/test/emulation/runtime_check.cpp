// Checks the emulated CUDA runtime itself (cuda_runtime.h, as the emulated addon builds it,
// with LRFACE_CUDA_EMULATION): launch limits and the errors a device gives for a bad
// configuration, thread and block indices, barriers and shared memory, atomics, the device
// memory limit, copies that stray outside device blocks, the order and timing of queued work,
// streams and events, device queries.
// Prints one line per failed check and a summary; exit status 1 on any failure.
//
// Built and run by run.mjs: g++ -DLRFACE_CUDA_EMULATION -I<this dir> -I<native/cuda>.
#include "cuda_runtime.h"
#include "launch.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

int g_checks = 0, g_failures = 0;

void check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    std::printf("FAIL %s\n", what.c_str());
  }
}

void check_status(cudaError_t got, cudaError_t want, const std::string& what) {
  check(got == want, what + ": got " + cudaGetErrorName(got) + ", expected " + cudaGetErrorName(want));
}

// Device memory is only reachable through copies here, as on a GPU.
template <typename T>
T read_back(const T* device) {
  T value;
  cudaMemcpy(&value, device, sizeof(T), cudaMemcpyDeviceToHost);
  return value;
}
template <typename T>
void store(T* device, T value) {
  cudaMemcpy(device, &value, sizeof(T), cudaMemcpyHostToDevice);
}
template <typename T>
std::vector<T> read_back(const T* device, size_t count) {
  std::vector<T> values(count);
  cudaMemcpy(values.data(), device, sizeof(T) * count, cudaMemcpyDeviceToHost);
  return values;
}

__global__ void count_threads(int* counter) { atomicAdd(counter, 1); }

// Each thread writes its global linear index at that index.
__global__ void write_indices(int* out) {
  const unsigned block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  const unsigned thread = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  const unsigned per_block = blockDim.x * blockDim.y * blockDim.z;
  out[block * per_block + thread] = static_cast<int>(block * per_block + thread);
}

// A tree reduction through shared memory: wrong without barriers that hold every thread.
__global__ void block_sums(const float* x, float* out) {
  __shared__ float partial[256];
  partial[threadIdx.x] = x[blockIdx.x * blockDim.x + threadIdx.x];
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = partial[0];
}

__global__ void add_atomically(float* f, double* d, int* i) {
  atomicAdd(f, 0.5f);
  atomicAdd(d, 0.25);
  atomicAdd(i, 2);
}

// The order in which the threads of a block get past two points, before and after a barrier.
__global__ void arrival_order(int* tickets, int* before, int* after) {
  before[threadIdx.x] = atomicAdd(tickets, 1);
  __syncthreads();
  after[threadIdx.x] = atomicAdd(tickets + 1, 1);
}

void check_launches() {
  int* counter = nullptr;
  check_status(cudaMalloc(&counter, sizeof(int)), cudaSuccess, "cudaMalloc of a counter");
  cudaMemset(counter, 0, sizeof(int));
  struct Bad {
    const char* what;
    dim3 grid, block;
  };
  const Bad bad[] = {
      {"an empty block", dim3(1), dim3(0)},
      {"1025 threads per block", dim3(1), dim3(1025)},
      {"65 threads along z", dim3(1), dim3(1, 1, 65)},
      {"an empty grid", dim3(0), dim3(32)},
      {"65536 blocks along y", dim3(1, 65536), dim3(32)},
      {"65536 blocks along z", dim3(1, 1, 65536), dim3(32)},
  };
  for (const Bad& b : bad) {
    LRFACE_LAUNCH(count_threads, b.grid, b.block, 0, nullptr)(counter);
    check_status(cudaGetLastError(), cudaErrorInvalidConfiguration, std::string("launch with ") + b.what);
    // Not sticky: the next query is clean, as on a device.
    check_status(cudaGetLastError(), cudaSuccess, std::string("the error after ") + b.what + " is read once");
  }
  check(read_back(counter) == 0, "no thread of a refused launch ran");

  LRFACE_LAUNCH(count_threads, dim3(3, 2, 2), dim3(8, 4, 2), 0, nullptr)(counter);
  check_status(cudaGetLastError(), cudaSuccess, "a valid 3D launch");
  check(read_back(counter) == 12 * 64, "every thread of a 3D launch ran once: " + std::to_string(read_back(counter)));

  const int blocks = 6, threads = 1024;
  int* out = nullptr;
  cudaMalloc(&out, sizeof(int) * blocks * threads);
  LRFACE_LAUNCH(write_indices, dim3(3, 2), dim3(16, 64), 0, nullptr)(out);
  const std::vector<int> indices = read_back(out, blocks * threads);
  bool indices_ok = true;
  for (int i = 0; i < blocks * threads; ++i) indices_ok &= indices[i] == i;
  check(indices_ok, "threadIdx/blockIdx/blockDim/gridDim cover a 2D grid of 2D blocks exactly once");
  cudaFree(out);

  // Between two barriers the threads run in turn from the first and from the last, so a read
  // of another thread's write that lacks a barrier gives a different result in one of them.
  int *tickets = nullptr, *before = nullptr, *after = nullptr;
  cudaMalloc(&tickets, 2 * sizeof(int));
  cudaMalloc(&before, 64 * sizeof(int));
  cudaMalloc(&after, 64 * sizeof(int));
  cudaMemset(tickets, 0, 2 * sizeof(int));
  LRFACE_LAUNCH(arrival_order, 1, 64, 0, nullptr)(tickets, before, after);
  const std::vector<int> first = read_back(before, 64), second = read_back(after, 64);
  bool forward = true, backward = true;
  for (int t = 0; t < 64; ++t) {
    forward &= first[t] == t;
    backward &= second[t] == 63 - t;
  }
  check(forward && backward, "threads run first to last before a barrier, last to first after it");
  cudaFree(tickets);
  cudaFree(before);
  cudaFree(after);
  cudaFree(counter);
}

void check_barriers_and_atomics() {
  const int blocks = 5, threads = 256;
  float *x = nullptr, *sums = nullptr;
  cudaMalloc(&x, sizeof(float) * blocks * threads);
  cudaMalloc(&sums, sizeof(float) * blocks);
  std::vector<float> values(blocks * threads);
  for (int i = 0; i < blocks * threads; ++i) values[i] = static_cast<float>(i % 7);
  cudaMemcpy(x, values.data(), sizeof(float) * values.size(), cudaMemcpyHostToDevice);
  LRFACE_LAUNCH(block_sums, blocks, threads, 0, nullptr)(x, sums);
  check_status(cudaGetLastError(), cudaSuccess, "the reduction launch");
  const std::vector<float> got = read_back(sums, blocks);
  for (int b = 0; b < blocks; ++b) {
    double want = 0;
    for (int t = 0; t < threads; ++t) want += (b * threads + t) % 7;
    check(got[b] == static_cast<float>(want),
          "block " + std::to_string(b) + "'s shared-memory sum " + std::to_string(got[b]) + " == " + std::to_string(want));
  }
  cudaFree(x);
  cudaFree(sums);

  float* f = nullptr;
  double* d = nullptr;
  int* i = nullptr;
  cudaMalloc(&f, sizeof(float));
  cudaMalloc(&d, sizeof(double));
  cudaMalloc(&i, sizeof(int));
  store(f, 1.0f);
  store(d, 0.0);
  store(i, -3);
  LRFACE_LAUNCH(add_atomically, 4, 100, 0, nullptr)(f, d, i);
  check(read_back(f) == 201.0f && read_back(d) == 100.0 && read_back(i) == 797,
        "atomicAdd on float, double and int from 400 threads");
  cudaFree(f);
  cudaFree(d);
  cudaFree(i);
}

void check_memory(size_t limit) {
  size_t free_bytes = 0, total = 0;
  check_status(cudaMemGetInfo(&free_bytes, &total), cudaSuccess, "cudaMemGetInfo");
  check(total == limit && free_bytes == limit, "the device has LRFACE_EMULATED_DEVICE_BYTES, all free");
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  check(prop.totalGlobalMem == limit, "totalGlobalMem is the limit");

  void* a = nullptr;
  check_status(cudaMalloc(&a, 1000), cudaSuccess, "cudaMalloc(1000)");
  check(reinterpret_cast<uintptr_t>(a) % 256 == 0, "device blocks are 256-byte aligned");
  bool filled = true;
  for (unsigned char byte : read_back(static_cast<unsigned char*>(a), 1000)) filled &= byte == 0xff;
  check(filled, "a new block holds 0xff bytes (NaN as float32), not zeros");
  cudaMemGetInfo(&free_bytes, &total);
  check(free_bytes == limit - 1024, "free memory drops by the padded size: " + std::to_string(free_bytes));

  void* huge = reinterpret_cast<void*>(1);
  check_status(cudaMalloc(&huge, limit), cudaErrorMemoryAllocation, "cudaMalloc past the limit");
  check(huge == nullptr, "a failed cudaMalloc sets the pointer to null");
  check_status(cudaGetLastError(), cudaErrorMemoryAllocation, "the failure is the last error");

  // Copies: the device side must lie inside one live block, the host side outside every one.
  std::vector<char> host(2000, 1);
  check_status(cudaMemcpy(a, host.data(), 1000, cudaMemcpyHostToDevice), cudaSuccess, "a copy into the whole block");
  check_status(cudaMemcpy(a, host.data(), 1025, cudaMemcpyHostToDevice), cudaErrorInvalidValue,
               "a copy past the end of the block");
  check_status(cudaMemcpy(host.data(), host.data() + 1000, 10, cudaMemcpyDeviceToHost), cudaErrorInvalidValue,
               "a device-to-host copy from host memory");
  check_status(cudaMemcpy(static_cast<char*>(a) + 8, host.data(), 10, cudaMemcpyDeviceToHost), cudaErrorInvalidValue,
               "a device-to-host copy into device memory");
  check_status(cudaMemsetAsync(static_cast<char*>(a) + 1000, 0, 100, nullptr), cudaErrorInvalidValue,
               "a fill past the end of the block");
  check_status(cudaMemcpy2DAsync(a, 100, host.data(), 100, 100, 10, cudaMemcpyHostToDevice, nullptr), cudaSuccess,
               "a 2D copy inside the block");
  check_status(cudaMemcpy2DAsync(a, 200, host.data(), 100, 100, 10, cudaMemcpyHostToDevice, nullptr),
               cudaErrorInvalidValue, "a 2D copy whose last row leaves the block");
  cudaGetLastError();

  check_status(cudaFree(a), cudaSuccess, "cudaFree");
  check_status(cudaFree(a), cudaErrorInvalidValue, "a second cudaFree of the same block");
  check_status(cudaMemcpy(a, host.data(), 10, cudaMemcpyHostToDevice), cudaErrorInvalidValue, "a copy into a freed block");
  cudaGetLastError();
  cudaMemGetInfo(&free_bytes, &total);
  check(free_bytes == limit, "freeing returns the memory");

  void* pinned = nullptr;
  check_status(cudaMallocHost(&pinned, 100), cudaSuccess, "cudaMallocHost");
  check_status(cudaFreeHost(pinned), cudaSuccess, "cudaFreeHost");
  check_status(cudaFreeHost(host.data()), cudaErrorInvalidValue, "cudaFreeHost of pageable memory");
  cudaGetLastError();
}

// Host code that dereferences a device pointer dies of SIGSEGV with a message naming the cause
// (checked in a child process); the same memory through a copy reads fine.
void check_host_access_faults() {
  float* p = nullptr;
  cudaMalloc(&p, 64);
  store(p + 3, 2.5f);
  check(read_back(p + 3) == 2.5f, "device memory through copies");
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return check(false, "pipe()");
  std::fflush(stdout);
  const pid_t child = fork();
  if (child == 0) {
    dup2(pipe_fds[1], 2);
    volatile float v = p[3];  // host code reading device memory
    (void)v;
    _exit(0);
  }
  close(pipe_fds[1]);
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<size_t>(n));
  close(pipe_fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  check(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "a host read of device memory dies of SIGSEGV");
  check(text.find("host code read or wrote device memory outside a kernel or copy") != std::string::npos,
        "the fault is explained: " + text.substr(0, 200));
  cudaFree(p);
}

__global__ void fill(float* out, float value, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) out[i] = value;
}

// Work on a stream runs only when the host waits, so code that does not wait sees stale data.
void check_stream_order() {
  cudaStream_t stream = nullptr;
  cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  float* device = nullptr;
  float* pinned = nullptr;
  cudaMalloc(&device, sizeof(float) * 100);
  cudaMallocHost(&pinned, sizeof(float) * 100);
  for (int i = 0; i < 100; ++i) pinned[i] = -1;

  // Kernel, then a copy into pinned memory: neither has run before the stream is waited for.
  LRFACE_LAUNCH(fill, 1, 32, 0, stream)(device, 3.0f, 100);
  cudaMemcpyAsync(pinned, device, sizeof(float) * 100, cudaMemcpyDeviceToHost, stream);
  check(pinned[99] == -1, "a queued copy into pinned memory has not run before the host waits");
  cudaStreamSynchronize(stream);
  check(pinned[0] == 3 && pinned[99] == 3, "cudaStreamSynchronize runs the queued kernel and copy");

  // From pinned memory the source is read when the copy runs; from pageable memory at the call.
  pinned[0] = 7;
  cudaMemcpyAsync(device, pinned, sizeof(float), cudaMemcpyHostToDevice, stream);
  pinned[0] = 8;  // before the queued copy runs: it copies 8
  std::vector<float> pageable(1, 5.0f);
  cudaMemcpyAsync(device + 1, pageable.data(), sizeof(float), cudaMemcpyHostToDevice, stream);
  pageable[0] = 6;  // after the call: the copy keeps 5
  cudaEvent_t done = nullptr;
  cudaEventCreateWithFlags(&done, cudaEventDisableTiming);
  cudaEventRecord(done, stream);
  cudaEventSynchronize(done);
  // Into pageable memory the copy waits for the work ahead of it.
  float two[2] = {0, 0};
  cudaMemcpyAsync(two, device, sizeof two, cudaMemcpyDeviceToHost, stream);
  check(two[0] == 8 && two[1] == 5, "pinned sources are read when the copy runs, pageable ones at the call: " +
                                        std::to_string(two[0]) + ", " + std::to_string(two[1]));

  // A fill is queued too; cudaFree waits for the device before the block goes.
  cudaMemsetAsync(device, 0, sizeof(float) * 100, stream);
  check(read_back(device + 50) == 0.0f, "a synchronous copy waits for the queued fill");
  cudaEventDestroy(done);
  cudaFreeHost(pinned);
  cudaFree(device);
  cudaStreamDestroy(stream);
}

void check_streams_and_devices() {
  cudaStream_t stream = nullptr;
  cudaEvent_t event = nullptr;
  check_status(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess, "cudaStreamCreateWithFlags");
  check_status(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), cudaSuccess, "cudaEventCreateWithFlags");
  check_status(cudaEventRecord(event, stream), cudaSuccess, "cudaEventRecord");
  check_status(cudaEventSynchronize(event), cudaSuccess, "cudaEventSynchronize");
  check_status(cudaStreamSynchronize(stream), cudaSuccess, "cudaStreamSynchronize");
  check_status(cudaEventDestroy(event), cudaSuccess, "cudaEventDestroy");
  check_status(cudaEventSynchronize(event), cudaErrorInvalidResourceHandle, "synchronising a destroyed event");
  check_status(cudaStreamDestroy(stream), cudaSuccess, "cudaStreamDestroy");
  check_status(cudaStreamSynchronize(stream), cudaErrorInvalidResourceHandle, "synchronising a destroyed stream");
  cudaGetLastError();

  int count = 0, device = -1, value = 0, version = 0;
  check(cudaGetDeviceCount(&count) == cudaSuccess && count == 1, "one device");
  check(cudaGetDevice(&device) == cudaSuccess && device == 0, "device 0 is current");
  check_status(cudaSetDevice(1), cudaErrorInvalidDevice, "cudaSetDevice(1)");
  cudaGetLastError();
  cudaDeviceProp prop;
  check_status(cudaGetDeviceProperties(&prop, 1), cudaErrorInvalidDevice, "the properties of device 1");
  cudaGetLastError();
  cudaGetDeviceProperties(&prop, 0);
  check(std::strcmp(prop.name, "lrface host emulation of CUDA") == 0 && prop.major == 9 && prop.minor == 0,
        "the device names itself an emulation, compute capability 9.0");
  check(cudaDeviceGetAttribute(&value, cudaDevAttrMultiProcessorCount, 0) == cudaSuccess &&
            value == prop.multiProcessorCount,
        "the multiprocessor count agrees with the properties");
  check(cudaRuntimeGetVersion(&version) == cudaSuccess && version > 0, "a runtime version");
  check(std::string(cudaGetErrorName(cudaErrorMemoryAllocation)) == "cudaErrorMemoryAllocation" &&
            std::string(cudaGetErrorString(cudaErrorMemoryAllocation)) == "out of memory",
        "error names and texts as the runtime's");
}

}  // namespace

int main() {
  const size_t limit = size_t(64) << 20;
  setenv("LRFACE_EMULATED_DEVICE_BYTES", std::to_string(limit).c_str(), 1);
  check_memory(limit);
  check_launches();
  check_barriers_and_atomics();
  check_host_access_faults();
  check_stream_order();
  check_streams_and_devices();
  std::printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
