#pragma once
#include <cstdint>

#include "conv.h"

namespace lrface::cpu {

// Winograd forward convolution: F(4x4, 3x3), each 4x4 output tile from a 6x6 input tile with 36
// multiplies per (input, output channel) pair instead of 144, and F(4x4, 5x5), from an 8x8 input
// tile with 64 instead of 400.
// Applies to 3x3 and 5x5 kernels, stride 1, dilation 1, one group, any padding (negative too).
bool winograd_applies(const ConvGeometry& g);

// out[n,o,oh,ow] = bias[o] + sum x * w (w is [o, c, k, k]), plus residual[n,o,oh,ow] when given,
// then max(., 0) when relu (NaN -> 0). Requires winograd_applies(g). Runs on the thread pool.
void winograd_conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* out,
                             bool relu, const float* residual = nullptr);

// How many convolutions have run through winograd_conv2d_forward since start-up: lets tests
// confirm which kernel a shape reached.
int64_t winograd_forward_count();

// Whether winograd_conv2d_backward_filter applies: 3x3 kernels only (else as winograd_applies).
bool winograd_filter_applies(const ConvGeometry& g);

// gw[o,c,i,j] = sum over images and outputs of gy[n,o,oh,ow] * x[n,c,oh+i-pt,ow+j-pl] (overwrites
// gw), by the adjoint of the same F(4x4, 3x3) transforms. Requires winograd_filter_applies(g).
// Runs on the thread pool.
void winograd_conv2d_backward_filter(const ConvGeometry& g, const float* x, const float* gy, float* gw);

// How many filter gradients have run through winograd_conv2d_backward_filter since start-up.
int64_t winograd_backward_filter_count();

}  // namespace lrface::cpu
