#include "pool.h"

#include <algorithm>
#include <cstring>
#include <immintrin.h>

#include <limits>
#include <vector>

#include "../core/thread_pool.h"
#include "gemm.h"
#include "kernel_util.h"

namespace lrface::cpu {

namespace {
// Rows of output are independent in every forward kernel here: split the work over
// (plane, output row) pairs so a single large plane still uses every thread.
constexpr int64_t kRowGrain = 4;
}  // namespace

// ---- 2x2 stride-2 max pooling, no padding or dilation, every window whole ---------------
// The common down-sampling layer: vectorised along the output row, the even and odd input
// columns split by permutes. Same rule as the general kernel: window order (0,0), (0,1), (1,0),
// (1,1); a later element wins when strictly larger or NaN.

namespace {

bool is_pool2x2(const PoolGeometry& g) {
  return g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.pt == 0 && g.pl == 0 && g.dh == 1 && g.dw == 1 &&
         2 * g.out_h <= g.h && 2 * g.out_w <= g.w;
}

// Outputs [from, out_w) of one row; r0/r1 the window's two input rows, base the flat index of r0.
inline void pool2x2_row_tail(const float* r0, const float* r1, int64_t w, int64_t base, int64_t from, int64_t out_w,
                             float* dst, int32_t* idx) {
  for (int64_t ox = from; ox < out_w; ++ox) {
    const float v[4] = {r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]};
    const int64_t off[4] = {0, 1, w, w + 1};
    float best = v[0];
    int64_t at = 0;
    for (int k = 1; k < 4; ++k)
      if (v[k] > best || v[k] != v[k]) {
        best = v[k];
        at = k;
      }
    dst[ox] = best;
    if (idx) idx[ox] = static_cast<int32_t>(base + 2 * ox + off[at]);
  }
}

void pool2x2_row_base(const float* r0, const float* r1, int64_t w, int64_t base, int64_t out_w, float* dst, int32_t* idx) {
  pool2x2_row_tail(r0, r1, w, base, 0, out_w, dst, idx);
}

LR_AVX512 void pool2x2_row_avx512(const float* r0, const float* r1, int64_t w, int64_t base, int64_t out_w, float* dst,
                                  int32_t* idx) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512i lane2 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i off1 = _mm512_set1_epi32(1), offw = _mm512_set1_epi32(static_cast<int32_t>(w)),
                offw1 = _mm512_set1_epi32(static_cast<int32_t>(w + 1));
  int64_t ox = 0;
  for (; ox + 16 <= out_w; ox += 16) {
    const __m512 a0 = _mm512_loadu_ps(r0 + 2 * ox), a1 = _mm512_loadu_ps(r0 + 2 * ox + 16);
    const __m512 b0 = _mm512_loadu_ps(r1 + 2 * ox), b1 = _mm512_loadu_ps(r1 + 2 * ox + 16);
    const __m512 v01 = _mm512_permutex2var_ps(a0, odd, a1);
    const __m512 v10 = _mm512_permutex2var_ps(b0, even, b1);
    const __m512 v11 = _mm512_permutex2var_ps(b0, odd, b1);
    __m512 best = _mm512_permutex2var_ps(a0, even, a1);
    const __mmask16 m1 = _mm512_cmp_ps_mask(v01, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v01, v01, _CMP_UNORD_Q);
    best = _mm512_mask_mov_ps(best, m1, v01);
    const __mmask16 m2 = _mm512_cmp_ps_mask(v10, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v10, v10, _CMP_UNORD_Q);
    best = _mm512_mask_mov_ps(best, m2, v10);
    const __mmask16 m3 = _mm512_cmp_ps_mask(v11, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v11, v11, _CMP_UNORD_Q);
    best = _mm512_mask_mov_ps(best, m3, v11);
    _mm512_storeu_ps(dst + ox, best);
    if (idx) {
      __m512i off = _mm512_maskz_mov_epi32(m1, off1);
      off = _mm512_mask_mov_epi32(off, m2, offw);
      off = _mm512_mask_mov_epi32(off, m3, offw1);
      const __m512i at = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(base + 2 * ox)), _mm512_add_epi32(lane2, off));
      _mm512_storeu_si512(idx + ox, at);
    }
  }
  pool2x2_row_tail(r0, r1, w, base, ox, out_w, dst, idx);
}

