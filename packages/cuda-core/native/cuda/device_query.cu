#include <cuda_runtime.h>

#include "device_query.h"

namespace lrface {

// cudart is linked statically, so a machine without the driver still loads the addon;
// the first call reports why no device is usable.
CudaStatus cuda_status() {
  CudaStatus status{false, "", {}, 0, 0};
  cudaRuntimeGetVersion(&status.runtime_version);
  cudaDriverGetVersion(&status.driver_version);
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    status.reason = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
    cudaGetLastError();
    return status;
  }
  if (count == 0) {
    status.reason = "no CUDA device found";
    return status;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    status.devices.push_back({i, prop.name, static_cast<int64_t>(prop.totalGlobalMem), prop.major, prop.minor});
  }
  status.available = !status.devices.empty();
  if (!status.available) status.reason = "no CUDA device could be queried";
  return status;
}

bool cuda_compiled() { return true; }

}  // namespace lrface
