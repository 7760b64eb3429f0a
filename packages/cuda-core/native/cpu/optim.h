// Optimiser updates applied in place, one pass over each parameter and its state. The
// per-element rule is shared with the CUDA kernel (../cuda/kernels.cu): both devices compute
// the same float operations in the same order (up to fused multiply-adds).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "host_device.h"

namespace lrface::cpu {

// Adam's settings shared by every tensor of one call. l2 is the weight decay added to the
// gradient (Adam), decay the factor the parameter is scaled by first (AdamW: 1 - lr * wd).
// 1 - beta comes from the caller, computed in double and rounded once.
struct AdamHyper {
  float beta1, one_minus_beta1, beta2, one_minus_beta2, eps, l2, decay;
};

// One parameter with its gradient and moment buffers, n elements each, and its bias
// corrections: step_size = lr / (1 - beta1^t), denom_scale = 1 / sqrt(1 - beta2^t).
struct AdamSlot {
  float* param;
  const float* grad;
  float* exp_avg;
  float* exp_avg_sq;
  int64_t n;
  float step_size;
  float denom_scale;
};

// torch.optim.Adam's update of element i (AdamW's with decay < 1 and l2 = 0).
LR_HOST_DEVICE inline void adam_element(const AdamHyper& h, float step_size, float denom_scale, float* param,
                                        const float* grad, float* exp_avg, float* exp_avg_sq, int64_t i) {
  float p = param[i];
  float g = grad[i];
  if (h.l2 != 0.0f) g += p * h.l2;
  p *= h.decay;
  const float m = exp_avg[i] * h.beta1 + g * h.one_minus_beta1;
  const float v = exp_avg_sq[i] * h.beta2 + (g * g) * h.one_minus_beta2;
  exp_avg[i] = m;
  exp_avg_sq[i] = v;
  const float denom = sqrtf(v) * denom_scale + h.eps;
  param[i] = p - (m / denom) * step_size;
}

// Updates every slot in place, the slots' elements split over the thread pool as one range.
void adam_update(const AdamHyper& h, const std::vector<AdamSlot>& slots);

// SGD's settings shared by every tensor of one call; 1 - dampening comes from the caller.
struct SgdHyper {
  float lr, momentum, one_minus_dampening, weight_decay;
  bool nesterov;
};

// One parameter with its gradient and, with momentum, its momentum buffer (null without),
// n elements each. first: the buffer starts from this step's gradient (torch's first step).
struct SgdSlot {
  float* param;
  const float* grad;
  float* momentum_buffer;
  int64_t n;
  bool first;
};

// torch.optim.SGD's update of element i.
LR_HOST_DEVICE inline void sgd_element(const SgdHyper& h, bool first, float* param, const float* grad,
                                       float* momentum_buffer, int64_t i) {
  const float p = param[i];
  float d = grad[i];
  if (h.weight_decay != 0.0f) d += p * h.weight_decay;
  if (momentum_buffer != nullptr) {
    const float b = first ? d : momentum_buffer[i] * h.momentum + d * h.one_minus_dampening;
    momentum_buffer[i] = b;
    d = h.nesterov ? d + b * h.momentum : b;
  }
  param[i] = p - d * h.lr;
}

void sgd_update(const SgdHyper& h, const std::vector<SgdSlot>& slots);

}  // namespace lrface::cpu
