#include "../cpu/resize.h"

#include <cstdint>
#include <limits>
#include <vector>

#include "binding.h"
#ifdef LRFACE_WITH_CUDA
#include "../cuda/kernels.h"
#endif
#include "sizes.h"

namespace lrface {

namespace {
// One axis's table: `size` outputs of `taps` (index, weight) pairs, indices in [0, in).
void read_table(const Args& a, size_t i, int64_t size, int64_t taps, int64_t in, std::vector<int32_t>& index,
                std::vector<float>& weight) {
  auto idx = a.ints(i);
  auto wgt = a.doubles(i + 1);
  LR_CHECK(static_cast<int64_t>(idx.size()) == size * taps && static_cast<int64_t>(wgt.size()) == size * taps, Range,
           a.op(), ": weight table does not match the sizes");
  index.resize(idx.size());
  weight.resize(wgt.size());
  for (size_t k = 0; k < idx.size(); ++k) {
    LR_CHECK(idx[k] >= 0 && idx[k] < in, Range, a.op(), ": table index ", idx[k], " out of range [0, ", in, ")");
    index[k] = static_cast<int32_t>(idx[k]);
    weight[k] = static_cast<float>(wgt[k]);
  }
}
}  // namespace

// resample2d(out, oOff, x, xOff, [planes, h, w, oh, ow, hTaps, wTaps], hIndex, hWeight, wIndex, wWeight)
LRFACE_BINDING(resample2d) {
  auto d = a.ints(4);
  LR_CHECK(d.size() == 7, Range, "resample2d: bad sizes");
  const int64_t planes = d[0], h = d[1], w = d[2], oh = d[3], ow = d[4], ht = d[5], wt = d[6];
  LR_CHECK(planes >= 0 && h >= 1 && w >= 1 && oh >= 1 && ow >= 1 && ht >= 1 && wt >= 1 &&
               h <= std::numeric_limits<int32_t>::max() && w <= std::numeric_limits<int32_t>::max(),
           Range, "resample2d: bad sizes");
  const int64_t in_numel = checked_product("resample2d", {planes, h, w});
  const int64_t out_numel = checked_product("resample2d", {planes, oh, ow});
  checked_product("resample2d", {oh, ht});
  checked_product("resample2d", {ow, wt});
  std::vector<int32_t> h_index, w_index;
  std::vector<float> h_weight, w_weight;
  read_table(a, 5, oh, ht, h, h_index, h_weight);
  read_table(a, 7, ow, wt, w, w_index, w_weight);
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost) {
    cuda::resample2d(dev, planes, h, w, oh, ow, h_index.data(), h_weight.data(), ht, w_index.data(), w_weight.data(), wt,
                     a.dev_f32(2, in_numel, dev), a.dev_f32(0, out_numel, dev));
    return;
  }
#endif
  const float* x = a.f32(2, in_numel);
  float* out = a.f32(0, out_numel);
  cpu::resample2d(planes, h, w, oh, ow, h_index.data(), h_weight.data(), ht, w_index.data(), w_weight.data(), wt, x, out);
}

// pixel_shuffle(out, oOff, x, xOff, [n, c, h, w, r], inverse): sizes of the unshuffled side are
// [n, c*r*r, h, w], of the shuffled side [n, c, h*r, w*r].
LRFACE_BINDING(pixel_shuffle) {
  auto d = a.ints(4);
  LR_CHECK(d.size() == 5 && d[0] >= 0 && d[1] >= 0 && d[2] >= 0 && d[3] >= 0 && d[4] >= 1, Range, "pixel_shuffle: bad sizes");
  const int64_t numel = checked_product("pixel_shuffle", {d[0], d[1], d[2], d[3], d[4], d[4]});
  const bool inverse = a.boolean(5);
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost) {
    cuda::pixel_shuffle(dev, d[0], d[1], d[2], d[3], d[4], inverse, a.dev_f32(2, numel, dev), a.dev_f32(0, numel, dev));
    return;
  }
#endif
  cpu::pixel_shuffle(d[0], d[1], d[2], d[3], d[4], inverse, a.f32(2, numel), a.f32(0, numel));
}

}  // namespace lrface
