#include "activation.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/thread_pool.h"
#include "kernel_util.h"
#include "gemm.h"

namespace lrface::cpu {

namespace {

// Inner positions processed together by the axis kernels: walking n for a block of neighbouring
// lanes reads whole cache lines, where one lane at a time would stride through memory.
constexpr int64_t kLanes = 64;

// Calls body(base, count) for every block of up to kLanes lanes; base is the flat index of
// (o, 0, i0) and lane c of the block sits at base + j*inner + c for j in [0, n).
template <class Body>
void for_lane_blocks(int64_t outer, int64_t n, int64_t inner, Body&& body) {
  if (outer <= 0 || n <= 0 || inner <= 0) return;
  const int64_t width = std::min(inner, kLanes);
  const int64_t blocks = (inner + width - 1) / width;
  const int64_t cost = n * width;
  parallel_for(outer * blocks, std::max<int64_t>(1, 16384 / cost), [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t o = t / blocks, i0 = (t % blocks) * width;
      body(o * n * inner + i0, std::min(width, inner - i0));
    }
  });
}

// Rows of `inner` elements, parallel with a grain of about 16K elements.
template <class Body>
void for_rows(int64_t rows, int64_t inner, Body&& body) {
  if (rows <= 0 || inner <= 0) return;
  parallel_for(rows, std::max<int64_t>(1, 16384 / inner), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) body(r);
  });
}

}  // namespace

void softmax(const float* x, float* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  for_lane_blocks(outer, n, inner, [&](int64_t base, int64_t cnt) {
    float mx[kLanes];
    double sum[kLanes];
    const float* p = x + base;
    float* q = y + base;
    for (int64_t c = 0; c < cnt; ++c) mx[c] = -INFINITY, sum[c] = 0;
    for (int64_t j = 0; j < n; ++j)
      for (int64_t c = 0; c < cnt; ++c) mx[c] = std::max(mx[c], p[j * inner + c]);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t c = 0; c < cnt; ++c) {
        const float e = std::exp(p[j * inner + c] - mx[c]);
        if (!log) q[j * inner + c] = e;
        sum[c] += e;
      }
    if (log) {
      float lse[kLanes];
      for (int64_t c = 0; c < cnt; ++c) lse[c] = static_cast<float>(std::log(sum[c]));
      for (int64_t j = 0; j < n; ++j)
        for (int64_t c = 0; c < cnt; ++c) q[j * inner + c] = (p[j * inner + c] - mx[c]) - lse[c];
    } else {
      float inv[kLanes];
      for (int64_t c = 0; c < cnt; ++c) inv[c] = static_cast<float>(1.0 / sum[c]);
      for (int64_t j = 0; j < n; ++j)
        for (int64_t c = 0; c < cnt; ++c) q[j * inner + c] *= inv[c];
    }
  });
}

void softmax_backward(const float* y, const float* gy, float* gx, int64_t outer, int64_t n, int64_t inner, bool log) {
  for_lane_blocks(outer, n, inner, [&](int64_t base, int64_t cnt) {
    double dot[kLanes];
    for (int64_t c = 0; c < cnt; ++c) dot[c] = 0;
    for (int64_t j = 0; j < n; ++j)
      for (int64_t c = 0; c < cnt; ++c) {
        const int64_t t = base + j * inner + c;
        dot[c] += log ? gy[t] : static_cast<double>(gy[t]) * y[t];
      }
    float s[kLanes];
    for (int64_t c = 0; c < cnt; ++c) s[c] = static_cast<float>(dot[c]);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t c = 0; c < cnt; ++c) {
        const int64_t t = base + j * inner + c;
        gx[t] = log ? gy[t] - std::exp(y[t]) * s[c] : y[t] * (gy[t] - s[c]);
      }
  });
}

void l2_normalize(const float* x, float* y, int64_t outer, int64_t n, int64_t inner, float eps) {
  for_lane_blocks(outer, n, inner, [&](int64_t base, int64_t cnt) {
    double ss[kLanes];
    for (int64_t c = 0; c < cnt; ++c) ss[c] = 0;
    for (int64_t j = 0; j < n; ++j)
      for (int64_t c = 0; c < cnt; ++c) {
        const double v = x[base + j * inner + c];
        ss[c] += v * v;
      }
    for (int64_t c = 0; c < cnt; ++c) ss[c] = std::max(std::sqrt(ss[c]), static_cast<double>(eps));
    for (int64_t j = 0; j < n; ++j)
      for (int64_t c = 0; c < cnt; ++c) {
        const int64_t t = base + j * inner + c;
        y[t] = static_cast<float>(x[t] / ss[c]);
      }
  });
}

void l2_normalize_backward(const float* x, const float* gy, float* gx, int64_t outer, int64_t n, int64_t inner, float eps) {
  for_lane_blocks(outer, n, inner, [&](int64_t base, int64_t cnt) {
    double ss[kLanes], dot[kLanes];
    for (int64_t c = 0; c < cnt; ++c) ss[c] = 0, dot[c] = 0;
    for (int64_t j = 0; j < n; ++j)
      for (int64_t c = 0; c < cnt; ++c) {
        const int64_t t = base + j * inner + c;
        const double v = x[t];
        ss[c] += v * v;
        dot[c] += v * gy[t];
      }
    double a[kLanes], b[kLanes];  // gx = a*gy - b*x
    for (int64_t c = 0; c < cnt; ++c) {
      const double norm = std::sqrt(ss[c]);
      if (norm >= eps) {
        a[c] = 1.0 / norm;
        b[c] = dot[c] / (norm * norm * norm);
      } else {
        a[c] = 1.0 / eps;
        b[c] = 0;
      }
    }
    for (int64_t j = 0; j < n; ++j)
      for (int64_t c = 0; c < cnt; ++c) {
        const int64_t t = base + j * inner + c;
        gx[t] = static_cast<float>(a[c] * gy[t] - b[c] * x[t]);
      }
  });
}

