#include "../cpu/norm.h"

#include "binding.h"
#ifdef LRFACE_WITH_CUDA
#include "../cuda/kernels.h"
#include "../cuda/libs/cudnn_ops.h"
#endif
#include "sizes.h"

namespace lrface {

// batch_norm(y, yOff, x, xOff, weight|null, wOff, bias|null, bOff, runMean|null, rmOff, runVar|null, rvOff,
//            mean, mOff, invstd, iOff, [n, c, hw], training, momentum, eps)
// runMean/runVar are written in place in training mode.
LRFACE_BINDING(batch_norm) {
  auto d = a.ints(16);
  LR_CHECK(d.size() == 3 && d[0] >= 0 && d[1] >= 1 && d[2] >= 0, Range, "batch_norm: bad sizes");
  const int64_t n = d[0], c = d[1], hw = d[2];
  const int64_t numel = checked_product("batch_norm", {n, c, hw});
  const bool training = a.boolean(17);
  const double momentum = a.f64(18), eps = a.f64(19);
  LR_CHECK(momentum >= 0 && momentum <= 1 && eps > 0, Range, "batch_norm: bad momentum or eps");
  LR_CHECK(training || (!a.is_null(8) && !a.is_null(10)), Range, "batch_norm: eval mode needs running statistics");
  LR_CHECK(!training || n * hw > 1, Range, "batch_norm: training needs more than one value per channel");
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost) {
    const float* x = a.dev_f32(2, numel, dev);
    const float* w = a.is_null(4) ? nullptr : a.dev_f32(4, c, dev);
    const float* b = a.is_null(6) ? nullptr : a.dev_f32(6, c, dev);
    float* rm = a.is_null(8) ? nullptr : a.dev_f32(8, c, dev);
    float* rv = a.is_null(10) ? nullptr : a.dev_f32(10, c, dev);
    float* mean = a.dev_f32(12, c, dev);
    float* invstd = a.dev_f32(14, c, dev);
    float* y = a.dev_f32(0, numel, dev);
    const auto m = static_cast<float>(momentum);
    if (training && cuda::cudnn_batch_norm_training(dev, n, c, hw, x, w, b, rm, rv, m, eps, mean, invstd, y)) return;
    return cuda::batch_norm_forward(dev, n, c, hw, x, w, b, rm, rv, training, m, static_cast<float>(eps), mean, invstd, y);
  }
#endif
  float* y = a.f32(0, numel);
  const float* x = a.f32(2, numel);
  const float* w = a.is_null(4) ? nullptr : a.f32(4, c);
  const float* b = a.is_null(6) ? nullptr : a.f32(6, c);
  float* rm = a.is_null(8) ? nullptr : a.f32(8, c);
  float* rv = a.is_null(10) ? nullptr : a.f32(10, c);
  cpu::batch_norm_forward(n, c, hw, x, w, b, rm, rv, training, static_cast<float>(momentum), static_cast<float>(eps),
                          a.f32(12, c), a.f32(14, c), y);
}

// batch_norm_backward(gx|null, gxOff, gw|null, gwOff, gb|null, gbOff, x, xOff, gy, gyOff, weight|null, wOff,
//                     mean, mOff, invstd, iOff, [n, c, hw], training, eps)
// eps is the forward's (cuDNN takes the backward pass only where it took the forward).
LRFACE_BINDING(batch_norm_backward) {
  auto d = a.ints(16);
  LR_CHECK(d.size() == 3 && d[0] >= 0 && d[1] >= 1 && d[2] >= 0, Range, "batch_norm_backward: bad sizes");
  const int64_t n = d[0], c = d[1], hw = d[2];
  const int64_t numel = checked_product("batch_norm_backward", {n, c, hw});
  const double eps = a.f64(18);
  LR_CHECK(eps > 0, Range, "batch_norm_backward: bad eps");
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(6); dev != Storage::kHost) {
    const float* x = a.dev_f32(6, numel, dev);
    const float* gy = a.dev_f32(8, numel, dev);
    const float* w = a.is_null(10) ? nullptr : a.dev_f32(10, c, dev);
    const float* mean = a.dev_f32(12, c, dev);
    const float* invstd = a.dev_f32(14, c, dev);
    float* gx = a.is_null(0) ? nullptr : a.dev_f32(0, numel, dev);
    float* gw = a.is_null(2) ? nullptr : a.dev_f32(2, c, dev);
    float* gb = a.is_null(4) ? nullptr : a.dev_f32(4, c, dev);
    const bool training = a.boolean(17);
    if (training && cuda::cudnn_batch_norm_backward(dev, n, c, hw, x, gy, w, mean, invstd, eps, gx, gw, gb)) return;
    return cuda::batch_norm_backward(dev, n, c, hw, x, gy, w, mean, invstd, training, gx, gw, gb);
  }
#endif
  float* gx = a.is_null(0) ? nullptr : a.f32(0, numel);
  float* gw = a.is_null(2) ? nullptr : a.f32(2, c);
  float* gb = a.is_null(4) ? nullptr : a.f32(4, c);
  const float* w = a.is_null(10) ? nullptr : a.f32(10, c);
  cpu::batch_norm_backward(n, c, hw, a.f32(6, numel), a.f32(8, numel), w, a.f32(12, c), a.f32(14, c), a.boolean(17), gx,
                           gw, gb);
}

}  // namespace lrface
