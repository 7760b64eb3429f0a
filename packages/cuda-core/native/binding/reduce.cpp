#include "../cpu/reduce.h"

#include <algorithm>
#include <cstring>

#include "binding.h"
#ifdef LRFACE_WITH_CUDA
#include "../cuda/kernels.h"
#endif

namespace lrface {

// reduce_axis(code, out, outOff, index|null, indexOff, x, xOff, outer, n, inner)
LRFACE_BINDING(reduce_axis) {
  auto code = a.i64(0);
  LR_CHECK(code >= 0 && code <= 3, Range, "reduce_axis: unknown op code ", code);
  int64_t outer = a.i64(7), n = a.i64(8), inner = a.i64(9);
  LR_CHECK(outer >= 0 && n >= 1 && inner >= 0, Range, "reduce_axis: cannot reduce an empty axis");
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(1); dev != Storage::kHost) {
    cuda::reduce_axis(dev, static_cast<int>(code), a.dev_f32(1, outer * inner, dev),
                      a.is_null(3) ? nullptr : a.dev_i32(3, outer * inner, dev), a.dev_f32(5, outer * n * inner, dev),
                      outer, n, inner);
    return;
  }
#endif
  float* out = a.f32(1, outer * inner);
  int32_t* index = a.is_null(3) ? nullptr : a.i32(3, outer * inner);
  const float* x = a.f32(5, outer * n * inner);
  cpu::reduce_axis(static_cast<cpu::ReduceOp>(code), out, index, x, outer, n, inner);
}

// channel_sum(out, outOff, x, xOff, n, c, hw): out[ch] = sum of x[i, ch, p] over i and p
LRFACE_BINDING(channel_sum) {
  const int64_t n = a.i64(4), c = a.i64(5), hw = a.i64(6);
  LR_CHECK(n >= 0 && c >= 0 && hw >= 0, Range, "channel_sum: bad sizes [", n, ", ", c, ", ", hw, "]");
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost)
    return cuda::channel_sum(dev, a.dev_f32(0, c, dev), a.dev_f32(2, n * c * hw, dev), n, c, hw);
#endif
  cpu::channel_sum(a.f32(0, c), a.f32(2, n * c * hw), n, c, hw);
}

// scatter_axis(gx, gxOff, gy, gyOff, index, indexOff, outer, n, inner)
LRFACE_BINDING(scatter_axis) {
  int64_t outer = a.i64(6), n = a.i64(7), inner = a.i64(8);
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost) {
    // The indices come from max/min on the same device; the kernel skips any out of range.
    cuda::scatter_axis(dev, a.dev_f32(0, outer * n * inner, dev), a.dev_f32(2, outer * inner, dev),
                       a.dev_i32(4, outer * inner, dev), outer, n, inner);
    return;
  }
#endif
  float* gx = a.f32(0, outer * n * inner);
  const float* gy = a.f32(2, outer * inner);
  const int32_t* index = a.i32(4, outer * inner);
  for (int64_t k = 0; k < outer * inner; ++k)
    LR_CHECK(index[k] >= 0 && index[k] < n, Range, "scatter_axis: index ", index[k], " out of [0, ", n, ")");
  cpu::scatter_axis(gx, gy, index, outer, n, inner);
}

