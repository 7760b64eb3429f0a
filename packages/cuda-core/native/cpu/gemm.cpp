// Packed, cache-blocked SGEMM in the GotoBLAS/BLIS style.
//
// Loops, outermost first: k blocks of KC; row blocks of MC, packed once into MR x KC strips;
// column blocks of NC, whose packed KC x NC block of B stays in L2; then every (A strip,
// B strip) pair runs the MR x NR register-blocked micro-kernel: an A strip (the broadcast
// operand) stays in L1 while the B strips stream from L2. Each operand is packed about once.
// Micro-kernels: AVX-512 (12 x 32) or AVX2+FMA (6 x 16), chosen at run time, or a portable
// scalar one (4 x 8). Only the micro-kernels and the row copy are compiled for the wider
// instruction sets, so the file runs on any x86-64.
//
// gemm_stored_a: a variant whose A operand (a convolution's weights) the micro-kernel reads
// straight from its stored rows, for products with few columns, where packing A would cost a
// good share of the arithmetic; its threads split the columns (and the rows when the columns
// are too few), each packing only the B block it uses.
//
// Threads split C into a grid of blocks (and, when C is too small to split, k into slices
// summed at the end); each thread packs its own operands, so one parallel region does the
// whole product without barriers. Packing is duplicated across threads, which costs
// O((m + n) k) against O(m n k / threads) of arithmetic.
#include "gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "../core/thread_pool.h"
#include "kernel_util.h"

namespace lrface::cpu {

namespace {

// k block: an A strip (MR x KC, 24 KiB at AVX-512) fits the 32 KiB L1 next to the B row
// stream. Each k block reads and writes all of C once more (4 MiB at 1024 x 1024), traffic
// the two cores share: 512 measured 2-5% faster than 256 on two threads, even on one (Zen 4,
// 1 MiB L2 a core).
constexpr int64_t KC = 512;
// column block: the packed KC x NC block of B, 1 MiB, the size of L2 (256, half of it, ran
// 25% slower on 8 x 512 x 10240, where B is read as half rows)
constexpr int64_t NC = 512;
// gemm_stored_a's k block: its packed B strip (KC_STORED_A x NR, 32 KiB at AVX-512) stays in
// L1 while the rows of A stream past it.
constexpr int64_t KC_STORED_A = 256;
constexpr int64_t MC = 1536;  // row block: bounds the packed-A buffer (3 MiB); B is repacked per block

using Kernel = void (*)(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, float alpha, float beta);
// dst[0:w] = src[0:w], dst[w:nr] = 0 (nr is the ISA's strip width).
using CopyRow = void (*)(float* dst, const float* src, int64_t w);
// The micro-kernel with A read in place from mr stored rows (element (i, p) at a[i * lda + p])
// instead of a packed strip.
using KernelRows = void (*)(int64_t kc, const float* a, int64_t lda, const float* bp, float* c, int64_t ldc,
                            float alpha, float beta);
// dst[p * mr + i] = a[i * lda + p] for i < mr, p < kc: a full strip of A from stored rows.
using PackRows = void (*)(const float* a, int64_t lda, int64_t kc, float* dst);
// Row p < kc of a packed B strip (dst + p * nr) gathered from runs starting at src + offsets[p].
using GatherRuns = void (*)(float* dst, int64_t kc, const float* src, const int64_t* offsets, const StripRun* runs,
                            int nruns, int64_t w);

struct Isa {
  int mr;
  int nr;
  Kernel kernel;
  // kernel_rows[q] reads (q + 1) * rows_step stored rows of A; the last one mr of them. Null
  // where A is better packed.
  int rows_step;
  const KernelRows* kernel_rows;
  CopyRow copy_row;
  PackRows pack_rows;
  GatherRuns gather_runs;
  const char* name;
};

// dst[p * MR + i] = a[i * lda + p]: VW steps of k at a time by an in-register transposition of
// VW rows (MR stored ones, the rest zero), then the rest one element at a time.
template <int MR, int VW>
LR_INLINE void pack_rows_vec(const float* a, int64_t lda, int64_t kc, float* dst) {
  static_assert(MR <= VW, "one transposition covers the strip");
  using V = typename kernel::Vec<VW>::V;
  int64_t p = 0;
  for (; p + VW <= kc; p += VW) {
    V v[VW];
    for (int i = 0; i < VW; ++i) v[i] = i < MR ? kernel::vload<VW>(a + i * lda + p) : V{};
    kernel::transpose_square<VW>(v);
    for (int q = 0; q < VW; ++q) std::memcpy(dst + (p + q) * MR, &v[q], MR * sizeof(float));
  }
  for (; p < kc; ++p)
    for (int i = 0; i < MR; ++i) dst[p * MR + i] = a[i * lda + p];
}

// The runs of each row, in order (they tile [0, w)), then zeros to nr.
template <int NR, typename CopyRun>
LR_INLINE void gather_runs_rows(float* dst, int64_t kc, const float* src, const int64_t* offsets, const StripRun* runs,
                                int nruns, int64_t w, CopyRun copy_run) {
  for (int64_t p = 0; p < kc; ++p) {
    float* d = dst + p * NR;
    const float* s = src + offsets[p];
    for (int r = 0; r < nruns; ++r) copy_run(d + runs[r].t0, s + runs[r].offset, runs[r].len);
    for (int64_t t = w; t < NR; ++t) d[t] = 0.0f;
  }
}

// C (MR x 32) = alpha * acc + beta * C.
template <int MR>
LR_AVX512 LR_INLINE void store_avx512(const __m512 (&acc)[MR][2], float* c, int64_t ldc, float alpha, float beta) {
  const __m512 va = _mm512_set1_ps(alpha);
  if (beta == 0.0f) {
    for (int i = 0; i < MR; ++i) {
      _mm512_storeu_ps(c + i * ldc, _mm512_mul_ps(acc[i][0], va));
      _mm512_storeu_ps(c + i * ldc + 16, _mm512_mul_ps(acc[i][1], va));
    }
  } else {
    const __m512 vb = _mm512_set1_ps(beta);
    for (int i = 0; i < MR; ++i) {
      float* row = c + i * ldc;
      _mm512_storeu_ps(row, _mm512_fmadd_ps(_mm512_loadu_ps(row), vb, _mm512_mul_ps(acc[i][0], va)));
      _mm512_storeu_ps(row + 16, _mm512_fmadd_ps(_mm512_loadu_ps(row + 16), vb, _mm512_mul_ps(acc[i][1], va)));
    }
  }
}

// acc (12 x 32) = Ap (12 x kc, k-major) * Bp (kc x 32, k-major); C = alpha * acc + beta * C.
LR_AVX512 void kernel_avx512(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, float alpha, float beta) {
  constexpr int MR = 12;
  __m512 acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(bp);
    const __m512 b1 = _mm512_load_ps(bp + 16);
    _mm_prefetch(reinterpret_cast<const char*>(bp + 256), _MM_HINT_T0);
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(ap[i]);
      acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
    }
    ap += MR;
    bp += 32;
  }
  store_avx512<MR>(acc, c, ldc, alpha, beta);
}

