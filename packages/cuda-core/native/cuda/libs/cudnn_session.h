// One cuDNN handle per device, bound to the device's stream. cuDNN handles are not
// thread-safe: a CudnnSession holds the one lock of all cuDNN work (and of the state kept
// beside it, such as the convolution plans) for as long as it lives.
#pragma once
#include <mutex>

#include "../context.h"
#include "gpu_libs.h"

namespace lrface::cuda {

class CudnnSession {
 public:
  // Locks, makes `device` current and gives its handle (created on first use).
  CudnnSession(const CudnnApi& api, int device);
  CudnnSession(const CudnnSession&) = delete;
  CudnnSession& operator=(const CudnnSession&) = delete;
  cudnn::Handle handle() const { return handle_; }

 private:
  std::unique_lock<std::mutex> lock_;
  DeviceGuard guard_;
  cudnn::Handle handle_ = nullptr;
};

// A 4-d float NCHW tensor descriptor for the length of one call.
class CudnnTensor {
 public:
  CudnnTensor(const CudnnApi& api, int n, int c, int h, int w);
  ~CudnnTensor();
  CudnnTensor(const CudnnTensor&) = delete;
  CudnnTensor& operator=(const CudnnTensor&) = delete;
  cudnn::TensorDesc get() const { return desc_; }

 private:
  const CudnnApi& api_;
  cudnn::TensorDesc desc_ = nullptr;
};

}  // namespace lrface::cuda
