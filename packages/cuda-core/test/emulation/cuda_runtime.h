// Host emulation of the CUDA runtime, so the CUDA backend's sources compile with g++ and run
// on machines without a GPU. Two users: gemm_conv_check.cpp (gemm_conv.cu's kernels against
// naive references, run by run.mjs) and the emulated addon (CMake option
// LRFACE_CUDA_EMULATION, every .cu file compiled as C++ against this header).
//
// Kernels: each block's threads run as fibers on one OS thread, switched at __syncthreads(),
// from the first thread and from the last in turn; kernels whose first block reaches no
// barrier run their threads as plain calls. __shared__ arrays become statics, which the
// fibers of a block share. Launches are written LRFACE_LAUNCH(kernel, grid, block, shared,
// stream)(args) (native/cuda/launch.h), which expands to emu::launch here. Launch
// configurations past the hardware's limits fail as on a device (cudaErrorInvalidConfiguration
// from cudaGetLastError()). The emulated device runs one kernel at a time, to completion.
//
// Runtime (the second part of this file), for the addon: one device. Work queued on a stream
// runs in order when the host next waits for it (all streams share one queue, a valid
// schedule). Device memory is host memory in one reserved range, counted against an optional
// limit and inaccessible (PROT_NONE) except while a kernel, copy or fill runs: host code that
// dereferences a device pointer faults, with a message, as it could not work on a GPU either.
// Copies check that their device side lies inside one live device block. For
// gemm_conv_check.cpp (no LRFACE_CUDA_EMULATION) work runs at once and memory is its own.
#pragma once
#include <execinfo.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline uint3 threadIdx{0, 0, 0}, blockIdx{0, 0, 0};
inline dim3 blockDim, gridDim;

inline int64_t min(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max(int64_t a, int64_t b) { return a > b ? a : b; }

// The runtime's own values, so a status code means the same as on a device.
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
};
struct CUstream_st;
using cudaStream_t = CUstream_st*;

