#include "../cpu/elementwise.h"
#include "binding.h"
#ifdef LRFACE_WITH_CUDA
#include "../cuda/kernels.h"
#include "../cuda/libs/cudnn_ops.h"
#endif

namespace lrface {

// binary(code, out, outOff, a, aOff, b, bOff, outShape, aShape, bShape)
LRFACE_BINDING(binary) {
  auto code = a.i64(0);
  LR_CHECK(code >= 0 && code <= 8, Range, "binary: unknown op code ", code);
  auto shape = a.ints(7), as = a.ints(8), bs = a.ints(9);
  LR_CHECK(as.size() == shape.size() && bs.size() == shape.size(), Range, "binary: shapes must have the output's rank");
  for (size_t k = 0; k < shape.size(); ++k)
    LR_CHECK((as[k] == shape[k] || as[k] == 1) && (bs[k] == shape[k] || bs[k] == 1), Range,
             "binary: shapes do not broadcast at axis ", k);
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(1); dev != Storage::kHost) {
    LR_CHECK(shape.size() <= static_cast<size_t>(cuda::kMaxRank), Range, "binary: CUDA broadcasting supports up to ",
             cuda::kMaxRank, " axes, got ", shape.size());
    cuda::binary(dev, static_cast<int>(code), a.dev_f32(1, numel_of(shape), dev), a.dev_f32(3, numel_of(as), dev),
                 a.dev_f32(5, numel_of(bs), dev), shape, as, bs);
    return;
  }
#endif
  float* out = a.f32(1, numel_of(shape));
  const float* x = a.f32(3, numel_of(as));
  const float* y = a.f32(5, numel_of(bs));
  cpu::binary(static_cast<cpu::BinaryOp>(code), out, x, y, shape, as, bs);
}

// unary(code, out, outOff, x, xOff, n, p0, p1)
LRFACE_BINDING(unary) {
  auto code = a.i64(0);
  LR_CHECK(code >= 0 && code <= 12, Range, "unary: unknown op code ", code);
  int64_t n = a.i64(5);
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(1); dev != Storage::kHost) {
    float* out = a.dev_f32(1, n, dev);
    const float* x = a.dev_f32(3, n, dev);
    if (!cuda::cudnn_activation(dev, static_cast<int>(code), x, out, n))
      cuda::unary(dev, static_cast<int>(code), out, x, n, static_cast<float>(a.f64(6)), static_cast<float>(a.f64(7)));
    return;
  }
#endif
  float* out = a.f32(1, n);
  const float* x = a.f32(3, n);
  cpu::unary(static_cast<cpu::UnaryOp>(code), out, x, n, static_cast<float>(a.f64(6)), static_cast<float>(a.f64(7)));
}

// unary_backward(code, gx, gxOff, gy, gyOff, x, xOff, y, yOff, n, p0, p1)
LRFACE_BINDING(unary_backward) {
  auto code = a.i64(0);
  LR_CHECK(code >= 0 && code <= 12, Range, "unary_backward: unknown op code ", code);
  int64_t n = a.i64(9);
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(1); dev != Storage::kHost) {
    float* gx = a.dev_f32(1, n, dev);
    const float* gy = a.dev_f32(3, n, dev);
    const float* x = a.dev_f32(5, n, dev);
    const float* y = a.dev_f32(7, n, dev);
    if (!cuda::cudnn_activation_backward(dev, static_cast<int>(code), gy, x, y, gx, n))
      cuda::unary_backward(dev, static_cast<int>(code), gx, gy, x, y, n, static_cast<float>(a.f64(10)),
                           static_cast<float>(a.f64(11)));
    return;
  }
#endif
  float* gx = a.f32(1, n);
  const float* gy = a.f32(3, n);
  const float* x = a.f32(5, n);
  const float* y = a.f32(7, n);
  cpu::unary_backward(static_cast<cpu::UnaryOp>(code), gx, gy, x, y, n, static_cast<float>(a.f64(10)),
                      static_cast<float>(a.f64(11)));
}

}  // namespace lrface
