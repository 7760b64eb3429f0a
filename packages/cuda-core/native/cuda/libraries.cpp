// Settings of the cuDNN / cuBLAS paths, kept in every build so the JS API is the same with
// or without CUDA; without it, the libraries' status says why they are not in use.
#include <atomic>

#include "device_query.h"

namespace lrface::cuda {

namespace {
std::atomic<bool> g_use_libraries{true};
std::atomic<bool> g_allow_tf32{false};
std::atomic<bool> g_cudnn_benchmark{false};
}  // namespace

void use_gpu_libraries(bool use) { g_use_libraries.store(use); }
bool gpu_libraries_in_use() { return g_use_libraries.load(); }
void set_allow_tf32(bool allow) { g_allow_tf32.store(allow); }
bool allow_tf32() { return g_allow_tf32.load(); }
void set_cudnn_benchmark(bool on) { g_cudnn_benchmark.store(on); }
bool cudnn_benchmark() { return g_cudnn_benchmark.load(); }

#ifndef LRFACE_WITH_CUDA
GpuLibraryStatus cudnn_library_status() { return {false, "", "", "the addon was built without CUDA"}; }
GpuLibraryStatus cublas_library_status() { return {false, "", "", "the addon was built without CUDA"}; }
#endif

}  // namespace lrface::cuda
