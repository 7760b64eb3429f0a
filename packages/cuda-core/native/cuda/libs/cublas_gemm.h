// Row-major products through cuBLAS, with cpu::sgemm_batched's conventions (../../cpu/gemm.h).
// Returns false, having queued nothing, when cuBLAS cannot take the call (not loaded or
// switched off, a size past int); the caller then runs the engine's own kernel.
#pragma once
#include <cstdint>

namespace lrface::cuda {

bool cublas_sgemm_batched(int device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                          const float* a, int64_t lda, const int64_t* a_offsets, const float* b, int64_t ldb,
                          const int64_t* b_offsets, float beta, float* c, int64_t ldc, int64_t c_stride,
                          int64_t batch);

}  // namespace lrface::cuda
