#include "library_session.h"

namespace lrface::cuda {

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
