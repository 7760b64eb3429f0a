// Convolution and matrix product on a CUDA device: cuDNN / cuBLAS where loaded and able to
// take the call, the engine's own kernels (../gemm_conv.h) otherwise. Conventions as the CPU
// kernels of the same names (../../cpu/conv.h, ../../cpu/gemm.h).
#pragma once
#include <cstdint>

#include "../../cpu/conv.h"

namespace lrface::cuda {

void conv2d_forward(int device, const cpu::ConvGeometry& g, const float* x, const float* w, const float* bias,
                    float* out, bool relu);
// bias (C entries, may be null) is conv_transpose2d's.
void conv2d_backward_data(int device, const cpu::ConvGeometry& g, const float* gy, const float* w, const float* bias,
                          float* gx);
void conv2d_backward_filter(int device, const cpu::ConvGeometry& g, const float* x, const float* gy, float* gw);
// out_i = op(A at a + a_offsets[i]) @ op(B at b + b_offsets[i]) (+ bias[N] per row when bias
// != null), out_i at out + i * m * n; the offsets are host arrays.
void matmul(int device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
            const int64_t* a_offsets, const float* b, const int64_t* b_offsets, const float* bias, float* out,
            int64_t batch);

}  // namespace lrface::cuda
