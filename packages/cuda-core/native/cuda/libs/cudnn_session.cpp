#include "cudnn_session.h"

#include <map>

#include "../check.h"

namespace lrface::cuda {

namespace {
std::mutex& cudnn_mutex() {
  static auto* m = new std::mutex();  // never destroyed: calls may still run at exit
  return *m;
}
}  // namespace

CudnnSession::CudnnSession(const CudnnApi& api, int device) : lock_(cudnn_mutex()), guard_(device) {
  static auto* handles = new std::map<int, cudnn::Handle>();  // guarded by the lock; kept to exit
  auto it = handles->find(device);
  if (it != handles->end()) {
    handle_ = it->second;
    return;
  }
  LR_CUDA_CHECK(api.Create(&handle_));
  LR_CUDA_CHECK(api.SetStream(handle_, device_stream(device)));
  handles->emplace(device, handle_);
}

CudnnTensor::CudnnTensor(const CudnnApi& api, int n, int c, int h, int w) : api_(api) {
  LR_CUDA_CHECK(api.CreateTensorDescriptor(&desc_));
  try {
    LR_CUDA_CHECK(api.SetTensor4dDescriptor(desc_, cudnn::kTensorNCHW, cudnn::kDataFloat, n, c, h, w));
  } catch (...) {
    api.DestroyTensorDescriptor(desc_);
    throw;
  }
}

CudnnTensor::~CudnnTensor() { api_.DestroyTensorDescriptor(desc_); }

}  // namespace lrface::cuda
