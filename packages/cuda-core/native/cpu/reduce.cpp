#include "reduce.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "../core/thread_pool.h"

namespace lrface::cpu {

void reduce_axis(ReduceOp op, float* out, int32_t* index, const float* x, int64_t outer, int64_t n, int64_t inner) {
  parallel_for(outer * inner, std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      const int64_t o = k / inner, i = k % inner;
      const float* p = x + o * n * inner + i;
      if (op == ReduceOp::Sum || op == ReduceOp::Mean) {
        double acc = 0;  // double accumulation keeps long sums accurate
        for (int64_t j = 0; j < n; ++j) acc += p[j * inner];
        out[k] = static_cast<float>(op == ReduceOp::Mean ? acc / static_cast<double>(n) : acc);
      } else {
        const bool is_max = op == ReduceOp::Max;
        float best = p[0];
        int32_t best_j = 0;
        for (int64_t j = 1; j < n; ++j) {
          float v = p[j * inner];
          // NaN wins, like PyTorch, so a NaN is never hidden by a reduction.
          if (best != best) break;
          if (v != v || (is_max ? v > best : v < best)) {
            best = v;
            best_j = static_cast<int32_t>(j);
          }
        }
        out[k] = best;
        if (index) index[k] = best_j;
      }
    }
  });
}

void channel_sum(float* out, const float* x, int64_t n, int64_t c, int64_t hw) {
  // One partial sum per (image, channel) plane, in parallel, then per channel over the images
  // in order. Four accumulators give the additions room to overlap.
  std::vector<double> plane_sum(static_cast<size_t>(n * c));
  parallel_for(n * c, std::max<int64_t>(1, 16384 / std::max<int64_t>(hw, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      const float* p = x + k * hw;
      double acc[4] = {0, 0, 0, 0};
      int64_t j = 0;
      for (; j + 4 <= hw; j += 4)
        for (int u = 0; u < 4; ++u) acc[u] += p[j + u];
      for (; j < hw; ++j) acc[0] += p[j];
      plane_sum[k] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
  });
  for (int64_t ch = 0; ch < c; ++ch) {
    double total = 0;
    for (int64_t i = 0; i < n; ++i) total += plane_sum[i * c + ch];
    out[ch] = static_cast<float>(total);
  }
}

void scatter_axis(float* gx, const float* gy, const int32_t* index, int64_t outer, int64_t n, int64_t inner) {
  std::memset(gx, 0, sizeof(float) * outer * n * inner);
  parallel_for(outer * inner, 4096, [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      const int64_t o = k / inner, i = k % inner;
      gx[(o * n + index[k]) * inner + i] = gy[k];
    }
  });
}

void permute(void* out, const void* x, const std::vector<int64_t>& shape, const std::vector<int64_t>& perm, int64_t es) {
  const size_t rank = shape.size();
  std::vector<int64_t> in_strides(rank, 1);
  for (size_t k = rank; k-- > 1;) in_strides[k - 1] = in_strides[k] * shape[k];
  std::vector<int64_t> out_shape(rank), src_stride(rank);
  int64_t total = 1;
  for (size_t k = 0; k < rank; ++k) {
    out_shape[k] = shape[perm[k]];
    src_stride[k] = in_strides[perm[k]];
    total *= out_shape[k];
  }
  if (total == 0) return;
  const int64_t inner = rank == 0 ? 1 : out_shape[rank - 1];
  const int64_t inner_stride = rank == 0 ? 1 : src_stride[rank - 1];
  const int64_t rows = total / inner;
  const char* src = static_cast<const char*>(x);
  char* dst = static_cast<char*>(out);
  parallel_for(rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(inner, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      int64_t rem = row, off = 0;
      for (size_t k = rank - 1; k-- > 0;) {
        off += (rem % out_shape[k]) * src_stride[k];
        rem /= out_shape[k];
      }
      char* d = dst + row * inner * es;
      if (es == 4) {
        const uint32_t* s = reinterpret_cast<const uint32_t*>(src) + off;
        uint32_t* dd = reinterpret_cast<uint32_t*>(d);
        for (int64_t j = 0; j < inner; ++j) dd[j] = s[j * inner_stride];
      } else {
        for (int64_t j = 0; j < inner; ++j) std::memcpy(d + j * es, src + (off + j * inner_stride) * es, es);
      }
    }
  });
}

}  // namespace lrface::cpu
