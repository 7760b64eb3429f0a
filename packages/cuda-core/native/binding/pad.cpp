#include "../cpu/pad.h"

#include <cstdint>
#include <limits>

#include "binding.h"
#ifdef LRFACE_WITH_CUDA
#include "../cuda/kernels.h"
#endif
#include "sizes.h"

namespace lrface {

namespace {
struct PadArgs {
  int64_t planes, h, w, pt, pb, pl, pr, oh, ow;
  cpu::PadMode mode;
};

// [planes, h, w, pt, pb, pl, pr] and the mode code at i + 1.
PadArgs read_pad(const Args& a, size_t i) {
  auto d = a.ints(i);
  LR_CHECK(d.size() == 7, Range, a.op(), ": bad sizes");
  const int64_t mode = a.i64(i + 1);
  LR_CHECK(mode >= 0 && mode <= 2, Range, a.op(), ": bad mode ", mode);
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  for (int64_t v : d) LR_CHECK(v >= -kMax && v <= kMax, Range, a.op(), ": size out of range");
  PadArgs p{d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[1] + d[3] + d[4], d[2] + d[5] + d[6], static_cast<cpu::PadMode>(mode)};
  LR_CHECK(p.planes >= 0 && p.h >= 0 && p.w >= 0 && p.oh >= 0 && p.ow >= 0, Range, a.op(), ": bad sizes");
  if (p.mode == cpu::PadMode::Constant) {
    // Negative pads crop, but never past the far edge.
    LR_CHECK(p.pt >= -p.h && p.pb >= -p.h && p.pl >= -p.w && p.pr >= -p.w, Range, a.op(), ": crop larger than the input");
  } else {
    LR_CHECK(p.h >= 1 && p.w >= 1 && p.pt >= 0 && p.pb >= 0 && p.pl >= 0 && p.pr >= 0, Range, a.op(), ": bad sizes");
    LR_CHECK(p.mode != cpu::PadMode::Reflect || (p.pt < p.h && p.pb < p.h && p.pl < p.w && p.pr < p.w), Range, a.op(),
             ": reflect padding must be smaller than the input");
  }
  checked_product(a.op(), {p.planes, p.h, p.w});
  checked_product(a.op(), {p.planes, p.oh, p.ow});
  return p;
}
}  // namespace

// pad2d(out, oOff, x, xOff, [planes, h, w, pt, pb, pl, pr], mode, value)
LRFACE_BINDING(pad2d) {
  const PadArgs p = read_pad(a, 4);
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost) {
    cuda::pad2d(dev, p.planes, p.h, p.w, p.pt, p.pb, p.pl, p.pr, static_cast<int>(p.mode), static_cast<float>(a.f64(6)),
                a.dev_f32(2, p.planes * p.h * p.w, dev), a.dev_f32(0, p.planes * p.oh * p.ow, dev));
    return;
  }
#endif
  cpu::pad2d(p.planes, p.h, p.w, p.pt, p.pb, p.pl, p.pr, p.mode, static_cast<float>(a.f64(6)),
             a.f32(2, p.planes * p.h * p.w), a.f32(0, p.planes * p.oh * p.ow));
}

// pad2d_backward(gx, gxOff, gy, gyOff, [planes, h, w, pt, pb, pl, pr], mode)
LRFACE_BINDING(pad2d_backward) {
  const PadArgs p = read_pad(a, 4);
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost) {
    cuda::pad2d_backward(dev, p.planes, p.h, p.w, p.pt, p.pb, p.pl, p.pr, static_cast<int>(p.mode),
                         a.dev_f32(2, p.planes * p.oh * p.ow, dev), a.dev_f32(0, p.planes * p.h * p.w, dev));
    return;
  }
#endif
  cpu::pad2d_backward(p.planes, p.h, p.w, p.pt, p.pb, p.pl, p.pr, p.mode, a.f32(2, p.planes * p.oh * p.ow),
                      a.f32(0, p.planes * p.h * p.w));
}

}  // namespace lrface