namespace emu {

// Per host thread, as the runtime's last error.
inline thread_local cudaError_t last_error = cudaSuccess;
// Held by all device work (kernels, copies, fills, allocation): the fibers, threadIdx/blockIdx,
// the __shared__ statics and the queue are global, and the device runs one thing at a time.
inline std::recursive_mutex launch_mutex;
inline int multiprocessors = 132;  // an H100/H200
inline int64_t launches = 0;

// A fiber starts through makecontext/swapcontext; after that, switches go through
// _setjmp/_longjmp, which (unlike swapcontext) make no system call for the signal mask.
struct Fiber {
  ucontext_t start;
  jmp_buf resume;
  bool started = false;
  bool done = false;
  bool at_barrier = false;
};
inline ucontext_t scheduler_context;
inline jmp_buf scheduler;
inline std::vector<Fiber> fibers;
inline std::vector<std::vector<char>> stacks;
inline int current = 0;
inline const std::function<void()>* body = nullptr;

inline void fiber_main() {
  (*body)();
  fibers[current].done = true;
  _longjmp(scheduler, 1);
}

// A kernel's first block runs as fibers, which tells whether it reaches __syncthreads(); the
// blocks of kernels that do not run their threads as plain calls, one after the other (much
// faster). Nothing runs twice, so a thread's writes before a barrier are never repeated.
struct BarrierOutsideFibers {};
inline bool in_fibers = false;
inline bool barrier_reached = false;
inline std::unordered_map<const void*, bool> kernel_has_barriers;

inline void syncthreads() {
  if (!in_fibers) throw BarrierOutsideFibers{};
  barrier_reached = true;
  fibers[current].at_barrier = true;
  if (_setjmp(fibers[current].resume) == 0) _longjmp(scheduler, 1);
}

[[noreturn]] inline void die(const char* what) {
  std::fprintf(stderr, "emulation: %s\n", what);
  std::exit(3);
}

inline void set_thread(unsigned t) {
  threadIdx = uint3{t % blockDim.x, (t / blockDim.x) % blockDim.y, t / (blockDim.x * blockDim.y)};
}

// Runs one block: every thread up to its next barrier, then every thread again, until all
// have returned, in turn from the first thread and from the last, so a thread that reads what
// another wrote without a barrier between sees the difference. A barrier that some threads of
// the block never reach is an error here (as it would hang or be undefined on a device).
inline void run_block_in_fibers(const std::function<void()>& kernel_body, unsigned threads) {
  constexpr size_t kStack = 64 << 10;
  in_fibers = true;
  if (stacks.size() < threads) stacks.resize(threads, std::vector<char>(kStack));
  fibers.assign(threads, Fiber{});
  body = &kernel_body;
  for (unsigned round = 0;; ++round) {
    for (unsigned i = 0; i < threads; ++i) {
      const unsigned t = round % 2 ? threads - 1 - i : i;
      Fiber& f = fibers[t];
      if (f.done) continue;
      current = static_cast<int>(t);
      set_thread(t);
      f.at_barrier = false;
      if (_setjmp(scheduler) != 0) continue;  // the fiber reached a barrier or returned
      if (f.started) _longjmp(f.resume, 1);
      f.started = true;
      getcontext(&f.start);
      f.start.uc_stack.ss_sp = stacks[t].data();
      f.start.uc_stack.ss_size = kStack;
      f.start.uc_link = nullptr;
      makecontext(&f.start, fiber_main, 0);
      swapcontext(&scheduler_context, &f.start);
    }
    unsigned finished = 0, waiting = 0;
    for (unsigned t = 0; t < threads; ++t) {
      finished += fibers[t].done;
      waiting += fibers[t].at_barrier && !fibers[t].done;
    }
    if (finished == threads) break;
    if (waiting != threads) die("__syncthreads() not reached by every thread of the block");
  }
  in_fibers = false;
}

inline void run_block(const void* kernel, const std::function<void()>& kernel_body, unsigned threads) {
  auto known = kernel_has_barriers.find(kernel);
  if (known == kernel_has_barriers.end()) {
    barrier_reached = false;
    run_block_in_fibers(kernel_body, threads);
    kernel_has_barriers[kernel] = barrier_reached;
    return;
  }
  if (known->second) return run_block_in_fibers(kernel_body, threads);
  try {
    for (unsigned t = 0; t < threads; ++t) {
      set_thread(t);
      kernel_body();
    }
  } catch (const BarrierOutsideFibers&) {
    die("a kernel reached __syncthreads() in a later block but not in its first one (a barrier that depends on "
        "blockIdx); the emulation ran that block's threads as plain calls and cannot replay them");
  }
}

// While one lives, device memory is readable and writable by this process (kernels, copies,
// fills); see Arena below. Nothing to open in gemm_conv_check.cpp, which has its own allocator.
struct DeviceAccess {
  DeviceAccess();
  ~DeviceAccess();
  DeviceAccess(const DeviceAccess&) = delete;
  DeviceAccess& operator=(const DeviceAccess&) = delete;
};

// Work queued on streams. In the emulated addon (LRFACE_CUDA_EMULATION) it runs in queue order
// at the next point where the host waits for the device (a synchronisation, a copy to pageable
// memory, cudaFree), as a GPU may run it any time before then: host code that reads a result
// or reuses a buffer without waiting sees that it did not wait. Elsewhere it runs at once.
inline std::deque<std::function<void()>>& queued() {
  static auto* q = new std::deque<std::function<void()>>();
  return *q;
}
inline void enqueue(std::function<void()> work) {
#ifdef LRFACE_CUDA_EMULATION
  std::lock_guard<std::recursive_mutex> lock(launch_mutex);
  queued().push_back(std::move(work));
#else
  work();
#endif
}
// Runs everything queued so far.
inline void drain() {
  std::lock_guard<std::recursive_mutex> lock(launch_mutex);
  while (!queued().empty()) {
    std::function<void()> work = std::move(queued().front());
    queued().pop_front();
    work();
  }
}

template <typename... Params>
struct Launcher {
  void (*kernel)(Params...);
  dim3 grid, block;
  template <typename... Args>
  void operator()(Args... args) const {
    const uint64_t threads = uint64_t(block.x) * block.y * block.z;
    // A bad configuration fails at the launch, as on a device; the kernel itself is queued.
    if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
        grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
      last_error = cudaErrorInvalidConfiguration;
      return;
    }
    enqueue([kernel = kernel, grid = grid, block = block, threads, args...]() {
      std::lock_guard<std::recursive_mutex> lock(launch_mutex);
      DeviceAccess access;
      ++launches;
      gridDim = grid;
      blockDim = block;
      const std::function<void()> run = [&]() { kernel(args...); };
      for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
          for (unsigned x = 0; x < grid.x; ++x) {
            blockIdx = uint3{x, y, z};
            run_block(reinterpret_cast<const void*>(kernel), run, static_cast<unsigned>(threads));
          }
    });
  }
};