namespace {
// q[i] = p[i] > 0 ? v[i] : a * v[i] for one row: PReLU (v = p) and its input gradient (v = the
// output gradient), branch-free and compiled per instruction set: with a branch per element
// (half the signs of a feature map differ from their neighbours) it ran at 1.5 GB/s.
inline __attribute__((always_inline)) void prelu_row(const float* __restrict p, const float* __restrict v, float a,
                                                     float* __restrict q, int64_t n) {
  for (int64_t i = 0; i < n; ++i) q[i] = p[i] > 0 ? v[i] : a * v[i];
}
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma"))) void prelu_row_avx512(const float* p, const float* v, float a, float* q, int64_t n) { prelu_row(p, v, a, q, n); }
__attribute__((target("avx2,fma"))) void prelu_row_avx2(const float* p, const float* v, float a, float* q, int64_t n) { prelu_row(p, v, a, q, n); }
void prelu_row_base(const float* p, const float* v, float a, float* q, int64_t n) { prelu_row(p, v, a, q, n); }

using PreluRow = void (*)(const float*, const float*, float, float*, int64_t);
PreluRow prelu_row_for_isa() {
  const char* isa = gemm_isa();  // the kernels' instruction set (and its test override)
  return isa[0] != 'a' ? prelu_row_base : isa[3] == '5' ? prelu_row_avx512 : prelu_row_avx2;
}
}  // namespace

void prelu(const float* x, const float* w, float* y, int64_t outer, int64_t c, int64_t inner, bool shared) {
  const PreluRow row = prelu_row_for_isa();
  for_rows(outer * c, inner, [&](int64_t r) { row(x + r * inner, x + r * inner, w[shared ? 0 : r % c], y + r * inner, inner); });
}

void prelu_backward(const float* x, const float* w, const float* gy, float* gx, float* gw, int64_t outer, int64_t c,
                    int64_t inner, bool shared) {
  // One partial sum per row, each summed by one thread, then reduced per channel in a fixed order.
  std::vector<double> partial(gw ? static_cast<size_t>(outer * c) : 0, 0.0);
  const PreluRow row = prelu_row_for_isa();
  for_rows(outer * c, inner, [&](int64_t r) {
    const float a = w[shared ? 0 : r % c];
    const float* p = x + r * inner;
    const float* g = gy + r * inner;
    if (gx) row(p, g, a, gx + r * inner, inner);
    if (gw) {
      // Where x > 0 the term is replaced by 0 after the product (a NaN or Inf gradient there
      // adds nothing, as when it was skipped), without a branch to mispredict.
      double s = 0;
      for (int64_t i = 0; i < inner; ++i) s += kernel::pick(p[i] > 0, 0.0, static_cast<double>(p[i]) * g[i]);
      partial[r] = s;
    }
  });
  if (gw) {
    const int64_t channels = shared ? 1 : c;
    for (int64_t ch = 0; ch < channels; ++ch) {
      double s = 0;
      for (int64_t o = 0; o < outer; ++o)
        if (shared)
          for (int64_t k = 0; k < c; ++k) s += partial[o * c + k];
        else
          s += partial[o * c + ch];
      gw[ch] = static_cast<float>(s);
    }
  }
}

void mfm(const float* x, float* y, int64_t outer, int64_t half, int64_t inner) {
  for_rows(outer * half, inner, [&](int64_t r) {
    const int64_t o = r / half, ch = r % half;
    const float* a = x + (o * 2 * half + ch) * inner;
    const float* b = a + half * inner;
    float* q = y + r * inner;
    for (int64_t i = 0; i < inner; ++i) q[i] = (a[i] >= b[i] || a[i] != a[i]) ? a[i] : b[i];
  });
}

void mfm_backward(const float* x, const float* gy, float* gx, int64_t outer, int64_t half, int64_t inner) {
  for_rows(outer * half, inner, [&](int64_t r) {
    const int64_t o = r / half, ch = r % half;
    const int64_t ia = (o * 2 * half + ch) * inner, ib = ia + half * inner;
    const float* g = gy + r * inner;
    for (int64_t i = 0; i < inner; ++i) {
      const float a = x[ia + i], b = x[ib + i];
      if (a == b) {
        gx[ia + i] = gx[ib + i] = 0.5f * g[i];
      } else {
        const bool first = a > b || a != a;  // the half the forward picked
        gx[ia + i] = first ? g[i] : 0.0f;
        gx[ib + i] = first ? 0.0f : g[i];
      }
    }
  });
}

void dropout(const float* x, float* y, int64_t n, double p, float scale, uint64_t seed, RandomStream stream, uint64_t offset) {
  for_random_blocks(n, 4, seed, stream, offset, [&](const Block128& b, int64_t first, int64_t count) {
    for (int64_t k = 0; k < count; ++k) y[first + k] = unit32(b.w[k]) >= p ? x[first + k] * scale : 0.0f;
  });
}

}  // namespace lrface::cpu