// Even and odd elements of the 16 floats at p, each in order.
LR_AVX2 inline void split_even_odd_avx2(const float* p, __m256& even, __m256& odd) {
  const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
  // Within 128-bit halves: [a0 a2 b0 b2 | a4 a6 b4 b6]; the 64-bit permute restores order.
  even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))), 0xD8));
  odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))), 0xD8));
}

LR_AVX2 inline __m256 wins_avx2(__m256 v, __m256 best) {
  return _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

LR_AVX2 void pool2x2_row_avx2(const float* r0, const float* r1, int64_t w, int64_t base, int64_t out_w, float* dst,
                              int32_t* idx) {
  const __m256i lane2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  const __m256i off1 = _mm256_set1_epi32(1), offw = _mm256_set1_epi32(static_cast<int32_t>(w)),
                offw1 = _mm256_set1_epi32(static_cast<int32_t>(w + 1));
  int64_t ox = 0;
  for (; ox + 8 <= out_w; ox += 8) {
    __m256 best, v01, v10, v11;
    split_even_odd_avx2(r0 + 2 * ox, best, v01);
    split_even_odd_avx2(r1 + 2 * ox, v10, v11);
    const __m256 m1 = wins_avx2(v01, best);
    best = _mm256_blendv_ps(best, v01, m1);
    const __m256 m2 = wins_avx2(v10, best);
    best = _mm256_blendv_ps(best, v10, m2);
    const __m256 m3 = wins_avx2(v11, best);
    best = _mm256_blendv_ps(best, v11, m3);
    _mm256_storeu_ps(dst + ox, best);
    if (idx) {
      __m256i off = _mm256_and_si256(_mm256_castps_si256(m1), off1);
      off = _mm256_blendv_epi8(off, offw, _mm256_castps_si256(m2));
      off = _mm256_blendv_epi8(off, offw1, _mm256_castps_si256(m3));
      const __m256i at = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(base + 2 * ox)), _mm256_add_epi32(lane2, off));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + ox), at);
    }
  }
  pool2x2_row_tail(r0, r1, w, base, ox, out_w, dst, idx);
}

using Pool2x2Row = void (*)(const float*, const float*, int64_t, int64_t, int64_t, float*, int32_t*);

// Follows the GEMM's instruction-set choice (and its test override).
Pool2x2Row pool2x2_row_for_isa() {
  const char* name = gemm_isa();
  if (name[0] != 'a') return pool2x2_row_base;
  return name[3] == '5' ? pool2x2_row_avx512 : pool2x2_row_avx2;
}

void max_pool2x2(const PoolGeometry& g, const float* x, float* out, int32_t* index) {
  const Pool2x2Row row = pool2x2_row_for_isa();
  // Output rows are short (a few dozen values): chunks of many rows keep the fork-join cheap.
  const int64_t grain = std::max<int64_t>(kRowGrain, 4096 / std::max<int64_t>(g.out_w, 1));
  parallel_for(g.planes * g.out_h, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t p = r / g.out_h, oy = r % g.out_h;
      const float* r0 = x + (p * g.h + 2 * oy) * g.w;
      row(r0, r0 + g.w, g.w, 2 * oy * g.w, g.out_w, out + r * g.out_w, index ? index + r * g.out_w : nullptr);
    }
  });
}

// 2x2 stride-2 average of one output row: written once, compiled per instruction set so the
// stride-2 loads vectorise at the machine's width.
inline __attribute__((always_inline)) void avg2x2_row(const float* __restrict r0, const float* __restrict r1,
                                                       int64_t out_w, float* __restrict dst) {
  for (int64_t ox = 0; ox < out_w; ++ox)
    dst[ox] = ((r0[2 * ox] + r0[2 * ox + 1]) + (r1[2 * ox] + r1[2 * ox + 1])) * 0.25f;
}
LR_AVX512 void avg2x2_row_avx512(const float* r0, const float* r1, int64_t out_w, float* dst) { avg2x2_row(r0, r1, out_w, dst); }
LR_AVX2 void avg2x2_row_avx2(const float* r0, const float* r1, int64_t out_w, float* dst) { avg2x2_row(r0, r1, out_w, dst); }
void avg2x2_row_base(const float* r0, const float* r1, int64_t out_w, float* dst) { avg2x2_row(r0, r1, out_w, dst); }

