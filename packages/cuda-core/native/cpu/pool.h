#pragma once
#include <cstdint>

namespace lrface::cpu {

struct PoolGeometry {
  int64_t planes, h, w;  // N*C planes of h x w
  int64_t kh, kw, sh, sw, pt, pl, dh, dw;
  int64_t out_h, out_w;
};

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
