// Pooling, activations, softmax and batch norm through cuDNN's legacy API (the same calls in
// cuDNN 8 and 9). Descriptors live for one call: they are host-side structs, cheap to make.
#include "cudnn_ops.h"

#include <climits>
#include <initializer_list>
#include <vector>

#include "../../cpu/elementwise.h"
#include "../check.h"
#include "../device_memory.h"
#include "../device_query.h"
#include "library_session.h"

namespace lrface::cuda {

namespace {

const float kOne = 1.0f, kZero = 0.0f;

// cuDNN takes int sizes, and int element counts per tensor.
bool fits_int(std::initializer_list<int64_t> sizes) {
  int64_t total = 1;
  for (int64_t s : sizes) {
    if (s < 1 || s > INT_MAX) return false;
    total *= s;
    if (total > INT_MAX) return false;
  }
  return true;
}

int i(int64_t v) { return static_cast<int>(v); }

// cuDNN's activation mode for a cpu::UnaryOp code, or -1 where it has none.
int activation_mode(int code) {
  switch (static_cast<cpu::UnaryOp>(code)) {
    case cpu::UnaryOp::Relu: return cudnn::kActivationRelu;
    case cpu::UnaryOp::Sigmoid: return cudnn::kActivationSigmoid;
    case cpu::UnaryOp::Tanh: return cudnn::kActivationTanh;
    default: return -1;
  }
}

// NaN handling as the CPU kernels: ReLU maps NaN to 0 (v > 0 ? v : 0); sigmoid and tanh
// compute NaN from NaN whatever the option.
class ActivationDescriptor : public CudnnDescriptor<cudnn::ActivationDesc> {
 public:
  ActivationDescriptor(const CudnnOpsApi& ops, int mode)
      : CudnnDescriptor(ops.CreateActivationDescriptor, ops.DestroyActivationDescriptor, [&](cudnn::ActivationDesc d) {
          LR_CUDA_CHECK(ops.SetActivationDescriptor(d, mode, cudnn::kNotPropagateNan, 0.0));
        }) {}
};

// Whether cuDNN's pooling windows are the engine's for g. They differ with dilation, padding
// larger at the bottom/right than at the top/left, or windows past the padding (ceil mode).
// Where cuDNN's output size (floor of (h + 2 pad - k) / stride, plus one) equals ours, every
// window of both lies within the padded input, so include-padding divisors are kh * kw in
// both and exclude-padding ones count the same in-image elements.
bool same_windows(const cpu::PoolGeometry& g, int64_t pb, int64_t pr) {
  if (g.dh != 1 || g.dw != 1 || pb != g.pt || pr != g.pl) return false;
  if (!fits_int({g.planes, g.h, g.w}) || !fits_int({g.planes, g.out_h, g.out_w})) return false;
  return 1 + (g.h + 2 * g.pt - g.kh) / g.sh == g.out_h && 1 + (g.w + 2 * g.pl - g.kw) / g.sw == g.out_w;
}

// A NaN in a window wins, as in the CPU kernels.
class PoolingDescriptor : public CudnnDescriptor<cudnn::PoolingDesc> {
 public:
  PoolingDescriptor(const CudnnOpsApi& ops, const cpu::PoolGeometry& g, int mode)
      : CudnnDescriptor(ops.CreatePoolingDescriptor, ops.DestroyPoolingDescriptor, [&](cudnn::PoolingDesc d) {
          LR_CUDA_CHECK(ops.SetPooling2dDescriptor(d, mode, cudnn::kPropagateNan, i(g.kh), i(g.kw), i(g.pt), i(g.pl),
                                                   i(g.sh), i(g.sw)));
        }) {}
};

// Runs body(api, ops, handle) in a cuDNN session on `device` and counts the call, where the
// library is in use, has the op entry points, and `takes` (the caller's checks) holds; false,
// with nothing queued, otherwise.
template <typename Body>
bool run_op(int device, bool takes, Body body) {
  const CudnnApi* api = cudnn_api();
  const CudnnOpsApi* ops = cudnn_ops_api();
  if (!api || !ops || !takes) return false;
  CudnnSession session(*api, device);
  body(*api, *ops, session.handle());
  count_cudnn_op();
  return true;
}

int softmax_algo(bool log) { return log ? cudnn::kSoftmaxLog : cudnn::kSoftmaxAccurate; }

int avg_mode(bool count_include_pad) {
  return count_include_pad ? cudnn::kPoolingAvgIncludePad : cudnn::kPoolingAvgExcludePad;
}

bool pool_forward(int device, const cpu::PoolGeometry& g, int mode, const float* x, float* out) {
  return run_op(device, true, [&](const CudnnApi& api, const CudnnOpsApi& ops, cudnn::Handle h) {
    PoolingDescriptor pool(ops, g, mode);
    CudnnTensor xd(api, i(g.planes), 1, i(g.h), i(g.w)), yd(api, i(g.planes), 1, i(g.out_h), i(g.out_w));
    LR_CUDA_CHECK(ops.PoolingForward(h, pool.get(), &kOne, xd.get(), x, &kZero, yd.get(), out));
  });
}

// cuDNN 8's smallest accepted epsilon (CUDNN_BN_MIN_EPSILON; 0 in cuDNN 9).
constexpr double kBatchNormMinEpsilon = 1e-5;

bool batch_norm_fits(int64_t n, int64_t c, int64_t hw, double eps) {
  return fits_int({n, c, hw}) && n * hw >= 2 && eps >= kBatchNormMinEpsilon;
}

// The per-channel scale, or ones where the layer has none (cuDNN always takes one).
struct ChannelParams {
  ChannelParams(int device, const float* given, int64_t c, float fill)
      : host(given ? 0 : static_cast<size_t>(c), fill), copy(device, host.data(), given ? 0 : c),
        ptr(given ? given : copy.get()) {}
  std::vector<float> host;
  DeviceCopy<float> copy;
  const float* ptr;
};

}  // namespace

bool cudnn_softmax(int device, const float* x, float* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  return run_op(device, fits_int({outer, n, inner}), [&](const CudnnApi& api, const CudnnOpsApi& ops, cudnn::Handle h) {
    CudnnTensor desc(api, i(outer), i(n), i(inner), 1);
    LR_CUDA_CHECK(ops.SoftmaxForward(h, softmax_algo(log), cudnn::kSoftmaxModeChannel, &kOne, desc.get(), x, &kZero,
                                     desc.get(), y));
  });
}

bool cudnn_softmax_backward(int device, const float* y, const float* gy, float* gx, int64_t outer, int64_t n,
                            int64_t inner, bool log) {
  return run_op(device, fits_int({outer, n, inner}), [&](const CudnnApi& api, const CudnnOpsApi& ops, cudnn::Handle h) {
    CudnnTensor desc(api, i(outer), i(n), i(inner), 1);
    LR_CUDA_CHECK(ops.SoftmaxBackward(h, softmax_algo(log), cudnn::kSoftmaxModeChannel, &kOne, desc.get(), y,
                                      desc.get(), gy, &kZero, desc.get(), gx));
  });
}

bool cudnn_activation(int device, int code, const float* x, float* y, int64_t n) {
  const int mode = activation_mode(code);
  return run_op(device, mode >= 0 && fits_int({n}), [&](const CudnnApi& api, const CudnnOpsApi& ops, cudnn::Handle h) {
    ActivationDescriptor act(ops, mode);
    CudnnTensor desc(api, i(n), 1, 1, 1);
    LR_CUDA_CHECK(ops.ActivationForward(h, act.get(), &kOne, desc.get(), x, &kZero, desc.get(), y));
  });
}

bool cudnn_activation_backward(int device, int code, const float* gy, const float* x, const float* y, float* gx,
                               int64_t n) {
  const int mode = activation_mode(code);
  return run_op(device, mode >= 0 && fits_int({n}), [&](const CudnnApi& api, const CudnnOpsApi& ops, cudnn::Handle h) {
    ActivationDescriptor act(ops, mode);
    CudnnTensor desc(api, i(n), 1, 1, 1);
    LR_CUDA_CHECK(ops.ActivationBackward(h, act.get(), &kOne, desc.get(), y, desc.get(), gy, desc.get(), x, &kZero,
                                         desc.get(), gx));
  });
}

bool cudnn_max_pool2d(int device, const cpu::PoolGeometry& g, const float* x, float* out) {
  return same_windows(g, g.pt, g.pl) && pool_forward(device, g, cudnn::kPoolingMax, x, out);
}

bool cudnn_avg_pool2d(int device, const cpu::PoolGeometry& g, bool count_include_pad, int64_t pb, int64_t pr,
                      const float* x, float* out) {
  return same_windows(g, pb, pr) && pool_forward(device, g, avg_mode(count_include_pad), x, out);
}

bool cudnn_avg_pool2d_backward(int device, const cpu::PoolGeometry& g, bool count_include_pad, int64_t pb,
                               int64_t pr, const float* gy, float* gx) {
  return run_op(device, same_windows(g, pb, pr), [&](const CudnnApi& api, const CudnnOpsApi& ops, cudnn::Handle h) {
    PoolingDescriptor pool(ops, g, avg_mode(count_include_pad));
    CudnnTensor xd(api, i(g.planes), 1, i(g.h), i(g.w)), yd(api, i(g.planes), 1, i(g.out_h), i(g.out_w));
    // Average pooling's gradient does not read the forward's input and output, which the call
    // still names: gy and gx stand in for them (same shapes).
    LR_CUDA_CHECK(ops.PoolingBackward(h, pool.get(), &kOne, yd.get(), gy, yd.get(), gy, xd.get(), gx, &kZero,
                                      xd.get(), gx));
  });
}

bool cudnn_batch_norm_training(int device, int64_t n, int64_t c, int64_t hw, const float* x, const float* weight,
                               const float* bias, float* running_mean, float* running_var, float momentum, double eps,
                               float* mean, float* invstd, float* y) {
  // cuDNN takes both running statistics or neither.
  const bool takes = batch_norm_fits(n, c, hw, eps) && (running_mean == nullptr) == (running_var == nullptr);
  return run_op(device, takes, [&](const CudnnApi& api, const CudnnOpsApi& ops, cudnn::Handle h) {
    ChannelParams scale(device, weight, c, 1.0f), shift(device, bias, c, 0.0f);
    CudnnTensor xd(api, i(n), i(c), i(hw), 1), pd(api, 1, i(c), 1, 1);
    // Running averages as PyTorch's: running * (1 - momentum) + momentum * batch, the batch
    // variance unbiased, which is what cuDNN's exponential average factor gives.
    LR_CUDA_CHECK(ops.BatchNormalizationForwardTraining(h, cudnn::kBatchNormSpatial, &kOne, &kZero, xd.get(), x,
                                                        xd.get(), y, pd.get(), scale.ptr, shift.ptr, momentum,
                                                        running_mean, running_var, eps, mean, invstd));
  });
}

bool cudnn_batch_norm_backward(int device, int64_t n, int64_t c, int64_t hw, const float* x, const float* gy,
                               const float* weight, const float* mean, const float* invstd, double eps, float* gx,
                               float* gw, float* gb) {
  return run_op(device, batch_norm_fits(n, c, hw, eps), [&](const CudnnApi& api, const CudnnOpsApi& ops,
                                                            cudnn::Handle h) {
    ChannelParams scale(device, weight, c, 1.0f);
    // cuDNN writes all three gradients: the ones not asked for go to scratch blocks.
    DeviceBuffer gx_scratch(device, gx ? 0 : sizeof(float) * static_cast<size_t>(n * c * hw));
    DeviceBuffer param_scratch(device, sizeof(float) * static_cast<size_t>(c) * ((gw ? 0 : 1) + (gb ? 0 : 1)));
    float* dx = gx ? gx : gx_scratch.as<float>();
    float* dscale = gw ? gw : param_scratch.as<float>();
    float* dbias = gb ? gb : param_scratch.as<float>() + (gw ? 0 : c);
    CudnnTensor xd(api, i(n), i(c), i(hw), 1), pd(api, 1, i(c), 1, 1);
    LR_CUDA_CHECK(ops.BatchNormalizationBackward(h, cudnn::kBatchNormSpatial, &kOne, &kZero, &kOne, &kZero, xd.get(),
                                                 x, xd.get(), gy, xd.get(), dx, pd.get(), scale.ptr, dscale, dbias,
                                                 eps, mean, invstd));
  });
}

}  // namespace lrface::cuda