// Every window whole, so the divisor is 4 with or without counting padding.
void avg_pool2x2(const PoolGeometry& g, const float* x, float* out) {
  const char* name = gemm_isa();
  const auto row = name[0] != 'a' ? avg2x2_row_base : name[3] == '5' ? avg2x2_row_avx512 : avg2x2_row_avx2;
  const int64_t grain = std::max<int64_t>(kRowGrain, 4096 / std::max<int64_t>(g.out_w, 1));
  parallel_for(g.planes * g.out_h, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t p = r / g.out_h, oy = r % g.out_h;
      const float* r0 = x + (p * g.h + 2 * oy) * g.w;
      row(r0, r0 + g.w, g.out_w, out + r * g.out_w);
    }
  });
}

// ---- max pooling without an index, column stride 1 (e.g. 3x3 stride-1 "same" pooling) -----
// Values only (inference), separable: each input row a band of outputs reads is reduced over the
// window's columns once (kw shifted, vectorisable passes), then each output row over the
// window's rows (kh passes over those row maxima) - kh + kw passes per output instead of
// kh x kw. A later element wins when strictly larger or NaN, within a row and then across rows,
// which is the indexed kernel's row-major order: the same value, NaN and the sign of zero
// included. A window wholly in the padding stays -inf, as in the indexed kernel.

// dst = the later of dst and s where s wins (strictly larger, or NaN); `|` keeps it branch-free.
inline __attribute__((always_inline)) void max_merge(const float* __restrict s, float* __restrict dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = ((s[i] > dst[i]) | (s[i] != s[i])) ? s[i] : dst[i];
}

// Output rows [oy0, oy1) of one plane; hmax: scratch for their input rows' column maxima.
inline __attribute__((always_inline)) void max_band_unit_stride(const PoolGeometry& g, const float* __restrict src,
                                                                int64_t oy0, int64_t oy1, float* __restrict dst,
                                                                float* __restrict hmax) {
  constexpr float kLowest = -std::numeric_limits<float>::infinity();
  const int64_t iy0 = std::max<int64_t>(0, oy0 * g.sh - g.pt);
  const int64_t iy1 = std::min<int64_t>(g.h, (oy1 - 1) * g.sh - g.pt + (g.kh - 1) * g.dh + 1);
  for (int64_t iy = iy0; iy < iy1; ++iy) {
    float* __restrict hr = hmax + (iy - iy0) * g.out_w;
    for (int64_t ox = 0; ox < g.out_w; ++ox) hr[ox] = kLowest;
    const float* row = src + iy * g.w;
    for (int64_t j = 0; j < g.kw; ++j) {
      const int64_t shift = j * g.dw - g.pl;  // input column of output 0's tap
      const int64_t lo = std::max<int64_t>(0, -shift), hi = std::min(g.out_w, g.w - shift);
      if (lo < hi) max_merge(row + shift + lo, hr + lo, hi - lo);
    }
  }
  for (int64_t oy = oy0; oy < oy1; ++oy) {
    float* __restrict d = dst + (oy - oy0) * g.out_w;
    for (int64_t ox = 0; ox < g.out_w; ++ox) d[ox] = kLowest;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t iy = oy * g.sh - g.pt + i * g.dh;
      if (iy >= 0 && iy < g.h) max_merge(hmax + (iy - iy0) * g.out_w, d, g.out_w);
    }
  }
}
using MaxBandFn = void (*)(const PoolGeometry&, const float*, int64_t, int64_t, float*, float*);
LR_AVX512 void max_band_avx512(const PoolGeometry& g, const float* s, int64_t a, int64_t b, float* d, float* h) { max_band_unit_stride(g, s, a, b, d, h); }
LR_AVX2 void max_band_avx2(const PoolGeometry& g, const float* s, int64_t a, int64_t b, float* d, float* h) { max_band_unit_stride(g, s, a, b, d, h); }
void max_band_base(const PoolGeometry& g, const float* s, int64_t a, int64_t b, float* d, float* h) { max_band_unit_stride(g, s, a, b, d, h); }

constexpr int64_t kMaxBandRows = 32;  // output rows per band: their row maxima stay in L1/L2

