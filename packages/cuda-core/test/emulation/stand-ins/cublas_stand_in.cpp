// A stand-in for cuBLAS 13 (built as libcublas.so.13 by the emulated build only, never
// shipped): the entry points the addon calls, written from NVIDIA's cuBLAS reference as plain
// loops over the emulated device's memory, so the emulated test run drives the addon's cuBLAS
// path (native/cuda/libs/cublas_gemm.cpp) end to end. Independent of the addon's own
// declarations: the vendor's C names and plain C types only.
//
// Column-major storage; C = alpha * op(A) op(B) + beta * C with op(A) m x k, op(B) k x n, C
// m x n, A stored with leading dimension lda >= max(1, rows of A as stored) (m for
// CUBLAS_OP_N, k otherwise), likewise ldb and ldc >= max(1, m), each violation
// CUBLAS_STATUS_INVALID_VALUE. C is not read when beta is 0; alpha and beta are read from host
// memory at the call (CUBLAS_POINTER_MODE_HOST, the default). A stride of 0 in the
// strided-batched call repeats an operand.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "device_queue.h"

namespace {

// cublasStatus_t
constexpr int kSuccess = 0;
constexpr int kNotInitialized = 1;
constexpr int kInvalidValue = 7;

constexpr int kOpN = 0, kOpT = 1, kOpC = 2;  // cublasOperation_t
constexpr int kDefaultMath = 0, kTf32TensorOpMath = 3;
constexpr int kDisallowReducedPrecisionReduction = 16;  // a flag that may be or-ed into the mode

constexpr int kMajorVersion = 0, kMinorVersion = 1, kPatchLevel = 2;  // libraryPropertyType

struct Handle {
  void* stream = nullptr;
  int math_mode = kDefaultMath;
};

bool valid_op(int op) { return op == kOpN || op == kOpT || op == kOpC; }

int check_gemm(const Handle* h, int transa, int transb, int m, int n, int k, const float* alpha, const float* beta,
               int lda, int ldb, int ldc) {
  if (!h) return kNotInitialized;
  if (!valid_op(transa) || !valid_op(transb) || m < 0 || n < 0 || k < 0) return kInvalidValue;
  if (lda < std::max(1, transa == kOpN ? m : k)) return kInvalidValue;
  if (ldb < std::max(1, transb == kOpN ? k : n)) return kInvalidValue;
  if (ldc < std::max(1, m)) return kInvalidValue;
  if (!alpha || !beta) return kInvalidValue;
  return kSuccess;
}

// One product, on device memory. For real single precision CUBLAS_OP_C is CUBLAS_OP_T.
void gemm(int transa, int transb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
          float beta, float* c, int ldc) {
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      double sum = 0.0;
      for (int p = 0; p < k; ++p) {
        const float av = transa == kOpN ? a[i + size_t(p) * lda] : a[p + size_t(i) * lda];
        const float bv = transb == kOpN ? b[p + size_t(j) * ldb] : b[j + size_t(p) * ldb];
        sum += double(av) * bv;
      }
      float& out = c[i + size_t(j) * ldc];
      const float v = alpha * static_cast<float>(sum);
      out = beta == 0.0f ? v : v + beta * out;
    }
}

}  // namespace

using cublasStatus_t = int;
using cublasHandle_t = Handle*;

LRFACE_STAND_IN_EXPORT cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  if (!handle) return kInvalidValue;
  *handle = new Handle();
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  if (!handle) return kNotInitialized;
  delete handle;
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, void* stream) {
  if (!handle) return kNotInitialized;
  handle->stream = stream;
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cublasStatus_t cublasSetMathMode(cublasHandle_t handle, int mode) {
  if (!handle) return kNotInitialized;
  const int base = mode & ~kDisallowReducedPrecisionReduction;
  if (base < kDefaultMath || base > kTf32TensorOpMath) return kInvalidValue;
  handle->math_mode = mode;
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cublasStatus_t cublasGetMathMode(cublasHandle_t handle, int* mode) {
  if (!handle) return kNotInitialized;
  if (!mode) return kInvalidValue;
  *mode = handle->math_mode;
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cublasStatus_t cublasGetProperty(int type, int* value) {
  if (!value) return kInvalidValue;
  switch (type) {
    case kMajorVersion: *value = 13; return kSuccess;
    case kMinorVersion: *value = 0; return kSuccess;
    case kPatchLevel: *value = 0; return kSuccess;
    default: return kInvalidValue;
  }
}

LRFACE_STAND_IN_EXPORT const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case kSuccess: return "CUBLAS_STATUS_SUCCESS";
    case kNotInitialized: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case kInvalidValue: return "CUBLAS_STATUS_INVALID_VALUE";
    default: return "CUBLAS_STATUS_UNKNOWN (stand-in)";
  }
}

LRFACE_STAND_IN_EXPORT cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, int transa, int transb, int m, int n,
                                                     int k, const float* alpha, const float* a, int lda,
                                                     const float* b, int ldb, const float* beta, float* c, int ldc) {
  if (int st = check_gemm(handle, transa, transb, m, n, k, alpha, beta, lda, ldb, ldc); st != kSuccess) return st;
  if (m == 0 || n == 0) return kSuccess;
  const float al = *alpha, be = *beta;
  stand_in::on_device([=]() { gemm(transa, transb, m, n, k, al, a, lda, b, ldb, be, c, ldc); });
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, int transa, int transb, int m,
                                                                int n, int k, const float* alpha, const float* a,
                                                                int lda, long long stride_a, const float* b, int ldb,
                                                                long long stride_b, const float* beta, float* c,
                                                                int ldc, long long stride_c, int batch) {
  if (int st = check_gemm(handle, transa, transb, m, n, k, alpha, beta, lda, ldb, ldc); st != kSuccess) return st;
  if (batch < 0) return kInvalidValue;
  if (m == 0 || n == 0 || batch == 0) return kSuccess;
  const float al = *alpha, be = *beta;
  stand_in::on_device([=]() {
    for (int i = 0; i < batch; ++i)
      gemm(transa, transb, m, n, k, al, a + i * stride_a, lda, b + i * stride_b, ldb, be, c + i * stride_c, ldc);
  });
  return kSuccess;
}
