#include "../cpu/pool.h"

#include <cstdint>
#include <limits>

#include "binding.h"
#ifdef LRFACE_WITH_CUDA
#include "../cuda/kernels.h"
#include "../cuda/libs/cudnn_ops.h"
#endif
#include "sizes.h"

namespace lrface {

namespace {
// geom = [planes, h, w, kh, kw, sh, sw, pt, pl, dh, dw, outH, outW]
cpu::PoolGeometry read_pool(const Args& a, size_t i) {
  auto v = a.ints(i);
  LR_CHECK(v.size() == 13, Range, a.op(), ": geometry must have 13 entries");
  for (int64_t e : v) LR_CHECK(e <= std::numeric_limits<int32_t>::max(), Range, a.op(), ": geometry entry too large");
  cpu::PoolGeometry g{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]};
  LR_CHECK(g.planes >= 0 && g.h >= 1 && g.w >= 1 && g.kh >= 1 && g.kw >= 1 && g.sh >= 1 && g.sw >= 1 && g.dh >= 1 &&
               g.dw >= 1 && g.out_h >= 1 && g.out_w >= 1 && g.pt >= 0 && g.pl >= 0 && 2 * g.pt <= g.kh &&
               2 * g.pl <= g.kw,
           Range, a.op(), ": bad pooling geometry");
  checked_product(a.op(), {g.planes, g.h, g.w});
  checked_product(a.op(), {g.planes, g.out_h, g.out_w});
  LR_CHECK(g.h * g.w <= std::numeric_limits<int32_t>::max(), Range, a.op(), ": plane too large for int32 indices");
  // Every window must start inside the input or its leading padding (PyTorch's ceil-mode rule).
  LR_CHECK((g.out_h - 1) * g.sh - g.pt < g.h && (g.out_w - 1) * g.sw - g.pl < g.w, Range, a.op(),
           ": the last window starts outside the input");
  return g;
}
}  // namespace

// max_pool2d(out, oOff, index|null, iOff, x, xOff, geom)
LRFACE_BINDING(max_pool2d) {
  auto g = read_pool(a, 6);
  const int64_t n_out = g.planes * g.out_h * g.out_w;
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost) {
    const float* x = a.dev_f32(4, g.planes * g.h * g.w, dev);
    float* out = a.dev_f32(0, n_out, dev);
    // cuDNN gives no indices: it takes the calls that need none (inference).
    if (a.is_null(2) && cuda::cudnn_max_pool2d(dev, g, x, out)) return;
    return cuda::max_pool2d(dev, g, x, out, a.is_null(2) ? nullptr : a.dev_i32(2, n_out, dev));
  }
#endif
  int32_t* index = a.is_null(2) ? nullptr : a.i32(2, n_out);
  cpu::max_pool2d(g, a.f32(4, g.planes * g.h * g.w), a.f32(0, n_out), index);
}

// max_pool2d_backward(gx, gxOff, gy, gyOff, index, iOff, geom)
LRFACE_BINDING(max_pool2d_backward) {
  auto g = read_pool(a, 6);
  const int64_t n_out = g.planes * g.out_h * g.out_w;
#ifdef LRFACE_WITH_CUDA
  // The indices come from max_pool2d on the same device; the kernel skips any out of range.
  if (int dev = a.device_of(0); dev != Storage::kHost)
    return cuda::max_pool2d_backward(dev, g, a.dev_f32(2, n_out, dev), a.dev_i32(4, n_out, dev),
                                     a.dev_f32(0, g.planes * g.h * g.w, dev));
#endif
  const int32_t* index = a.i32(4, n_out);
  for (int64_t k = 0; k < n_out; ++k)
    LR_CHECK(index[k] >= -1 && index[k] < g.h * g.w, Range, "max_pool2d_backward: index out of range");
  cpu::max_pool2d_backward(g, a.f32(2, n_out), index, a.f32(0, g.planes * g.h * g.w));
}