template <typename... Params>
Launcher<Params...> launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t = 0, cudaStream_t = nullptr) {
  return Launcher<Params...>{kernel, grid, block};
}

}  // namespace emu

#define __syncthreads() ::emu::syncthreads()

inline cudaError_t cudaGetLastError() {
  cudaError_t e = emu::last_error;
  emu::last_error = cudaSuccess;
  return e;
}
inline cudaError_t cudaPeekAtLastError() { return emu::last_error; }

inline const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
  }
  return "cudaErrorUnknown";
}
inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
  }
  return "unrecognized error code";
}

// ---- the runtime of the emulated device -------------------------------------------------

constexpr int cudaStreamDefault = 0;
constexpr int cudaStreamNonBlocking = 1;
constexpr int cudaEventDefault = 0;
constexpr int cudaEventDisableTiming = 2;
struct CUevent_st;
using cudaEvent_t = CUevent_st*;

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int major;
  int minor;
  int multiProcessorCount;
};

namespace emu {

inline constexpr const char* kDeviceName = "lrface host emulation of CUDA";
inline constexpr int kRuntimeVersion = 13000;  // the CUDA release whose API this follows

// The device's memory: LRFACE_EMULATED_DEVICE_BYTES (default 8 GiB) is both its size and
// the limit past which cudaMalloc fails with cudaErrorMemoryAllocation. Nothing is taken
// from the host until allocated.
inline size_t device_bytes() {
  static const size_t bytes = [] {
    const char* text = std::getenv("LRFACE_EMULATED_DEVICE_BYTES");
    const unsigned long long v = text ? std::strtoull(text, nullptr, 10) : 0;
    return v > 0 ? static_cast<size_t>(v) : size_t(8) << 30;
  }();
  return bytes;
}

struct Memory {
  std::mutex mutex;
  std::map<uintptr_t, size_t> device;  // start -> bytes of every live cudaMalloc block
  std::map<uintptr_t, size_t> pinned;  // likewise for cudaMallocHost
  size_t used = 0;
};
inline Memory& memory() {
  static auto* m = new Memory();  // never destroyed: storages may be freed after statics
  return *m;
}

// Whether [p, p + bytes) lies inside one live block of `blocks`. Caller holds the mutex.
inline bool inside(const std::map<uintptr_t, size_t>& blocks, const void* p, size_t bytes) {
  const uintptr_t at = reinterpret_cast<uintptr_t>(p);
  auto it = blocks.upper_bound(at);
  if (it == blocks.begin()) return false;
  --it;
  return at >= it->first && at - it->first <= it->second && bytes <= it->second - (at - it->first);
}
inline bool is_device(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(memory().mutex);
  return inside(memory().device, p, bytes);
}
// Whether p points into a live device block (host memory never does).
inline bool touches_device(const void* p) {
  const uintptr_t at = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(memory().mutex);
  auto it = memory().device.upper_bound(at);
  if (it == memory().device.begin()) return false;
  --it;
  return at - it->first < it->second;
}

inline thread_local int current_device = 0;

// Stream and event handles are distinct live objects, so a destroyed or foreign one is caught.
struct Handles {
  std::mutex mutex;
  std::map<const void*, bool> live;
};
inline Handles& handles() {
  static auto* h = new Handles();
  return *h;
}
inline void* new_handle() {
  void* p = std::malloc(1);
  std::lock_guard<std::mutex> lock(handles().mutex);
  handles().live[p] = true;
  return p;
}
inline bool valid_handle(const void* p) {
  if (p == nullptr) return true;  // the default stream
  std::lock_guard<std::mutex> lock(handles().mutex);
  return handles().live.count(p) > 0;
}
inline cudaError_t destroy_handle(void* p) {
  {
    std::lock_guard<std::mutex> lock(handles().mutex);
    if (p == nullptr || handles().live.erase(p) == 0) return last_error = cudaErrorInvalidResourceHandle;
  }
  std::free(p);
  return cudaSuccess;
}

inline cudaError_t fail(cudaError_t e) { return last_error = e; }

// A copy's device side must lie inside one live device block and its host side outside every
// one (the addon's copies name their direction; cudaMemcpyDefault infers it as on a device).
inline cudaError_t check_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
#ifdef LRFACE_CUDA_EMULATION
  if (bytes == 0) return cudaSuccess;
  const bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind == cudaMemcpyDefault) return cudaSuccess;
  if (kind > cudaMemcpyDefault) return fail(cudaErrorInvalidMemcpyDirection);
  if (dst_device ? !is_device(dst, bytes) : touches_device(dst)) return fail(cudaErrorInvalidValue);
  if (src_device ? !is_device(src, bytes) : touches_device(src)) return fail(cudaErrorInvalidValue);
