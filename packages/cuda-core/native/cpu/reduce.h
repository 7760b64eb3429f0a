#pragma once
#include <cstdint>
#include <vector>

namespace lrface::cpu {

// Codes shared with src/ops/reduce.ts.
enum class ReduceOp : int { Sum = 0, Mean = 1, Max = 2, Min = 3 };

// Reduces x viewed as [outer, n, inner] over the middle axis into out [outer, inner]. For Max and
// Min, `index` (may be null) receives the position along n of the chosen element (first on ties).
void reduce_axis(ReduceOp op, float* out, int32_t* index, const float* x, int64_t outer, int64_t n, int64_t inner);
// out[ch] = sum over images i and positions p of x[i, ch, p], x viewed as [n, c, hw]: the bias
// gradient of a convolution in one pass (double accumulation, the same order on every run).
void channel_sum(float* out, const float* x, int64_t n, int64_t c, int64_t hw);
// gx[outer, n, inner] = 0 except gx[o, index[o,i], i] = gy[o, i].
void scatter_axis(float* gx, const float* gy, const int32_t* index, int64_t outer, int64_t n, int64_t inner);
// out = x permuted: out.shape[k] = shape[perm[k]]. Works for any element size.
void permute(void* out, const void* x, const std::vector<int64_t>& shape, const std::vector<int64_t>& perm, int64_t elem_size);

}  // namespace lrface::cpu
