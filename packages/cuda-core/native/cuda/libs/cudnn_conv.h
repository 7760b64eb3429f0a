// Convolutions through cuDNN. Each returns false, having queued nothing, when cuDNN cannot
// take the call (library not loaded or switched off, sizes past int, padding cuDNN cannot
// express, no algorithm within the workspace limit); the caller then runs the engine's own
// kernels. Results overwrite the output; bias and ReLU are the caller's.
#pragma once
#include "../../cpu/conv.h"

namespace lrface::cuda {

bool cudnn_conv2d_forward(int device, const cpu::ConvGeometry& g, const float* x, const float* w, float* out);
bool cudnn_conv2d_backward_data(int device, const cpu::ConvGeometry& g, const float* gy, const float* w, float* gx);
bool cudnn_conv2d_backward_filter(int device, const cpu::ConvGeometry& g, const float* x, const float* gy, float* gw);

}  // namespace lrface::cuda
