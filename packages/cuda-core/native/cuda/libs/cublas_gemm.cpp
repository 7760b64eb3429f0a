#include "cublas_gemm.h"

#include <climits>

#include "../check.h"
#include "../device_query.h"
#include "library_session.h"

namespace lrface::cuda {

namespace {

bool fits_int(std::initializer_list<int64_t> values) {
  for (int64_t v : values)
    if (v < 0 || v > INT_MAX) return false;
  return true;
}

// The distance between consecutive offsets when they are evenly spaced (0 for a repeated
// operand), or -1.
int64_t even_stride(const int64_t* offsets, int64_t batch) {
  if (batch < 2) return 0;
  const int64_t step = offsets[1] - offsets[0];
  for (int64_t i = 2; i < batch; ++i)
    if (offsets[i] - offsets[i - 1] != step) return -1;
  return step;
}

}  // namespace

bool cublas_sgemm_batched(int device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                          const float* a, int64_t lda, const int64_t* a_offsets, const float* b, int64_t ldb,
                          const int64_t* b_offsets, float beta, float* c, int64_t ldc, int64_t c_stride,
                          int64_t batch) {
  const CublasApi* api = cublas_api();
  // cuBLAS wants every leading dimension >= 1 (k == 0 gives lda == 0): such calls go to our kernel.
  if (!api || !fits_int({m, n, k, lda, ldb, ldc, batch}) || lda < 1 || ldb < 1 || ldc < 1) return false;
  if (batch == 0 || m == 0 || n == 0) return true;
  CublasSession session(*api, device);
  cublas::Handle h = session.handle();
  LR_CUDA_CHECK(api->SetMathMode(h, allow_tf32() ? cublas::kTf32TensorOpMath : cublas::kDefaultMath));
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the operands swap and
  // each keeps its own transpose flag.
  const int opa = trans_a ? cublas::kOpT : cublas::kOpN, opb = trans_b ? cublas::kOpT : cublas::kOpN;
  const int im = static_cast<int>(m), in = static_cast<int>(n), ik = static_cast<int>(k);
  const int ilda = static_cast<int>(lda), ildb = static_cast<int>(ldb), ildc = static_cast<int>(ldc);
  const int64_t stride_a = even_stride(a_offsets, batch), stride_b = even_stride(b_offsets, batch);
  if (batch == 1) {
    LR_CUDA_CHECK(api->Sgemm(h, opb, opa, in, im, ik, &alpha, b + b_offsets[0], ildb, a + a_offsets[0], ilda, &beta,
                             c, ildc));
  } else if (stride_a >= 0 && stride_b >= 0 && fits_int({batch})) {
    LR_CUDA_CHECK(api->SgemmStridedBatched(h, opb, opa, in, im, ik, &alpha, b + b_offsets[0], ildb, stride_b,
                                           a + a_offsets[0], ilda, stride_a, &beta, c, ildc, c_stride,
                                           static_cast<int>(batch)));
  } else {
    for (int64_t i = 0; i < batch; ++i)
      LR_CUDA_CHECK(api->Sgemm(h, opb, opa, in, im, ik, &alpha, b + b_offsets[i], ildb, a + a_offsets[i], ilda, &beta,
                               c + i * c_stride, ildc));
  }
  count_cublas_gemm();
  return true;
}

}  // namespace lrface::cuda
