// CUDA device discovery. Implemented in device_query.cu when the addon is built with nvcc,
// otherwise by device_query_stub.cpp; either way it never fails to load.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lrface {

struct CudaDeviceInfo {
  int index;
  std::string name;
  int64_t total_memory;
  int major;
  int minor;
};

struct CudaStatus {
  bool available;
  std::string reason;  // why CUDA is unavailable, empty when available
  std::vector<CudaDeviceInfo> devices;
  int runtime_version;  // 0 when unknown
  int driver_version;   // 0 when unknown
};

CudaStatus cuda_status();
bool cuda_compiled();

namespace cuda {

// What the run-time loader (libs/gpu_libs.h) found: the library's path and version, or why it
// is not in use. The first query opens the library.
struct GpuLibraryStatus {
  bool loaded = false;
  std::string path;
  std::string version;
  std::string reason;
};
GpuLibraryStatus cudnn_library_status();
GpuLibraryStatus cublas_library_status();

// false: convolutions and products run on the engine's own CUDA kernels even where cuDNN and
// cuBLAS are loaded (tests compare the two paths on one GPU).
void use_gpu_libraries(bool use);
bool gpu_libraries_in_use();
// TF32 tensor-core products (10-bit mantissas) in cuDNN and cuBLAS: off unless asked for.
void set_allow_tf32(bool allow);
bool allow_tf32();
// Measured algorithm search per convolution shape (like cudnn.benchmark): off by default.
void set_cudnn_benchmark(bool on);
bool cudnn_benchmark();
// How many convolutions (any direction) cuDNN ran, and how many products cuBLAS ran, so far
// (tests prove which path a call took).
int64_t cudnn_conv_count();
int64_t cublas_gemm_count();
// How many algorithm choices timed cuDNN's algorithms (set_cudnn_benchmark(true)) so far.
int64_t cudnn_measured_count();
void count_cudnn_conv();
void count_cublas_gemm();
void count_cudnn_measured();
// How many pooling, activation, softmax and batch-norm calls cuDNN ran so far.
int64_t cudnn_op_count();
void count_cudnn_op();

}  // namespace cuda

}  // namespace lrface
