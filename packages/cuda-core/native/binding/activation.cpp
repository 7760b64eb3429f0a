#include "../cpu/activation.h"

#include <cmath>

#include "binding.h"
#ifdef LRFACE_WITH_CUDA
#include "../cuda/kernels.h"
#include "../cuda/libs/cudnn_ops.h"
#endif

namespace lrface {

namespace {

constexpr int64_t kMaxCount = int64_t{1} << 53;

// `count` sizes from argument i, each non-negative; returns them with their product checked.
std::vector<int64_t> sizes_arg(const Args& a, size_t i, size_t count, int64_t* product) {
  auto d = a.ints(i);
  LR_CHECK(d.size() == count, Range, a.op(), ": argument ", i, " must hold ", count, " sizes");
  int64_t p = 1;
  for (int64_t v : d) {
    LR_CHECK(v >= 0 && v <= kMaxCount, Range, a.op(), ": argument ", i, " holds the bad size ", v);
    LR_CHECK(!__builtin_mul_overflow(p, v, &p) && p <= kMaxCount, Range, a.op(), ": sizes too large");
  }
  *product = p;
  return d;
}

// An integer in [0, 2^53] passed as a JS number (seeds, stream offsets).
uint64_t u53(const Args& a, size_t i) {
  const double v = a.f64(i);
  LR_CHECK(v >= 0 && v <= 9007199254740992.0 && std::floor(v) == v, Range, a.op(), ": argument ", i,
           " must be an integer in [0, 2^53]");
  return static_cast<uint64_t>(v);
}

}  // namespace

// softmax(y, yOff, x, xOff, [outer, n, inner], log)
LRFACE_BINDING(softmax) {
  int64_t total;
  auto d = sizes_arg(a, 4, 3, &total);
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost) {
    const float* x = a.dev_f32(2, total, dev);
    float* y = a.dev_f32(0, total, dev);
    if (!cuda::cudnn_softmax(dev, x, y, d[0], d[1], d[2], a.boolean(5))) cuda::softmax(dev, x, y, d[0], d[1], d[2], a.boolean(5));
    return;
  }
#endif
  cpu::softmax(a.f32(2, total), a.f32(0, total), d[0], d[1], d[2], a.boolean(5));
}

// softmax_backward(gx, gxOff, y, yOff, gy, gyOff, [outer, n, inner], log)
LRFACE_BINDING(softmax_backward) {
  int64_t total;
  auto d = sizes_arg(a, 6, 3, &total);
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost) {
    const float* y = a.dev_f32(2, total, dev);
    const float* gy = a.dev_f32(4, total, dev);
    float* gx = a.dev_f32(0, total, dev);
    if (!cuda::cudnn_softmax_backward(dev, y, gy, gx, d[0], d[1], d[2], a.boolean(7)))
      cuda::softmax_backward(dev, y, gy, gx, d[0], d[1], d[2], a.boolean(7));
    return;
  }
#endif
  cpu::softmax_backward(a.f32(2, total), a.f32(4, total), a.f32(0, total), d[0], d[1], d[2], a.boolean(7));
}

// l2_normalize(y, yOff, x, xOff, [outer, n, inner], eps)
LRFACE_BINDING(l2_normalize) {
  int64_t total;
  auto d = sizes_arg(a, 4, 3, &total);
  const double eps = a.f64(5);
  LR_CHECK(eps > 0 && std::isfinite(eps), Range, "l2_normalize: eps must be a positive number");
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost)
    return cuda::l2_normalize(dev, a.dev_f32(2, total, dev), a.dev_f32(0, total, dev), d[0], d[1], d[2],
                              static_cast<float>(eps));
#endif
  cpu::l2_normalize(a.f32(2, total), a.f32(0, total), d[0], d[1], d[2], static_cast<float>(eps));
}

// l2_normalize_backward(gx, gxOff, x, xOff, gy, gyOff, [outer, n, inner], eps)
LRFACE_BINDING(l2_normalize_backward) {
  int64_t total;
  auto d = sizes_arg(a, 6, 3, &total);
  const double eps = a.f64(7);
  LR_CHECK(eps > 0 && std::isfinite(eps), Range, "l2_normalize_backward: eps must be a positive number");
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost)
    return cuda::l2_normalize_backward(dev, a.dev_f32(2, total, dev), a.dev_f32(4, total, dev), a.dev_f32(0, total, dev),
                                       d[0], d[1], d[2], static_cast<float>(eps));
#endif
  cpu::l2_normalize_backward(a.f32(2, total), a.f32(4, total), a.f32(0, total), d[0], d[1], d[2], static_cast<float>(eps));
}

