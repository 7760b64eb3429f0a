// One check for every CUDA runtime, cuDNN and cuBLAS status: a failure throws EngineError
// naming the call, the library's reason and file:line. CUDA sources only (needs cuda_runtime.h).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "../core/error.h"
#include "libs/gpu_libs.h"

namespace lrface::cuda {

// Out of memory also names the bytes asked for and what the device has free.
[[noreturn]] void fail_status(cudaError_t status, const char* call, const char* file, int line, size_t requested_bytes);
[[noreturn]] void fail_status(CudnnStatus status, const char* call, const char* file, int line, size_t requested_bytes);
[[noreturn]] void fail_status(CublasStatus status, const char* call, const char* file, int line, size_t requested_bytes);

inline bool succeeded(cudaError_t s) { return s == cudaSuccess; }
inline bool succeeded(CudnnStatus s) { return s == CudnnStatus::Success; }
inline bool succeeded(CublasStatus s) { return s == CublasStatus::Success; }

// The message text of a failed status, without throwing (for tests and the stub reasons).
std::string describe_status(cudaError_t status, const char* call, const char* file, int line, size_t requested_bytes);

}  // namespace lrface::cuda

// LR_CUDA_CHECK(cudaMemcpyAsync(...)): works for cudaError_t, CudnnStatus and CublasStatus.
#define LR_CUDA_CHECK(call)                                                                  \
  do {                                                                                       \
    auto lr_cuda_status_ = (call);                                                           \
    if (!::lrface::cuda::succeeded(lr_cuda_status_))                                         \
      ::lrface::cuda::fail_status(lr_cuda_status_, #call, __FILE__, __LINE__, 0);            \
  } while (0)

// For allocations: an out-of-memory failure names `bytes`.
#define LR_CUDA_CHECK_ALLOC(call, bytes)                                                     \
  do {                                                                                       \
    auto lr_cuda_status_ = (call);                                                           \
    if (!::lrface::cuda::succeeded(lr_cuda_status_))                                         \
      ::lrface::cuda::fail_status(lr_cuda_status_, #call, __FILE__, __LINE__, (bytes));      \
  } while (0)
