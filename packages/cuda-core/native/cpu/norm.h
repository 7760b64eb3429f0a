#pragma once
#include <cstdint>

namespace lrface::cpu {

// Batch normalisation of x viewed as [n, c, hw] over axes 0 and 2.
// Training: normalises with the batch mean and biased variance and, when running_mean /
// running_var are given, updates them IN PLACE: r = (1 - momentum) * r + momentum * batch,
// with the unbiased variance (PyTorch). Eval: normalises with the running statistics.
// mean/invstd receive the statistics used (1/sqrt(var + eps)) for the backward pass.
// weight and bias may be null (1 and 0).
void batch_norm_forward(int64_t n, int64_t c, int64_t hw, const float* x, const float* weight, const float* bias,
                        float* running_mean, float* running_var, bool training, float momentum, float eps, float* mean,
                        float* invstd, float* y);
// gx, gw, gb (each may be null) from gy; mean/invstd as saved by the forward pass. Training
// differentiates through the batch statistics; eval treats them as constants.
void batch_norm_backward(int64_t n, int64_t c, int64_t hw, const float* x, const float* gy, const float* weight,
                         const float* mean, const float* invstd, bool training, float* gx, float* gw, float* gb);

}  // namespace lrface::cpu