void max_pool_values_unit_stride(const PoolGeometry& g, const float* x, float* out) {
  const char* name = gemm_isa();
  const MaxBandFn band = name[0] != 'a' ? max_band_base : name[3] == '5' ? max_band_avx512 : max_band_avx2;
  parallel_for(g.planes * g.out_h, kRowGrain, [&](int64_t lo, int64_t hi) {
    // Input rows a band reads: (rows - 1) * sh + (kh - 1) * dh + 1.
    std::vector<float> hmax(((kMaxBandRows - 1) * g.sh + (g.kh - 1) * g.dh + 1) * g.out_w);
    for (int64_t r = lo; r < hi;) {
      const int64_t p = r / g.out_h, oy0 = r % g.out_h;
      const int64_t oy1 = std::min({g.out_h, oy0 + kMaxBandRows, oy0 + (hi - r)});
      band(g, x + p * g.h * g.w, oy0, oy1, out + r * g.out_w, hmax.data());
      r += oy1 - oy0;
    }
  });
}

// ---- 3x3 stride-1 "same" max pooling (padding 1), values only -----------------------------
// SRINC's pooling branch. One pass per plane: each input row is read once and reduced over its
// three columns into a ring of three row maxima kept in L1, and each output row is the merge of
// the three ring rows around it: no band of row maxima going through L2, and no scalar tails in
// the column pass (the row is copied between -inf guards and reduced in whole vectors). Same
// order as the separable kernel: columns left to right within a row, then rows top to bottom,
// a later element winning when strictly larger or NaN; rows and columns past the edge are -inf.

bool is_pool3x3_same(const PoolGeometry& g) {
  return g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.pt == 1 && g.pl == 1 &&
         g.out_h == g.h && g.out_w == g.w;
}

// s where it wins over d (strictly larger, or NaN), else d: x86's max (s > d ? s : d keeps d
// on ties and when either is NaN), then s where s is NaN - a max, a compare and a blend per
// vector. Scalar code in loops the compiler vectorises at the caller's instruction set
// (vector-extension compares in a function without a target would be split into scalars).
LR_INLINE float later_wins(float s, float d) {
  const float larger = s > d ? s : d;
  return s != s ? s : larger;
}

// One input row's maxima over three columns into hr (wv values): left, then centre, then
// right. padded: the row copied between -inf guards, -inf up to wv + 1.
LR_INLINE void reduce_row3(const float* __restrict row, int64_t w, int64_t wv, float* __restrict padded,
                           float* __restrict hr) {
  std::memcpy(padded, row, static_cast<size_t>(w) * sizeof(float));
  for (int64_t i = 0; i < wv; ++i) hr[i] = later_wins(padded[i + 1], later_wins(padded[i], padded[i - 1]));
}

// Output rows [oy0, oy1) of one h x w plane; wv: w rounded up to whole vectors.
// guard: the vector width; scratch: pool3x3_scratch_floats(w, guard) floats.
LR_INLINE void max3x3_rows(const float* __restrict src, int64_t h, int64_t w, int64_t wv, int64_t guard, int64_t oy0,
                           int64_t oy1, float* __restrict dst, float* scratch) {
  constexpr float kLowest = -std::numeric_limits<float>::infinity();
  // [guard][row, then -inf up to wv][guard] | ring of 3 row maxima | a row of -inf (past the edge)
  float* padded = scratch + guard;
  float* ring = scratch + wv + 2 * guard;
  float* lowest = ring + 3 * wv;
  for (int64_t i = 0; i < guard; ++i) scratch[i] = kLowest;
  for (int64_t i = w; i < wv + guard; ++i) padded[i] = kLowest;
  for (int64_t i = 0; i < wv; ++i) lowest[i] = kLowest;
  // Input row iy's maxima over its three columns (left, then centre, then right) into its ring
  // slot; rows past the edges are the -inf row. (Macros, not lambdas: a lambda would not be
  // compiled for the caller's instruction set.)
#define LR_SLOT(iy) ((iy) < 0 || (iy) >= h ? lowest : ring + ((iy) % 3) * wv)
#define LR_REDUCE_ROW(iy) reduce_row3(src + (iy) * w, w, wv, padded, LR_SLOT(iy))
  if (oy0 >= 1) LR_REDUCE_ROW(oy0 - 1);
  LR_REDUCE_ROW(oy0);
  for (int64_t oy = oy0; oy < oy1; ++oy) {
    if (oy + 1 < h) LR_REDUCE_ROW(oy + 1);
    const float* __restrict top = LR_SLOT(oy - 1);
    const float* __restrict mid = LR_SLOT(oy);
    const float* __restrict bottom = LR_SLOT(oy + 1);
    float* __restrict d = dst + (oy - oy0) * w;
    for (int64_t i = 0; i < w; ++i) d[i] = later_wins(bottom[i], later_wins(mid[i], top[i]));
  }
#undef LR_REDUCE_ROW
#undef LR_SLOT
}