#else
  (void)dst, (void)src, (void)bytes, (void)kind;  // gemm_conv_check.cpp has its own allocator
#endif
  return cudaSuccess;
}

}  // namespace emu

inline cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int device) {
  if (device != 0) return emu::fail(cudaErrorInvalidDevice);
  emu::current_device = device;
  return cudaSuccess;
}
inline cudaError_t cudaGetDevice(int* device) {
  *device = emu::current_device;
  return cudaSuccess;
}
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return emu::fail(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "%s", emu::kDeviceName);
  prop->totalGlobalMem = emu::device_bytes();
  prop->sharedMemPerBlock = 48 << 10;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = emu::multiprocessors;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return emu::fail(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = 48 << 10; return cudaSuccess;
    case cudaDevAttrWarpSize: *value = 32; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = emu::multiprocessors; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
  }
  return emu::fail(cudaErrorInvalidValue);
}
inline cudaError_t cudaRuntimeGetVersion(int* version) {
  *version = emu::kRuntimeVersion;
  return cudaSuccess;
}
inline cudaError_t cudaDriverGetVersion(int* version) {
  *version = emu::kRuntimeVersion;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() {
  emu::drain();
  return cudaSuccess;
}

namespace emu {

// The device's memory: one range of address space reserved at the first cudaMalloc, blocks
// carved from it first-fit at 256-byte alignment. It is PROT_NONE except inside a DeviceAccess.
struct Arena {
  char* base = nullptr;
  size_t size = 0;
  size_t high = 0;                      // end of the highest block handed out
  std::map<size_t, size_t> free_spans;  // offset -> bytes, coalesced
  int open_depth = 0;
  size_t opened = 0;  // bytes from base made accessible by the outermost DeviceAccess
};
inline Arena& arena() {
  static auto* a = new Arena();
  return *a;
}
inline struct sigaction previous_segv_action;

// A fault inside the arena is host code touching device memory: say so, with a backtrace,
// then die of the signal. Any other fault goes to the handler that was there before.
inline void on_segv(int sig, siginfo_t* info, void* context) {
  const Arena& a = arena();
  const char* at = static_cast<const char*>(info->si_addr);
  if (a.base && at >= a.base && at < a.base + a.size) {
    static const char text[] =
        "emulation: host code read or wrote device memory outside a kernel or copy (on a GPU this pointer is not "
        "host memory); backtrace:\n";
    if (write(2, text, sizeof text - 1) < 0) {}
    void* frames[64];
    backtrace_symbols_fd(frames, backtrace(frames, 64), 2);
    signal(SIGSEGV, SIG_DFL);
    return;  // the access faults again, now fatally
  }
  const struct sigaction& prev = previous_segv_action;
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction) return prev.sa_sigaction(sig, info, context);
  } else if (prev.sa_handler == SIG_IGN) {
    return;
  } else if (prev.sa_handler != SIG_DFL && prev.sa_handler) {
    return prev.sa_handler(sig);
  }
  signal(SIGSEGV, SIG_DFL);
}

