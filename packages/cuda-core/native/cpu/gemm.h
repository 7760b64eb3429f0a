#pragma once
#include <cstdint>

namespace lrface::cpu {

// C[m,n] = alpha * sum_k op(A)[m,k] * op(B)[k,n] + beta * C[m,n], row-major with leading
// dimensions; op(A) = A^T when trans_a (A stored [k, m]). beta == 0 ignores C's old contents.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// The instruction set the GEMM micro-kernel uses on this machine: "avx512", "avx2" or "scalar".
const char* gemm_isa();

}  // namespace lrface::cpu
