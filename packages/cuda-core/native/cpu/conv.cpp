// Convolution by im2col + packed GEMM, per image and group. A 1x1, stride-1, unpadded
// convolution is a plain GEMM on the input, with no column buffer.
#include "conv.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../core/thread_pool.h"
#include "gemm.h"

namespace lrface::cpu {

namespace {

bool is_pointwise(const ConvGeometry& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && g.out_h == g.h && g.out_w == g.w;
}

// col[(ci*kh + i)*kw + j][oh*out_w + ow] = x[ci][oh*sh - pt + i*dh][ow*sw - pl + j*dw] (0 outside).
// Only output rows [r0, r1) are produced; col has (r1 - r0) * out_w columns.
void im2col(const ConvGeometry& g, int64_t cg, const float* x, float* col, int64_t r0, int64_t r1) {
  const int64_t rows = cg * g.kh * g.kw;
  const int64_t ohw = (r1 - r0) * g.out_w;
  parallel_for(rows, 4, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t j = r % g.kw, i = (r / g.kw) % g.kh, ci = r / (g.kw * g.kh);
      const float* src = x + ci * g.h * g.w;
      float* dst = col + r * ohw;
      for (int64_t oh = r0; oh < r1; ++oh) {
        const int64_t ih = oh * g.sh - g.pt + i * g.dh;
        float* d = dst + (oh - r0) * g.out_w;
        if (ih < 0 || ih >= g.h) {
          std::memset(d, 0, sizeof(float) * g.out_w);
          continue;
        }
        const float* srow = src + ih * g.w;
        const int64_t base = j * g.dw - g.pl;
        if (g.sw == 1) {
          // Contiguous middle run, zero edges.
          int64_t ow = 0;
          for (; ow < g.out_w && base + ow < 0; ++ow) d[ow] = 0.0f;
          int64_t end = std::min<int64_t>(g.out_w, g.w - base);
          if (end > ow) {
            std::memcpy(d + ow, srow + base + ow, sizeof(float) * (end - ow));
            ow = end;
          }
          for (; ow < g.out_w; ++ow) d[ow] = 0.0f;
        } else {
          for (int64_t ow = 0; ow < g.out_w; ++ow) {
            const int64_t iw = base + ow * g.sw;
            d[ow] = (iw >= 0 && iw < g.w) ? srow[iw] : 0.0f;
          }
        }
      }
    }
  });
}

// gx[ci] += scatter of col rows; parallel over input channels so no two threads share a pixel.
void col2im(const ConvGeometry& g, int64_t cg, const float* col, float* gx, int64_t r0, int64_t r1) {
  const int64_t ohw = (r1 - r0) * g.out_w;
  parallel_for(cg, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t ci = lo; ci < hi; ++ci) {
      float* dst = gx + ci * g.h * g.w;
      for (int64_t i = 0; i < g.kh; ++i)
        for (int64_t j = 0; j < g.kw; ++j) {
          const float* src = col + ((ci * g.kh + i) * g.kw + j) * ohw;
          for (int64_t oh = r0; oh < r1; ++oh) {
            const int64_t ih = oh * g.sh - g.pt + i * g.dh;
            if (ih < 0 || ih >= g.h) continue;
            float* drow = dst + ih * g.w;
            const float* s = src + (oh - r0) * g.out_w;
            for (int64_t ow = 0; ow < g.out_w; ++ow) {
              const int64_t iw = ow * g.sw - g.pl + j * g.dw;
              if (iw >= 0 && iw < g.w) drow[iw] += s[ow];
            }
          }
        }
    }
  });
}

struct Scratch {
  float* data = nullptr;
  size_t size = 0;
  float* get(size_t n) {
    if (n > size) {
      std::free(data);
      data = static_cast<float*>(std::aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64));
      size = n;
    }
    return data;
  }
  ~Scratch() { std::free(data); }
};

thread_local Scratch t_col;

void add_bias(float* out, const float* bias, int64_t channels, int64_t plane) {
  parallel_for(channels, 4, [&](int64_t lo, int64_t hi) {
    for (int64_t ch = lo; ch < hi; ++ch) {
      float* p = out + ch * plane;
      const float b = bias[ch];
      for (int64_t i = 0; i < plane; ++i) p[i] += b;
    }
  });
}

}  // namespace