// kernel_avx512 with A read from MR stored rows: row pointers three rows apart, so each
// broadcast addresses its row as base + 0, 1 or 2 strides. MR = 4 and 8 serve the last rows
// of a product (256 = 21 x 12 + 4) without computing a whole strip of zero rows.
template <int MR>
LR_AVX512 void kernel_rows_avx512(int64_t kc, const float* a, int64_t lda, const float* bp, float* c, int64_t ldc,
                                  float alpha, float beta) {
  __m512 acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  const float* rows[(MR + 2) / 3];
  for (int q = 0; q < (MR + 2) / 3; ++q) rows[q] = a + 3 * q * lda;
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(bp);
    const __m512 b1 = _mm512_load_ps(bp + 16);
    _mm_prefetch(reinterpret_cast<const char*>(bp + 256), _MM_HINT_T0);
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(rows[i / 3][(i % 3) * lda + p]);
      acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
    }
    bp += 32;
  }
  store_avx512<MR>(acc, c, ldc, alpha, beta);
}

LR_AVX512 void copy_row_avx512(float* dst, const float* src, int64_t w) {
  const __mmask16 m0 = static_cast<__mmask16>(w >= 16 ? 0xFFFF : (1u << w) - 1);
  const __mmask16 m1 = static_cast<__mmask16>(w >= 32 ? 0xFFFF : w <= 16 ? 0 : (1u << (w - 16)) - 1);
  _mm512_store_ps(dst, _mm512_maskz_loadu_ps(m0, src));
  _mm512_store_ps(dst + 16, _mm512_maskz_loadu_ps(m1, src + 16));
}

LR_AVX512 void pack_rows_avx512(const float* a, int64_t lda, int64_t kc, float* dst) {
  pack_rows_vec<12, 16>(a, lda, kc, dst);
}

// Masked loads and stores: one of each per 16 floats of a run, whatever its length.
LR_AVX512 LR_INLINE void copy_run_avx512(float* d, const float* s, int64_t len) {
  for (int64_t t = 0; t < len; t += 16) {
    const __mmask16 m = static_cast<__mmask16>(len - t >= 16 ? 0xFFFF : (1u << (len - t)) - 1);
    _mm512_mask_storeu_ps(d + t, m, _mm512_maskz_loadu_ps(m, s + t));
  }
}

