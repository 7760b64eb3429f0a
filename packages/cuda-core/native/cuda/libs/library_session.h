// One cuDNN / cuBLAS handle per device, bound to the device's stream. Neither library's handles
// are thread-safe: a session holds its library's one lock (which also guards the state kept
// beside the handles, such as the convolution plans) for as long as it lives.
#pragma once
#include <map>
#include <mutex>

#include "../check.h"
#include "../context.h"
#include "gpu_libs.h"

namespace lrface::cuda {

template <typename Api, typename Handle>
class LibrarySession {
 public:
  // Locks, makes `device` current and gives its handle (created on first use).
  LibrarySession(const Api& api, int device) : lock_(mutex()), guard_(device) {
    auto& handles = handle_map();
    auto it = handles.find(device);
    if (it != handles.end()) {
      handle_ = it->second;
      return;
    }
    LR_CUDA_CHECK(api.Create(&handle_));
    LR_CUDA_CHECK(api.SetStream(handle_, device_stream(device)));
    handles.emplace(device, handle_);
  }
  LibrarySession(const LibrarySession&) = delete;
  LibrarySession& operator=(const LibrarySession&) = delete;
  Handle handle() const { return handle_; }

 private:
  // Never destroyed: calls may still run at exit.
  static std::mutex& mutex() {
    static auto* m = new std::mutex();
    return *m;
  }
  static std::map<int, Handle>& handle_map() {
    static auto* handles = new std::map<int, Handle>();
    return *handles;
  }

  std::unique_lock<std::mutex> lock_;
  DeviceGuard guard_;
  Handle handle_ = nullptr;
};

using CudnnSession = LibrarySession<CudnnApi, cudnn::Handle>;
using CublasSession = LibrarySession<CublasApi, cublas::Handle>;

// A cuDNN descriptor for the length of one call: created, set by `set` (destroyed again if
// that throws), destroyed with the object.
template <typename Desc>
class CudnnDescriptor {
 public:
  using Destroy = CudnnStatus (*)(Desc);
  template <typename Set>
  CudnnDescriptor(CudnnStatus (*create)(Desc*), Destroy destroy, Set set) : destroy_(destroy) {
    LR_CUDA_CHECK(create(&desc_));
    try {
      set(desc_);
    } catch (...) {
      destroy_(desc_);
      throw;
    }
  }
  ~CudnnDescriptor() { destroy_(desc_); }
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;
  Desc get() const { return desc_; }

 private:
  Destroy destroy_;
  Desc desc_ = nullptr;
};

// A 4-d float NCHW tensor descriptor.
class CudnnTensor : public CudnnDescriptor<cudnn::TensorDesc> {
 public:
  CudnnTensor(const CudnnApi& api, int n, int c, int h, int w)
      : CudnnDescriptor(api.CreateTensorDescriptor, api.DestroyTensorDescriptor, [&](cudnn::TensorDesc d) {
          LR_CUDA_CHECK(api.SetTensor4dDescriptor(d, cudnn::kTensorNCHW, cudnn::kDataFloat, n, c, h, w));
        }) {}
};

}  // namespace lrface::cuda
