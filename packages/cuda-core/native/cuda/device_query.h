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
bool cudnn_compiled();
bool cublas_compiled();

}  // namespace lrface
