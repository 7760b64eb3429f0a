#include "random.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "../core/thread_pool.h"

namespace lrface::cpu {

namespace {
constexpr RandomStream kGen = RandomStream::Generator;
}  // namespace

void random_uniform(float* out, int64_t n, uint64_t seed, uint64_t offset, double low, double high) {
  const float lo_f = static_cast<float>(low), hi_f = static_cast<float>(high);
  const float below_high = std::nextafter(hi_f, -INFINITY);
  const double span = high - low;
  for_random_blocks(n, 4, seed, kGen, offset, [&](const Block128& b, int64_t first, int64_t count) {
    for (int64_t k = 0; k < count; ++k) {
      float v = static_cast<float>(low + span * unit32(b.w[k]));
      // Rounding to float can reach `high` (or step under `low`); keep the half-open range.
      if (span > 0 && v >= hi_f) v = below_high;
      out[first + k] = v < lo_f ? lo_f : v;
    }
  });
}

void random_normal(float* out, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) {
  for_random_blocks(n, 2, seed, kGen, offset, [&](const Block128& b, int64_t first, int64_t count) {
    const double u1 = 1.0 - unit64(join64(b.w[0], b.w[1]));  // (0, 1]: the log stays finite
    const double u2 = unit64(join64(b.w[2], b.w[3]));
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = 6.283185307179586 * u2;
    out[first] = static_cast<float>(mean + std * r * std::cos(theta));
    if (count > 1) out[first + 1] = static_cast<float>(mean + std * r * std::sin(theta));
  });
}

void random_int(int32_t* out, int64_t n, uint64_t seed, uint64_t offset, int64_t low, int64_t high) {
  const unsigned __int128 span = static_cast<unsigned __int128>(high - low);
  for_random_blocks(n, 2, seed, kGen, offset, [&](const Block128& b, int64_t first, int64_t count) {
    for (int64_t k = 0; k < count; ++k) {
      const uint64_t bits = join64(b.w[2 * k], b.w[2 * k + 1]);
      out[first + k] = static_cast<int32_t>(low + static_cast<int64_t>((bits * span) >> 64));
    }
  });
}

void random_permutation(int32_t* out, int64_t n, uint64_t seed, uint64_t offset) {
  using Entry = std::pair<uint64_t, int32_t>;
  std::vector<Entry> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
  for_random_blocks(n, 2, seed, kGen, offset, [&](const Block128& r, int64_t first, int64_t count) {
    for (int64_t k = 0; k < count; ++k) a[first + k] = {join64(r.w[2 * k], r.w[2 * k + 1]), static_cast<int32_t>(first + k)};
  });
  // Merge sort over fixed-size runs. (key, index) pairs are distinct, so the sorted order is
  // unique and does not depend on how the runs are shared among threads.
  const int64_t run = 1 << 14;
  const int64_t runs = (n + run - 1) / run;
  parallel_for(runs, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) std::sort(a.begin() + r * run, a.begin() + std::min(n, (r + 1) * run));
  });
  Entry* src = a.data();
  Entry* dst = b.data();
  for (int64_t width = run; width < n; width *= 2) {
    const int64_t pairs = (n + 2 * width - 1) / (2 * width);
    parallel_for(pairs, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        const int64_t s = p * 2 * width, m = std::min(n, s + width), e = std::min(n, s + 2 * width);
        std::merge(src + s, src + m, src + m, src + e, dst + s);
      }
    });
    std::swap(src, dst);
  }
  parallel_for(n, 1 << 14, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = src[i].second;
  });
}

}  // namespace lrface::cpu