int64_t pool3x3_scratch_floats(int64_t w, int64_t vw) {
  const int64_t wv = (w + vw - 1) / vw * vw;
  return wv + 2 * vw + 4 * wv;
}

using Max3x3Fn = void (*)(const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float*, float*);
#define LR_MAX3X3_VARIANT(NAME, ATTR)                                                                      \
  ATTR void NAME(const float* s, int64_t h, int64_t w, int64_t wv, int64_t guard, int64_t a, int64_t b, float* d, \
                 float* t) {                                                                               \
    max3x3_rows(s, h, w, wv, guard, a, b, d, t);                                                           \
  }
LR_MAX3X3_VARIANT(max3x3_avx512, LR_AVX512)
LR_MAX3X3_VARIANT(max3x3_avx2, LR_AVX2)
LR_MAX3X3_VARIANT(max3x3_base, )
#undef LR_MAX3X3_VARIANT

void max_pool3x3_same(const PoolGeometry& g, const float* x, float* out) {
  const char* name = gemm_isa();
  const bool avx512 = name[0] == 'a' && name[3] == '5';
  const Max3x3Fn rows = name[0] != 'a' ? max3x3_base : avx512 ? max3x3_avx512 : max3x3_avx2;
  const int64_t vw = name[0] != 'a' ? 4 : avx512 ? 16 : 8;
  // A chunk restarts the ring (two extra input rows): chunks of at least ~4096 outputs.
  const int64_t grain = std::max<int64_t>(kRowGrain, 4096 / std::max<int64_t>(g.w, 1));
  parallel_for(g.planes * g.h, grain, [&](int64_t lo, int64_t hi) {
    thread_local kernel::Scratch t_scratch;
    float* scratch = t_scratch.get(pool3x3_scratch_floats(g.w, vw));
    const int64_t wv = (g.w + vw - 1) / vw * vw;
    for (int64_t r = lo; r < hi;) {
      const int64_t p = r / g.h, oy0 = r % g.h, oy1 = std::min(g.h, oy0 + (hi - r));
      rows(x + p * g.h * g.w, g.h, g.w, wv, vw, oy0, oy1, out + r * g.w, scratch);
      r += oy1 - oy0;
    }
    t_scratch.trim(1 << 20);
  });
}

}  // namespace

void max_pool2d(const PoolGeometry& g, const float* x, float* out, int32_t* index) {
  if (is_pool2x2(g)) return max_pool2x2(g, x, out, index);
  // Without an index to fill, the values come from shifted row passes; a window wholly in the
  // padding stays -inf, as in the indexed kernel.
  if (!index && is_pool3x3_same(g)) return max_pool3x3_same(g, x, out);
  if (!index && g.sw == 1) return max_pool_values_unit_stride(g, x, out);
  parallel_for(g.planes * g.out_h, kRowGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t p = r / g.out_h, oy = r % g.out_h;
      const float* src = x + p * g.h * g.w;
      float* dst = out + r * g.out_w;
      int32_t* idx = index ? index + r * g.out_w : nullptr;
      for (int64_t ox = 0; ox < g.out_w; ++ox) {
        int64_t best_i;
        dst[ox] = max_pool_window(g, src, oy, ox, &best_i);
        if (idx) idx[ox] = static_cast<int32_t>(best_i);
      }
    }
  });
}

void max_pool2d_backward(const PoolGeometry& g, const float* gy, const int32_t* index, float* gx) {
  const int64_t plane_out = g.out_h * g.out_w;
  // Windows overlap, so one plane's scatter stays on one thread.
  parallel_for(g.planes, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      float* dst = gx + p * g.h * g.w;
      std::memset(dst, 0, sizeof(float) * g.h * g.w);
      const int32_t* idx = index + p * plane_out;
      const float* src = gy + p * plane_out;
      for (int64_t k = 0; k < plane_out; ++k)
        if (idx[k] >= 0) dst[idx[k]] += src[k];
    }
  });
}

