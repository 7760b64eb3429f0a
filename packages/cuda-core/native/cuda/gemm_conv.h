// The engine's own CUDA matrix product and convolutions, for devices (or runs) without cuBLAS
// and cuDNN. Plain C++ signatures with device pointers, so the bindings call them without CUDA
// headers. Each call queues its work on the device's stream and returns; the conventions are
// those of the CPU kernels in ../cpu/gemm.h and ../cpu/conv.h.
#pragma once
#include <cstdint>

#include "../cpu/conv.h"

namespace lrface::cuda {

// Row-major products with the conventions of cpu::sgemm_batched:
// C_i = alpha * op(A at a + a_offsets[i]) @ op(B at b + b_offsets[i]) + beta * C_i, C_i at c + i * c_stride;
// op(A) = A^T when trans_a (A stored [k, m]), op(B) = B^T when trans_b (B stored [n, k]);
// beta == 0 ignores C's old contents (NaN included). a_offsets / b_offsets are host arrays of
// `batch` entries.
void own_sgemm_batched(int device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                       const float* a, int64_t lda, const int64_t* a_offsets, const float* b, int64_t ldb,
                       const int64_t* b_offsets, float beta, float* c, int64_t ldc, int64_t c_stride, int64_t batch);

// out[n, o, oh, ow] = bias[o] + sum x * w, w is [o, c/groups, kh, kw]; relu: max(out, 0) with
// relu(NaN) = 0, as the relu op.
void own_conv2d_forward(int device, const cpu::ConvGeometry& g, const float* x, const float* w, const float* bias,
                        float* out, bool relu);
// gx = conv2d's input gradient (overwritten), plus bias[c] per input channel when bias != nullptr
// (conv_transpose2d's bias). Deterministic: every input pixel sums its own contributions.
void own_conv2d_backward_data(int device, const cpu::ConvGeometry& g, const float* gy, const float* w,
                              const float* bias, float* gx);
// gw = conv2d's weight gradient summed over the batch (overwritten, not accumulated).
void own_conv2d_backward_filter(int device, const cpu::ConvGeometry& g, const float* x, const float* gy, float* gw);

// out[i, ch, j] += bias[ch] over an [outer, channels, inner] view (bias may be null), then
// relu (NaN -> 0) if asked.
void channel_bias(int device, float* out, const float* bias, int64_t outer, int64_t channels, int64_t inner, bool relu);

}  // namespace lrface::cuda
