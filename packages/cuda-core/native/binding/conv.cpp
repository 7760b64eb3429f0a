#include "../cpu/conv.h"
#include "../cpu/conv_filter.h"
#include "../cpu/pointwise.h"
#include "../cpu/winograd.h"

#include <algorithm>
#include <initializer_list>

#include "binding.h"
#ifdef LRFACE_WITH_CUDA
#include "../cuda/libs/dispatch.h"
#endif

namespace lrface {

namespace {

// Product of sizes, failing instead of wrapping around (a wrapped count could pass the
// storage bounds checks while the kernels index far beyond them).
int64_t product(const char* op, std::initializer_list<int64_t> dims) {
  int64_t n = 1;
  for (int64_t d : dims) LR_CHECK(d >= 0 && !__builtin_mul_overflow(n, d, &n), Range, op, ": sizes overflow");
  return n;
}

// geom = [N, C, H, W, O, kh, kw, sh, sw, pt, pl, dh, dw, groups, outH, outW]
cpu::ConvGeometry read_geometry(const Args& a, size_t i) {
  auto v = a.ints(i);
  LR_CHECK(v.size() == 16, Range, a.op(), ": geometry must have 16 entries");
  cpu::ConvGeometry g{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]};
  LR_CHECK(g.n >= 0 && g.c >= 1 && g.h >= 1 && g.w >= 1 && g.o >= 1 && g.kh >= 1 && g.kw >= 1, Range, a.op(),
           ": bad convolution sizes");
  LR_CHECK(g.sh >= 1 && g.sw >= 1 && g.dh >= 1 && g.dw >= 1 && g.groups >= 1, Range, a.op(), ": bad stride, dilation or groups");
  LR_CHECK(g.pt >= 0 && g.pl >= 0, Range, a.op(), ": negative padding");
  LR_CHECK(g.c % g.groups == 0 && g.o % g.groups == 0, Range, a.op(), ": channels not divisible by groups");
  LR_CHECK(g.out_h >= 1 && g.out_w >= 1, Range, a.op(), ": empty output");
  for (int64_t e : v) LR_CHECK(e <= (int64_t(1) << 31), Range, a.op(), ": geometry entry too large");
  // The kernels' padded copies span (out - 1) * stride + (k - 1) * dilation + 1 rows/columns.
  const int64_t rows = (g.out_h - 1) * g.sh + (g.kh - 1) * g.dh + 1 + g.pt;
  const int64_t cols = (g.out_w - 1) * g.sw + (g.kw - 1) * g.dw + 1 + g.pl;
  const int64_t images = std::max<int64_t>(g.n, 1);
  product(a.op(), {images, g.c, g.o, rows, cols});
  product(a.op(), {images, g.c, g.o, g.h, g.w});
  product(a.op(), {images, g.c, g.o, g.kh, g.kw, g.out_h, g.out_w});
  return g;
}

int64_t weight_numel(const cpu::ConvGeometry& g) { return g.o * (g.c / g.groups) * g.kh * g.kw; }
int64_t input_numel(const cpu::ConvGeometry& g) { return g.n * g.c * g.h * g.w; }
int64_t output_numel(const cpu::ConvGeometry& g) { return g.n * g.o * g.out_h * g.out_w; }

}  // namespace

// conv2d_forward(out, oOff, x, xOff, w, wOff, bias|null, bOff, geom[, relu[, residual|null, rOff]]):
// residual (the output's shape) is added before the ReLU; host tensors only (on a device the
// op layer adds it with its own kernel).
LRFACE_BINDING(conv2d_forward) {
  auto g = read_geometry(a, 8);
  const bool relu = a.size() > 9 && a.boolean(9);
  const bool with_residual = a.size() > 10 && !a.is_null(10);
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost) {
    LR_CHECK(!with_residual, Type, a.op(), ": a residual is added on the host only");
    return cuda::conv2d_forward(dev, g, a.dev_f32(2, input_numel(g), dev), a.dev_f32(4, weight_numel(g), dev),
                                a.is_null(6) ? nullptr : a.dev_f32(6, g.o, dev), a.dev_f32(0, output_numel(g), dev),
                                relu);
  }
#endif
  float* out = a.f32(0, output_numel(g));
  const float* x = a.f32(2, input_numel(g));
  const float* w = a.f32(4, weight_numel(g));
  const float* bias = a.is_null(6) ? nullptr : a.f32(6, g.o);
  const float* residual = with_residual ? a.f32(10, output_numel(g)) : nullptr;
  cpu::conv2d_forward(g, x, w, bias, out, relu, residual);
}

// conv2d_backward_data(gx, gxOff, gy, gyOff, w, wOff, bias|null, bOff, geom): bias has C entries
LRFACE_BINDING(conv2d_backward_data) {
  auto g = read_geometry(a, 8);
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost)
    return cuda::conv2d_backward_data(dev, g, a.dev_f32(2, output_numel(g), dev), a.dev_f32(4, weight_numel(g), dev),
                                      a.is_null(6) ? nullptr : a.dev_f32(6, g.c, dev),
                                      a.dev_f32(0, input_numel(g), dev));
#endif
  float* gx = a.f32(0, input_numel(g));
  const float* gy = a.f32(2, output_numel(g));
  const float* w = a.f32(4, weight_numel(g));
  const float* bias = a.is_null(6) ? nullptr : a.f32(6, g.c);
  cpu::conv2d_backward_data(g, gy, w, bias, gx);
}

// conv2d_backward_filter(gw, gwOff, x, xOff, gy, gyOff, geom)
LRFACE_BINDING(conv2d_backward_filter) {
  auto g = read_geometry(a, 6);
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost)
    return cuda::conv2d_backward_filter(dev, g, a.dev_f32(2, input_numel(g), dev), a.dev_f32(4, output_numel(g), dev),
                                        a.dev_f32(0, weight_numel(g), dev));
#endif
  float* gw = a.f32(0, weight_numel(g));
  const float* x = a.f32(2, input_numel(g));
  const float* gy = a.f32(4, output_numel(g));
  cpu::conv2d_backward_filter(g, x, gy, gw);
}

// winograd_forward_count() -> how many convolutions ran the Winograd kernel so far (tests).
LRFACE_COUNTER_QUERY(winograd_forward_count)

// winograd_backward_filter_count() -> how many filter gradients ran the Winograd kernel so far (tests).
LRFACE_COUNTER_QUERY(winograd_backward_filter_count)

// filter_by_outputs_count() -> how many filter gradients ran with output channels along the
// vector lanes so far (tests).
LRFACE_COUNTER_QUERY(filter_by_outputs_count)

// filter_by_inputs_count() -> how many filter gradients ran with input channels along the
// vector lanes so far (tests).
LRFACE_COUNTER_QUERY(filter_by_inputs_count)

// batched_forward_count() -> how many convolutions ran as one GEMM over the batch's small
// planes so far (tests).
LRFACE_COUNTER_QUERY(batched_forward_count)

// pointwise_forward_count() -> how many convolutions ran the 1x1 kernel so far (tests).
LRFACE_COUNTER_QUERY(pointwise_forward_count)

}  // namespace lrface
