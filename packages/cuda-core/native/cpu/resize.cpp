#include "resize.h"

#include <algorithm>
#include <vector>

#include "../core/thread_pool.h"

namespace lrface::cpu {

void resample2d(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, const int32_t* h_index,
                const float* h_weight, int64_t h_taps, const int32_t* w_index, const float* w_weight, int64_t w_taps,
                const float* x, float* out) {
  // Each output row needs exactly one row of the intermediate image, so the two passes fuse
  // per (plane, output row) and a single large plane still spreads over every thread.
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, w * h_taps + ow * w_taps));
  parallel_for(planes * oh, grain, [&](int64_t lo, int64_t hi) {
    std::vector<float> tmp(w);
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t p = r / oh, i = r % oh;
      const float* src = x + p * h * w;
      std::fill(tmp.begin(), tmp.end(), 0.0f);
      for (int64_t t = 0; t < h_taps; ++t) {
        const float wt = h_weight[i * h_taps + t];
        if (wt == 0.0f) continue;
        const float* s = src + static_cast<int64_t>(h_index[i * h_taps + t]) * w;
        for (int64_t j = 0; j < w; ++j) tmp[j] += wt * s[j];
      }
      float* dst = out + r * ow;
      for (int64_t j = 0; j < ow; ++j) {
        float acc = 0.0f;
        for (int64_t t = 0; t < w_taps; ++t) {
          const float wt = w_weight[j * w_taps + t];
          if (wt != 0.0f) acc += wt * tmp[w_index[j * w_taps + t]];
        }
        dst[j] = acc;
      }
    }
  });
}

void pixel_shuffle(int64_t n, int64_t c, int64_t h, int64_t w, int64_t r, bool inverse, const float* in, float* out) {
  const int64_t sh = h * r, sw = w * r;
  // One row of the shuffled tensor per step; it maps to r-strided runs of r*r planes of u.
  parallel_for(n * c * sh, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      const int64_t bc = row / sh, ys = row % sh;
      const int64_t y = ys / r, i = ys % r;
      const int64_t s_base = row * sw;
      // u index of (b, (ch*r + i)*r + j, y, x) = ((bc*r + i)*r + j)*h*w + y*w + x
      const int64_t u_base = (bc * r + i) * r * h * w + y * w;
      for (int64_t j = 0; j < r; ++j) {
        const int64_t u_row = u_base + j * h * w;
        if (inverse)
          for (int64_t xx = 0; xx < w; ++xx) out[u_row + xx] = in[s_base + xx * r + j];
        else
          for (int64_t xx = 0; xx < w; ++xx) out[s_base + xx * r + j] = in[u_row + xx];
      }
    }
  });
}

}  // namespace lrface::cpu