LR_AVX512 void gather_runs_avx512(float* dst, int64_t kc, const float* src, const int64_t* offsets,
                                  const StripRun* runs, int nruns, int64_t w) {
  // Where each half of the strip (16 columns) reads from a span of at most 32 floats (short
  // runs: two to eight output rows of a small plane), a half-row is two masked loads and one
  // permutation instead of a load and a store per run.
  int32_t lane_offset[32];
  for (int r = 0; r < nruns; ++r)
    for (int64_t t = 0; t < runs[r].len; ++t) lane_offset[runs[r].t0 + t] = static_cast<int32_t>(runs[r].offset + t);
  __m512i index[2];
  int64_t base[2];
  __mmask16 lo_mask[2], hi_mask[2], lanes[2];
  bool permute = nruns > 2;  // two runs or one: the copies are already few
  for (int half = 0; half < 2 && permute; ++half) {
    const int64_t t0 = 16 * half, t1 = std::min<int64_t>(w, t0 + 16);
    if (t0 >= t1) {  // nothing to read: zeros
      base[half] = 0;
      index[half] = _mm512_setzero_si512();
      lo_mask[half] = hi_mask[half] = lanes[half] = 0;
      continue;
    }
    // Offsets rise along the strip (runs in order, images in order).
    const int64_t first = lane_offset[t0], span = lane_offset[t1 - 1] - first + 1;
    if (span > 32) {
      permute = false;
      break;
    }
    alignas(64) int32_t idx[16] = {};
    for (int64_t t = t0; t < t1; ++t) idx[t - t0] = static_cast<int32_t>(lane_offset[t] - first);
    index[half] = _mm512_load_si512(idx);
    base[half] = first;
    lo_mask[half] = static_cast<__mmask16>(span >= 16 ? 0xFFFF : (1u << span) - 1);
    hi_mask[half] = static_cast<__mmask16>(span <= 16 ? 0 : (1u << (span - 16)) - 1);
    lanes[half] = static_cast<__mmask16>((1u << (t1 - t0)) - 1);
  }
  if (!permute) return gather_runs_rows<32>(dst, kc, src, offsets, runs, nruns, w, copy_run_avx512);
  for (int64_t p = 0; p < kc; ++p) {
    const float* s = src + offsets[p];
    for (int half = 0; half < 2; ++half) {
      const float* h = s + base[half];
      const __m512 lo = _mm512_maskz_loadu_ps(lo_mask[half], h);
      const __m512 hi = _mm512_maskz_loadu_ps(hi_mask[half], h + 16);
      _mm512_store_ps(dst + p * 32 + 16 * half, _mm512_maskz_permutex2var_ps(lanes[half], lo, index[half], hi));
    }
  }
}

// C (MR x 16) = alpha * acc + beta * C.
template <int MR>
LR_AVX2 LR_INLINE void store_avx2(const __m256 (&acc)[MR][2], float* c, int64_t ldc, float alpha, float beta) {
  const __m256 va = _mm256_set1_ps(alpha);
  for (int i = 0; i < MR; ++i) {
    float* row = c + i * ldc;
    __m256 r0 = _mm256_mul_ps(acc[i][0], va);
    __m256 r1 = _mm256_mul_ps(acc[i][1], va);
    if (beta != 0.0f) {
      const __m256 vb = _mm256_set1_ps(beta);
      r0 = _mm256_fmadd_ps(_mm256_loadu_ps(row), vb, r0);
      r1 = _mm256_fmadd_ps(_mm256_loadu_ps(row + 8), vb, r1);
    }
    _mm256_storeu_ps(row, r0);
    _mm256_storeu_ps(row + 8, r1);
  }
}

// acc (6 x 16) = Ap (6 x kc) * Bp (kc x 16).
LR_AVX2 void kernel_avx2(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, float alpha, float beta) {
  constexpr int MR = 6;
  __m256 acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(bp);
    const __m256 b1 = _mm256_load_ps(bp + 8);
    _mm_prefetch(reinterpret_cast<const char*>(bp + 128), _MM_HINT_T0);
    for (int i = 0; i < MR; ++i) {
      const __m256 a = _mm256_broadcast_ss(ap + i);
      acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
    }
    ap += MR;
    bp += 16;
  }
  store_avx2<MR>(acc, c, ldc, alpha, beta);
}

// kernel_avx2 with A read from MR stored rows (row pointers three rows apart); MR = 3 serves
// the last rows of a product.
template <int MR>
LR_AVX2 void kernel_rows_avx2(int64_t kc, const float* a, int64_t lda, const float* bp, float* c, int64_t ldc,
                              float alpha, float beta) {
  __m256 acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  const float* rows[(MR + 2) / 3];
  for (int q = 0; q < (MR + 2) / 3; ++q) rows[q] = a + 3 * q * lda;
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(bp);
    const __m256 b1 = _mm256_load_ps(bp + 8);
    _mm_prefetch(reinterpret_cast<const char*>(bp + 128), _MM_HINT_T0);
    for (int i = 0; i < MR; ++i) {
      const __m256 av = _mm256_broadcast_ss(rows[i / 3] + (i % 3) * lda + p);
      acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
    }
    bp += 16;
  }
  store_avx2<MR>(acc, c, ldc, alpha, beta);
}

LR_AVX2 void copy_row_avx2(float* dst, const float* src, int64_t w) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::min<int64_t>(w, 8))), lane);
  const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::max<int64_t>(w - 8, 0))), lane);
  _mm256_store_ps(dst, _mm256_maskload_ps(src, m0));
  _mm256_store_ps(dst + 8, w > 8 ? _mm256_maskload_ps(src + 8, m1) : _mm256_setzero_ps());
}

LR_AVX2 void pack_rows_avx2(const float* a, int64_t lda, int64_t kc, float* dst) { pack_rows_vec<6, 8>(a, lda, kc, dst); }

