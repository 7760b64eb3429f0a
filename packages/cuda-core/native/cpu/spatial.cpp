#include "spatial.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "../core/thread_pool.h"

namespace lrface::cpu {

void batch_norm_forward(int64_t n, int64_t c, int64_t hw, const float* x, const float* weight, const float* bias,
                        float* running_mean, float* running_var, bool training, float momentum, float eps, float* mean,
                        float* invstd, float* y) {
  const int64_t count = n * hw;
  parallel_for(c, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t ch = lo; ch < hi; ++ch) {
      double m, var;
      if (training) {
        double s = 0;
        for (int64_t b = 0; b < n; ++b) {
          const float* p = x + (b * c + ch) * hw;
          for (int64_t i = 0; i < hw; ++i) s += p[i];
        }
        m = s / count;
        double ss = 0;
        for (int64_t b = 0; b < n; ++b) {
          const float* p = x + (b * c + ch) * hw;
          for (int64_t i = 0; i < hw; ++i) ss += (p[i] - m) * (p[i] - m);
        }
        var = ss / count;
        if (running_mean) running_mean[ch] = static_cast<float>((1 - momentum) * running_mean[ch] + momentum * m);
        if (running_var)
          running_var[ch] = static_cast<float>((1 - momentum) * running_var[ch] +
                                               momentum * (count > 1 ? var * count / (count - 1) : var));
      } else {
        m = running_mean[ch];
        var = running_var[ch];
      }
      const float is = static_cast<float>(1.0 / std::sqrt(var + eps));
      mean[ch] = static_cast<float>(m);
      invstd[ch] = is;
      const float scale = is * (weight ? weight[ch] : 1.0f);
      const float shift = (bias ? bias[ch] : 0.0f) - static_cast<float>(m) * scale;
      for (int64_t b = 0; b < n; ++b) {
        const float* p = x + (b * c + ch) * hw;
        float* q = y + (b * c + ch) * hw;
        for (int64_t i = 0; i < hw; ++i) q[i] = p[i] * scale + shift;
      }
    }
  });
}

void batch_norm_backward(int64_t n, int64_t c, int64_t hw, const float* x, const float* gy, const float* weight,
                         const float* mean, const float* invstd, bool training, float* gx, float* gw, float* gb) {
  const int64_t count = n * hw;
  parallel_for(c, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t ch = lo; ch < hi; ++ch) {
      const double m = mean[ch], is = invstd[ch];
      double sum_g = 0, sum_gx = 0;
      for (int64_t b = 0; b < n; ++b) {
        const float* p = x + (b * c + ch) * hw;
        const float* g = gy + (b * c + ch) * hw;
        for (int64_t i = 0; i < hw; ++i) {
          sum_g += g[i];
          sum_gx += g[i] * (p[i] - m) * is;
        }
      }
      if (gb) gb[ch] = static_cast<float>(sum_g);
      if (gw) gw[ch] = static_cast<float>(sum_gx);
      if (!gx) continue;
      const double w = weight ? weight[ch] : 1.0;
      for (int64_t b = 0; b < n; ++b) {
        const float* p = x + (b * c + ch) * hw;
        const float* g = gy + (b * c + ch) * hw;
        float* q = gx + (b * c + ch) * hw;
        if (training) {
          const double k = w * is / count;
          for (int64_t i = 0; i < hw; ++i) {
            const double xhat = (p[i] - m) * is;
            q[i] = static_cast<float>(k * (count * g[i] - sum_g - xhat * sum_gx));
          }
        } else {
          for (int64_t i = 0; i < hw; ++i) q[i] = static_cast<float>(g[i] * w * is);
        }
      }
    }
  });
}

