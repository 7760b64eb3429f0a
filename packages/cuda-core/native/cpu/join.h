#pragma once
#include <cstdint>
#include <vector>

namespace lrface::cpu {

// Joining and cutting along the middle axis of [outer, n, inner] views, for any element size.

// out [outer, sum(sizes), inner] = inputs[k] ([outer, sizes[k], inner]) one after another.
void concat_axis(void* out, const std::vector<const void*>& inputs, const std::vector<int64_t>& sizes, int64_t outer,
                 int64_t inner, int64_t elem_size);

// out[o, i, :] = x[o, start + i*step, :] with x [outer, n, inner] and out [outer, m, inner].
void slice_axis(const void* x, void* out, int64_t outer, int64_t n, int64_t m, int64_t inner, int64_t start, int64_t step,
                int64_t elem_size);

// The adjoint of slice_axis: gx [outer, n, inner] holds gy's rows at start + i*step and zeros elsewhere.
void slice_axis_backward(const float* gy, float* gx, int64_t outer, int64_t n, int64_t m, int64_t inner, int64_t start,
                         int64_t step);

}  // namespace lrface::cpu
