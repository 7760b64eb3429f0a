#include "join.h"

#include <algorithm>
#include <cstring>

#include "../core/thread_pool.h"

namespace lrface::cpu {

namespace {

// About 64 KiB of rows per task.
int64_t row_grain(int64_t row_bytes) { return std::max<int64_t>(1, 65536 / std::max<int64_t>(row_bytes, 1)); }

// Copies `rows` rows of `row` bytes each; single-element rows skip the memcpy call.
inline void copy_rows(char* dst, const char* src, int64_t rows, size_t row) {
  if (rows == 1 && row == 4)
    std::memcpy(dst, src, 4);
  else
    std::memcpy(dst, src, static_cast<size_t>(rows) * row);
}

}  // namespace

void concat_axis(void* out, const std::vector<const void*>& inputs, const std::vector<int64_t>& sizes, int64_t outer,
                 int64_t inner, int64_t es) {
  std::vector<int64_t> prefix(sizes.size() + 1, 0);
  for (size_t k = 0; k < sizes.size(); ++k) prefix[k + 1] = prefix[k] + sizes[k];
  const int64_t total = prefix.back();
  if (outer <= 0 || total <= 0 || inner <= 0) return;
  const size_t row = static_cast<size_t>(inner * es);
  char* dst = static_cast<char*>(out);
  // Parallel over output rows; each task copies maximal runs that come from one input.
  parallel_for(outer * total, row_grain(static_cast<int64_t>(row)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi;) {
      const int64_t o = r / total, j = r % total;
      // The input holding row j: the last k with prefix[k] <= j (empty inputs are skipped).
      const size_t k = static_cast<size_t>(std::upper_bound(prefix.begin(), prefix.end(), j) - prefix.begin() - 1);
      const int64_t run = std::min(prefix[k + 1] - j, hi - r);
      copy_rows(dst + r * row, static_cast<const char*>(inputs[k]) + (o * sizes[k] + j - prefix[k]) * row, run, row);
      r += run;
    }
  });
}

void slice_axis(const void* x, void* out, int64_t outer, int64_t n, int64_t m, int64_t inner, int64_t start, int64_t step,
                int64_t es) {
  if (outer <= 0 || m <= 0 || inner <= 0) return;
  const char* src = static_cast<const char*>(x);
  char* dst = static_cast<char*>(out);
  const size_t row = static_cast<size_t>(inner * es);
  parallel_for(outer * m, row_grain(static_cast<int64_t>(row)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi;) {
      const int64_t o = r / m, i = r % m;
      // With step 1 the rest of this block of m rows is contiguous in x.
      const int64_t run = step == 1 ? std::min(m - i, hi - r) : 1;
      copy_rows(dst + r * row, src + (o * n + start + i * step) * row, run, row);
      r += run;
    }
  });
}

void slice_axis_backward(const float* gy, float* gx, int64_t outer, int64_t n, int64_t m, int64_t inner, int64_t start,
                         int64_t step) {
  if (outer <= 0 || n <= 0 || inner <= 0) return;
  const int64_t last = m > 0 ? start + (m - 1) * step : -1;  // the last row of x that was taken
  const size_t row = static_cast<size_t>(inner) * sizeof(float);
  parallel_for(outer * n, row_grain(static_cast<int64_t>(row)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi;) {
      const int64_t o = r / n, p = r % n, d = p - start;
      int64_t run;
      if (d >= 0 && p <= last && d % step == 0) {
        run = step == 1 ? std::min(last + 1 - p, hi - r) : 1;
        copy_rows(reinterpret_cast<char*>(gx + r * inner), reinterpret_cast<const char*>(gy + (o * m + d / step) * inner), run,
                  row);
      } else {
        // Zeros up to the next row that was taken, or to the end of this block of n rows.
        const int64_t next = p > last ? n : d < 0 ? start : start + (d / step + 1) * step;
        run = std::min(next - p, hi - r);
        std::memset(gx + r * inner, 0, static_cast<size_t>(run) * row);
      }
      r += run;
    }
  });
}

}  // namespace lrface::cpu
