#include "../cpu/join.h"

#include "binding.h"
#ifdef LRFACE_WITH_CUDA
#include "../cuda/kernels.h"
#endif

namespace lrface {

namespace {

constexpr int64_t kMaxCount = int64_t{1} << 53;

// The product of non-negative sizes, rejecting overflow.
int64_t checked_product(const Args& a, std::initializer_list<int64_t> sizes) {
  int64_t p = 1;
  for (int64_t v : sizes) {
    LR_CHECK(v >= 0 && v <= kMaxCount, Range, a.op(), ": bad size ", v);
    LR_CHECK(!__builtin_mul_overflow(p, v, &p) && p <= kMaxCount, Range, a.op(), ": sizes too large");
  }
  return p;
}

// Element pointer of a view of any dtype on `device`, bounds-checked against its storage.
char* any_view(const Args& a, size_t i, int64_t numel, DType dtype, int device = Storage::kHost) {
  Storage* s = a.storage(i);
  LR_CHECK(s->device() == device, State, a.op(), ": argument ", i, " is on ", Args::device_name(s->device()),
           " but the output is on ", Args::device_name(device), "; move every tensor of one op to one device");
  LR_CHECK(s->dtype() == dtype, Type, a.op(), ": argument ", i, " must be ", dtype_name(dtype), ", got ", dtype_name(s->dtype()));
  const int64_t off = a.i64(i + 1);
  LR_CHECK(off >= 0 && off <= s->numel() && numel <= s->numel() - off, Range, a.op(), ": argument ", i, " view [", off, ", ",
           off + numel, ") exceeds its storage of ", s->numel(), " elements");
  return static_cast<char*>(s->data()) + off * static_cast<int64_t>(dtype_size(dtype));
}

struct SliceDims {
  int64_t outer, n, m, inner, start, step;
};

// [outer, n, m, inner, start, step] with every taken row inside the axis.
SliceDims slice_dims(const Args& a, size_t i) {
  auto d = a.ints(i);
  LR_CHECK(d.size() == 6, Range, a.op(), ": argument ", i, " must hold [outer, n, m, inner, start, step]");
  SliceDims s{d[0], d[1], d[2], d[3], d[4], d[5]};
  checked_product(a, {s.outer, s.n, s.inner});
  checked_product(a, {s.outer, s.m, s.inner});
  LR_CHECK(s.step >= 1 && s.start >= 0 && (s.m == 0 || (s.start < s.n && (s.m - 1) <= (s.n - 1 - s.start) / s.step)), Range,
           a.op(), ": rows start ", s.start, " step ", s.step, " count ", s.m, " exceed an axis of ", s.n);
  return s;
}

}  // namespace

// concat_axis(out, outOff, [outer, total, inner], [n0, n1, ...], x0, x0Off, x1, x1Off, ...): any dtype, all the same
LRFACE_BINDING(concat_axis) {
  auto d = a.ints(2);
  auto sizes = a.ints(3);
  LR_CHECK(d.size() == 3, Range, "concat_axis: argument 2 must hold [outer, total, inner]");
  LR_CHECK(a.size() == 4 + 2 * sizes.size(), Range, "concat_axis: one (storage, offset) pair per size expected");
  const int64_t outer = d[0], total = d[1], inner = d[2];
  const DType dtype = a.storage(0)->dtype();
  const int device = a.device_of(0);
  char* out = any_view(a, 0, checked_product(a, {outer, total, inner}), dtype, device);
  int64_t sum = 0;
  std::vector<const void*> inputs;
  for (size_t k = 0; k < sizes.size(); ++k) {
    inputs.push_back(any_view(a, 4 + 2 * k, checked_product(a, {outer, sizes[k], inner}), dtype, device));
    sum += sizes[k];
  }
  LR_CHECK(sum == total, Range, "concat_axis: sizes add up to ", sum, ", not the output's ", total);
#ifdef LRFACE_WITH_CUDA
  if (device != Storage::kHost) {
    cuda::concat_axis(device, out, inputs, sizes, outer, inner, static_cast<int64_t>(dtype_size(dtype)));
    return;
  }
#endif
  cpu::concat_axis(out, inputs, sizes, outer, inner, static_cast<int64_t>(dtype_size(dtype)));
}

// slice_axis(out, outOff, x, xOff, [outer, n, m, inner, start, step]): any dtype, both the same
LRFACE_BINDING(slice_axis) {
  const SliceDims s = slice_dims(a, 4);
  const DType dtype = a.storage(2)->dtype();
  const int device = a.device_of(0);
  const char* x = any_view(a, 2, s.outer * s.n * s.inner, dtype, device);
  char* out = any_view(a, 0, s.outer * s.m * s.inner, dtype, device);
#ifdef LRFACE_WITH_CUDA
  if (device != Storage::kHost) {
    cuda::slice_axis(device, x, out, s.outer, s.n, s.m, s.inner, s.start, s.step, static_cast<int64_t>(dtype_size(dtype)));
    return;
  }
#endif
  cpu::slice_axis(x, out, s.outer, s.n, s.m, s.inner, s.start, s.step, static_cast<int64_t>(dtype_size(dtype)));
}

// slice_axis_backward(gx, gxOff, gy, gyOff, [outer, n, m, inner, start, step])
LRFACE_BINDING(slice_axis_backward) {
  const SliceDims s = slice_dims(a, 4);
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost) {
    cuda::slice_axis_backward(dev, a.dev_f32(2, s.outer * s.m * s.inner, dev), a.dev_f32(0, s.outer * s.n * s.inner, dev),
                              s.outer, s.n, s.m, s.inner, s.start, s.step);
    return;
  }
#endif
  cpu::slice_axis_backward(a.f32(2, s.outer * s.m * s.inner), a.f32(0, s.outer * s.n * s.inner), s.outer, s.n, s.m, s.inner,
                           s.start, s.step);
}

}  // namespace lrface