// Whole vectors of 8 and 4, then single floats (AVX2's masked stores are slow on some CPUs).
LR_AVX2 LR_INLINE void copy_run_avx2(float* d, const float* s, int64_t len) {
  int64_t t = 0;
  for (; t + 8 <= len; t += 8) _mm256_storeu_ps(d + t, _mm256_loadu_ps(s + t));
  if (t + 4 <= len) {
    _mm_storeu_ps(d + t, _mm_loadu_ps(s + t));
    t += 4;
  }
  for (; t < len; ++t) d[t] = s[t];
}

LR_AVX2 void gather_runs_avx2(float* dst, int64_t kc, const float* src, const int64_t* offsets, const StripRun* runs,
                              int nruns, int64_t w) {
  gather_runs_rows<16>(dst, kc, src, offsets, runs, nruns, w, copy_run_avx2);
}

void kernel_scalar(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, float alpha, float beta) {
  constexpr int MR = 4, NR = 8;
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += ap[i] * bp[j];
    ap += MR;
    bp += NR;
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      float* dst = c + i * ldc + j;
      *dst = alpha * acc[i][j] + (beta != 0.0f ? beta * *dst : 0.0f);
    }
}

void copy_row_scalar(float* dst, const float* src, int64_t w) {
  for (int64_t j = 0; j < w; ++j) dst[j] = src[j];
  for (int64_t j = w; j < 8; ++j) dst[j] = 0.0f;
}

void pack_rows_scalar(const float* a, int64_t lda, int64_t kc, float* dst) {
  for (int64_t p = 0; p < kc; ++p)
    for (int i = 0; i < 4; ++i) dst[p * 4 + i] = a[i * lda + p];
}

void copy_run_scalar(float* d, const float* s, int64_t len) {
  for (int64_t t = 0; t < len; ++t) d[t] = s[t];
}

void gather_runs_scalar(float* dst, int64_t kc, const float* src, const int64_t* offsets, const StripRun* runs,
                        int nruns, int64_t w) {
  gather_runs_rows<8>(dst, kc, src, offsets, runs, nruns, w, copy_run_scalar);
}

const KernelRows kRowsAvx512[] = {kernel_rows_avx512<4>, kernel_rows_avx512<8>, kernel_rows_avx512<12>};
const KernelRows kRowsAvx2[] = {kernel_rows_avx2<3>, kernel_rows_avx2<6>};
const Isa kAvx512{12, 32, kernel_avx512, 4, kRowsAvx512, copy_row_avx512, pack_rows_avx512, gather_runs_avx512, "avx512"};
const Isa kAvx2{6, 16, kernel_avx2, 3, kRowsAvx2, copy_row_avx2, pack_rows_avx2, gather_runs_avx2, "avx2"};
// No stored-row kernel: reading rows in place, the compiler keeps the scalar kernel's
// accumulators in memory (3x slower), so gemm_stored_a packs A here as gemm_packed does.
const Isa kScalar{4, 8, kernel_scalar, 4, nullptr, copy_row_scalar, pack_rows_scalar, gather_runs_scalar, "scalar"};