// permute(out, outOff, x, xOff, shape, perm): any dtype, both of the same dtype
LRFACE_BINDING(permute) {
  auto shape = a.ints(4), perm = a.ints(5);
  LR_CHECK(shape.size() == perm.size(), Range, "permute: 'perm' must have the input's rank");
  std::vector<bool> seen(perm.size(), false);
  for (int64_t p : perm) {
    LR_CHECK(p >= 0 && p < static_cast<int64_t>(perm.size()) && !seen[p], Range, "permute: 'perm' is not a permutation");
    seen[p] = true;
  }
  Storage* so = a.storage(0);
  Storage* sx = a.storage(2);
  LR_CHECK(so->dtype() == sx->dtype(), Type, "permute: input and output dtypes differ");
  int64_t n = numel_of(shape);
  int64_t es = static_cast<int64_t>(dtype_size(sx->dtype()));
  int64_t oo = a.i64(1), ox = a.i64(3);
  LR_CHECK(oo >= 0 && oo + n <= so->numel() && ox >= 0 && ox + n <= sx->numel(), Range, "permute: view exceeds its storage");
  LR_CHECK(so->device() == sx->device(), State, "permute: input is on ", Args::device_name(sx->device()),
           " but the output is on ", Args::device_name(so->device()));
#ifdef LRFACE_WITH_CUDA
  if (!so->on_host()) {
    cuda::permute(so->device(), static_cast<char*>(so->data()) + oo * es, static_cast<char*>(sx->data()) + ox * es, shape,
                  perm, es);
    return;
  }
#endif
  cpu::permute(static_cast<char*>(so->data()) + oo * es, static_cast<char*>(sx->data()) + ox * es, shape, perm, es);
}

namespace {
template <typename From, typename To>
void convert(To* out, const From* in, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<To, uint8_t> && std::is_floating_point_v<From>) {
      // Images: round to nearest and saturate, as image libraries do.
      From v = in[i] != in[i] ? From(0) : in[i];
      out[i] = static_cast<uint8_t>(std::min<From>(255, std::max<From>(0, v + From(0.5))));
    } else if constexpr (std::is_same_v<To, uint8_t>) {
      out[i] = static_cast<uint8_t>(std::min<int64_t>(255, std::max<int64_t>(0, in[i])));
    } else if constexpr (std::is_same_v<To, int32_t> && std::is_floating_point_v<From>) {
      From v = in[i] != in[i] ? From(0) : in[i];
      out[i] = static_cast<int32_t>(std::min<From>(2147483647.0f, std::max<From>(-2147483648.0f, v)));
    } else {
      out[i] = static_cast<To>(in[i]);
    }
  }
}
template <typename From>
void convert_from(Storage* so, int64_t oo, const From* in, int64_t n) {
  switch (so->dtype()) {
    case DType::Float32: convert(static_cast<float*>(so->data()) + oo, in, n); break;
    case DType::Int32: convert(static_cast<int32_t*>(so->data()) + oo, in, n); break;
    case DType::Uint8: convert(static_cast<uint8_t*>(so->data()) + oo, in, n); break;
  }
}
}  // namespace

// cast(out, outOff, x, xOff, n): converts between any dtypes (float -> int truncates toward zero,
// float -> uint8 rounds and saturates)
LRFACE_BINDING(cast) {
  int64_t n = a.i64(4);
  Storage* so = a.storage(0);
  Storage* sx = a.storage(2);
  int64_t oo = a.i64(1), ox = a.i64(3);
  LR_CHECK(n >= 0 && oo >= 0 && oo + n <= so->numel() && ox >= 0 && ox + n <= sx->numel(), Range, "cast: view exceeds its storage");
  LR_CHECK(so->device() == sx->device(), State, "cast: input is on ", Args::device_name(sx->device()),
           " but the output is on ", Args::device_name(so->device()));
#ifdef LRFACE_WITH_CUDA
  if (!so->on_host()) {
    const int64_t eo = static_cast<int64_t>(dtype_size(so->dtype())), ex = static_cast<int64_t>(dtype_size(sx->dtype()));
    cuda::cast(so->device(), static_cast<int>(so->dtype()), static_cast<char*>(so->data()) + oo * eo,
               static_cast<int>(sx->dtype()), static_cast<const char*>(sx->data()) + ox * ex, n);
    return;
  }
#endif
  switch (sx->dtype()) {
    case DType::Float32: convert_from(so, oo, static_cast<const float*>(sx->data()) + ox, n); break;
    case DType::Int32: convert_from(so, oo, static_cast<const int32_t*>(sx->data()) + ox, n); break;
    case DType::Uint8: convert_from(so, oo, static_cast<const uint8_t*>(sx->data()) + ox, n); break;
  }
}

}  // namespace lrface