// Caller holds launch_mutex.
inline bool reserve_arena() {
  Arena& a = arena();
  if (a.base) return true;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t size = (device_bytes() + page - 1) / page * page;
  void* p = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    std::fprintf(stderr,
                 "emulation: could not reserve %zu bytes of address space for the emulated device's memory; "
                 "set LRFACE_EMULATED_DEVICE_BYTES lower\n",
                 size);
    return false;
  }
  a.base = static_cast<char*>(p);
  a.size = size;
  a.free_spans[0] = size;
  void* frames[1];
  backtrace(frames, 1);  // loads the unwinder now, not first inside the signal handler
  struct sigaction action {};
  action.sa_sigaction = on_segv;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, &previous_segv_action);
  return true;
}

// Makes [base, base + bytes) accessible (or all of it inaccessible with bytes == 0).
inline void set_accessible(size_t bytes) {
  Arena& a = arena();
  if (!a.base) return;
  if (bytes > a.opened) mprotect(a.base + a.opened, bytes - a.opened, PROT_READ | PROT_WRITE);
  else if (bytes == 0 && a.opened > 0) mprotect(a.base, a.opened, PROT_NONE);
  a.opened = bytes;
}

}  // namespace emu

#ifdef LRFACE_CUDA_EMULATION
inline emu::DeviceAccess::DeviceAccess() {
  launch_mutex.lock();
  Arena& a = arena();
  if (a.open_depth++ == 0) set_accessible(a.high);
}
inline emu::DeviceAccess::~DeviceAccess() {
  if (--arena().open_depth == 0) set_accessible(0);
  launch_mutex.unlock();
}
#else
inline emu::DeviceAccess::DeviceAccess() {}
inline emu::DeviceAccess::~DeviceAccess() {}
#endif

