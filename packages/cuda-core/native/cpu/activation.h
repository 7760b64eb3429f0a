#pragma once
#include <cstdint>

#include "random.h"

namespace lrface::cpu {

// The axis ops below view x as [outer, n, inner] and work along n (the middle axis).

// Softmax (or log-softmax) along n, shifted by the lane maximum for stability.
void softmax(const float* x, float* y, int64_t outer, int64_t n, int64_t inner, bool log);
// gx from gy and the forward output y: y*(gy - sum(gy*y)), or gy - exp(y)*sum(gy) for log-softmax.
void softmax_backward(const float* y, const float* gy, float* gx, int64_t outer, int64_t n, int64_t inner, bool log);

// y = x / max(||x||_2, eps) along n.
void l2_normalize(const float* x, float* y, int64_t outer, int64_t n, int64_t inner, float eps);
// gx = gy/N - x*sum(gy*x)/N^3 where N = ||x|| >= eps, else gy/eps (the clamp passes no gradient).
void l2_normalize_backward(const float* x, const float* gy, float* gx, int64_t outer, int64_t n, int64_t inner, float eps);

// PReLU over x viewed as [outer, c, inner]: slope w[ch] per channel, or w[0] for all when shared.
void prelu(const float* x, const float* w, float* y, int64_t outer, int64_t c, int64_t inner, bool shared);
// Either gradient may be null (not needed). gw sums in double in a fixed order (thread-count independent).
void prelu_backward(const float* x, const float* w, const float* gy, float* gx, float* gw, int64_t outer, int64_t c,
                    int64_t inner, bool shared);

// Max-feature-map: x [outer, 2*half, inner] -> y [outer, half, inner], the elementwise max of the
// two halves (NaN propagates, as torch.max(a, b)).
void mfm(const float* x, float* y, int64_t outer, int64_t half, int64_t inner);
// The gradient goes to the larger half; on a tie it is split evenly, as torch.max(a, b) does.
void mfm_backward(const float* x, const float* gy, float* gx, int64_t outer, int64_t half, int64_t inner);

// Inverted dropout: y[i] = x[i] * scale where element i is kept, else 0. Element i is kept when
// word offset + i of `stream` of `seed` (random.h), as a uniform number in [0, 1), is >= p. Applied to the output gradient
// with the same arguments it is its own backward.
void dropout(const float* x, float* y, int64_t n, double p, float scale, uint64_t seed, RandomStream stream, uint64_t offset);

}  // namespace lrface::cpu