namespace {
// Window of output (oy, ox): rows [y0, y1), columns [x0, x1) clipped to the input, and the divisor.
struct AvgWindow {
  int64_t y0, y1, x0, x1, divisor;
};
inline AvgWindow avg_window(const PoolGeometry& g, bool include_pad, int64_t pb, int64_t pr, int64_t oy, int64_t ox) {
  int64_t y0 = oy * g.sh - g.pt, x0 = ox * g.sw - g.pl;
  int64_t y1 = std::min(y0 + g.kh, g.h + pb), x1 = std::min(x0 + g.kw, g.w + pr);
  const int64_t padded = (y1 - y0) * (x1 - x0);
  y0 = std::max<int64_t>(y0, 0);
  x0 = std::max<int64_t>(x0, 0);
  y1 = std::min(y1, g.h);
  x1 = std::min(x1, g.w);
  if (y0 >= y1 || x0 >= x1) return {0, 0, 0, 0, 0};  // wholly in the padding: output 0, no gradient
  return {y0, y1, x0, x1, include_pad ? padded : (y1 - y0) * (x1 - x0)};
}
}  // namespace

void avg_pool2d(const PoolGeometry& g, bool include_pad, int64_t pb, int64_t pr, const float* x, float* out) {
  if (is_pool2x2(g)) return avg_pool2x2(g, x, out);
  parallel_for(g.planes * g.out_h, kRowGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t p = r / g.out_h, oy = r % g.out_h;
      const float* src = x + p * g.h * g.w;
      float* dst = out + r * g.out_w;
      for (int64_t ox = 0; ox < g.out_w; ++ox) {
        const AvgWindow win = avg_window(g, include_pad, pb, pr, oy, ox);
        double acc = 0;
        for (int64_t y = win.y0; y < win.y1; ++y)
          for (int64_t xx = win.x0; xx < win.x1; ++xx) acc += src[y * g.w + xx];
        dst[ox] = win.divisor > 0 ? static_cast<float>(acc / win.divisor) : 0.0f;
      }
    }
  });
}

void avg_pool2d_backward(const PoolGeometry& g, bool include_pad, int64_t pb, int64_t pr, const float* gy, float* gx) {
  parallel_for(g.planes, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      float* dst = gx + p * g.h * g.w;
      const float* src = gy + p * g.out_h * g.out_w;
      std::memset(dst, 0, sizeof(float) * g.h * g.w);
      for (int64_t oy = 0; oy < g.out_h; ++oy)
        for (int64_t ox = 0; ox < g.out_w; ++ox) {
          const AvgWindow win = avg_window(g, include_pad, pb, pr, oy, ox);
          if (win.divisor <= 0) continue;
          const float v = src[oy * g.out_w + ox] / static_cast<float>(win.divisor);
          for (int64_t y = win.y0; y < win.y1; ++y)
            for (int64_t xx = win.x0; xx < win.x1; ++xx) dst[y * g.w + xx] += v;
        }
    }
  });
}

void adaptive_avg_pool2d(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, const float* x, float* out) {
  parallel_for(planes * oh, kRowGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t p = r / oh, i = r % oh;
      const int64_t y0 = i * h / oh, y1 = ((i + 1) * h + oh - 1) / oh;
      for (int64_t j = 0; j < ow; ++j) {
        const int64_t x0 = j * w / ow, x1 = ((j + 1) * w + ow - 1) / ow;
        double acc = 0;
        for (int64_t y = y0; y < y1; ++y)
          for (int64_t xx = x0; xx < x1; ++xx) acc += x[(p * h + y) * w + xx];
        out[r * ow + j] = static_cast<float>(acc / ((y1 - y0) * (x1 - x0)));
      }
    }
  });
}

void adaptive_avg_pool2d_backward(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, const float* gy, float* gx) {
  parallel_for(planes, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      std::memset(gx + p * h * w, 0, sizeof(float) * h * w);
      for (int64_t i = 0; i < oh; ++i) {
        const int64_t y0 = i * h / oh, y1 = ((i + 1) * h + oh - 1) / oh;
        for (int64_t j = 0; j < ow; ++j) {
          const int64_t x0 = j * w / ow, x1 = ((j + 1) * w + ow - 1) / ow;
          const float v = gy[(p * oh + i) * ow + j] / static_cast<float>((y1 - y0) * (x1 - x0));
          for (int64_t y = y0; y < y1; ++y)
            for (int64_t xx = x0; xx < x1; ++xx) gx[(p * h + y) * w + xx] += v;
        }
      }
    }
  });
}

}  // namespace lrface::cpu
