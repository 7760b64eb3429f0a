#include "device_query.h"

namespace lrface {

CudaStatus cuda_status() {
  return {false, "the addon was built without CUDA (nvcc was not found at build time, or LRFACE_CPU_ONLY was set)", {}, 0, 0};
}

bool cuda_compiled() { return false; }

}  // namespace lrface