bool cpu_has(const std::string& name) {
  __builtin_cpu_init();
  if (name == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
  if (name == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return name == "scalar";
}

const Isa* best_isa(const std::string& want) {
  if ((want.empty() || want == "auto" || want == "avx512") && cpu_has("avx512")) return &kAvx512;
  if ((want.empty() || want == "auto" || want == "avx512" || want == "avx2") && cpu_has("avx2")) return &kAvx2;
  return &kScalar;
}

// LRFACE_ISA caps the instruction set (e.g. to compare kernels); the best available otherwise.
const Isa* startup_isa() {
  const char* env = std::getenv("LRFACE_ISA");
  return best_isa(env ? env : "");
}

std::atomic<const Isa*>& isa_slot() {
  static std::atomic<const Isa*> slot{startup_isa()};
  return slot;
}

const Isa& isa() { return *isa_slot().load(std::memory_order_relaxed); }

using AlignedBuffer = kernel::Scratch;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// One thread's share: C[i0:i1, j0:j1] (+)= alpha * op(A)[i0:i1, p0:p1] op(B)[p0:p1, j0:j1].
void gemm_range(const Isa& s, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t p0, int64_t p1, float alpha,
                const PackA& pack_a, const PackB& pack_b, float beta, float* c, int64_t ldc) {
  thread_local AlignedBuffer abuf, bbuf;
  const int mr = s.mr, nr = s.nr;
  const int64_t nc_max = (NC / nr) * nr, mc_max = (MC / mr) * mr;
  alignas(64) float tmp[16 * 32];
  // k blocks of equal length: a short last block would cost a whole pass over C for little
  // arithmetic (k = 576: 288 + 288 rather than 512 + 64).
  const int64_t kc_max = ceil_div(p1 - p0, ceil_div(p1 - p0, KC));
  for (int64_t pc = p0; pc < p1; pc += kc_max) {
    const int64_t kc = std::min(kc_max, p1 - pc);
    const float beta_here = pc == p0 ? beta : 1.0f;
    for (int64_t ic = i0; ic < i1; ic += mc_max) {
      const int64_t mc = std::min(mc_max, i1 - ic);
      const int64_t m_strips = ceil_div(mc, mr);
      float* ap = abuf.get(m_strips * kc * mr);
      for (int64_t si = 0; si < m_strips; ++si)
        pack_a(ic + si * mr, std::min<int64_t>(mr, mc - si * mr), pc, kc, mr, ap + si * kc * mr);
      for (int64_t jc = j0; jc < j1; jc += nc_max) {
        const int64_t nc = std::min(nc_max, j1 - jc);
        const int64_t n_strips = ceil_div(nc, nr);
        float* bp = bbuf.get(n_strips * kc * nr);
        pack_b(pc, kc, jc, nc, nr, bp);
        for (int64_t si = 0; si < m_strips; ++si) {
          const int64_t h = std::min<int64_t>(mr, mc - si * mr);
          const float* a_strip = ap + si * kc * mr;
          float* crow = c + (ic + si * mr) * ldc + jc;
          for (int64_t sj = 0; sj < n_strips; ++sj) {
            const int64_t w = std::min<int64_t>(nr, nc - sj * nr);
            float* cdst = crow + sj * nr;
            const float* b_strip = bp + sj * kc * nr;
            if (h == mr && w == nr) {
              s.kernel(kc, a_strip, b_strip, cdst, ldc, alpha, beta_here);
            } else {
              // Edge tile: compute into a scratch tile, then blend the valid part.
              s.kernel(kc, a_strip, b_strip, tmp, nr, alpha, 0.0f);
              for (int64_t i = 0; i < h; ++i)
                for (int64_t j = 0; j < w; ++j) {
                  float* dst = cdst + i * ldc + j;
                  *dst = tmp[i * nr + j] + (beta_here != 0.0f ? beta_here * *dst : 0.0f);
                }
            }
          }
        }
      }
    }
  }
}

// How the threads share one product: a pm x pn grid of C blocks, each block's k range cut
// into pk slices (pk > 1 only when C is too small to keep the threads busy).
struct Plan {
  int pm = 1, pn = 1, pk = 1;
  int parts() const { return pm * pn * pk; }
};

Plan plan(const Isa& s, int64_t m, int64_t n, int64_t k, int threads) {
  Plan best;
  const double flops = double(m) * double(n) * double(k);
  // Below ~2^18 multiply-adds, waking another thread costs more than it saves.
  if (threads <= 1 || flops < double(1 << 18)) return best;
  const int64_t mt = ceil_div(m, s.mr), nt = ceil_div(n, s.nr), kt = ceil_div(k, KC);
  // Cost in cycles, roughly: the slowest part's arithmetic (32 multiply-adds a cycle), its
  // packing (about two elements a cycle), the k-slice reduction, and a thread wake-up.
  auto cost = [&](int pm, int pn, int pk) {
    const double mu = double(ceil_div(mt, pm) * s.mr), nu = double(ceil_div(nt, pn) * s.nr);
    const double ku = double(std::min<int64_t>(k, ceil_div(kt, pk) * KC));
    const double pack = mu * ku * double(ceil_div(int64_t(nu), NC)) + nu * ku;
    const double reduce = pk > 1 ? double(m) * double(n) * pk / (pm * pn) : 0.0;
    const int parts = pm * pn * pk;
    return mu * nu * ku / 32.0 + pack / 2.0 + reduce + (parts > 1 ? 20000.0 : 0.0);
  };
  double best_cost = cost(1, 1, 1);
  for (int pm = 1; pm <= threads && pm <= mt; ++pm)
    for (int pn = 1; pm * pn <= threads && pn <= nt; ++pn)
      for (int pk = 1; pm * pn * pk <= threads && pk <= kt; ++pk) {
        const double cst = cost(pm, pn, pk);
        if (cst < best_cost * 0.97) {
          best_cost = cst;
          best = Plan{pm, pn, pk};
        }
      }
  return best;
}

// Bounds of part `idx` of `parts` over `units` units of `unit` elements, clipped to `total`.
inline void split(int64_t units, int64_t unit, int64_t total, int parts, int idx, int64_t& lo, int64_t& hi) {
  lo = std::min(total, units * idx / parts * unit);
  hi = std::min(total, units * (idx + 1) / parts * unit);
}

void run_gemm(const Isa& s, int64_t m, int64_t n, int64_t k, float alpha, const PackA& pack_a, const PackB& pack_b,
              float beta, float* c, int64_t ldc, int threads) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  const Plan p = plan(s, m, n, k, threads);
  if (p.parts() == 1) {
    gemm_range(s, 0, m, 0, n, 0, k, alpha, pack_a, pack_b, beta, c, ldc);
    return;
  }
  const int64_t mt = ceil_div(m, s.mr), nt = ceil_div(n, s.nr), kt = ceil_div(k, KC);
  // k slices after the first accumulate into private m x n buffers, added to C at the end.
  std::vector<float> partial(p.pk > 1 ? size_t(p.pk - 1) * m * n : 0);
  parallel_for(p.parts(), 1, [&](int64_t lo, int64_t hi) {
    for (int64_t part = lo; part < hi; ++part) {
      const int pk_idx = int(part % p.pk), pn_idx = int(part / p.pk % p.pn), pm_idx = int(part / p.pk / p.pn);
      int64_t i0, i1, j0, j1, k0, k1;
      split(mt, s.mr, m, p.pm, pm_idx, i0, i1);
      split(nt, s.nr, n, p.pn, pn_idx, j0, j1);
      split(kt, KC, k, p.pk, pk_idx, k0, k1);
      if (i0 >= i1 || j0 >= j1) continue;
      if (pk_idx == 0) {
        gemm_range(s, i0, i1, j0, j1, k0, k1, alpha, pack_a, pack_b, beta, c, ldc);
      } else {  // plan() keeps pk <= kt, so no slice is empty
        gemm_range(s, i0, i1, j0, j1, k0, k1, alpha, pack_a, pack_b, 0.0f, partial.data() + size_t(pk_idx - 1) * m * n, n);
      }
    }
  });
  if (p.pk > 1)
    parallel_for(m, std::max<int64_t>(1, 4096 / n), [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i)
        for (int q = 0; q < p.pk - 1; ++q) {
          const float* src = partial.data() + size_t(q) * m * n + i * n;
          float* dst = c + i * ldc;
          for (int64_t j = 0; j < n; ++j) dst[j] += src[j];
        }
    });
}

}  // namespace

