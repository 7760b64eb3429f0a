// cuDNN and cuBLAS, loaded at run time. The addon links neither: it opens libcudnn /
// libcublas on first use and resolves the few entry points it calls, so the same binary
// loads on a machine without them (and reports why they are missing) and uses them where
// they are, whether or not they were present at build time.
//
// The declarations below are the libraries' C ABI for the calls we make (cuDNN 8 and 9 share
// these; cuBLAS 11 to 13 too). Enumerations are passed as int, handles and descriptors as
// opaque pointers. gpu_libs_check.cpp compares every value, struct layout and signature
// with the vendors' headers wherever those are found at build time.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "../device_query.h"

namespace lrface::cuda {

// Statuses are distinct types so that LR_CUDA_CHECK picks the right message for each library.
enum class CudnnStatus : int { Success = 0 };
enum class CublasStatus : int { Success = 0, AllocFailed = 3 };

namespace cudnn {
using Handle = struct HandleOpaque*;
using TensorDesc = struct TensorDescOpaque*;
using FilterDesc = struct FilterDescOpaque*;
using ConvDesc = struct ConvDescOpaque*;
using PoolingDesc = struct PoolingDescOpaque*;
using ActivationDesc = struct ActivationDescOpaque*;
using Stream = void*;  // cudaStream_t

constexpr int kDataFloat = 0;           // CUDNN_DATA_FLOAT
constexpr int kTensorNCHW = 0;          // CUDNN_TENSOR_NCHW
constexpr int kCrossCorrelation = 1;    // CUDNN_CROSS_CORRELATION
constexpr int kDefaultMath = 0;         // CUDNN_DEFAULT_MATH
constexpr int kTensorOpMath = 1;        // CUDNN_TENSOR_OP_MATH
constexpr int kFmaMath = 3;             // CUDNN_FMA_MATH: FP32 FMA kernels only, no TF32
constexpr int kFwdAlgoCount = 8;        // CUDNN_CONVOLUTION_FWD_ALGO_COUNT
constexpr int kBwdDataAlgoCount = 6;    // CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT
constexpr int kBwdFilterAlgoCount = 7;  // CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT
// Out-of-memory statuses: CUDNN_STATUS_ALLOC_FAILED of cuDNN 8, and cuDNN 9's
// CUDNN_STATUS_INTERNAL_ERROR_HOST/DEVICE_ALLOCATION_FAILED.
constexpr int kAllocFailedV8 = 2;
constexpr int kHostAllocFailedV9 = 4003;
constexpr int kDeviceAllocFailedV9 = 4004;

constexpr int kNotPropagateNan = 0;         // CUDNN_NOT_PROPAGATE_NAN
constexpr int kPropagateNan = 1;            // CUDNN_PROPAGATE_NAN
constexpr int kPoolingMax = 0;              // CUDNN_POOLING_MAX
constexpr int kPoolingAvgIncludePad = 1;    // CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
constexpr int kPoolingAvgExcludePad = 2;    // CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING
constexpr int kActivationSigmoid = 0;       // CUDNN_ACTIVATION_SIGMOID
constexpr int kActivationRelu = 1;          // CUDNN_ACTIVATION_RELU
constexpr int kActivationTanh = 2;          // CUDNN_ACTIVATION_TANH
constexpr int kSoftmaxAccurate = 1;         // CUDNN_SOFTMAX_ACCURATE: the maximum subtracted first
constexpr int kSoftmaxLog = 2;              // CUDNN_SOFTMAX_LOG
constexpr int kSoftmaxModeChannel = 1;      // CUDNN_SOFTMAX_MODE_CHANNEL: over C per (n, h, w)
constexpr int kBatchNormSpatial = 1;        // CUDNN_BATCHNORM_SPATIAL: statistics over N, H, W

// cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t share this layout.
struct AlgoPerf {
  int algo;
  CudnnStatus status;
  float time;
  size_t memory;
  int determinism;  // cudnnDeterminism_t: 1 = CUDNN_DETERMINISTIC
  int math_type;
  int reserved[3];
};
}  // namespace cudnn

struct CudnnApi {
  size_t (*GetVersion)();
  const char* (*GetErrorString)(CudnnStatus);
  CudnnStatus (*Create)(cudnn::Handle*);
  CudnnStatus (*SetStream)(cudnn::Handle, cudnn::Stream);
  CudnnStatus (*CreateTensorDescriptor)(cudnn::TensorDesc*);
  CudnnStatus (*SetTensor4dDescriptor)(cudnn::TensorDesc, int format, int data_type, int n, int c, int h, int w);
  CudnnStatus (*DestroyTensorDescriptor)(cudnn::TensorDesc);
  CudnnStatus (*CreateFilterDescriptor)(cudnn::FilterDesc*);
  CudnnStatus (*SetFilter4dDescriptor)(cudnn::FilterDesc, int data_type, int format, int k, int c, int h, int w);
  CudnnStatus (*DestroyFilterDescriptor)(cudnn::FilterDesc);
  CudnnStatus (*CreateConvolutionDescriptor)(cudnn::ConvDesc*);
  CudnnStatus (*SetConvolution2dDescriptor)(cudnn::ConvDesc, int pad_h, int pad_w, int u, int v, int dilation_h,
                                            int dilation_w, int mode, int compute_type);
  CudnnStatus (*SetConvolutionGroupCount)(cudnn::ConvDesc, int);
  CudnnStatus (*SetConvolutionMathType)(cudnn::ConvDesc, int);
  CudnnStatus (*DestroyConvolutionDescriptor)(cudnn::ConvDesc);
  CudnnStatus (*GetConvolution2dForwardOutputDim)(cudnn::ConvDesc, cudnn::TensorDesc, cudnn::FilterDesc, int* n,
                                                  int* c, int* h, int* w);

