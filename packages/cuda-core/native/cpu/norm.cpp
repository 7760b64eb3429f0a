#include "norm.h"

#include <cmath>

#include "../core/thread_pool.h"

namespace lrface::cpu {

void batch_norm_forward(int64_t n, int64_t c, int64_t hw, const float* x, const float* weight, const float* bias,
                        float* running_mean, float* running_var, bool training, float momentum, float eps, float* mean,
                        float* invstd, float* y) {
  const int64_t count = n * hw;
  // Statistics per channel (two passes in double: the variance of data with a large mean
  // must not cancel catastrophically).
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
        if (running_mean) running_mean[ch] = static_cast<float>((1.0 - momentum) * running_mean[ch] + momentum * m);
        if (running_var)
          running_var[ch] = static_cast<float>((1.0 - momentum) * running_var[ch] +
                                               momentum * (count > 1 ? var * count / (count - 1) : var));
      } else {
        m = running_mean[ch];
        var = running_var[ch];
      }
      mean[ch] = static_cast<float>(m);
      invstd[ch] = static_cast<float>(1.0 / std::sqrt(var + eps));
    }
  });
  // y = x * scale + shift, one (sample, channel) plane at a time.
  parallel_for(n * c, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t plane = lo; plane < hi; ++plane) {
      const int64_t ch = plane % c;
      const float scale = invstd[ch] * (weight ? weight[ch] : 1.0f);
      const float shift = (bias ? bias[ch] : 0.0f) - mean[ch] * scale;
      const float* p = x + plane * hw;
      float* q = y + plane * hw;
      for (int64_t i = 0; i < hw; ++i) q[i] = p[i] * scale + shift;
    }
  });
}

void batch_norm_backward(int64_t n, int64_t c, int64_t hw, const float* x, const float* gy, const float* weight,
                         const float* mean, const float* invstd, bool training, float* gx, float* gw, float* gb) {
  const int64_t count = n * hw;
  // Per channel: sum(g) and sum(g * xhat); the weight and bias gradients are exactly these.
  parallel_for(c, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t ch = lo; ch < hi; ++ch) {
      const double m = mean[ch], is = invstd[ch];
      double sum_g = 0, sum_gxhat = 0;
      for (int64_t b = 0; b < n; ++b) {
        const float* p = x + (b * c + ch) * hw;
        const float* g = gy + (b * c + ch) * hw;
        for (int64_t i = 0; i < hw; ++i) {
          sum_g += g[i];
          sum_gxhat += g[i] * (p[i] - m) * is;
        }
      }
      if (gb) gb[ch] = static_cast<float>(sum_g);
      if (gw) gw[ch] = static_cast<float>(sum_gxhat);
      if (!gx) continue;
      const double w = weight ? weight[ch] : 1.0;
      // Training: gx = w * invstd * (g - mean(g) - xhat * mean(g * xhat)); eval: w * invstd * g.
      const double k = w * is;
      const double mg = training ? sum_g / count : 0.0, mgx = training ? sum_gxhat / count : 0.0;
      for (int64_t b = 0; b < n; ++b) {
        const float* p = x + (b * c + ch) * hw;
        const float* g = gy + (b * c + ch) * hw;
        float* q = gx + (b * c + ch) * hw;
        for (int64_t i = 0; i < hw; ++i) q[i] = static_cast<float>(k * (g[i] - mg - (p[i] - m) * is * mgx));
      }
    }
  });
}

}  // namespace lrface::cpu