PackA plain_pack_a(const float* a, int64_t lda, bool trans_a) {
  if (trans_a)  // A stored [k, m]: each k step is a contiguous run of rows.
    return [a, lda](int64_t i0, int64_t h, int64_t p0, int64_t kc, int mr, float* dst) {
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = a + (p0 + p) * lda + i0;
        float* d = dst + p * mr;
        for (int64_t i = 0; i < h; ++i) d[i] = src[i];
        for (int64_t i = h; i < mr; ++i) d[i] = 0.0f;
      }
    };
  const PackRows pack_rows = isa().pack_rows;
  const int isa_mr = isa().mr;
  return [a, lda, pack_rows, isa_mr](int64_t i0, int64_t h, int64_t p0, int64_t kc, int mr, float* dst) {
    if (h == mr && mr == isa_mr) return pack_rows(a + i0 * lda + p0, lda, kc, dst);
    for (int64_t i = 0; i < mr; ++i) {
      if (i < h) {
        const float* src = a + (i0 + i) * lda + p0;
        for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = src[p];
      } else {
        for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = 0.0f;
      }
    }
  };
}

PackB plain_pack_b(const float* b, int64_t ldb, bool trans_b) {
  if (trans_b)  // B stored [n, k]: read each stored row contiguously, write one strip column.
    return pack_b_by_strips([b, ldb](int64_t p0, int64_t kc, int64_t j0, int64_t w, int nr, float* dst) {
      for (int64_t j = 0; j < nr; ++j) {
        if (j < w) {
          const float* src = b + (j0 + j) * ldb + p0;
          for (int64_t p = 0; p < kc; ++p) dst[p * nr + j] = src[p];
        } else {
          for (int64_t p = 0; p < kc; ++p) dst[p * nr + j] = 0.0f;
        }
      }
    });
  // B stored [k, n]: one stored row at a time across every strip, so reads stream along rows
  // (column strips of a wide matrix would hop between far-apart rows and defeat the prefetcher).
  const CopyRow copy = isa().copy_row;
  return [b, ldb, copy](int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, float* dst) {
    const int64_t strips = ceil_div(nc, nr);
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = b + (p0 + p) * ldb + j0;
      for (int64_t s = 0; s < strips; ++s)
        copy(dst + (s * kc + p) * nr, src + s * nr, std::min<int64_t>(nr, nc - s * nr));
    }
  };
}

void gemm_packed(int64_t m, int64_t n, int64_t k, float alpha, const PackA& pack_a, const PackB& pack_b, float beta,
                 float* c, int64_t ldc, int threads) {
  run_gemm(isa(), m, n, k, alpha, pack_a, pack_b, beta, c, ldc, threads <= 0 ? num_threads() : threads);
}

namespace {
std::atomic<int64_t> g_stored_a_runs{0};
}  // namespace