// avg_pool2d(out, oOff, x, xOff, geom, countIncludePad, pb, pr)
LRFACE_BINDING(avg_pool2d) {
  auto g = read_pool(a, 4);
  const int64_t pb = a.i64(6), pr = a.i64(7);
  LR_CHECK(pb >= 0 && pr >= 0 && 2 * pb <= g.kh && 2 * pr <= g.kw, Range, "avg_pool2d: bad padding");
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost) {
    const float* x = a.dev_f32(2, g.planes * g.h * g.w, dev);
    float* out = a.dev_f32(0, g.planes * g.out_h * g.out_w, dev);
    if (!cuda::cudnn_avg_pool2d(dev, g, a.boolean(5), pb, pr, x, out)) cuda::avg_pool2d(dev, g, a.boolean(5), pb, pr, x, out);
    return;
  }
#endif
  cpu::avg_pool2d(g, a.boolean(5), pb, pr, a.f32(2, g.planes * g.h * g.w), a.f32(0, g.planes * g.out_h * g.out_w));
}

// avg_pool2d_backward(gx, gxOff, gy, gyOff, geom, countIncludePad, pb, pr)
LRFACE_BINDING(avg_pool2d_backward) {
  auto g = read_pool(a, 4);
  const int64_t pb = a.i64(6), pr = a.i64(7);
  LR_CHECK(pb >= 0 && pr >= 0 && 2 * pb <= g.kh && 2 * pr <= g.kw, Range, "avg_pool2d_backward: bad padding");
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost) {
    const float* gy = a.dev_f32(2, g.planes * g.out_h * g.out_w, dev);
    float* gx = a.dev_f32(0, g.planes * g.h * g.w, dev);
    if (!cuda::cudnn_avg_pool2d_backward(dev, g, a.boolean(5), pb, pr, gy, gx))
      cuda::avg_pool2d_backward(dev, g, a.boolean(5), pb, pr, gy, gx);
    return;
  }
#endif
  cpu::avg_pool2d_backward(g, a.boolean(5), pb, pr, a.f32(2, g.planes * g.out_h * g.out_w), a.f32(0, g.planes * g.h * g.w));
}

namespace {
// [planes, h, w, oh, ow]
std::vector<int64_t> read_adaptive(const Args& a, size_t i) {
  auto d = a.ints(i);
  LR_CHECK(d.size() == 5 && d[0] >= 0 && d[1] >= 1 && d[2] >= 1 && d[3] >= 1 && d[4] >= 1, Range, a.op(), ": bad sizes");
  checked_product(a.op(), {d[0], d[1], d[2]});
  checked_product(a.op(), {d[0], d[3], d[4]});
  return d;
}
}  // namespace

// adaptive_avg_pool2d(out, oOff, x, xOff, [planes, h, w, oh, ow])
LRFACE_BINDING(adaptive_avg_pool2d) {
  auto d = read_adaptive(a, 4);
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost)
    return cuda::adaptive_avg_pool2d(dev, d[0], d[1], d[2], d[3], d[4], a.dev_f32(2, d[0] * d[1] * d[2], dev),
                                     a.dev_f32(0, d[0] * d[3] * d[4], dev));
#endif
  cpu::adaptive_avg_pool2d(d[0], d[1], d[2], d[3], d[4], a.f32(2, d[0] * d[1] * d[2]), a.f32(0, d[0] * d[3] * d[4]));
}

// adaptive_avg_pool2d_backward(gx, gxOff, gy, gyOff, [planes, h, w, oh, ow])
LRFACE_BINDING(adaptive_avg_pool2d_backward) {
  auto d = read_adaptive(a, 4);
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost)
    return cuda::adaptive_avg_pool2d_backward(dev, d[0], d[1], d[2], d[3], d[4], a.dev_f32(2, d[0] * d[3] * d[4], dev),
                                              a.dev_f32(0, d[0] * d[1] * d[2], dev));
#endif
  cpu::adaptive_avg_pool2d_backward(d[0], d[1], d[2], d[3], d[4], a.f32(2, d[0] * d[3] * d[4]), a.f32(0, d[0] * d[1] * d[2]));
}

}  // namespace lrface
