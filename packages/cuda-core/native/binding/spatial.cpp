#include "../cpu/spatial.h"

#include "binding.h"

namespace lrface {

// batch_norm(y, yOff, x, xOff, weight|null, wOff, bias|null, bOff, runMean|null, rmOff, runVar|null, rvOff,
//            mean, mOff, invstd, iOff, [n, c, hw], training, momentum, eps)
LRFACE_BINDING(batch_norm) {
  Args a(info, "batch_norm");
  auto d = a.ints(16);
  LR_CHECK(d.size() == 3 && d[0] >= 0 && d[1] >= 1 && d[2] >= 0, Range, "batch_norm: bad sizes");
  const int64_t n = d[0], c = d[1], hw = d[2];
  const bool training = a.boolean(17);
  LR_CHECK(training || (!info[8].IsNull() && !info[10].IsNull()), Range, "batch_norm: eval mode needs running statistics");
  LR_CHECK(!training || n * hw > 0, Range, "batch_norm: training needs at least one value per channel");
  float* y = a.f32(0, n * c * hw);
  const float* x = a.f32(2, n * c * hw);
  const float* w = info[4].IsNull() ? nullptr : a.f32(4, c);
  const float* b = info[6].IsNull() ? nullptr : a.f32(6, c);
  float* rm = info[8].IsNull() ? nullptr : a.f32(8, c);
  float* rv = info[10].IsNull() ? nullptr : a.f32(10, c);
  cpu::batch_norm_forward(n, c, hw, x, w, b, rm, rv, training, static_cast<float>(a.f64(18)), static_cast<float>(a.f64(19)),
                          a.f32(12, c), a.f32(14, c), y);
  return info.Env().Undefined();
}

// batch_norm_backward(gx|null, gxOff, gw|null, gwOff, gb|null, gbOff, x, xOff, gy, gyOff, weight|null, wOff,
//                     mean, mOff, invstd, iOff, [n, c, hw], training)
LRFACE_BINDING(batch_norm_backward) {
  Args a(info, "batch_norm_backward");
  auto d = a.ints(16);
  LR_CHECK(d.size() == 3 && d[0] >= 0 && d[1] >= 1 && d[2] >= 0, Range, "batch_norm_backward: bad sizes");
  const int64_t n = d[0], c = d[1], hw = d[2];
  float* gx = info[0].IsNull() ? nullptr : a.f32(0, n * c * hw);
  float* gw = info[2].IsNull() ? nullptr : a.f32(2, c);
  float* gb = info[4].IsNull() ? nullptr : a.f32(4, c);
  const float* w = info[10].IsNull() ? nullptr : a.f32(10, c);
  cpu::batch_norm_backward(n, c, hw, a.f32(6, n * c * hw), a.f32(8, n * c * hw), w, a.f32(12, c), a.f32(14, c),
                           a.boolean(17), gx, gw, gb);
  return info.Env().Undefined();
}

// resample2d(out, oOff, x, xOff, [planes, h, w, oh, ow, hTaps, wTaps], hIndex, hWeight, wIndex, wWeight, transpose)
LRFACE_BINDING(resample2d) {
  Args a(info, "resample2d");
  auto d = a.ints(4);
  LR_CHECK(d.size() == 7, Range, "resample2d: bad sizes");
  const int64_t planes = d[0], h = d[1], w = d[2], oh = d[3], ow = d[4], ht = d[5], wt = d[6];
  LR_CHECK(planes >= 0 && h >= 1 && w >= 1 && oh >= 1 && ow >= 1 && ht >= 1 && wt >= 1, Range, "resample2d: bad sizes");
  auto hi = a.ints(5), wi = a.ints(7);
  auto hwgt = a.doubles(6), wwgt = a.doubles(8);
  LR_CHECK(static_cast<int64_t>(hi.size()) == oh * ht && static_cast<int64_t>(hwgt.size()) == oh * ht &&
               static_cast<int64_t>(wi.size()) == ow * wt && static_cast<int64_t>(wwgt.size()) == ow * wt,
           Range, "resample2d: weight tables do not match the sizes");
  std::vector<int32_t> h_index(hi.begin(), hi.end()), w_index(wi.begin(), wi.end());
  for (auto v : h_index) LR_CHECK(v >= 0 && v < h, Range, "resample2d: row index out of range");
  for (auto v : w_index) LR_CHECK(v >= 0 && v < w, Range, "resample2d: column index out of range");
  std::vector<float> h_weight(hwgt.begin(), hwgt.end()), w_weight(wwgt.begin(), wwgt.end());
  const bool transpose = a.boolean(9);
  const float* x = a.f32(2, planes * (transpose ? oh * ow : h * w));
  float* out = a.f32(0, planes * (transpose ? h * w : oh * ow));
  cpu::resample2d(planes, h, w, oh, ow, h_index.data(), h_weight.data(), ht, w_index.data(), w_weight.data(), wt, transpose, x, out);
  return info.Env().Undefined();
}

// pad2d(out, oOff, x, xOff, [planes, h, w, pt, pb, pl, pr], mode, value)
LRFACE_BINDING(pad2d) {
  Args a(info, "pad2d");
  auto d = a.ints(4);
  LR_CHECK(d.size() == 7 && d[0] >= 0 && d[1] >= 1 && d[2] >= 1 && d[3] >= 0 && d[4] >= 0 && d[5] >= 0 && d[6] >= 0, Range,
           "pad2d: bad sizes");
  const int64_t mode = a.i64(5);
  LR_CHECK(mode >= 0 && mode <= 2, Range, "pad2d: bad mode");
  LR_CHECK(mode != 1 || (d[3] < d[1] && d[4] < d[1] && d[5] < d[2] && d[6] < d[2]), Range, "pad2d: reflect padding must be smaller than the input");
  const int64_t oh = d[1] + d[3] + d[4], ow = d[2] + d[5] + d[6];
  cpu::pad2d(d[0], d[1], d[2], d[3], d[4], d[5], d[6], static_cast<int>(mode), static_cast<float>(a.f64(6)),
             a.f32(2, d[0] * d[1] * d[2]), a.f32(0, d[0] * oh * ow));
  return info.Env().Undefined();
}

// pad2d_backward(gx, gxOff, gy, gyOff, [planes, h, w, pt, pb, pl, pr], mode)
LRFACE_BINDING(pad2d_backward) {
  Args a(info, "pad2d_backward");
  auto d = a.ints(4);
  LR_CHECK(d.size() == 7 && d[0] >= 0 && d[1] >= 1 && d[2] >= 1 && d[3] >= 0 && d[4] >= 0 && d[5] >= 0 && d[6] >= 0, Range,
           "pad2d_backward: bad sizes");
  const int64_t mode = a.i64(5);
  LR_CHECK(mode >= 0 && mode <= 2, Range, "pad2d_backward: bad mode");
  LR_CHECK(mode != 1 || (d[3] < d[1] && d[4] < d[1] && d[5] < d[2] && d[6] < d[2]), Range, "pad2d_backward: reflect padding must be smaller than the input");
  const int64_t oh = d[1] + d[3] + d[4], ow = d[2] + d[5] + d[6];
  cpu::pad2d_backward(d[0], d[1], d[2], d[3], d[4], d[5], d[6], static_cast<int>(mode), a.f32(2, d[0] * oh * ow),
                      a.f32(0, d[0] * d[1] * d[2]));
  return info.Env().Undefined();
}

}  // namespace lrface