void gemm_stored_a(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const PackB& pack_b,
                   float beta, float* c, int64_t ldc) {
  const Isa& s = isa();
  g_stored_a_runs.fetch_add(1, std::memory_order_relaxed);
  if (m <= 0 || n <= 0 || k <= 0 || alpha == 0.0f || !s.kernel_rows)
    return run_gemm(s, m, n, k, alpha, plain_pack_a(a, lda, false), pack_b, beta, c, ldc, num_threads());
  const int mr = s.mr, nr = s.nr;
  const int64_t mt = ceil_div(m, mr), nt = ceil_div(n, nr);
  // k blocks of equal length (no short block left over).
  const int64_t kb = ceil_div(k, KC_STORED_A), kc_max = ceil_div(k, kb);
  // Parts claimed as threads come free (so one held-up thread does not hold up the rest):
  // column strips of B, each packed by the part that uses it and kept in L1/L2 while the rows of
  // A stream past it (one strip a part: on a shared machine, measured as fast as two or four,
  // which wait longer for the last part); when there are fewer than four strips per thread, row
  // blocks as well (each packing its own copy of its B block, a small cost beside its
  // arithmetic with at least four strips of rows).
  const int threads = num_threads();
  constexpr int64_t part_strips = 1;
  const int64_t n_parts = ceil_div(nt, part_strips);
  const int64_t m_parts = std::max<int64_t>(1, std::min(ceil_div(4 * threads, n_parts), mt / 4));
  auto run_part = [&](int64_t part) {
    thread_local AlignedBuffer bbuf, edge;
    float* const bp = bbuf.get(size_t(part_strips * nr) * kc_max);
    const int64_t pn = part % n_parts, pm = part / n_parts;
    const int64_t si0 = mt * pm / m_parts, si1 = mt * (pm + 1) / m_parts;
    const int64_t j0 = pn * part_strips * nr, nc = std::min(part_strips * nr, n - j0), strips = ceil_div(nc, nr);
    alignas(64) float tmp[16 * 32];
    for (int64_t p0 = 0; p0 < k; p0 += kc_max) {
      const int64_t kc = std::min(kc_max, k - p0);
      pack_b(p0, kc, j0, nc, nr, bp);
      const float beta_here = p0 == 0 ? beta : 1.0f;
      for (int64_t si = si0; si < si1; ++si) {
        const int64_t h = std::min<int64_t>(mr, m - si * mr);
        // The last rows run the smallest kernel that covers them.
        const int64_t q = ceil_div(h, s.rows_step) - 1, kh = (q + 1) * s.rows_step;
        const KernelRows kernel = s.kernel_rows[q];
        const float* rows = a + si * mr * lda + p0;
        int64_t row_stride = lda;
        if (h < kh) {  // copied above zero rows, so that the kernel reads kh of them
          float* e = edge.get(size_t(kh) * kc);
          for (int64_t i = 0; i < kh; ++i)
            for (int64_t p = 0; p < kc; ++p) e[i * kc + p] = i < h ? rows[i * lda + p] : 0.0f;
          rows = e;
          row_stride = kc;
        }
        for (int64_t sj = 0; sj < strips; ++sj) {
          const int64_t w = std::min<int64_t>(nr, nc - sj * nr);
          float* cdst = c + si * mr * ldc + j0 + sj * nr;
          if (h == kh && w == nr) {
            kernel(kc, rows, row_stride, bp + sj * kc * nr, cdst, ldc, alpha, beta_here);
            continue;
          }
          kernel(kc, rows, row_stride, bp + sj * kc * nr, tmp, nr, alpha, 0.0f);
          for (int64_t i = 0; i < h; ++i)
            for (int64_t j = 0; j < w; ++j) {
              float* dst = cdst + i * ldc + j;
              *dst = tmp[i * nr + j] + (beta_here != 0.0f ? beta_here * *dst : 0.0f);
            }
        }
      }
    }
  };
  parallel_for(n_parts * m_parts, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t part = lo; part < hi; ++part) run_part(part);
  });
}

int64_t gemm_stored_a_count() { return g_stored_a_runs.load(std::memory_order_relaxed); }

namespace {

// ---- few rows times stored rows: C (m x n) = A (m x k) @ B^T, B stored n x k --------------
//
// A linear layer on a small batch (FRNET's fc5: 8 x 10240 by 512 x 10240) is a product with
// few rows whose B (the weights) is large and read once: packing B cost more than the
// arithmetic (the weights went through at 5-6 GB/s). Here each weight row is read where it
// lies, as dot products against every row of A: R rows of B at a time, M rows of A (kept in
// L2) in registers, the k loop vectorised, one horizontal sum per output at the end.
constexpr int64_t kFewRows = 64;  // up to this many rows of A take this path (8 x 10240 by 512: 3.7 -> 0.7 ms; 64 rows 5.3 -> 4.7)
constexpr int64_t kFewRowsMinK = 128;  // and products this deep, where the vector loop outweighs the sums
constexpr int kDotRowsOfB = 3;

template <int VW>
struct DotLanes {
  typedef float V __attribute__((vector_size(VW * sizeof(float))));
};

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 misreads arrays of vectors
#pragma GCC diagnostic ignored "-Wpsabi"
// Outputs (0..M, j0..j0+R) from dot products over k; R <= kDotRowsOfB rows of B from j0.
template <int VW, int M, int R>
LR_INLINE void dot_block(int64_t k, float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                         float* c, int64_t ldc, int64_t j0) {
  using V = typename DotLanes<VW>::V;
  V acc[M][R];
  _Pragma("GCC unroll 16") for (int i = 0; i < M; ++i) _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r) acc[i][r] = V{};
  const float* brow[R];
  _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r) brow[r] = b + (j0 + r) * ldb;
  const int64_t kv = k / VW * VW;
  for (int64_t p = 0; p < kv; p += VW) {
    V bv[R];
    _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r) std::memcpy(&bv[r], brow[r] + p, sizeof(V));
    _Pragma("GCC unroll 16") for (int i = 0; i < M; ++i) {
      V av;
      std::memcpy(&av, a + i * lda + p, sizeof(V));
      _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r) acc[i][r] += av * bv[r];
    }
  }
  _Pragma("GCC unroll 16") for (int i = 0; i < M; ++i) _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r) {
    float sum = 0.0f;
    for (int l = 0; l < VW; ++l) sum += acc[i][r][l];
    for (int64_t p = kv; p < k; ++p) sum += a[i * lda + p] * brow[r][p];
    float* out = c + i * ldc + j0 + r;
    *out = beta == 0.0f ? alpha * sum : alpha * sum + beta * *out;
  }
}
#pragma GCC diagnostic pop

