// Pooling, activations, softmax and batch norm through cuDNN. Each returns false, having queued
// nothing, where cuDNN cannot take the call with the engine's semantics (library not loaded or
// switched off, sizes past int, a mode or geometry cuDNN does not have); the caller then runs
// the engine's own kernel (../kernels.h, same arguments).
#pragma once
#include <cstdint>

#include "../../cpu/pool.h"

namespace lrface::cuda {

// Over the middle axis of [outer, n, inner] (softmax, or log-softmax with `log`).
bool cudnn_softmax(int device, const float* x, float* y, int64_t outer, int64_t n, int64_t inner, bool log);
bool cudnn_softmax_backward(int device, const float* y, const float* gy, float* gx, int64_t outer, int64_t n,
                            int64_t inner, bool log);

// ReLU, sigmoid and tanh (cpu::UnaryOp codes), NaN handled as in the CPU kernels.
bool cudnn_activation(int device, int code, const float* x, float* y, int64_t n);
bool cudnn_activation_backward(int device, int code, const float* gy, const float* x, const float* y, float* gx,
                               int64_t n);

// Max pooling without indices (inference: the backward pass needs the indices, which cuDNN does
// not give), and average pooling both ways; windows as ../kernels.h's.
bool cudnn_max_pool2d(int device, const cpu::PoolGeometry& g, const float* x, float* out);
bool cudnn_avg_pool2d(int device, const cpu::PoolGeometry& g, bool count_include_pad, int64_t pb, int64_t pr,
                      const float* x, float* out);
bool cudnn_avg_pool2d_backward(int device, const cpu::PoolGeometry& g, bool count_include_pad, int64_t pb,
                               int64_t pr, const float* gy, float* gx);

// Batch norm in training mode (statistics of the batch), as ../kernels.h's batch_norm_forward /
// batch_norm_backward with training = true.
bool cudnn_batch_norm_training(int device, int64_t n, int64_t c, int64_t hw, const float* x, const float* weight,
                               const float* bias, float* running_mean, float* running_var, float momentum, double eps,
                               float* mean, float* invstd, float* y);
// eps is the forward's: the backward pass goes to cuDNN exactly where the forward did.
bool cudnn_batch_norm_backward(int device, int64_t n, int64_t c, int64_t hw, const float* x, const float* gy,
                               const float* weight, const float* mean, const float* invstd, double eps, float* gx,
                               float* gw, float* gb);

}  // namespace lrface::cuda
