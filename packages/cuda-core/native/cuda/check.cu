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

void fail_status(CudnnStatus status, const char* call, const char* file, int line, size_t requested_bytes) {
  std::ostringstream os;
  const CudnnApi* api = cudnn_api();
  const int code = static_cast<int>(status);
  os << "cuDNN error in " << where(call, file, line) << ": "
     << (api ? api->GetErrorString(status) : "status") << " (" << code << ")";
  if (code == cudnn::kAllocFailedV8 || code == cudnn::kHostAllocFailedV9 || code == cudnn::kDeviceAllocFailedV9) {
    os << "; out of memory";
    if (requested_bytes > 0) os << " asking for " << mib(requested_bytes);
    os << ", " << free_memory_text();
  }
  throw EngineError(ErrorKind::State, os.str());
}

namespace {
// cuBLAS's own text where the library has cublasGetStatusString (11.4 on), else ours.
std::string cublas_reason(CublasStatus status) {
  if (const CublasApi* api = cublas_api(); api && api->GetStatusString) return api->GetStatusString(status);
  switch (static_cast<int>(status)) {
    case 1: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case 3: return "CUBLAS_STATUS_ALLOC_FAILED";
    case 7: return "CUBLAS_STATUS_INVALID_VALUE";
    case 8: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case 11: return "CUBLAS_STATUS_MAPPING_ERROR";
    case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case 14: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case 16: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "unknown cuBLAS status";
  }
}
}  // namespace

void fail_status(CublasStatus status, const char* call, const char* file, int line, size_t requested_bytes) {
  std::ostringstream os;
  os << "cuBLAS error in " << where(call, file, line) << ": " << cublas_reason(status) << " ("
     << static_cast<int>(status) << ")";
  if (status == CublasStatus::AllocFailed) {
    os << "; out of device memory";
    if (requested_bytes > 0) os << " asking for " << mib(requested_bytes);
    os << ", " << free_memory_text();
  }
  throw EngineError(ErrorKind::State, os.str());
}

}  // namespace lrface::cuda
