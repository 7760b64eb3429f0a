#include "../cpu/misc.h"

#include <cstring>

#include "../core/thread_pool.h"
#include "binding.h"

namespace lrface {

namespace {
std::vector<int64_t> dims(const Args& a, size_t i, size_t count) {
  auto d = a.ints(i);
  LR_CHECK(d.size() == count, Range, a.op(), ": expected ", count, " sizes");
  for (auto v : d) LR_CHECK(v >= 0, Range, a.op(), ": negative size");
  return d;
}
}  // namespace

// softmax(y, yOff, x, xOff, [outer, n, inner], log)
LRFACE_BINDING(softmax) {
  Args a(info, "softmax");
  auto d = dims(a, 4, 3);
  LR_CHECK(d[1] >= 1, Range, "softmax: empty axis");
  const int64_t total = d[0] * d[1] * d[2];
  cpu::softmax(a.f32(2, total), a.f32(0, total), d[0], d[1], d[2], a.boolean(5));
  return info.Env().Undefined();
}

// softmax_backward(gx, gxOff, y, yOff, gy, gyOff, [outer, n, inner], log)
LRFACE_BINDING(softmax_backward) {
  Args a(info, "softmax_backward");
  auto d = dims(a, 6, 3);
  const int64_t total = d[0] * d[1] * d[2];
  cpu::softmax_backward(a.f32(2, total), a.f32(4, total), a.f32(0, total), d[0], d[1], d[2], a.boolean(7));
  return info.Env().Undefined();
}

// prelu(y, yOff, x, xOff, w, wOff, [outer, c, inner], shared)
LRFACE_BINDING(prelu) {
  Args a(info, "prelu");
  auto d = dims(a, 6, 3);
  const bool shared = a.boolean(7);
  const int64_t total = d[0] * d[1] * d[2];
  cpu::prelu(a.f32(2, total), a.f32(4, shared ? 1 : d[1]), a.f32(0, total), d[0], d[1], d[2], shared);
  return info.Env().Undefined();
}

// prelu_backward(gx|null, gxOff, gw|null, gwOff, x, xOff, w, wOff, gy, gyOff, [outer, c, inner], shared)
LRFACE_BINDING(prelu_backward) {
  Args a(info, "prelu_backward");
  auto d = dims(a, 10, 3);
  const bool shared = a.boolean(11);
  const int64_t total = d[0] * d[1] * d[2];
  float* gx = info[0].IsNull() ? nullptr : a.f32(0, total);
  float* gw = info[2].IsNull() ? nullptr : a.f32(2, shared ? 1 : d[1]);
  cpu::prelu_backward(a.f32(4, total), a.f32(6, shared ? 1 : d[1]), a.f32(8, total), gx, gw, d[0], d[1], d[2], shared);
  return info.Env().Undefined();
}

// mfm(y, yOff, x, xOff, [outer, half, inner])
LRFACE_BINDING(mfm) {
  Args a(info, "mfm");
  auto d = dims(a, 4, 3);
  cpu::mfm(a.f32(2, d[0] * 2 * d[1] * d[2]), a.f32(0, d[0] * d[1] * d[2]), d[0], d[1], d[2]);
  return info.Env().Undefined();
}

// mfm_backward(gx, gxOff, x, xOff, gy, gyOff, [outer, half, inner])
LRFACE_BINDING(mfm_backward) {
  Args a(info, "mfm_backward");
  auto d = dims(a, 6, 3);
  cpu::mfm_backward(a.f32(2, d[0] * 2 * d[1] * d[2]), a.f32(4, d[0] * d[1] * d[2]), a.f32(0, d[0] * 2 * d[1] * d[2]), d[0], d[1], d[2]);
  return info.Env().Undefined();
}

// slice_axis(out, oOff, x, xOff, [outer, n, m, inner, start, step]): any dtype (both the same)
LRFACE_BINDING(slice_axis) {
  Args a(info, "slice_axis");
  auto d = dims(a, 4, 6);
  const int64_t outer = d[0], n = d[1], m = d[2], inner = d[3], start = d[4], step = d[5];
  LR_CHECK(step >= 1 && (m == 0 || start + (m - 1) * step < n), Range, "slice_axis: range exceeds the axis");
  Storage* so = a.storage(0);
  Storage* sx = a.storage(2);
  LR_CHECK(so->dtype() == sx->dtype(), Type, "slice_axis: input and output dtypes differ");
  const int64_t es = static_cast<int64_t>(dtype_size(sx->dtype()));
  const int64_t oo = a.i64(1), ox = a.i64(3);
  LR_CHECK(oo >= 0 && oo + outer * m * inner <= so->numel() && ox >= 0 && ox + outer * n * inner <= sx->numel(), Range,
           "slice_axis: view exceeds its storage");
  cpu::slice_axis(static_cast<char*>(sx->data()) + ox * es, static_cast<char*>(so->data()) + oo * es, outer, n, m, inner, start, step, es);
  return info.Env().Undefined();
}

// slice_axis_backward(gx, gxOff, gy, gyOff, [outer, n, m, inner, start, step])
LRFACE_BINDING(slice_axis_backward) {
  Args a(info, "slice_axis_backward");
  auto d = dims(a, 4, 6);
  const int64_t outer = d[0], n = d[1], m = d[2], inner = d[3], start = d[4], step = d[5];
  LR_CHECK(step >= 1 && (m == 0 || start + (m - 1) * step < n), Range, "slice_axis_backward: range exceeds the axis");
  cpu::slice_axis_backward(a.f32(2, outer * m * inner), a.f32(0, outer * n * inner), outer, n, m, inner, start, step);
  return info.Env().Undefined();
}

// random_fill(out, oOff, kind, seedHigh, seedLow, offset, n, a, b): seed as two 32-bit halves
LRFACE_BINDING(random_fill) {
  Args a(info, "random_fill");
  const int64_t kind = a.i64(2);
  LR_CHECK(kind >= 0 && kind <= 3, Range, "random_fill: unknown kind");
  const uint64_t seed = (static_cast<uint64_t>(a.i64(3)) << 32) | static_cast<uint64_t>(a.i64(4) & 0xffffffff);
  const int64_t offset = a.i64(5), n = a.i64(6);
  LR_CHECK(n >= 0 && offset >= 0, Range, "random_fill: bad count");
  void* out = kind == 2 ? static_cast<void*>(a.i32(0, n)) : static_cast<void*>(a.f32(0, n));
  cpu::random_fill(static_cast<int>(kind), seed, static_cast<uint64_t>(offset), n, a.f64(7), a.f64(8), out);
  return info.Env().Undefined();
}

}  // namespace lrface

