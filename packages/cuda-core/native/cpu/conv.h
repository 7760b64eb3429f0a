#pragma once
#include <cstdint>

namespace lrface::cpu {

// Geometry of a 2-D convolution; bottom/right padding is implied by out_h/out_w.
struct ConvGeometry {
  int64_t n, c, h, w;       // input
  int64_t o, kh, kw;        // output channels, kernel
  int64_t sh, sw, pt, pl;   // stride, top/left padding
  int64_t dh, dw, groups;   // dilation, groups
  int64_t out_h, out_w;
};

// out[n,o,oh,ow] = bias[o] + sum x * w, w is [o, c/groups, kh, kw].
// GEMM with the im2col matrix packed straight from the image (never stored); a direct
// kernel for depthwise convolutions (one input channel per group).
// relu: out = max(out, 0) as the relu op defines it (NaN -> 0), applied to each image's output
// right after its product while it is still in cache, instead of a separate pass.
// residual: added to the output (of its shape) after the bias and before the ReLU: by Winograd
// as it writes each row, by the other kernels in one pass after theirs.
void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* out,
                    bool relu = false, const float* residual = nullptr);
// How many convolutions have run as one GEMM over all the images of a batch of small planes
// (up to 20x20 output pixels) since start-up (tests).
int64_t batched_forward_count();
// gx = d out / d x applied to gy (overwrites gx); adds bias[c] when given (transposed convolution).
// Stride 1: a forward convolution of gy with the flipped, transposed kernel. Strided: by
// sub-pixel phases (each phase of gx a stride-1 convolution of gy with its taps, scattered into
// gx) where the kernel windows overlap enough, otherwise GEMM into a column buffer scattered
// back by col2im; LRFACE_DECONV_ALGO=subpixel|columns|auto overrides the choice (see conv.cpp).
void conv2d_backward_data(const ConvGeometry& g, const float* gy, const float* w, const float* bias, float* gx);
// gw = d out / d w applied to gy, summed over the batch (overwrites gw): Winograd's adjoint
// (3x3 stride 1), direct sums, or one GEMM per group whose k dimension runs over every output
// pixel of every image, by shape (see conv.cpp).
void conv2d_backward_filter(const ConvGeometry& g, const float* x, const float* gy, float* gw);

// Zero-padded copies of `planes` consecutive g.h x g.w input planes into dst, rows x cols each:
// dst row r, column j holds input (r - g.pt, j - g.pl), or 0 outside the input.
void pad_planes(const ConvGeometry& g, const float* x, int64_t planes, int64_t rows, int64_t cols, float* dst);

}  // namespace lrface::cpu
