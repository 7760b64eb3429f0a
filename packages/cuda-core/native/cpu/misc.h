#pragma once
#include <cstdint>

namespace lrface::cpu {

// Softmax (or log-softmax) over the middle axis of x viewed as [outer, n, inner].
void softmax(const float* x, float* y, int64_t outer, int64_t n, int64_t inner, bool log);
// gx from gy and the forward output y.
void softmax_backward(const float* y, const float* gy, float* gx, int64_t outer, int64_t n, int64_t inner, bool log);

// PReLU over x viewed as [outer, c, inner] with one slope per channel (c == 1 for a shared slope).
void prelu(const float* x, const float* w, float* y, int64_t outer, int64_t c, int64_t inner, bool shared);
void prelu_backward(const float* x, const float* w, const float* gy, float* gx, float* gw, int64_t outer, int64_t c,
                    int64_t inner, bool shared);

// Max-feature-map: x [outer, 2*half, inner] -> y [outer, half, inner], the max of the two halves.
void mfm(const float* x, float* y, int64_t outer, int64_t half, int64_t inner);
void mfm_backward(const float* x, const float* gy, float* gx, int64_t outer, int64_t half, int64_t inner);

// Strided copy along the middle axis, any element size: out[o, i, :] = x[o, start + i*step, :]
// (x has n rows, out has m). The backward (scatter) zero-fills gx first.
void slice_axis(const void* x, void* out, int64_t outer, int64_t n, int64_t m, int64_t inner, int64_t start, int64_t step,
                int64_t elem_size);
void slice_axis_backward(const float* gy, float* gx, int64_t outer, int64_t n, int64_t m, int64_t inner, int64_t start,
                         int64_t step);

// Counter-based random numbers: element i depends only on (seed, offset + i), never on threads.
// kind 0: uniform [a, b); 1: normal (mean a, std b); 2: integers in [a, b) (int32 out);
// 3: Bernoulli keep-mask with keep probability a, scaled by b (float out: 0 or b).
void random_fill(int kind, uint64_t seed, uint64_t offset, int64_t n, double a, double b, void* out);

}  // namespace lrface::cpu
