// Settings of the cuDNN / cuBLAS paths, kept in every build so the JS API is the same with
// or without CUDA; without it, the libraries' status says why they are not in use.
#include <atomic>

#include "device_query.h"

namespace lrface::cuda {

namespace {
std::atomic<bool> g_use_libraries{true};
std::atomic<bool> g_allow_tf32{false};
std::atomic<bool> g_cudnn_benchmark{false};
std::atomic<int64_t> g_cudnn_convs{0};
std::atomic<int64_t> g_cublas_gemms{0};
std::atomic<int64_t> g_cudnn_measured{0};
std::atomic<int64_t> g_cudnn_ops{0};
}  // namespace

void use_gpu_libraries(bool use) { g_use_libraries.store(use); }
bool gpu_libraries_in_use() { return g_use_libraries.load(); }
void set_allow_tf32(bool allow) { g_allow_tf32.store(allow); }
bool allow_tf32() { return g_allow_tf32.load(); }
void set_cudnn_benchmark(bool on) { g_cudnn_benchmark.store(on); }
bool cudnn_benchmark() { return g_cudnn_benchmark.load(); }
int64_t cudnn_conv_count() { return g_cudnn_convs.load(); }
int64_t cublas_gemm_count() { return g_cublas_gemms.load(); }
void count_cudnn_conv() { g_cudnn_convs.fetch_add(1); }
void count_cublas_gemm() { g_cublas_gemms.fetch_add(1); }
int64_t cudnn_measured_count() { return g_cudnn_measured.load(); }
void count_cudnn_measured() { g_cudnn_measured.fetch_add(1); }
int64_t cudnn_op_count() { return g_cudnn_ops.load(); }
void count_cudnn_op() { g_cudnn_ops.fetch_add(1); }

#ifndef LRFACE_WITH_CUDA
GpuLibraryStatus cudnn_library_status() { return {false, "", "", "the addon was built without CUDA"}; }
GpuLibraryStatus cublas_library_status() { return {false, "", "", "the addon was built without CUDA"}; }
#endif

}  // namespace lrface::cuda
