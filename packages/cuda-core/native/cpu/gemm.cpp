// Packed, cache-blocked SGEMM. B is packed into KC x NR column strips shared by all threads,
// A into MR x KC row strips; an MR x NR register-blocked micro-kernel (AVX-512 or AVX2+FMA,
// chosen at run time, scalar otherwise) runs over the 2-D grid of strips in parallel.
#include "gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../core/thread_pool.h"

namespace lrface::cpu {

namespace {

constexpr int64_t KC = 256;
constexpr int64_t NC = 2048;

struct Isa {
  int mr;
  int nr;
  // acc = Ap (mr x kc, k-major) * Bp (kc x nr, k-major); stores alpha*acc + beta*C into C.
  void (*kernel)(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, float alpha, float beta);
  const char* name;
};

__attribute__((target("avx512f,fma"))) void kernel_avx512(int64_t kc, const float* ap, const float* bp, float* c,
                                                             int64_t ldc, float alpha, float beta) {
  constexpr int MR = 12;
  __m512 acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(bp);
    const __m512 b1 = _mm512_load_ps(bp + 16);
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(ap[i]);
      acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
    }
    ap += MR;
    bp += 32;
  }
  const __m512 va = _mm512_set1_ps(alpha);
  for (int i = 0; i < MR; ++i) {
    float* row = c + i * ldc;
    __m512 r0 = _mm512_mul_ps(acc[i][0], va);
    __m512 r1 = _mm512_mul_ps(acc[i][1], va);
    if (beta != 0.0f) {
      const __m512 vb = _mm512_set1_ps(beta);
      r0 = _mm512_fmadd_ps(_mm512_loadu_ps(row), vb, r0);
      r1 = _mm512_fmadd_ps(_mm512_loadu_ps(row + 16), vb, r1);
    }
    _mm512_storeu_ps(row, r0);
    _mm512_storeu_ps(row + 16, r1);
  }
}

__attribute__((target("avx2,fma"))) void kernel_avx2(int64_t kc, const float* ap, const float* bp, float* c,
                                                        int64_t ldc, float alpha, float beta) {
  constexpr int MR = 6;
  __m256 acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(bp);
    const __m256 b1 = _mm256_load_ps(bp + 8);
    for (int i = 0; i < MR; ++i) {
      const __m256 a = _mm256_broadcast_ss(ap + i);
      acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
    }
    ap += MR;
    bp += 16;
  }
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
    for (int j = 0; j < NR; ++j) c[i * ldc + j] = alpha * acc[i][j] + (beta != 0.0f ? beta * c[i * ldc + j] : 0.0f);
}

const Isa& isa() {
  static const Isa chosen = [] {
    const char* force = std::getenv("LRFACE_ISA");
    std::string want = force ? force : "";
    __builtin_cpu_init();
    if ((want.empty() || want == "avx512") && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma"))
      return Isa{12, 32, kernel_avx512, "avx512"};
    if ((want.empty() || want == "avx512" || want == "avx2") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
      return Isa{6, 16, kernel_avx2, "avx2"};
    return Isa{4, 8, kernel_scalar, "scalar"};
  }();
  return chosen;
}

inline float at(const float* x, int64_t ld, bool trans, int64_t r, int64_t c) { return trans ? x[c * ld + r] : x[r * ld + c]; }

// Packs op(B)[p0:p0+kc, j0:j0+nc] into strips of nr columns, k-major, zero-padded.
void pack_b(const float* b, int64_t ldb, bool trans_b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, float* out) {
  const int64_t strips = (nc + nr - 1) / nr;
  parallel_for(strips, 4, [&](int64_t lo, int64_t hi) {
    for (int64_t s = lo; s < hi; ++s) {
      float* dst = out + s * kc * nr;
      const int64_t jb = j0 + s * nr;
      const int64_t w = std::min<int64_t>(nr, j0 + nc - jb);
      for (int64_t p = 0; p < kc; ++p) {
        float* d = dst + p * nr;
        if (!trans_b && w == nr) {
          std::memcpy(d, b + (p0 + p) * ldb + jb, sizeof(float) * nr);
        } else {
          for (int64_t j = 0; j < w; ++j) d[j] = at(b, ldb, trans_b, p0 + p, jb + j);
          for (int64_t j = w; j < nr; ++j) d[j] = 0.0f;
        }
      }
    }
  });
}

// Packs op(A)[i0:i0+mr, p0:p0+kc] into one k-major strip, zero-padded.
void pack_a_strip(const float* a, int64_t lda, bool trans_a, int64_t i0, int64_t h, int64_t p0, int64_t kc, int mr, float* dst) {
  if (trans_a) {
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = a + (p0 + p) * lda + i0;
      float* d = dst + p * mr;
      for (int64_t i = 0; i < h; ++i) d[i] = src[i];
      for (int64_t i = h; i < mr; ++i) d[i] = 0.0f;
    }
  } else {
    for (int64_t i = 0; i < mr; ++i) {
      if (i < h) {
        const float* src = a + (i0 + i) * lda + p0;
        for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = src[p];
      } else {
        for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = 0.0f;
      }
    }
  }
}

struct AlignedBuffer {
  float* data = nullptr;
  size_t size = 0;
  void reserve(size_t n) {
    if (n <= size) return;
    std::free(data);
    data = static_cast<float*>(std::aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64));
    size = n;
  }
  ~AlignedBuffer() { std::free(data); }
};

}  // namespace

const char* gemm_isa() { return isa().name; }

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  const Isa& s = isa();
  const int mr = s.mr, nr = s.nr;
  // Packing buffers live per calling thread: GEMMs from nested parallel regions run inline.
  thread_local AlignedBuffer bpack, apack;
  const int64_t m_strips = (m + mr - 1) / mr;
  for (int64_t j0 = 0; j0 < n; j0 += NC) {
    const int64_t nc = std::min(NC, n - j0);
    const int64_t n_strips = (nc + nr - 1) / nr;
    for (int64_t p0 = 0; p0 < k; p0 += KC) {
      const int64_t kc = std::min(KC, k - p0);
      const float beta_here = p0 == 0 ? beta : 1.0f;
      bpack.reserve(n_strips * kc * nr);
      apack.reserve(m_strips * kc * mr);
      float* bp = bpack.data;
      float* ap = apack.data;
      pack_b(b, ldb, trans_b, p0, kc, j0, nc, nr, bp);
      parallel_for(m_strips, 4, [&](int64_t lo, int64_t hi) {
        for (int64_t si = lo; si < hi; ++si)
          pack_a_strip(a, lda, trans_a, si * mr, std::min<int64_t>(mr, m - si * mr), p0, kc, mr, ap + si * kc * mr);
      });
      // Tiles: (row strip, column strip) pairs; column strips innermost so a thread reuses its A strip.
      const int64_t tiles = m_strips * n_strips;
      parallel_for(tiles, 8, [&](int64_t lo, int64_t hi) {
        alignas(64) float tmp[16 * 32];
        for (int64_t t = lo; t < hi; ++t) {
          const int64_t si = t / n_strips, sj = t % n_strips;
          const int64_t i0 = si * mr, jb = sj * nr;
          const int64_t h = std::min<int64_t>(mr, m - i0);
          const int64_t w = std::min<int64_t>(nr, nc - jb);
          float* cdst = c + i0 * ldc + j0 + jb;
          const float* a_strip = ap + si * kc * mr;
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
      });
    }
  }
}

}  // namespace lrface::cpu