// Device memory: blocks of the arena, filled with 0xff bytes (NaN as float32, -1 as int32) so
// a kernel that reads what nothing wrote shows it in its results.
inline cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  std::lock_guard<std::recursive_mutex> lock(emu::launch_mutex);
  emu::Memory& m = emu::memory();
  emu::Arena& a = emu::arena();
  const size_t padded = (bytes + 255) / 256 * 256;
  if (padded > emu::device_bytes() - m.used || !emu::reserve_arena()) return emu::fail(cudaErrorMemoryAllocation);
  auto span = a.free_spans.begin();
  while (span != a.free_spans.end() && span->second < padded) ++span;
  if (span == a.free_spans.end()) return emu::fail(cudaErrorMemoryAllocation);  // fragmented
  const size_t offset = span->first, rest = span->second - padded;
  a.free_spans.erase(span);
  if (rest) a.free_spans[offset + padded] = rest;
  a.high = std::max(a.high, offset + padded);
  char* p = a.base + offset;
  {
    std::lock_guard<std::mutex> maps(m.mutex);
    m.used += padded;
    m.device[reinterpret_cast<uintptr_t>(p)] = padded;
  }
  {
    emu::DeviceAccess access;
    emu::set_accessible(a.high);  // an access already open covers only the old blocks
    std::memset(p, 0xff, padded);
  }
  *ptr = p;
  return cudaSuccess;
}
template <typename T>
cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
inline cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  std::lock_guard<std::recursive_mutex> lock(emu::launch_mutex);
  emu::drain();  // cudaFree waits for the device, as the runtime's does
  emu::Memory& m = emu::memory();
  emu::Arena& a = emu::arena();
  size_t bytes = 0;
  {
    std::lock_guard<std::mutex> maps(m.mutex);
    auto it = m.device.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == m.device.end()) return emu::fail(cudaErrorInvalidValue);
    bytes = it->second;
    m.used -= bytes;
    m.device.erase(it);
  }
  size_t offset = static_cast<size_t>(static_cast<char*>(ptr) - a.base);
  // Large blocks give their pages back; they are refilled by the next cudaMalloc anyway.
  if (bytes >= (size_t(1) << 20)) madvise(ptr, bytes, MADV_DONTNEED);
  auto next = a.free_spans.lower_bound(offset);
  if (next != a.free_spans.end() && next->first == offset + bytes) {
    bytes += next->second;
    next = a.free_spans.erase(next);
  }
  if (next != a.free_spans.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == offset) {
      offset = prev->first;
      bytes += prev->second;
      a.free_spans.erase(prev);
    }
  }
  a.free_spans[offset] = bytes;
  return cudaSuccess;
}
inline cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  *ptr = std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
  if (!*ptr) return emu::fail(cudaErrorMemoryAllocation);
  std::lock_guard<std::mutex> lock(emu::memory().mutex);
  emu::memory().pinned[reinterpret_cast<uintptr_t>(*ptr)] = bytes;
  return cudaSuccess;
}
template <typename T>
cudaError_t cudaMallocHost(T** ptr, size_t bytes) {
  return cudaMallocHost(reinterpret_cast<void**>(ptr), bytes);
}
inline cudaError_t cudaFreeHost(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  emu::drain();
  {
    std::lock_guard<std::mutex> lock(emu::memory().mutex);
    if (emu::memory().pinned.erase(reinterpret_cast<uintptr_t>(ptr)) == 0) return emu::fail(cudaErrorInvalidValue);
  }
  std::free(ptr);
  return cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  std::lock_guard<std::mutex> lock(emu::memory().mutex);
  *total_bytes = emu::device_bytes();
  *free_bytes = emu::device_bytes() - emu::memory().used;
  return cudaSuccess;
}

// Streams and events: work runs when queued, so there is never anything to wait for.
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  *stream = static_cast<cudaStream_t>(emu::new_handle());
  return cudaSuccess;
}
inline cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, 0); }
inline cudaError_t cudaStreamDestroy(cudaStream_t stream) { return emu::destroy_handle(stream); }
inline cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (!emu::valid_handle(stream)) return emu::fail(cudaErrorInvalidResourceHandle);
  emu::drain();
  return cudaSuccess;
}
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) {
  *event = static_cast<cudaEvent_t>(emu::new_handle());
  return cudaSuccess;
}
inline cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, 0); }
inline cudaError_t cudaEventDestroy(cudaEvent_t event) { return emu::destroy_handle(event); }
inline cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr) {
  return event && emu::valid_handle(event) && emu::valid_handle(stream) ? cudaSuccess
                                                                        : emu::fail(cudaErrorInvalidResourceHandle);
}
// All streams share one queue, so waiting for an event runs the work queued before it and
// possibly some after it, which a device may also have done by then.
inline cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (!event || !emu::valid_handle(event)) return emu::fail(cudaErrorInvalidResourceHandle);
  emu::drain();
  return cudaSuccess;
}
inline cudaError_t cudaEventQuery(cudaEvent_t event) { return cudaEventSynchronize(event); }
inline cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned = 0) {
  return emu::valid_handle(stream) && event && emu::valid_handle(event) ? cudaSuccess
                                                                        : emu::fail(cudaErrorInvalidResourceHandle);
}

