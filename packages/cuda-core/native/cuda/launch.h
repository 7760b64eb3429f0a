// Kernel launches, written LRFACE_LAUNCH(kernel, grid, block, shared_bytes, stream)(args...)
// instead of the triple-chevron syntax, so the same sources also compile with a plain C++
// compiler against the host emulation of the runtime in test/emulation/cuda_runtime.h, which
// provides emu::launch. `kernel` is one name or function pointer (a template instance with
// commas goes through a local pointer first).
#pragma once
#include <cstdint>

#include "check.h"
#include "context.h"

#ifdef __CUDACC__
#define LRFACE_LAUNCH(kernel, grid, block, shared_bytes, stream) kernel<<<grid, block, shared_bytes, stream>>>
#else
#define LRFACE_LAUNCH(kernel, grid, block, shared_bytes, stream) \
  ::emu::launch(kernel, grid, block, shared_bytes, stream)
#endif

namespace lrface::cuda {

// Threads per block of the grid-stride kernels.
constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements: enough to fill the device, at most 8 x 65535.
inline unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 1 ? 1 : b < 65535 * 8 ? b : 65535 * 8);
}

// Launches a grid-stride kernel over n elements on the device's stream and checks the launch.
template <typename Kernel, typename... Args>
void launch(int device, int64_t n, Kernel kernel, Args... args) {
  if (n <= 0) return;
  cudaStream_t stream = device_stream(device);
  DeviceGuard guard(device);
  LRFACE_LAUNCH(kernel, blocks_for(n), kThreads, 0, stream)(args...);
  LR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace lrface::cuda

// for (int64_t i = ...; i < n; ...) over this thread's elements of a grid-stride loop.
#define LR_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(blockDim.x) * gridDim.x)
