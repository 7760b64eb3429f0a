#pragma once
#include <cstdint>

namespace lrface::cpu {

// Batch normalisation over [n, c, hw]. Training: batch statistics into mean/invstd and the
// running statistics updated in place (unbiased variance); eval: running statistics.
void batch_norm_forward(int64_t n, int64_t c, int64_t hw, const float* x, const float* weight, const float* bias,
                        float* running_mean, float* running_var, bool training, float momentum, float eps, float* mean,
                        float* invstd, float* y);
// gx (may be null), gw and gb (may be null) from gy; mean/invstd as saved by the forward pass.
void batch_norm_backward(int64_t n, int64_t c, int64_t hw, const float* x, const float* gy, const float* weight,
                         const float* mean, const float* invstd, bool training, float* gx, float* gw, float* gb);

// Separable resampling of planes [planes, h, w] -> [planes, oh, ow]: out row i takes
// sum_t weight[i*taps + t] * in[index[i*taps + t]] along each axis. transpose applies W^T
// (the gradient): then x is [planes, oh, ow] and out [planes, h, w].
void resample2d(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, const int32_t* h_index,
                const float* h_weight, int64_t h_taps, const int32_t* w_index, const float* w_weight, int64_t w_taps,
                bool transpose, const float* x, float* out);

// Pads planes [planes, h, w] by (top, bottom, left, right). mode 0 constant, 1 reflect, 2 replicate.
void pad2d(int64_t planes, int64_t h, int64_t w, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int mode, float value,
           const float* x, float* out);
void pad2d_backward(int64_t planes, int64_t h, int64_t w, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int mode,
                    const float* gy, float* gx);

}  // namespace lrface::cpu