// prelu(y, yOff, x, xOff, w, wOff, [outer, c, inner], shared)
LRFACE_BINDING(prelu) {
  int64_t total;
  auto d = sizes_arg(a, 6, 3, &total);
  const bool shared = a.boolean(7);
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost)
    return cuda::prelu(dev, a.dev_f32(2, total, dev), a.dev_f32(4, shared ? 1 : d[1], dev), a.dev_f32(0, total, dev), d[0],
                       d[1], d[2], shared);
#endif
  cpu::prelu(a.f32(2, total), a.f32(4, shared ? 1 : d[1]), a.f32(0, total), d[0], d[1], d[2], shared);
}

// prelu_backward(gx|null, gxOff, gw|null, gwOff, x, xOff, w, wOff, gy, gyOff, [outer, c, inner], shared)
LRFACE_BINDING(prelu_backward) {
  int64_t total;
  auto d = sizes_arg(a, 10, 3, &total);
  const bool shared = a.boolean(11);
  const int64_t slopes = shared ? 1 : d[1];
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(4); dev != Storage::kHost)
    return cuda::prelu_backward(dev, a.dev_f32(4, total, dev), a.dev_f32(6, slopes, dev), a.dev_f32(8, total, dev),
                                a.is_null(0) ? nullptr : a.dev_f32(0, total, dev),
                                a.is_null(2) ? nullptr : a.dev_f32(2, slopes, dev), d[0], d[1], d[2], shared);
#endif
  float* gx = a.is_null(0) ? nullptr : a.f32(0, total);
  float* gw = a.is_null(2) ? nullptr : a.f32(2, slopes);
  cpu::prelu_backward(a.f32(4, total), a.f32(6, slopes), a.f32(8, total), gx, gw, d[0], d[1], d[2], shared);
}

// mfm(y, yOff, x, xOff, [outer, half, inner])
LRFACE_BINDING(mfm) {
  int64_t half_total;
  auto d = sizes_arg(a, 4, 3, &half_total);
  LR_CHECK(half_total <= kMaxCount / 2, Range, "mfm: sizes too large");
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost)
    return cuda::mfm(dev, a.dev_f32(2, 2 * half_total, dev), a.dev_f32(0, half_total, dev), d[0], d[1], d[2]);
#endif
  cpu::mfm(a.f32(2, 2 * half_total), a.f32(0, half_total), d[0], d[1], d[2]);
}

// mfm_backward(gx, gxOff, x, xOff, gy, gyOff, [outer, half, inner])
LRFACE_BINDING(mfm_backward) {
  int64_t half_total;
  auto d = sizes_arg(a, 6, 3, &half_total);
  LR_CHECK(half_total <= kMaxCount / 2, Range, "mfm_backward: sizes too large");
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost)
    return cuda::mfm_backward(dev, a.dev_f32(2, 2 * half_total, dev), a.dev_f32(4, half_total, dev),
                              a.dev_f32(0, 2 * half_total, dev), d[0], d[1], d[2]);
#endif
  cpu::mfm_backward(a.f32(2, 2 * half_total), a.f32(4, half_total), a.f32(0, 2 * half_total), d[0], d[1], d[2]);
}

// dropout(y, yOff, x, xOff, n, p, seed, stream, offset): also the backward, applied to the gradient
LRFACE_BINDING(dropout) {
  const int64_t n = a.i64(4);
  LR_CHECK(n >= 0 && n <= kMaxCount, Range, "dropout: bad element count ", n);
  const double p = a.f64(5);
  LR_CHECK(p >= 0 && p < 1, Range, "dropout: p must be in [0, 1), got ", p);
  const uint64_t seed = u53(a, 6);
  const int64_t stream = a.i64(7);
  LR_CHECK(stream == 0 || stream == 1, Range, "dropout: unknown stream ", stream);
  const uint64_t offset = u53(a, 8);
  LR_CHECK(offset % 4 == 0 && static_cast<uint64_t>(n) <= (uint64_t{1} << 53) - offset, Range,
           "dropout: bad stream offset ", offset);
  const float scale = static_cast<float>(1.0 / (1.0 - p));
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost)
    return cuda::dropout(dev, a.dev_f32(2, n, dev), a.dev_f32(0, n, dev), n, p, scale, seed, static_cast<uint32_t>(stream),
                         offset);
#endif
  cpu::dropout(a.f32(2, n), a.f32(0, n), n, p, scale, seed, static_cast<cpu::RandomStream>(stream), offset);
}

}  // namespace lrface