void resample2d(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, const int32_t* h_index,
                const float* h_weight, int64_t h_taps, const int32_t* w_index, const float* w_weight, int64_t w_taps,
                bool transpose, const float* x, float* out) {
  parallel_for(planes, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> tmp;
    for (int64_t p = lo; p < hi; ++p) {
      if (!transpose) {
        // Rows first: [h, w] -> [oh, w], then columns: [oh, w] -> [oh, ow].
        tmp.assign(oh * w, 0.0f);
        const float* src = x + p * h * w;
        for (int64_t i = 0; i < oh; ++i) {
          float* t = tmp.data() + i * w;
          for (int64_t k = 0; k < h_taps; ++k) {
            const float wt = h_weight[i * h_taps + k];
            if (wt == 0.0f) continue;
            const float* s = src + static_cast<int64_t>(h_index[i * h_taps + k]) * w;
            for (int64_t j = 0; j < w; ++j) t[j] += wt * s[j];
          }
        }
        float* dst = out + p * oh * ow;
        for (int64_t i = 0; i < oh; ++i) {
          const float* t = tmp.data() + i * w;
          for (int64_t j = 0; j < ow; ++j) {
            float acc = 0.0f;
            for (int64_t k = 0; k < w_taps; ++k) acc += w_weight[j * w_taps + k] * t[w_index[j * w_taps + k]];
            dst[i * ow + j] = acc;
          }
        }
      } else {
        // The transpose: columns back [oh, ow] -> [oh, w], then rows [oh, w] -> [h, w].
        tmp.assign(oh * w, 0.0f);
        const float* src = x + p * oh * ow;
        for (int64_t i = 0; i < oh; ++i) {
          float* t = tmp.data() + i * w;
          for (int64_t j = 0; j < ow; ++j) {
            const float g = src[i * ow + j];
            for (int64_t k = 0; k < w_taps; ++k) t[w_index[j * w_taps + k]] += w_weight[j * w_taps + k] * g;
          }
        }
        float* dst = out + p * h * w;
        std::memset(dst, 0, sizeof(float) * h * w);
        for (int64_t i = 0; i < oh; ++i) {
          const float* t = tmp.data() + i * w;
          for (int64_t k = 0; k < h_taps; ++k) {
            const float wt = h_weight[i * h_taps + k];
            if (wt == 0.0f) continue;
            float* d = dst + static_cast<int64_t>(h_index[i * h_taps + k]) * w;
            for (int64_t j = 0; j < w; ++j) d[j] += wt * t[j];
          }
        }
      }
    }
  });
}

namespace {
// Source index for padded position i (may be outside [0, n)) under reflect or replicate.
inline int64_t source_index(int64_t i, int64_t n, int mode) {
  if (mode == 2) return i < 0 ? 0 : (i >= n ? n - 1 : i);
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  int64_t r = i % period;
  if (r < 0) r += period;
  return r < n ? r : period - r;
}
}  // namespace

void pad2d(int64_t planes, int64_t h, int64_t w, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int mode, float value,
           const float* x, float* out) {
  const int64_t oh = h + pt + pb, ow = w + pl + pr;
  parallel_for(planes, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const float* src = x + p * h * w;
      float* dst = out + p * oh * ow;
      for (int64_t i = 0; i < oh; ++i) {
        const int64_t y = i - pt;
        for (int64_t j = 0; j < ow; ++j) {
          const int64_t xx = j - pl;
          if (mode == 0)
            dst[i * ow + j] = (y >= 0 && y < h && xx >= 0 && xx < w) ? src[y * w + xx] : value;
          else
            dst[i * ow + j] = src[source_index(y, h, mode) * w + source_index(xx, w, mode)];
        }
      }
    }
  });
}

void pad2d_backward(int64_t planes, int64_t h, int64_t w, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int mode,
                    const float* gy, float* gx) {
  const int64_t oh = h + pt + pb, ow = w + pl + pr;
  parallel_for(planes, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const float* src = gy + p * oh * ow;
      float* dst = gx + p * h * w;
      std::memset(dst, 0, sizeof(float) * h * w);
      for (int64_t i = 0; i < oh; ++i) {
        const int64_t y = i - pt;
        for (int64_t j = 0; j < ow; ++j) {
          const int64_t xx = j - pl;
          if (mode == 0) {
            if (y >= 0 && y < h && xx >= 0 && xx < w) dst[y * w + xx] += src[i * ow + j];
          } else {
            dst[source_index(y, h, mode) * w + source_index(xx, w, mode)] += src[i * ow + j];
          }
        }
      }
    }
  });
}

}  // namespace lrface::cpu
