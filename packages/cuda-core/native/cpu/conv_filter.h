#pragma once
#include <cstdint>

#include "conv.h"

namespace lrface::cpu {

// gw[o, c, i, j] = sum over images and output pixels of gy * the input pixel that tap (c, i, j)
// reads (overwrites gw), with output channels along the vector lanes and the taps broadcast
// straight from the input: no im2col. One group; any stride, dilation and padding. Runs on the
// thread pool.
void conv2d_filter_by_outputs(const ConvGeometry& g, const float* x, const float* gy, float* gw);

// The same kernel with the input channels along the lanes, for stride 1 and few output channels:
// the filter gradient of the input gradient's convolution (gy to x), its taps reversed.
void conv2d_filter_by_inputs(const ConvGeometry& g, const float* x, const float* gy, float* gw);

// Where it beats the direct sums (whose blocks of output channels run mostly empty): one
// group, stride 1, up to 8 outputs, inputs in whole vectors of 16 (SRCNN's 5x5 32->3 13 -> 8.5
// ms, VDSR's 3x3 64->1 0.97 -> 0.57 ms; 24 inputs, or 16 outputs, measured slower).
bool filter_by_inputs_wins(const ConvGeometry& g);

// Where it beats the GEMM over implicit im2col^T, whose packing of taps x pixels costs more than
// its products unless there are many output channels: one group, up to 128 outputs (measured
// 1.4-2x faster from 32 to 128 outputs, 2x slower at 256 and 512).
bool filter_by_outputs_wins(const ConvGeometry& g);

// How many filter gradients have run through conv2d_filter_by_outputs, and through
// conv2d_filter_by_inputs, since start-up (tests).
int64_t filter_by_outputs_count();
int64_t filter_by_inputs_count();

}  // namespace lrface::cpu
