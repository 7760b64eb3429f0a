#include "check.h"

#include <sstream>
#include <string>

namespace lrface::cuda {

namespace {
// The source path from native/ on: the build folder's absolute path tells the reader nothing.
const char* short_path(const char* file) {
  const std::string path(file);
  const size_t at = path.rfind("native/");
  return at == std::string::npos ? file : file + at;
}

std::string where(const char* call, const char* file, int line) {
  std::ostringstream os;
  os << call << " at " << short_path(file) << ":" << line;
  return os.str();
}

std::string mib(size_t bytes) {
  std::ostringstream os;
  os << bytes << " bytes (" << (static_cast<double>(bytes) / (1 << 20)) << " MiB)";
  return os.str();
}

// Free and total memory of the current device, as text; empty when it cannot be asked.
std::string free_memory_text() {
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
    cudaGetLastError();
    return "free memory unknown";
  }
  return mib(free_bytes) + " free of " + mib(total_bytes);
}
}  // namespace

std::string describe_status(cudaError_t status, const char* call, const char* file, int line, size_t requested_bytes) {
  std::ostringstream os;
  os << "CUDA error in " << where(call, file, line) << ": " << cudaGetErrorName(status) << " ("
     << cudaGetErrorString(status) << ")";
  if (status == cudaErrorMemoryAllocation) {
    os << "; out of device memory";
    if (requested_bytes > 0) os << " asking for " << mib(requested_bytes);
    os << ", " << free_memory_text();
  }
  return os.str();
}

void fail_status(cudaError_t status, const char* call, const char* file, int line, size_t requested_bytes) {
  std::string message = describe_status(status, call, file, line, requested_bytes);
  // A sticky error stays set until read: clear it so the next call reports its own status.
  cudaGetLastError();
  throw EngineError(ErrorKind::State, message);
}

#ifdef LRFACE_HAVE_CUDNN
void fail_status(cudnnStatus_t status, const char* call, const char* file, int line, size_t requested_bytes) {
  std::ostringstream os;
  os << "cuDNN error in " << where(call, file, line) << ": " << cudnnGetErrorString(status);
  if (status == CUDNN_STATUS_ALLOC_FAILED) {
    os << "; out of device memory";
    if (requested_bytes > 0) os << " asking for " << mib(requested_bytes);
    os << ", " << free_memory_text();
  }
  throw EngineError(ErrorKind::State, os.str());
}
#endif

#ifdef LRFACE_HAVE_CUBLAS
namespace {
const char* cublas_reason(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED (cuBLAS could not start)";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED (allocation failed)";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE (bad argument)";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH (not supported by this GPU)";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR (GPU memory access failed)";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED (the kernel failed to run)";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "unknown cuBLAS status";
  }
}
}  // namespace

void fail_status(cublasStatus_t status, const char* call, const char* file, int line, size_t requested_bytes) {
  std::ostringstream os;
  os << "cuBLAS error in " << where(call, file, line) << ": " << cublas_reason(status);
  if (status == CUBLAS_STATUS_ALLOC_FAILED) {
    os << "; out of device memory";
    if (requested_bytes > 0) os << " asking for " << mib(requested_bytes);
    os << ", " << free_memory_text();
  }
  throw EngineError(ErrorKind::State, os.str());
}
#endif

}  // namespace lrface::cuda
