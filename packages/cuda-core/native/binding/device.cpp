// Moving data between host and CUDA devices, and device-wide queries.
#include <cstring>
#include <vector>

#include "../cuda/device_memory.h"
#include "../cuda/device_query.h"
#include "binding.h"
#ifdef LRFACE_WITH_CUDA
#include "../cuda/check.h"
#endif

namespace lrface {

// copy(dst, dstOff, src, srcOff, n): n elements of one dtype between any two devices (host
// included). Copies that end on the host wait for the data; the others are queued.
LRFACE_BINDING(copy) {
  int64_t n = a.i64(4);
  Storage* sd = a.storage(0);
  Storage* ss = a.storage(2);
  LR_CHECK(sd->dtype() == ss->dtype(), Type, "copy: source is ", dtype_name(ss->dtype()), " but the destination is ",
           dtype_name(sd->dtype()));
  int64_t od = a.i64(1), os = a.i64(3);
  LR_CHECK(n >= 0 && od >= 0 && od + n <= sd->numel() && os >= 0 && os + n <= ss->numel(), Range,
           "copy: view exceeds its storage");
  const size_t es = dtype_size(sd->dtype());
  char* dst = static_cast<char*>(sd->data()) + od * es;
  const char* src = static_cast<const char*>(ss->data()) + os * es;
  const size_t bytes = static_cast<size_t>(n) * es;
  if (bytes == 0) return;
  if (sd->on_host() && ss->on_host())
    std::memcpy(dst, src, bytes);
  else if (ss->on_host())
    cuda::host_to_device(sd->device(), dst, src, bytes);
  else if (sd->on_host())
    cuda::device_to_host(ss->device(), dst, src, bytes);
  else if (sd->device() == ss->device())
    cuda::device_to_device(sd->device(), dst, src, bytes);
  else {
    // Between two GPUs through the host: rare, and peer access is not always enabled.
    std::vector<char> staging(bytes);
    cuda::device_to_host(ss->device(), staging.data(), src, bytes);
    cuda::host_to_device(sd->device(), dst, staging.data(), bytes);
  }
}

// cuda_synchronize(device): waits for the work queued on the device (benchmarks, tests).
LRFACE_BINDING(cuda_synchronize) {
  int64_t device = a.i64(0);
  LR_CHECK(device >= 0, Range, "cuda_synchronize: 'device' must be >= 0, got ", device);
  cuda::synchronize(static_cast<int>(device));
}

#ifdef LRFACE_WITH_CUDA
// cuda_status_message(code, bytes): the text the one status check throws for a CUDA runtime
// status, so its format is tested on machines without a GPU.
LRFACE_QUERY(cuda_status_message) {
  auto code = a.i64(0);
  auto bytes = a.i64(1);
  LR_CHECK(code >= 0 && code < 100000 && bytes >= 0, Range, "cuda_status_message: bad arguments");
  return Napi::String::New(info.Env(), cuda::describe_status(static_cast<cudaError_t>(code), "cudaMalloc(&p, size)",
                                                             "allocator.cu", 1, static_cast<size_t>(bytes)));
}
#endif

// cuda_use_libraries(mode) -> the previous mode: 'auto' uses cuDNN / cuBLAS where loaded,
// 'none' runs every convolution and product on the engine's own CUDA kernels (tests).
LRFACE_QUERY(cuda_use_libraries) {
  const std::string mode = a.str(0);
  LR_CHECK(mode == "auto" || mode == "none", Range, "cuda_use_libraries: mode must be 'auto' or 'none', got '", mode,
           "'");
  const bool before = cuda::gpu_libraries_in_use();
  cuda::use_gpu_libraries(mode == "auto");
  return Napi::String::New(info.Env(), before ? "auto" : "none");
}

// cudnn_conv_count() -> how many convolutions ran through cuDNN so far (tests).
LRFACE_QUERY(cudnn_conv_count) { return Napi::Number::New(info.Env(), static_cast<double>(cuda::cudnn_conv_count())); }

// cublas_gemm_count() -> how many products ran through cuBLAS so far (tests).
LRFACE_QUERY(cublas_gemm_count) { return Napi::Number::New(info.Env(), static_cast<double>(cuda::cublas_gemm_count())); }

// cudnn_measured_count() -> how many cuDNN algorithm choices were made by timing so far (tests).
LRFACE_QUERY(cudnn_measured_count) {
  return Napi::Number::New(info.Env(), static_cast<double>(cuda::cudnn_measured_count()));
}

// cudnn_op_count() -> how many pooling, activation, softmax and batch-norm calls ran through cuDNN (tests).
LRFACE_QUERY(cudnn_op_count) { return Napi::Number::New(info.Env(), static_cast<double>(cuda::cudnn_op_count())); }

// cuda_set_tf32(allow) -> the previous setting.
LRFACE_QUERY(cuda_set_tf32) {
  const bool before = cuda::allow_tf32();
  cuda::set_allow_tf32(a.boolean(0));
  return Napi::Boolean::New(info.Env(), before);
}

// cuda_set_cudnn_benchmark(on) -> the previous setting.
LRFACE_QUERY(cuda_set_cudnn_benchmark) {
  const bool before = cuda::cudnn_benchmark();
  cuda::set_cudnn_benchmark(a.boolean(0));
  return Napi::Boolean::New(info.Env(), before);
}

}  // namespace lrface
