#include "../cpu/pool.h"

#include "binding.h"

namespace lrface {

namespace {
// geom = [planes, h, w, kh, kw, sh, sw, pt, pl, dh, dw, outH, outW]
cpu::PoolGeometry read_pool(const Args& a, size_t i) {
  auto v = a.ints(i);
  LR_CHECK(v.size() == 13, Range, a.op(), ": geometry must have 13 entries");
  cpu::PoolGeometry g{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]};
  LR_CHECK(g.planes >= 0 && g.h >= 1 && g.w >= 1 && g.kh >= 1 && g.kw >= 1 && g.sh >= 1 && g.sw >= 1 && g.dh >= 1 &&
               g.dw >= 1 && g.out_h >= 1 && g.out_w >= 1 && g.pt >= 0 && g.pl >= 0,
           Range, a.op(), ": bad pooling geometry");
  // Every window must start inside the padded input so it is never empty.
  LR_CHECK((g.out_h - 1) * g.sh - g.pt < g.h && (g.out_w - 1) * g.sw - g.pl < g.w, Range, a.op(),
           ": the last window starts outside the input");
  return g;
}
}  // namespace

// max_pool2d(out, oOff, index, iOff, x, xOff, geom)
LRFACE_BINDING(max_pool2d) {
  Args a(info, "max_pool2d");
  auto g = read_pool(a, 6);
  cpu::max_pool2d(g, a.f32(4, g.planes * g.h * g.w), a.f32(0, g.planes * g.out_h * g.out_w), a.i32(2, g.planes * g.out_h * g.out_w));
  return info.Env().Undefined();
}

// max_pool2d_backward(gx, gxOff, gy, gyOff, index, iOff, geom)
LRFACE_BINDING(max_pool2d_backward) {
  Args a(info, "max_pool2d_backward");
  auto g = read_pool(a, 6);
  const int64_t n_out = g.planes * g.out_h * g.out_w;
  const int32_t* index = a.i32(4, n_out);
  for (int64_t k = 0; k < n_out; ++k)
    LR_CHECK(index[k] >= -1 && index[k] < g.h * g.w, Range, "max_pool2d_backward: index out of range");
  cpu::max_pool2d_backward(g, a.f32(2, n_out), index, a.f32(0, g.planes * g.h * g.w));
  return info.Env().Undefined();
}

// avg_pool2d(out, oOff, x, xOff, geom, countIncludePad, pb, pr)
LRFACE_BINDING(avg_pool2d) {
  Args a(info, "avg_pool2d");
  auto g = read_pool(a, 4);
  cpu::avg_pool2d(g, a.boolean(5), a.i64(6), a.i64(7), a.f32(2, g.planes * g.h * g.w), a.f32(0, g.planes * g.out_h * g.out_w));
  return info.Env().Undefined();
}

// avg_pool2d_backward(gx, gxOff, gy, gyOff, geom, countIncludePad, pb, pr)
LRFACE_BINDING(avg_pool2d_backward) {
  Args a(info, "avg_pool2d_backward");
  auto g = read_pool(a, 4);
  cpu::avg_pool2d_backward(g, a.boolean(5), a.i64(6), a.i64(7), a.f32(2, g.planes * g.out_h * g.out_w), a.f32(0, g.planes * g.h * g.w));
  return info.Env().Undefined();
}

// adaptive_avg_pool2d(out, oOff, x, xOff, [planes, h, w, oh, ow])
LRFACE_BINDING(adaptive_avg_pool2d) {
  Args a(info, "adaptive_avg_pool2d");
  auto d = a.ints(4);
  LR_CHECK(d.size() == 5 && d[0] >= 0 && d[1] >= 1 && d[2] >= 1 && d[3] >= 1 && d[4] >= 1, Range, "adaptive_avg_pool2d: bad sizes");
  cpu::adaptive_avg_pool2d(d[0], d[1], d[2], d[3], d[4], a.f32(2, d[0] * d[1] * d[2]), a.f32(0, d[0] * d[3] * d[4]));
  return info.Env().Undefined();
}

// adaptive_avg_pool2d_backward(gx, gxOff, gy, gyOff, [planes, h, w, oh, ow])
LRFACE_BINDING(adaptive_avg_pool2d_backward) {
  Args a(info, "adaptive_avg_pool2d_backward");
  auto d = a.ints(4);
  LR_CHECK(d.size() == 5 && d[0] >= 0 && d[1] >= 1 && d[2] >= 1 && d[3] >= 1 && d[4] >= 1, Range, "adaptive_avg_pool2d_backward: bad sizes");
  cpu::adaptive_avg_pool2d_backward(d[0], d[1], d[2], d[3], d[4], a.f32(2, d[0] * d[3] * d[4]), a.f32(0, d[0] * d[1] * d[2]));
  return info.Env().Undefined();
}

}  // namespace lrface
