// Which GPU libraries were found at build time. The cuDNN/cuBLAS code itself lives beside
// this file and is compiled only when CMake defines LRFACE_HAVE_CUDNN / LRFACE_HAVE_CUBLAS.
#include "device_query.h"

namespace lrface {

bool cudnn_compiled() {
#ifdef LRFACE_HAVE_CUDNN
  return true;
#else
  return false;
#endif
}

bool cublas_compiled() {
#ifdef LRFACE_HAVE_CUBLAS
  return true;
#else
  return false;
#endif
}

}  // namespace lrface
