#include "pad.h"

#include <cstring>

#include "../core/thread_pool.h"

namespace lrface::cpu {

namespace {
// Source index along an axis of length n for padded coordinate i (may be outside [0, n)),
// or -1 when it reads the constant.
inline int64_t source_index(int64_t i, int64_t n, PadMode mode) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PadMode::Constant:
      return -1;
    case PadMode::Replicate:
      return i < 0 ? 0 : n - 1;
    case PadMode::Reflect:
      return i < 0 ? -i : 2 * (n - 1) - i;  // pads are < n, so one reflection suffices
  }
  return -1;
}
}  // namespace

void pad2d(int64_t planes, int64_t h, int64_t w, int64_t pt, int64_t pb, int64_t pl, int64_t pr, PadMode mode,
           float value, const float* x, float* out) {
  const int64_t oh = h + pt + pb, ow = w + pl + pr;
  parallel_for(planes * oh, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t p = r / oh, i = r % oh;
      float* dst = out + r * ow;
      const int64_t y = source_index(i - pt, h, mode);
      if (y < 0) {
        for (int64_t j = 0; j < ow; ++j) dst[j] = value;
        continue;
      }
      const float* src = x + (p * h + y) * w;
      for (int64_t j = 0; j < ow; ++j) {
        const int64_t xx = source_index(j - pl, w, mode);
        dst[j] = xx < 0 ? value : src[xx];
      }
    }
  });
}

void pad2d_backward(int64_t planes, int64_t h, int64_t w, int64_t pt, int64_t pb, int64_t pl, int64_t pr, PadMode mode,
                    const float* gy, float* gx) {
  const int64_t oh = h + pt + pb, ow = w + pl + pr;
  // Several output rows fold onto one input row (reflect, replicate): one plane per thread.
  parallel_for(planes, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      float* dst = gx + p * h * w;
      std::memset(dst, 0, sizeof(float) * h * w);
      for (int64_t i = 0; i < oh; ++i) {
        const int64_t y = source_index(i - pt, h, mode);
        if (y < 0) continue;
        const float* src = gy + (p * oh + i) * ow;
        for (int64_t j = 0; j < ow; ++j) {
          const int64_t xx = source_index(j - pl, w, mode);
          if (xx >= 0) dst[y * w + xx] += src[j];
        }
      }
    }
  });
}

}  // namespace lrface::cpu