namespace lrface {

// concat_axis(out, oOff, [outer, total, inner], [n0, n1, ...], x0, x0Off, x1, x1Off, ...): any dtype
LRFACE_BINDING(concat_axis) {
  Args a(info, "concat_axis");
  auto d = a.ints(2);
  auto sizes = a.ints(3);
  LR_CHECK(d.size() == 3 && d[0] >= 0 && d[1] >= 0 && d[2] >= 0, Range, "concat_axis: bad sizes");
  LR_CHECK(a.size() == 4 + 2 * sizes.size(), Range, "concat_axis: one (storage, offset) pair per input expected");
  const int64_t outer = d[0], total = d[1], inner = d[2];
  Storage* so = a.storage(0);
  const int64_t es = static_cast<int64_t>(dtype_size(so->dtype()));
  const int64_t oo = a.i64(1);
  LR_CHECK(oo >= 0 && oo + outer * total * inner <= so->numel(), Range, "concat_axis: output view exceeds its storage");
  int64_t sum = 0;
  std::vector<const char*> srcs;
  for (size_t k = 0; k < sizes.size(); ++k) {
    LR_CHECK(sizes[k] >= 0, Range, "concat_axis: negative size");
    Storage* sx = a.storage(4 + 2 * k);
    LR_CHECK(sx->dtype() == so->dtype(), Type, "concat_axis: input ", k, " has another dtype");
    const int64_t ox = a.i64(5 + 2 * k);
    LR_CHECK(ox >= 0 && ox + outer * sizes[k] * inner <= sx->numel(), Range, "concat_axis: input ", k, " view exceeds its storage");
    srcs.push_back(static_cast<const char*>(sx->data()) + ox * es);
    sum += sizes[k];
  }
  LR_CHECK(sum == total, Range, "concat_axis: sizes do not add up to the output axis");
  char* dst = static_cast<char*>(so->data()) + oo * es;
  parallel_for(outer, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o) {
      int64_t at = 0;
      for (size_t k = 0; k < sizes.size(); ++k) {
        const size_t bytes = static_cast<size_t>(sizes[k] * inner * es);
        if (bytes) std::memcpy(dst + (o * total + at) * inner * es, srcs[k] + o * bytes, bytes);
        at += sizes[k];
      }
    }
  });
  return info.Env().Undefined();
}

}  // namespace lrface
