#pragma once
#include <cstdint>
#include <functional>

namespace lrface::cpu {

// C[m,n] = alpha * sum_k op(A)[m,k] * op(B)[k,n] + beta * C[m,n], row-major with leading
// dimensions; op(A) = A^T when trans_a (A stored [k, m]), op(B) = B^T when trans_b (B stored
// [n, k]). beta == 0 ignores C's old contents (NaNs there included). Runs on the thread pool.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// `batch` independent products: C_i = alpha * op(A at a + a_offsets[i]) @ op(B at b + b_offsets[i])
// + beta * C_i with C_i at c + i * c_stride. Offsets (not strides) so broadcast batches can
// repeat an operand. Parallel over the batch or inside each product, whichever keeps threads busy.
void sgemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                   int64_t lda, const int64_t* a_offsets, const float* b, int64_t ldb, const int64_t* b_offsets,
                   float beta, float* c, int64_t ldc, int64_t c_stride, int64_t batch);

// Operands given by packing callbacks, for products whose operand is not stored as a matrix
// (convolution's implicit im2col). The GEMM asks for one A strip or one B block at a time:
//   pack_a(i0, h, p0, kc, mr, dst): dst[p * mr + i] = op(A)[i0 + i, p0 + p] for i < h, 0 for h <= i < mr;
//   pack_b(p0, kc, j0, nc, nr, dst): strips of nr columns, strip s at dst + s * kc * nr with
//     dst[s * kc * nr + p * nr + j] = op(B)[p0 + p, j0 + s * nr + j], 0 past column nc.
// Callbacks run concurrently on several threads. threads: how many pool threads may share the
// product (<= 0: all of them); 1 keeps the work on the calling thread.
using PackA = std::function<void(int64_t i0, int64_t h, int64_t p0, int64_t kc, int mr, float* dst)>;
using PackB = std::function<void(int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, float* dst)>;
void gemm_packed(int64_t m, int64_t n, int64_t k, float alpha, const PackA& pack_a, const PackB& pack_b, float beta,
                 float* c, int64_t ldc, int threads);

// C = alpha * A @ op(B) + beta * C with A stored row-major ([m, k], row stride lda) and read
// in place by the micro-kernel, never packed; op(B) from a packer, each block packed once, by
// the thread that uses it. For products whose A (a convolution's weights) would otherwise be
// packed by every thread that shares the product, at a cost near that of the arithmetic when
// n is small (the deep layers of a U-Net on 4x4 and 8x8 planes). The scalar micro-kernel
// packs A as gemm_packed does (read in place, it runs 3x slower). Runs on the thread pool.
void gemm_stored_a(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const PackB& pack_b,
                   float beta, float* c, int64_t ldc);
// How many products have run through gemm_stored_a since start-up (tests).
int64_t gemm_stored_a_count();

// A B-block packer from a per-strip one: strip(p0, kc, j0, w, nr, dst) fills one strip of w <= nr
// columns (zeroing columns w..nr).
template <typename Strip>
PackB pack_b_by_strips(Strip strip) {
  return [strip](int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, float* dst) {
    for (int64_t s = 0; s * nr < nc; ++s)
      strip(p0, kc, j0 + s * nr, nc - s * nr < nr ? nc - s * nr : int64_t(nr), nr, dst + s * kc * nr);
  };
}

// Packers of plain row-major matrices, for mixing one plain and one implicit operand.
PackA plain_pack_a(const float* a, int64_t lda, bool trans_a);
PackB plain_pack_b(const float* b, int64_t ldb, bool trans_b);

// dst[0:w] = src[0:w] and dst[w:nr] = 0 for the current micro-kernel's strip width nr, w <= nr,
// dst 64-byte aligned: one row of a packed B strip, for implicit packers.
void gemm_copy_strip_row(float* dst, const float* src, int64_t w);

// One run of a packed B strip's columns: dst[t0 + t] = src[offset + t] for t < len.
struct StripRun {
  int64_t t0, len, offset;
};
// Rows p < kc of a packed B strip of w <= nr columns (dst + p * nr, 64-byte aligned), each
// gathered from runs that tile [0, w), at src + offsets[p] + run.offset; zeros from w to nr.
// For implicit packers whose strip columns are a few contiguous runs of the source.
void gemm_gather_strip_runs(float* dst, int64_t kc, const float* src, const int64_t* offsets, const StripRun* runs,
                            int nruns, int64_t w);

// The micro-kernel's instruction set on this machine: "avx512", "avx2" or "scalar".
const char* gemm_isa();
// The same as a level, for picking a kernel's variant from a table: 2 AVX-512, 1 AVX2, 0 the
// baseline (follows gemm_use_isa too).
int gemm_isa_level();
// Selects the micro-kernel by name ("avx512", "avx2", "scalar", or "auto" for the start-up
// choice), for tests of every path; returns false when this CPU lacks that instruction set.
// Not for use while a GEMM runs.
bool gemm_use_isa(const char* name);

}  // namespace lrface::cpu
