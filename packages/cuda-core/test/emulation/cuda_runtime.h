// Host emulation of the part of the CUDA runtime that native/cuda/gemm_conv.cu uses, so its
// kernels run (and are checked) on machines without a GPU. Each block's threads run as fibers
// on one OS thread, switched at __syncthreads(); __shared__ arrays become statics, which the
// fibers of a block share. Launches are written emu::launch(kernel, grid, block, ...)(args) by
// the source transform in run.mjs. Launch configurations past the hardware's limits fail as
// on a device (cudaErrorInvalidConfiguration from cudaGetLastError()).
#pragma once
#include <setjmp.h>
#include <ucontext.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
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

enum cudaError_t { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorInvalidConfiguration = 9 };
enum cudaMemcpyKind { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2, cudaMemcpyDeviceToDevice = 3 };
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16 };
struct CUstream_st;
using cudaStream_t = CUstream_st*;

namespace emu {

inline cudaError_t last_error = cudaSuccess;
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

// Blocks run their threads as plain calls, one after the other, until a kernel reaches a
// barrier: that throws (the thread has only filled shared memory so far, which the rerun
// redoes) and from then on the kernel's blocks run as fibers.
struct BarrierOutsideFibers {};
inline bool in_fibers = false;
inline std::vector<const void*> kernels_with_barriers;

inline void syncthreads() {
  if (!in_fibers) throw BarrierOutsideFibers{};
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
// have returned. A barrier that some threads of the block never reach is an error here (as
// it would hang or be undefined on a device).
inline void run_block_in_fibers(const std::function<void()>& kernel_body, unsigned threads) {
  constexpr size_t kStack = 64 << 10;
  in_fibers = true;
  if (stacks.size() < threads) stacks.resize(threads, std::vector<char>(kStack));
  fibers.assign(threads, Fiber{});
  body = &kernel_body;
  for (;;) {
    for (unsigned t = 0; t < threads; ++t) {
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
  for (const void* k : kernels_with_barriers)
    if (k == kernel) return run_block_in_fibers(kernel_body, threads);
  try {
    for (unsigned t = 0; t < threads; ++t) {
      set_thread(t);
      kernel_body();
    }
  } catch (const BarrierOutsideFibers&) {
    kernels_with_barriers.push_back(kernel);
    run_block_in_fibers(kernel_body, threads);
  }
}

template <typename... Params>
struct Launcher {
  void (*kernel)(Params...);
  dim3 grid, block;
  template <typename... Args>
  void operator()(Args... args) const {
    const uint64_t threads = uint64_t(block.x) * block.y * block.z;
    if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
        grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
      last_error = cudaErrorInvalidConfiguration;
      return;
    }
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
inline const char* cudaGetErrorName(cudaError_t e) {
  return e == cudaSuccess ? "cudaSuccess" : e == cudaErrorInvalidConfiguration ? "cudaErrorInvalidConfiguration"
                                                                                : "cudaErrorInvalidValue";
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t) {
  std::memcpy(dst, src, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) {
  std::memset(dst, value, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  if (attr != cudaDevAttrMultiProcessorCount) return cudaErrorInvalidValue;
  *value = emu::multiprocessors;
  return cudaSuccess;
}