  CudnnStatus (*GetConvolutionForwardAlgorithm_v7)(cudnn::Handle, cudnn::TensorDesc, cudnn::FilterDesc,
                                                   cudnn::ConvDesc, cudnn::TensorDesc, int, int*, cudnn::AlgoPerf*);
  CudnnStatus (*FindConvolutionForwardAlgorithmEx)(cudnn::Handle, cudnn::TensorDesc, const void*, cudnn::FilterDesc,
                                                   const void*, cudnn::ConvDesc, cudnn::TensorDesc, void*, int, int*,
                                                   cudnn::AlgoPerf*, void*, size_t);
  CudnnStatus (*GetConvolutionForwardWorkspaceSize)(cudnn::Handle, cudnn::TensorDesc, cudnn::FilterDesc,
                                                    cudnn::ConvDesc, cudnn::TensorDesc, int, size_t*);
  CudnnStatus (*ConvolutionForward)(cudnn::Handle, const void* alpha, cudnn::TensorDesc, const void* x,
                                    cudnn::FilterDesc, const void* w, cudnn::ConvDesc, int algo, void* workspace,
                                    size_t workspace_bytes, const void* beta, cudnn::TensorDesc, void* y);

  CudnnStatus (*GetConvolutionBackwardDataAlgorithm_v7)(cudnn::Handle, cudnn::FilterDesc, cudnn::TensorDesc,
                                                        cudnn::ConvDesc, cudnn::TensorDesc, int, int*,
                                                        cudnn::AlgoPerf*);
  CudnnStatus (*FindConvolutionBackwardDataAlgorithmEx)(cudnn::Handle, cudnn::FilterDesc, const void*,
                                                        cudnn::TensorDesc, const void*, cudnn::ConvDesc,
                                                        cudnn::TensorDesc, void*, int, int*, cudnn::AlgoPerf*, void*,
                                                        size_t);
  CudnnStatus (*GetConvolutionBackwardDataWorkspaceSize)(cudnn::Handle, cudnn::FilterDesc, cudnn::TensorDesc,
                                                         cudnn::ConvDesc, cudnn::TensorDesc, int, size_t*);
  CudnnStatus (*ConvolutionBackwardData)(cudnn::Handle, const void* alpha, cudnn::FilterDesc, const void* w,
                                         cudnn::TensorDesc, const void* dy, cudnn::ConvDesc, int algo,
                                         void* workspace, size_t workspace_bytes, const void* beta, cudnn::TensorDesc,
                                         void* dx);

  CudnnStatus (*GetConvolutionBackwardFilterAlgorithm_v7)(cudnn::Handle, cudnn::TensorDesc, cudnn::TensorDesc,
                                                          cudnn::ConvDesc, cudnn::FilterDesc, int, int*,
                                                          cudnn::AlgoPerf*);
  CudnnStatus (*FindConvolutionBackwardFilterAlgorithmEx)(cudnn::Handle, cudnn::TensorDesc, const void*,
                                                          cudnn::TensorDesc, const void*, cudnn::ConvDesc,
                                                          cudnn::FilterDesc, void*, int, int*, cudnn::AlgoPerf*,
                                                          void*, size_t);
  CudnnStatus (*GetConvolutionBackwardFilterWorkspaceSize)(cudnn::Handle, cudnn::TensorDesc, cudnn::TensorDesc,
                                                           cudnn::ConvDesc, cudnn::FilterDesc, int, size_t*);
  CudnnStatus (*ConvolutionBackwardFilter)(cudnn::Handle, const void* alpha, cudnn::TensorDesc, const void* x,
                                           cudnn::TensorDesc, const void* dy, cudnn::ConvDesc, int algo,
                                           void* workspace, size_t workspace_bytes, const void* beta,
                                           cudnn::FilterDesc, void* dw);
};

// Pooling, activations, softmax and batch norm: the legacy API of cuDNN 8 and 9 (deprecated in
// 9, still exported). Resolved as a group apart from the convolutions, so a library without
// them still runs convolutions; null entries mean the engine's own kernels run these ops.
struct CudnnOpsApi {
  CudnnStatus (*CreatePoolingDescriptor)(cudnn::PoolingDesc*);
  CudnnStatus (*SetPooling2dDescriptor)(cudnn::PoolingDesc, int mode, int nan_option, int window_h, int window_w,
                                        int pad_h, int pad_w, int stride_h, int stride_w);
  CudnnStatus (*DestroyPoolingDescriptor)(cudnn::PoolingDesc);
  CudnnStatus (*PoolingForward)(cudnn::Handle, cudnn::PoolingDesc, const void* alpha, cudnn::TensorDesc, const void* x,
                                const void* beta, cudnn::TensorDesc, void* y);
  CudnnStatus (*PoolingBackward)(cudnn::Handle, cudnn::PoolingDesc, const void* alpha, cudnn::TensorDesc,
                                 const void* y, cudnn::TensorDesc, const void* dy, cudnn::TensorDesc, const void* x,
                                 const void* beta, cudnn::TensorDesc, void* dx);

