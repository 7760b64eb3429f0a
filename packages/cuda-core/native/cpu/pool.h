#pragma once
#include <cmath>
#include <cstdint>

#include "host_device.h"

namespace lrface::cpu {

struct PoolGeometry {
  int64_t planes, h, w;  // N*C planes of h x w
  int64_t kh, kw, sh, sw, pt, pl, dh, dw;
  int64_t out_h, out_w;
};

// One max-pooling window of one plane `src` (output row oy, column ox), shared by the CPU and
// CUDA kernels. Starting from the first element (taken even when -inf), a later one wins when
// strictly larger or NaN: PyTorch's rule. Writes the flat position iy*w + ix of the winner to
// *best_index, or -1 for a window lying wholly in the padding (its value is -inf).
LR_HOST_DEVICE inline float max_pool_window(const PoolGeometry& g, const float* src, int64_t oy, int64_t ox,
                                            int64_t* best_index) {
  int64_t y0 = oy * g.sh - g.pt;
  const int64_t y_end = y0 + (g.kh - 1) * g.dh + 1;
  const int64_t y1 = y_end < g.h ? y_end : g.h;
  while (y0 < 0) y0 += g.dh;
  int64_t x0 = ox * g.sw - g.pl;
  const int64_t x_end = x0 + (g.kw - 1) * g.dw + 1;
  const int64_t x1 = x_end < g.w ? x_end : g.w;
  while (x0 < 0) x0 += g.dw;
  float best = -INFINITY;
  int64_t best_i = -1;
  if (y0 < y1 && x0 < x1) {
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
  *best_index = best_i;
  return best;
}

// Max pooling as PyTorch's CPU kernel: the first maximum of each window wins, a NaN always
// wins (so NaN propagates). index (may be null when no gradient is needed) receives the flat
// position iy*w + ix of the chosen element, or -1 for a window lying wholly in the padding
// (its value is -inf).
void max_pool2d(const PoolGeometry& g, const float* x, float* out, int32_t* index);
// gx = 0, then gx[index] += gy for every output element.
void max_pool2d_backward(const PoolGeometry& g, const float* gy, const int32_t* index, float* gx);
// Average pooling; count_include_pad divides by the window clipped to the padded input, else to
// the input (PyTorch's divisor). pb/pr: padding on the bottom/right edge.
void avg_pool2d(const PoolGeometry& g, bool count_include_pad, int64_t pb, int64_t pr, const float* x, float* out);
void avg_pool2d_backward(const PoolGeometry& g, bool count_include_pad, int64_t pb, int64_t pr, const float* gy, float* gx);
// Adaptive average pooling, PyTorch's windows: [floor(i*h/oh), ceil((i+1)*h/oh)).
void adaptive_avg_pool2d(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, const float* x, float* out);
void adaptive_avg_pool2d_backward(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, const float* gy, float* gx);

}  // namespace lrface::cpu
