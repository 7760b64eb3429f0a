#include "misc.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../core/thread_pool.h"

namespace lrface::cpu {

void softmax(const float* x, float* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  parallel_for(outer * inner, std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      const int64_t o = k / inner, i = k % inner;
      const float* p = x + o * n * inner + i;
      float* q = y + o * n * inner + i;
      float mx = -INFINITY;
      for (int64_t j = 0; j < n; ++j) mx = std::max(mx, p[j * inner]);
      double s = 0;
      for (int64_t j = 0; j < n; ++j) s += std::exp(static_cast<double>(p[j * inner] - mx));
      if (log) {
        const float lse = static_cast<float>(mx + std::log(s));
        for (int64_t j = 0; j < n; ++j) q[j * inner] = p[j * inner] - lse;
      } else {
        const double inv = 1.0 / s;
        for (int64_t j = 0; j < n; ++j) q[j * inner] = static_cast<float>(std::exp(static_cast<double>(p[j * inner] - mx)) * inv);
      }
    }
  });
}

void softmax_backward(const float* y, const float* gy, float* gx, int64_t outer, int64_t n, int64_t inner, bool log) {
  parallel_for(outer * inner, std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      const int64_t base = (k / inner) * n * inner + k % inner;
      double s = 0;
      for (int64_t j = 0; j < n; ++j) {
        const int64_t t = base + j * inner;
        s += log ? gy[t] : gy[t] * y[t];
      }
      for (int64_t j = 0; j < n; ++j) {
        const int64_t t = base + j * inner;
        gx[t] = log ? static_cast<float>(gy[t] - std::exp(y[t]) * s) : static_cast<float>(y[t] * (gy[t] - s));
      }
    }
  });
}

void prelu(const float* x, const float* w, float* y, int64_t outer, int64_t c, int64_t inner, bool shared) {
  parallel_for(outer * c, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float a = w[shared ? 0 : r % c];
      const float* p = x + r * inner;
      float* q = y + r * inner;
      for (int64_t i = 0; i < inner; ++i) q[i] = p[i] > 0 ? p[i] : a * p[i];
    }
  });
}

void prelu_backward(const float* x, const float* w, const float* gy, float* gx, float* gw, int64_t outer, int64_t c,
                    int64_t inner, bool shared) {
  if (gx)
    parallel_for(outer * c, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const float a = w[shared ? 0 : r % c];
        for (int64_t i = 0; i < inner; ++i) gx[r * inner + i] = x[r * inner + i] > 0 ? gy[r * inner + i] : a * gy[r * inner + i];
      }
    });
  if (gw) {
    // Per-channel sums, each channel by one thread (no races).
    const int64_t channels = shared ? 1 : c;
    parallel_for(channels, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t ch = lo; ch < hi; ++ch) {
        double s = 0;
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t cc = shared ? 0 : ch; cc < (shared ? c : ch + 1); ++cc) {
            const int64_t base = (o * c + cc) * inner;
            for (int64_t i = 0; i < inner; ++i)
              if (x[base + i] <= 0) s += static_cast<double>(x[base + i]) * gy[base + i];
          }
        gw[ch] = static_cast<float>(s);
      }
    });
  }
}

void mfm(const float* x, float* y, int64_t outer, int64_t half, int64_t inner) {
  parallel_for(outer * half, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t o = r / half, ch = r % half;
      const float* a = x + (o * 2 * half + ch) * inner;
      const float* b = a + half * inner;
      float* q = y + r * inner;
      for (int64_t i = 0; i < inner; ++i) q[i] = a[i] >= b[i] ? a[i] : b[i];
    }
  });
}

void mfm_backward(const float* x, const float* gy, float* gx, int64_t outer, int64_t half, int64_t inner) {
  parallel_for(outer * half, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t o = r / half, ch = r % half;
      const int64_t ia = (o * 2 * half + ch) * inner, ib = ia + half * inner;
      for (int64_t i = 0; i < inner; ++i) {
        const bool first = x[ia + i] >= x[ib + i];
        gx[ia + i] = first ? gy[r * inner + i] : 0.0f;
        gx[ib + i] = first ? 0.0f : gy[r * inner + i];
      }
    }
  });
}

void slice_axis(const void* x, void* out, int64_t outer, int64_t n, int64_t m, int64_t inner, int64_t start, int64_t step,
                int64_t es) {
  const char* src = static_cast<const char*>(x);
  char* dst = static_cast<char*>(out);
  const size_t row = static_cast<size_t>(inner * es);
  parallel_for(outer * m, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t o = r / m, i = r % m;
      std::memcpy(dst + r * row, src + ((o * n) + start + i * step) * row, row);
    }
  });
}

void slice_axis_backward(const float* gy, float* gx, int64_t outer, int64_t n, int64_t m, int64_t inner, int64_t start,
                         int64_t step) {
  parallel_for(outer, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o) {
      std::memset(gx + o * n * inner, 0, sizeof(float) * n * inner);
      for (int64_t i = 0; i < m; ++i)
        std::memcpy(gx + (o * n + start + i * step) * inner, gy + (o * m + i) * inner, sizeof(float) * inner);
    }
  });
}

namespace {
inline uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
// Uniform double in [0, 1) from (seed, counter).
inline double uniform01(uint64_t seed, uint64_t counter) {
  return static_cast<double>(splitmix64(seed * 0xd1b54a32d192ed03ULL ^ splitmix64(counter)) >> 11) * 0x1.0p-53;
}
}  // namespace

void random_fill(int kind, uint64_t seed, uint64_t offset, int64_t n, double a, double b, void* out) {
  parallel_for(n, 1 << 14, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const uint64_t c = offset + static_cast<uint64_t>(i);
      switch (kind) {
        case 0: static_cast<float*>(out)[i] = static_cast<float>(a + (b - a) * uniform01(seed, c)); break;
        case 1: {
          // Box-Muller on two streams of the same counter.
          const double u1 = 1.0 - uniform01(seed, 2 * c), u2 = uniform01(seed, 2 * c + 1);
          static_cast<float*>(out)[i] = static_cast<float>(a + b * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
          break;
        }
        case 2: {
          const double span = b - a;
          int64_t v = static_cast<int64_t>(a) + static_cast<int64_t>(std::floor(uniform01(seed, c) * span));
          static_cast<int32_t*>(out)[i] = static_cast<int32_t>(std::min<int64_t>(v, static_cast<int64_t>(b) - 1));
          break;
        }
        default: static_cast<float*>(out)[i] = uniform01(seed, c) < a ? static_cast<float>(b) : 0.0f; break;
      }
    }
  });
}

}  // namespace lrface::cpu