namespace emu {

// Whether [p, p + bytes) lies in one block of pinned host memory (cudaMallocHost).
inline bool is_pinned(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(memory().mutex);
  return inside(memory().pinned, p, bytes);
}

// Queues rows of a copy as the runtime schedules it: from pageable host memory the source is
// read at the call (the runtime stages it before returning); into pageable host memory the
// call waits for the work ahead and the copy; between pinned or device memory it is queued.
inline void submit_copy(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                        cudaMemcpyKind kind) {
  const bool src_pageable = (kind == cudaMemcpyHostToDevice || kind == cudaMemcpyHostToHost) &&
                            !is_pinned(src, spitch * (height - 1) + width);
  const bool dst_pageable = (kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyHostToHost) &&
                            !is_pinned(dst, dpitch * (height - 1) + width);
  auto rows = [=](const char* from, size_t from_pitch) {
    DeviceAccess access;
    for (size_t r = 0; r < height; ++r) std::memmove(static_cast<char*>(dst) + r * dpitch, from + r * from_pitch, width);
  };
  if (dst_pageable || kind == cudaMemcpyDefault) {
    drain();
    rows(static_cast<const char*>(src), spitch);
  } else if (src_pageable) {
    std::vector<char> staged(width * height);
    for (size_t r = 0; r < height; ++r) std::memcpy(staged.data() + r * width, static_cast<const char*>(src) + r * spitch, width);
    enqueue([rows, staged = std::move(staged), width]() { rows(staged.data(), width); });
  } else {
    enqueue([rows, src, spitch]() { rows(static_cast<const char*>(src), spitch); });
  }
}

}  // namespace emu

inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                                   cudaStream_t stream = nullptr) {
  if (!emu::valid_handle(stream)) return emu::fail(cudaErrorInvalidResourceHandle);
  if (cudaError_t e = emu::check_copy(dst, src, bytes, kind)) return e;
  if (bytes) emu::submit_copy(dst, bytes, src, bytes, bytes, 1, kind);
  return cudaSuccess;
}
// Returns once the copy is done.
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, nullptr)) return e;
  emu::drain();
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width,
                                     size_t height, cudaMemcpyKind kind, cudaStream_t stream = nullptr) {
  if (height == 0 || width == 0) return cudaSuccess;
  if (width > dpitch || width > spitch) return emu::fail(cudaErrorInvalidValue);
  if (!emu::valid_handle(stream)) return emu::fail(cudaErrorInvalidResourceHandle);
  for (size_t r = 0; r < height; ++r)
    if (cudaError_t e = emu::check_copy(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch,
                                        width, kind))
      return e;
  emu::submit_copy(dst, dpitch, src, spitch, width, height, kind);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream = nullptr) {
  if (!emu::valid_handle(stream)) return emu::fail(cudaErrorInvalidResourceHandle);
#ifdef LRFACE_CUDA_EMULATION
  if (bytes && !emu::is_device(dst, bytes)) return emu::fail(cudaErrorInvalidValue);
#endif
  emu::enqueue([dst, value, bytes]() {
    emu::DeviceAccess access;
    std::memset(dst, value, bytes);
  });
  return cudaSuccess;
}
inline cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  if (cudaError_t e = cudaMemsetAsync(dst, value, bytes, nullptr)) return e;
  emu::drain();
  return cudaSuccess;
}

// ---- device functions ---------------------------------------------------------------------

// A block's threads never run at once here, so read-modify-write is atomic as it stands.
template <typename T>
inline T emulated_atomic_add(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}
inline float atomicAdd(float* address, float value) { return emulated_atomic_add(address, value); }
inline double atomicAdd(double* address, double value) { return emulated_atomic_add(address, value); }
inline int atomicAdd(int* address, int value) { return emulated_atomic_add(address, value); }
inline unsigned atomicAdd(unsigned* address, unsigned value) { return emulated_atomic_add(address, value); }
inline unsigned long long atomicAdd(unsigned long long* address, unsigned long long value) {
  return emulated_atomic_add(address, value);
}
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * b) >> 64);
}
