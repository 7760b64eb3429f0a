#pragma once
#include <cstdint>

#include "conv.h"

namespace lrface::cpu {

// 1x1 convolutions (stride 1, no padding, one group): per image, a GEMM
// out [O x pixels] = W [O x C] @ x [C x pixels] whose B operand is the NCHW input as it lies.
bool pointwise_applies(const ConvGeometry& g);

// out[n,o,p] = bias[o] + sum_c w[o,c] x[n,c,p], then max(., 0) when relu (NaN -> 0).
// Requires pointwise_applies(g). Runs on the thread pool.
void pointwise_conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* out,
                              bool relu);

// How many convolutions have run through pointwise_conv2d_forward since start-up (tests).
int64_t pointwise_forward_count();

}  // namespace lrface::cpu