// Output rows per im2col band: bounds the column buffer (about 64K columns) for large images.
// The column buffer of a band is sized to stay in the L2 cache (about 4 MiB, measured best), so im2col's
// writes and the GEMM's packing reads do not go to memory.
int64_t band_rows(const ConvGeometry& g) {
  static const int64_t budget = [] {
    const char* env = std::getenv("LRFACE_CONV_BAND_FLOATS");
    return env ? std::max<int64_t>(1024, std::atoll(env)) : int64_t(1) << 20;
  }();
  const int64_t kdim = (g.c / g.groups) * g.kh * g.kw;
  const int64_t cols = std::max<int64_t>(256, budget / std::max<int64_t>(kdim, 1));
  return std::max<int64_t>(1, std::min<int64_t>(g.out_h, cols / std::max<int64_t>(g.out_w, 1)));
}

void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* out) {
  const int64_t cg = g.c / g.groups, og = g.o / g.groups;
  const int64_t kdim = cg * g.kh * g.kw, ohw = g.out_h * g.out_w;
  const bool pointwise = is_pointwise(g);
  const int64_t band = band_rows(g);
  float* col = pointwise ? nullptr : t_col.get(kdim * band * g.out_w);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      const float* xin = x + (n * g.c + gr * cg) * g.h * g.w;
      float* y = out + (n * g.o + gr * og) * ohw;
      const float* wg = w + gr * og * kdim;
      if (pointwise) {
        sgemm(false, false, og, ohw, kdim, 1.0f, wg, kdim, xin, ohw, 0.0f, y, ohw);
      } else {
        for (int64_t r0 = 0; r0 < g.out_h; r0 += band) {
          const int64_t r1 = std::min(g.out_h, r0 + band), cols = (r1 - r0) * g.out_w;
          im2col(g, cg, xin, col, r0, r1);
          sgemm(false, false, og, cols, kdim, 1.0f, wg, kdim, col, cols, 0.0f, y + r0 * g.out_w, ohw);
        }
      }
      if (bias) add_bias(y, bias + gr * og, og, ohw);
    }
}

void conv2d_backward_data(const ConvGeometry& g, const float* gy, const float* w, const float* bias, float* gx) {
  const int64_t cg = g.c / g.groups, og = g.o / g.groups;
  const int64_t kdim = cg * g.kh * g.kw, ohw = g.out_h * g.out_w;
  const bool pointwise = is_pointwise(g);
  const int64_t band = band_rows(g);
  float* col = pointwise ? nullptr : t_col.get(kdim * band * g.out_w);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      float* gxin = gx + (n * g.c + gr * cg) * g.h * g.w;
      const float* gyo = gy + (n * g.o + gr * og) * ohw;
      const float* wg = w + gr * og * kdim;
      if (pointwise) {
        sgemm(true, false, kdim, ohw, og, 1.0f, wg, kdim, gyo, ohw, 0.0f, gxin, ohw);
      } else {
        std::memset(gxin, 0, sizeof(float) * cg * g.h * g.w);
        for (int64_t r0 = 0; r0 < g.out_h; r0 += band) {
          const int64_t r1 = std::min(g.out_h, r0 + band), cols = (r1 - r0) * g.out_w;
          sgemm(true, false, kdim, cols, og, 1.0f, wg, kdim, gyo + r0 * g.out_w, ohw, 0.0f, col, cols);
          col2im(g, cg, col, gxin, r0, r1);
        }
      }
      if (bias) add_bias(gxin, bias + gr * cg, cg, g.h * g.w);
    }
}

void conv2d_backward_filter(const ConvGeometry& g, const float* x, const float* gy, float* gw) {
  const int64_t cg = g.c / g.groups, og = g.o / g.groups;
  const int64_t kdim = cg * g.kh * g.kw, ohw = g.out_h * g.out_w;
  const bool pointwise = is_pointwise(g);
  const int64_t band = band_rows(g);
  float* col = pointwise ? nullptr : t_col.get(kdim * band * g.out_w);
  std::memset(gw, 0, sizeof(float) * g.o * kdim);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      const float* xin = x + (n * g.c + gr * cg) * g.h * g.w;
      const float* gyo = gy + (n * g.o + gr * og) * ohw;
      float* gwg = gw + gr * og * kdim;
      if (pointwise) {
        sgemm(false, true, og, kdim, ohw, 1.0f, gyo, ohw, xin, ohw, 1.0f, gwg, kdim);
      } else {
        for (int64_t r0 = 0; r0 < g.out_h; r0 += band) {
          const int64_t r1 = std::min(g.out_h, r0 + band), cols = (r1 - r0) * g.out_w;
          im2col(g, cg, xin, col, r0, r1);
          sgemm(false, true, og, kdim, cols, 1.0f, gyo + r0 * g.out_w, ohw, col, cols, 1.0f, gwg, kdim);
        }
      }
    }
}

}  // namespace lrface::cpu
