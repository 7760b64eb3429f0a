#include "dispatch.h"

#include "../device_memory.h"
#include "../gemm_conv.h"
#include "cublas_gemm.h"
#include "cudnn_conv.h"

namespace lrface::cuda {

void conv2d_forward(int device, const cpu::ConvGeometry& g, const float* x, const float* w, const float* bias,
                    float* out, bool relu) {
  if (g.n == 0) return;
  if (!cudnn_conv2d_forward(device, g, x, w, out)) return own_conv2d_forward(device, g, x, w, bias, out, relu);
  if (bias || relu) channel_bias(device, out, bias, g.n, g.o, g.out_h * g.out_w, relu);
}

void conv2d_backward_data(int device, const cpu::ConvGeometry& g, const float* gy, const float* w, const float* bias,
                          float* gx) {
  if (g.n == 0) return;
  if (!cudnn_conv2d_backward_data(device, g, gy, w, gx)) return own_conv2d_backward_data(device, g, gy, w, bias, gx);
  if (bias) channel_bias(device, gx, bias, g.n, g.c, g.h * g.w, false);
}

void conv2d_backward_filter(int device, const cpu::ConvGeometry& g, const float* x, const float* gy, float* gw) {
  if (g.n == 0) {  // no images: the gradient is zero
    device_zero(device, gw, static_cast<size_t>(g.o * (g.c / g.groups) * g.kh * g.kw) * sizeof(float));
    return;
  }
  if (!cudnn_conv2d_backward_filter(device, g, x, gy, gw)) own_conv2d_backward_filter(device, g, x, gy, gw);
}

void matmul(int device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
            const int64_t* a_offsets, const float* b, const int64_t* b_offsets, const float* bias, float* out,
            int64_t batch) {
  if (batch == 0 || m == 0 || n == 0) return;
  const int64_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
  if (!cublas_sgemm_batched(device, trans_a, trans_b, m, n, k, 1.0f, a, lda, a_offsets, b, ldb, b_offsets, 0.0f, out,
                            n, m * n, batch))
    own_sgemm_batched(device, trans_a, trans_b, m, n, k, 1.0f, a, lda, a_offsets, b, ldb, b_offsets, 0.0f, out, n,
                      m * n, batch);
  if (bias) channel_bias(device, out, bias, batch * m, n, 1, false);
}

}  // namespace lrface::cuda