  CudnnStatus (*CreateActivationDescriptor)(cudnn::ActivationDesc*);
  CudnnStatus (*SetActivationDescriptor)(cudnn::ActivationDesc, int mode, int nan_option, double coef);
  CudnnStatus (*DestroyActivationDescriptor)(cudnn::ActivationDesc);
  CudnnStatus (*ActivationForward)(cudnn::Handle, cudnn::ActivationDesc, const void* alpha, cudnn::TensorDesc,
                                   const void* x, const void* beta, cudnn::TensorDesc, void* y);
  CudnnStatus (*ActivationBackward)(cudnn::Handle, cudnn::ActivationDesc, const void* alpha, cudnn::TensorDesc,
                                    const void* y, cudnn::TensorDesc, const void* dy, cudnn::TensorDesc,
                                    const void* x, const void* beta, cudnn::TensorDesc, void* dx);

  CudnnStatus (*SoftmaxForward)(cudnn::Handle, int algo, int mode, const void* alpha, cudnn::TensorDesc,
                                const void* x, const void* beta, cudnn::TensorDesc, void* y);
  CudnnStatus (*SoftmaxBackward)(cudnn::Handle, int algo, int mode, const void* alpha, cudnn::TensorDesc,
                                 const void* y, cudnn::TensorDesc, const void* dy, const void* beta,
                                 cudnn::TensorDesc, void* dx);

  CudnnStatus (*BatchNormalizationForwardTraining)(cudnn::Handle, int mode, const void* alpha, const void* beta,
                                                   cudnn::TensorDesc, const void* x, cudnn::TensorDesc, void* y,
                                                   cudnn::TensorDesc, const void* scale, const void* bias,
                                                   double average_factor, void* running_mean, void* running_var,
                                                   double epsilon, void* save_mean, void* save_invstd);
  CudnnStatus (*BatchNormalizationBackward)(cudnn::Handle, int mode, const void* alpha_data, const void* beta_data,
                                            const void* alpha_param, const void* beta_param, cudnn::TensorDesc,
                                            const void* x, cudnn::TensorDesc, const void* dy, cudnn::TensorDesc,
                                            void* dx, cudnn::TensorDesc, const void* scale, void* dscale,
                                            void* dbias, double epsilon, const void* saved_mean,
                                            const void* saved_invstd);
};

namespace cublas {
using Handle = struct HandleOpaque*;
using Stream = void*;  // cudaStream_t
constexpr int kOpN = 0;              // CUBLAS_OP_N
constexpr int kOpT = 1;              // CUBLAS_OP_T
constexpr int kDefaultMath = 0;      // CUBLAS_DEFAULT_MATH
constexpr int kTf32TensorOpMath = 3; // CUBLAS_TF32_TENSOR_OP_MATH
constexpr int kMajorVersion = 0;     // libraryPropertyType MAJOR_VERSION
constexpr int kMinorVersion = 1;
constexpr int kPatchLevel = 2;
}  // namespace cublas

struct CublasApi {
  CublasStatus (*Create)(cublas::Handle*);
  CublasStatus (*SetStream)(cublas::Handle, cublas::Stream);
  CublasStatus (*SetMathMode)(cublas::Handle, int);
  CublasStatus (*GetProperty)(int type, int* value);
  CublasStatus (*Sgemm)(cublas::Handle, int transa, int transb, int m, int n, int k, const float* alpha,
                        const float* a, int lda, const float* b, int ldb, const float* beta, float* c, int ldc);
  CublasStatus (*SgemmStridedBatched)(cublas::Handle, int transa, int transb, int m, int n, int k,
                                      const float* alpha, const float* a, int lda, long long stride_a, const float* b,
                                      int ldb, long long stride_b, const float* beta, float* c, int ldc,
                                      long long stride_c, int batch);
  // Optional (cuBLAS >= 11.4): null when the library lacks it.
  const char* (*GetStatusString)(CublasStatus);
};

// The resolved entry points, loaded on the first call; null when the library is missing or
// lacks an entry point (cudnn_library_status() says which), or while use_gpu_libraries(false)
// is in force.
const CudnnApi* cudnn_api();
// Null also where the library lacks any of CudnnOpsApi's entry points.
const CudnnOpsApi* cudnn_ops_api();
const CublasApi* cublas_api();

}  // namespace lrface::cuda
