#include "pool.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "../core/thread_pool.h"

namespace lrface::cpu {

namespace {
// Rows of output are independent in every forward kernel here: split the work over
// (plane, output row) pairs so a single large plane still uses every thread.
constexpr int64_t kRowGrain = 4;
}  // namespace

void max_pool2d(const PoolGeometry& g, const float* x, float* out, int32_t* index) {
  parallel_for(g.planes * g.out_h, kRowGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t p = r / g.out_h, oy = r % g.out_h;
      const float* src = x + p * g.h * g.w;
      float* dst = out + r * g.out_w;
      int32_t* idx = index ? index + r * g.out_w : nullptr;
      int64_t y0 = oy * g.sh - g.pt;
      const int64_t y1 = std::min(y0 + (g.kh - 1) * g.dh + 1, g.h);
      while (y0 < 0) y0 += g.dh;
      for (int64_t ox = 0; ox < g.out_w; ++ox) {
        int64_t x0 = ox * g.sw - g.pl;
        const int64_t x1 = std::min(x0 + (g.kw - 1) * g.dw + 1, g.w);
        while (x0 < 0) x0 += g.dw;
        float best = -std::numeric_limits<float>::infinity();
        int64_t best_i = -1;
        if (y0 < y1 && x0 < x1) {
          // Starting from the first element (taken even when -inf), a later one wins when
          // strictly larger or NaN: PyTorch's rule.
          best_i = y0 * g.w + x0;
          best = src[best_i];
          for (int64_t iy = y0; iy < y1; iy += g.dh)
            for (int64_t ix = x0; ix < x1; ix += g.dw) {
              const int64_t at = iy * g.w + ix;
              const float v = src[at];
              if (v > best || v != v) {
                best = v;
                best_i = at;
              }
            }
        }
        dst[ox] = best;
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
