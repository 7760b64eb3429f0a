// Compile-time proof that gpu_libs.h declares the cuDNN and cuBLAS ABI as the vendors' headers
// do: every constant, the algorithm-performance struct's layout, and each entry point's
// parameters (same count; each the same size and kind: pointer, integer/enumeration or
// floating point). Built only where CMake finds cudnn.h and cublas_v2.h; the addon never
// includes those headers otherwise.
#include <cublas_v2.h>
#include <cudnn.h>

#include <cstddef>
#include <type_traits>

#include "gpu_libs.h"

namespace lrface::cuda {
namespace {

template <typename A, typename B>
constexpr bool same_abi_value() {
  if (sizeof(A) != sizeof(B)) return false;
  if (std::is_pointer_v<A> || std::is_pointer_v<B>) return std::is_pointer_v<A> && std::is_pointer_v<B>;
  if (std::is_floating_point_v<A> || std::is_floating_point_v<B>)
    return std::is_floating_point_v<A> && std::is_floating_point_v<B>;
  return (std::is_integral_v<A> || std::is_enum_v<A>) && (std::is_integral_v<B> || std::is_enum_v<B>);
}

template <typename RA, typename... A, typename RB, typename... B>
constexpr bool same_abi(RA (*)(A...), RB (*)(B...)) {
  if constexpr (sizeof...(A) != sizeof...(B)) {
    return false;
  } else {
    return same_abi_value<RA, RB>() && (same_abi_value<A, B>() && ...);
  }
}

#define LRFACE_CHECK_CUDNN(fn)                                                                     \
  static_assert(same_abi(&::cudnn##fn, CudnnApi{}.fn), "gpu_libs.h: cudnn" #fn " differs from cudnn.h")
#define LRFACE_CHECK_CUDNN_OP(fn)                                                                  \
  static_assert(same_abi(&::cudnn##fn, CudnnOpsApi{}.fn), "gpu_libs.h: cudnn" #fn " differs from cudnn.h")
#define LRFACE_CHECK_CUBLAS(real, ours) \
  static_assert(same_abi(&::real, CublasApi{}.ours), "gpu_libs.h: " #real " differs from cublas_v2.h")

LRFACE_CHECK_CUDNN(GetVersion);
LRFACE_CHECK_CUDNN(GetErrorString);
LRFACE_CHECK_CUDNN(Create);
LRFACE_CHECK_CUDNN(SetStream);
LRFACE_CHECK_CUDNN(CreateTensorDescriptor);
LRFACE_CHECK_CUDNN(SetTensor4dDescriptor);
LRFACE_CHECK_CUDNN(DestroyTensorDescriptor);
LRFACE_CHECK_CUDNN(CreateFilterDescriptor);
LRFACE_CHECK_CUDNN(SetFilter4dDescriptor);
LRFACE_CHECK_CUDNN(DestroyFilterDescriptor);
LRFACE_CHECK_CUDNN(CreateConvolutionDescriptor);
LRFACE_CHECK_CUDNN(SetConvolution2dDescriptor);
LRFACE_CHECK_CUDNN(SetConvolutionGroupCount);
LRFACE_CHECK_CUDNN(SetConvolutionMathType);
LRFACE_CHECK_CUDNN(DestroyConvolutionDescriptor);
LRFACE_CHECK_CUDNN(GetConvolution2dForwardOutputDim);
LRFACE_CHECK_CUDNN(GetConvolutionForwardAlgorithm_v7);
LRFACE_CHECK_CUDNN(FindConvolutionForwardAlgorithmEx);
LRFACE_CHECK_CUDNN(GetConvolutionForwardWorkspaceSize);
LRFACE_CHECK_CUDNN(ConvolutionForward);
LRFACE_CHECK_CUDNN(GetConvolutionBackwardDataAlgorithm_v7);
LRFACE_CHECK_CUDNN(FindConvolutionBackwardDataAlgorithmEx);
LRFACE_CHECK_CUDNN(GetConvolutionBackwardDataWorkspaceSize);
LRFACE_CHECK_CUDNN(ConvolutionBackwardData);
LRFACE_CHECK_CUDNN(GetConvolutionBackwardFilterAlgorithm_v7);
LRFACE_CHECK_CUDNN(FindConvolutionBackwardFilterAlgorithmEx);
LRFACE_CHECK_CUDNN(GetConvolutionBackwardFilterWorkspaceSize);
LRFACE_CHECK_CUDNN(ConvolutionBackwardFilter);
LRFACE_CHECK_CUDNN_OP(CreatePoolingDescriptor);
LRFACE_CHECK_CUDNN_OP(SetPooling2dDescriptor);
LRFACE_CHECK_CUDNN_OP(DestroyPoolingDescriptor);
LRFACE_CHECK_CUDNN_OP(PoolingForward);
LRFACE_CHECK_CUDNN_OP(PoolingBackward);
LRFACE_CHECK_CUDNN_OP(CreateActivationDescriptor);
LRFACE_CHECK_CUDNN_OP(SetActivationDescriptor);
LRFACE_CHECK_CUDNN_OP(DestroyActivationDescriptor);
LRFACE_CHECK_CUDNN_OP(ActivationForward);
LRFACE_CHECK_CUDNN_OP(ActivationBackward);
LRFACE_CHECK_CUDNN_OP(SoftmaxForward);
LRFACE_CHECK_CUDNN_OP(SoftmaxBackward);
LRFACE_CHECK_CUDNN_OP(BatchNormalizationForwardTraining);
LRFACE_CHECK_CUDNN_OP(BatchNormalizationBackward);

LRFACE_CHECK_CUBLAS(cublasCreate_v2, Create);
LRFACE_CHECK_CUBLAS(cublasSetStream_v2, SetStream);
LRFACE_CHECK_CUBLAS(cublasSetMathMode, SetMathMode);
LRFACE_CHECK_CUBLAS(cublasGetProperty, GetProperty);
LRFACE_CHECK_CUBLAS(cublasSgemm_v2, Sgemm);
LRFACE_CHECK_CUBLAS(cublasSgemmStridedBatched, SgemmStridedBatched);
LRFACE_CHECK_CUBLAS(cublasGetStatusString, GetStatusString);

static_assert(static_cast<int>(CudnnStatus::Success) == CUDNN_STATUS_SUCCESS);
static_assert(cudnn::kDataFloat == CUDNN_DATA_FLOAT);
static_assert(cudnn::kTensorNCHW == CUDNN_TENSOR_NCHW);
static_assert(cudnn::kCrossCorrelation == CUDNN_CROSS_CORRELATION);
static_assert(cudnn::kDefaultMath == CUDNN_DEFAULT_MATH);
static_assert(cudnn::kTensorOpMath == CUDNN_TENSOR_OP_MATH);
static_assert(cudnn::kFmaMath == CUDNN_FMA_MATH);
static_assert(cudnn::kFwdAlgoCount == CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
static_assert(cudnn::kBwdDataAlgoCount == CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
static_assert(cudnn::kBwdFilterAlgoCount == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
static_assert(CUDNN_DETERMINISTIC == 1);
static_assert(cudnn::kNotPropagateNan == CUDNN_NOT_PROPAGATE_NAN && cudnn::kPropagateNan == CUDNN_PROPAGATE_NAN);
static_assert(cudnn::kPoolingMax == CUDNN_POOLING_MAX);
static_assert(cudnn::kPoolingAvgIncludePad == CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING);
static_assert(cudnn::kPoolingAvgExcludePad == CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING);
static_assert(cudnn::kActivationSigmoid == CUDNN_ACTIVATION_SIGMOID);
static_assert(cudnn::kActivationRelu == CUDNN_ACTIVATION_RELU);
static_assert(cudnn::kActivationTanh == CUDNN_ACTIVATION_TANH);
static_assert(cudnn::kSoftmaxAccurate == CUDNN_SOFTMAX_ACCURATE && cudnn::kSoftmaxLog == CUDNN_SOFTMAX_LOG);
static_assert(cudnn::kSoftmaxModeChannel == CUDNN_SOFTMAX_MODE_CHANNEL);
static_assert(cudnn::kBatchNormSpatial == CUDNN_BATCHNORM_SPATIAL);
#if CUDNN_MAJOR >= 9
static_assert(cudnn::kHostAllocFailedV9 == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED);
static_assert(cudnn::kDeviceAllocFailedV9 == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED);
#else
static_assert(cudnn::kAllocFailedV8 == CUDNN_STATUS_ALLOC_FAILED);
#endif

template <typename Perf>
constexpr bool same_perf_layout() {
  return sizeof(Perf) == sizeof(cudnn::AlgoPerf) && offsetof(Perf, algo) == offsetof(cudnn::AlgoPerf, algo) &&
         offsetof(Perf, status) == offsetof(cudnn::AlgoPerf, status) &&
         offsetof(Perf, time) == offsetof(cudnn::AlgoPerf, time) &&
         offsetof(Perf, memory) == offsetof(cudnn::AlgoPerf, memory) &&
         offsetof(Perf, determinism) == offsetof(cudnn::AlgoPerf, determinism) &&
         offsetof(Perf, mathType) == offsetof(cudnn::AlgoPerf, math_type);
}
static_assert(same_perf_layout<cudnnConvolutionFwdAlgoPerf_t>());
static_assert(same_perf_layout<cudnnConvolutionBwdDataAlgoPerf_t>());
static_assert(same_perf_layout<cudnnConvolutionBwdFilterAlgoPerf_t>());

static_assert(static_cast<int>(CublasStatus::Success) == CUBLAS_STATUS_SUCCESS);
static_assert(static_cast<int>(CublasStatus::AllocFailed) == CUBLAS_STATUS_ALLOC_FAILED);
static_assert(cublas::kOpN == CUBLAS_OP_N && cublas::kOpT == CUBLAS_OP_T);
static_assert(cublas::kDefaultMath == CUBLAS_DEFAULT_MATH);
static_assert(cublas::kTf32TensorOpMath == CUBLAS_TF32_TENSOR_OP_MATH);
static_assert(cublas::kMajorVersion == MAJOR_VERSION && cublas::kMinorVersion == MINOR_VERSION &&
              cublas::kPatchLevel == PATCH_LEVEL);

}  // namespace
}  // namespace lrface::cuda
