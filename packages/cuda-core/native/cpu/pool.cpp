#include "pool.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "../core/thread_pool.h"

namespace lrface::cpu {

void max_pool2d(const PoolGeometry& g, const float* x, float* out, int32_t* index) {
  const int64_t plane_out = g.out_h * g.out_w;
  parallel_for(g.planes, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const float* src = x + p * g.h * g.w;
      float* dst = out + p * plane_out;
      int32_t* idx = index + p * plane_out;
      for (int64_t oy = 0; oy < g.out_h; ++oy)
        for (int64_t ox = 0; ox < g.out_w; ++ox) {
          float best = -std::numeric_limits<float>::infinity();
          int32_t best_i = -1;
          for (int64_t i = 0; i < g.kh; ++i) {
            const int64_t iy = oy * g.sh - g.pt + i * g.dh;
            if (iy < 0 || iy >= g.h) continue;
            for (int64_t j = 0; j < g.kw; ++j) {
              const int64_t ix = ox * g.sw - g.pl + j * g.dw;
              if (ix < 0 || ix >= g.w) continue;
              const float v = src[iy * g.w + ix];
              if (best_i < 0 || v > best || v != v) {
                best = v;
                best_i = static_cast<int32_t>(iy * g.w + ix);
                if (v != v) break;
              }
            }
          }
          dst[oy * g.out_w + ox] = best;
          idx[oy * g.out_w + ox] = best_i;
        }
    }
  });
}

void max_pool2d_backward(const PoolGeometry& g, const float* gy, const int32_t* index, float* gx) {
  const int64_t plane_out = g.out_h * g.out_w;
  parallel_for(g.planes, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      float* dst = gx + p * g.h * g.w;
      std::memset(dst, 0, sizeof(float) * g.h * g.w);
      for (int64_t k = 0; k < plane_out; ++k) {
        const int32_t i = index[p * plane_out + k];
        if (i >= 0) dst[i] += gy[p * plane_out + k];
      }
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
  const int64_t inside = std::max<int64_t>(0, y1 - y0) * std::max<int64_t>(0, x1 - x0);
  return {y0, y1, x0, x1, include_pad ? padded : inside};
}
}  // namespace

void avg_pool2d(const PoolGeometry& g, bool include_pad, int64_t pb, int64_t pr, const float* x, float* out) {
  parallel_for(g.planes, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const float* src = x + p * g.h * g.w;
      float* dst = out + p * g.out_h * g.out_w;
      for (int64_t oy = 0; oy < g.out_h; ++oy)
        for (int64_t ox = 0; ox < g.out_w; ++ox) {
          const AvgWindow win = avg_window(g, include_pad, pb, pr, oy, ox);
          double acc = 0;
          for (int64_t y = win.y0; y < win.y1; ++y)
            for (int64_t xx = win.x0; xx < win.x1; ++xx) acc += src[y * g.w + xx];
          dst[oy * g.out_w + ox] = win.divisor > 0 ? static_cast<float>(acc / win.divisor) : 0.0f;
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
  parallel_for(planes, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p)
      for (int64_t i = 0; i < oh; ++i) {
        const int64_t y0 = i * h / oh, y1 = ((i + 1) * h + oh - 1) / oh;
        for (int64_t j = 0; j < ow; ++j) {
          const int64_t x0 = j * w / ow, x1 = ((j + 1) * w + ow - 1) / ow;
          double acc = 0;
          for (int64_t y = y0; y < y1; ++y)
            for (int64_t xx = x0; xx < x1; ++xx) acc += x[(p * h + y) * w + xx];
          out[(p * oh + i) * ow + j] = static_cast<float>(acc / ((y1 - y0) * (x1 - x0)));
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