// Columns [lo, hi) of C for M rows of A.
template <int VW, int M>
LR_INLINE void dot_columns(int64_t lo, int64_t hi, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
                           int64_t ldb, float beta, float* c, int64_t ldc) {
  int64_t j = lo;
  for (; j + kDotRowsOfB <= hi; j += kDotRowsOfB) dot_block<VW, M, kDotRowsOfB>(k, alpha, a, lda, b, ldb, beta, c, ldc, j);
  for (; j < hi; ++j) dot_block<VW, M, 1>(k, alpha, a, lda, b, ldb, beta, c, ldc, j);
}

using DotColumns = void (*)(int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float,
                            float*, int64_t);

// dot_columns for 1..8 rows of A, compiled per instruction set.
#define LR_DOT_TABLE(NAME, ATTR, VW)                                                                          \
  template <int M>                                                                                            \
  ATTR void NAME##_rows(int64_t lo, int64_t hi, int64_t k, float alpha, const float* a, int64_t lda,        \
                        const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {                    \
    dot_columns<VW, M>(lo, hi, k, alpha, a, lda, b, ldb, beta, c, ldc);                                       \
  }                                                                                                           \
  const DotColumns NAME[8] = {NAME##_rows<1>, NAME##_rows<2>, NAME##_rows<3>, NAME##_rows<4>,                  \
                              NAME##_rows<5>, NAME##_rows<6>, NAME##_rows<7>, NAME##_rows<8>};
LR_DOT_TABLE(dot_avx512, LR_AVX512, 16)
LR_DOT_TABLE(dot_avx2, LR_AVX2, 8)
LR_DOT_TABLE(dot_scalar, , 4)
#undef LR_DOT_TABLE

void gemm_few_rows_bt(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
                      int64_t ldb, float beta, float* c, int64_t ldc) {
  const DotColumns* const tables[3] = {dot_scalar, dot_avx2, dot_avx512};
  const DotColumns* table = tables[gemm_isa_level()];
  // Each task a run of columns (rows of B) for every row of A, in chunks of 8 rows.
  const int64_t grain = std::max<int64_t>(kDotRowsOfB, (int64_t(1) << 16) / std::max<int64_t>(1, m * k) * kDotRowsOfB);
  parallel_for(n, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = 0; i < m; i += 8) {
      const int64_t rows = std::min<int64_t>(8, m - i);
      table[rows - 1](lo, hi, k, alpha, a + i * lda, lda, b, ldb, beta, c + i * ldc, ldc);
    }
  });
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (!trans_a && trans_b && m > 0 && m <= kFewRows && n > 0 && k >= kFewRowsMinK)
    return gemm_few_rows_bt(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  run_gemm(isa(), m, n, k, alpha, plain_pack_a(a, lda, trans_a), plain_pack_b(b, ldb, trans_b), beta, c, ldc,
           num_threads());
}

void sgemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                   int64_t lda, const int64_t* a_offsets, const float* b, int64_t ldb, const int64_t* b_offsets,
                   float beta, float* c, int64_t ldc, int64_t c_stride, int64_t batch) {
  if (batch <= 0) return;
  const int threads = num_threads();
  const double flops = double(m) * double(n) * double(k);
  // Whole products per thread when the batch divides evenly or is long enough to balance,
  // or when each product is too small to split; otherwise split every product.
  const bool over_batch = threads > 1 && batch > 1 &&
                          (batch % threads == 0 || batch >= 4 * threads || flops < double(1 << 18));
  auto one = [&](int64_t i, int th) {
    run_gemm(isa(), m, n, k, alpha, plain_pack_a(a + a_offsets[i], lda, trans_a),
             plain_pack_b(b + b_offsets[i], ldb, trans_b), beta, c + i * c_stride, ldc, th);
  };
  if (over_batch) {
    parallel_for(batch, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) one(i, 1);
    });
  } else {
    for (int64_t i = 0; i < batch; ++i) one(i, threads);
  }
}

void gemm_copy_strip_row(float* dst, const float* src, int64_t w) { isa().copy_row(dst, src, w); }

void gemm_gather_strip_runs(float* dst, int64_t kc, const float* src, const int64_t* offsets, const StripRun* runs,
                            int nruns, int64_t w) {
  isa().gather_runs(dst, kc, src, offsets, runs, nruns, w);
}

const char* gemm_isa() { return isa().name; }

int gemm_isa_level() {
  const char* name = isa().name;
  return name[0] == 'a' ? (name[3] == '5' ? 2 : 1) : 0;
}

bool gemm_use_isa(const char* name) {
  const std::string want = name ? name : "auto";
  if (want != "auto" && !cpu_has(want)) return false;
  isa_slot().store(want == "auto" ? startup_isa() : best_isa(want), std::memory_order_relaxed);
  return true;
}

}  // namespace lrface::cpu
