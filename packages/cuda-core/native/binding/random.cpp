#include "../cpu/random.h"

#include <cmath>

#include "binding.h"
#ifdef LRFACE_WITH_CUDA
#include "../cuda/kernels.h"
#endif

namespace lrface {

namespace {

constexpr double kTwo53 = 9007199254740992.0;

// An integer in [0, 2^53] passed as a JS number (seeds, counts, stream offsets).
uint64_t u53(const Args& a, size_t i) {
  const double v = a.f64(i);
  LR_CHECK(v >= 0 && v <= kTwo53 && std::floor(v) == v, Range, a.op(), ": argument ", i, " must be an integer in [0, 2^53]");
  return static_cast<uint64_t>(v);
}

// The (out, n, seed, offset) head shared by the generator kernels; a draw of n values takes
// `words` 32-bit words each and starts at a multiple of 4 (see cpu/random.h).
struct Draw {
  int64_t n;
  uint64_t seed, offset;
};
Draw draw_args(const Args& a, uint64_t words) {
  Draw d{static_cast<int64_t>(u53(a, 2)), u53(a, 3), u53(a, 4)};
  LR_CHECK(d.offset % 4 == 0, Range, a.op(), ": the stream offset must be a multiple of 4, got ", d.offset);
  LR_CHECK(static_cast<uint64_t>(d.n) <= (static_cast<uint64_t>(kTwo53) - d.offset) / words, Range, a.op(),
           ": the generator's counter would pass 2^53");
  return d;
}

}  // namespace

// random_uniform(out, outOff, n, seed, offset, low, high): offset counts 32-bit words
LRFACE_BINDING(random_uniform) {
  const Draw d = draw_args(a, 1);
  const double low = a.f64(5), high = a.f64(6);
  LR_CHECK(std::isfinite(low) && std::isfinite(high) && low <= high, Range, "random_uniform: need finite low <= high");
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost)
    return cuda::random_uniform(dev, a.dev_f32(0, d.n, dev), d.n, d.seed, d.offset, low, high);
#endif
  cpu::random_uniform(a.f32(0, d.n), d.n, d.seed, d.offset, low, high);
}

// random_normal(out, outOff, n, seed, offset, mean, std)
LRFACE_BINDING(random_normal) {
  const Draw d = draw_args(a, 2);
  const double mean = a.f64(5), std = a.f64(6);
  LR_CHECK(std::isfinite(mean) && std::isfinite(std) && std >= 0, Range, "random_normal: need a finite mean and std >= 0");
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost)
    return cuda::random_normal(dev, a.dev_f32(0, d.n, dev), d.n, d.seed, d.offset, mean, std);
#endif
  cpu::random_normal(a.f32(0, d.n), d.n, d.seed, d.offset, mean, std);
}

// random_int(out, outOff, n, seed, offset, low, high): int32 out
LRFACE_BINDING(random_int) {
  const Draw d = draw_args(a, 2);
  const int64_t low = a.i64(5), high = a.i64(6);
  LR_CHECK(low >= INT32_MIN && high <= int64_t{INT32_MAX} + 1 && low < high, Range,
           "random_int: need low < high within the int32 range");
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost)
    return cuda::random_int(dev, a.dev_i32(0, d.n, dev), d.n, d.seed, d.offset, low, high);
#endif
  cpu::random_int(a.i32(0, d.n), d.n, d.seed, d.offset, low, high);
}

// random_permutation(out, outOff, n, seed, offset): int32 out
LRFACE_BINDING(random_permutation) {
  const Draw d = draw_args(a, 2);
  LR_CHECK(d.n <= INT32_MAX, Range, "random_permutation: n must fit int32");
  cpu::random_permutation(a.i32(0, d.n), d.n, d.seed, d.offset);
}

}  // namespace lrface
