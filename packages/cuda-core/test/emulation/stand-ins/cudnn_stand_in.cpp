// A stand-in for cuDNN 9 (built as libcudnn.so.9 by the emulated build only, never shipped):
// the legacy API's convolution, pooling, activation, softmax and batch-normalization entry
// points, written from NVIDIA's API reference as plain loops over the emulated device's
// memory, so the emulated test run drives the addon's cuDNN paths (native/cuda/libs/) end to
// end. Independent of the addon's own declarations: the vendor's C names and plain C types only.
//
// What it reproduces of the documented behaviour:
// - descriptors keep what the Set* calls gave and are checked as cuDNN checks them
//   (CUDNN_STATUS_BAD_PARAM for a bad value, or for tensor, filter and convolution
//   descriptors that do not fit together: channels, groups, output size);
// - convolution (mode CUDNN_CONVOLUTION flips the filter) and cross-correlation, with padding,
//   strides, dilation and groups; y = alpha * result + beta * y, with y never read when beta is 0;
// - several algorithms per direction, each with its own workspace size (one needs none, some
//   support only 3x3 stride-1 filters); the heuristic and Find queries report them with those
//   sizes, and every call checks that it was given at least the workspace its algorithm needs;
// - the Find calls overwrite their output with arbitrary values (NaN here), as documented.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <vector>

#include "device_queue.h"

namespace {

// cudnnStatus_t (cuDNN 9 numbering).
constexpr int kSuccess = 0;
constexpr int kNotInitialized = 1001;
constexpr int kBadParam = 2000;
constexpr int kBadParamNullPointer = 2002;
constexpr int kNotSupported = 3000;

constexpr int kDataFloat = 0;         // cudnnDataType_t CUDNN_DATA_FLOAT
constexpr int kFormatNCHW = 0;        // cudnnTensorFormat_t
constexpr int kFormatNHWC = 1;
constexpr int kFormatNCHWVectC = 2;
constexpr int kConvolution = 0;       // cudnnConvolutionMode_t
constexpr int kCrossCorrelation = 1;
constexpr int kDefaultMath = 0;       // cudnnMathType_t
constexpr int kTensorOpMath = 1;
constexpr int kFmaMath = 3;
constexpr int kDeterministic = 1;

struct Handle {
  void* stream = nullptr;
};
struct TensorDesc {
  bool set = false;
  int format = 0, type = 0, n = 0, c = 0, h = 0, w = 0;
};
struct FilterDesc {
  bool set = false;
  int type = 0, format = 0, k = 0, c = 0, h = 0, w = 0;
};
struct ConvDesc {
  bool set = false;
  int pad_h = 0, pad_w = 0, u = 1, v = 1, dil_h = 1, dil_w = 1, mode = kCrossCorrelation, compute = kDataFloat;
  int groups = 1;
  int math = kDefaultMath;
};

// cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t (one layout).
struct AlgoPerf {
  int algo;
  int status;
  float time;
  size_t memory;
  int determinism;
  int mathType;
  int reserved[3];
};

// Everything one convolution needs, copied out of the descriptors: a queued call must not
// depend on descriptors the caller may change or destroy after it returns.
struct Geometry {
  int n, c, h, w;       // input
  int k, cg, r, s;      // filter: k outputs, cg = c / groups inputs each, r x s
  int oh, ow;           // output
  int pad_h, pad_w, u, v, dil_h, dil_w, groups;
  bool flip;            // CUDNN_CONVOLUTION: the filter is applied rotated by 180 degrees
  size_t x_size() const { return size_t(n) * c * h * w; }
  size_t y_size() const { return size_t(n) * k * oh * ow; }
  size_t w_size() const { return size_t(k) * cg * r * s; }
};

// Output size along one axis, as cudnnGetConvolution2dForwardOutputDim documents it:
// 1 + (input + 2 * pad - ((filter - 1) * dilation + 1)) / stride.
int output_dim(int in, int pad, int filter, int dilation, int stride) {
  const int span = (filter - 1) * dilation + 1;
  const int room = in + 2 * pad - span;
  return room < 0 ? 0 : 1 + room / stride;
}

bool valid_format(int f) { return f == kFormatNCHW || f == kFormatNHWC || f == kFormatNCHWVectC; }
bool valid_type(int t) { return t >= 0 && t <= 14; }  // cudnnDataType_t's values

// The input/filter/convolution triple's consistency; on success fills g's input, filter and
// output fields.
int geometry(const TensorDesc* x, const FilterDesc* w, const ConvDesc* conv, Geometry& g) {
  if (!x || !w || !conv) return kBadParamNullPointer;
  if (!x->set || !w->set || !conv->set) return kBadParam;
  if (x->type != w->type) return kBadParam;
  if (w->c * conv->groups != x->c || w->k % conv->groups != 0) return kBadParam;
  g = Geometry{x->n, x->c, x->h, x->w, w->k, w->c, w->h, w->w, 0, 0, conv->pad_h, conv->pad_w, conv->u, conv->v,
               conv->dil_h, conv->dil_w, conv->groups, conv->mode == kConvolution};
  g.oh = output_dim(x->h, conv->pad_h, w->h, conv->dil_h, conv->u);
  g.ow = output_dim(x->w, conv->pad_w, w->w, conv->dil_w, conv->v);
  if (g.oh < 1 || g.ow < 1) return kBadParam;
  return kSuccess;
}

// The full check every computing call makes: the output tensor must be what the input,
// filter and convolution give, everything float NCHW (all this stand-in computes).
int full_geometry(const TensorDesc* x, const FilterDesc* w, const ConvDesc* conv, const TensorDesc* y, Geometry& g) {
  if (!y) return kBadParamNullPointer;
  if (int st = geometry(x, w, conv, g); st != kSuccess) return st;
  if (!y->set || y->type != x->type) return kBadParam;
  if (y->n != g.n || y->c != g.k || y->h != g.oh || y->w != g.ow) return kBadParam;
  if (x->type != kDataFloat || x->format != kFormatNCHW || y->format != kFormatNCHW || w->format != kFormatNCHW ||
      conv->compute != kDataFloat)
    return kNotSupported;
  return kSuccess;
}

enum Direction { kForward = 0, kBackwardData = 1, kBackwardFilter = 2 };
constexpr int kAlgoCount[3] = {8, 6, 7};  // CUDNN_CONVOLUTION_{FWD,BWD_DATA,BWD_FILTER}_ALGO_COUNT

bool small_winograd_fits(const Geometry& g) {
  return g.r == 3 && g.s == 3 && g.u == 1 && g.v == 1 && g.dil_h == 1 && g.dil_w == 1;
}

// The workspace `algo` needs for `g`, or SIZE_MAX where it does not support `g`. The sizes
// are made up but follow what such algorithms keep: none, an offset table, an im2col
// buffer of one image, transformed filters.
size_t workspace_for(Direction dir, int algo, const Geometry& g) {
  constexpr size_t kNone = std::numeric_limits<size_t>::max();
  const size_t im2col = sizeof(float) * size_t(g.cg) * g.r * g.s * g.oh * g.ow;
  const size_t winograd = sizeof(float) * 16 * size_t(g.cg) * g.k;
  switch (dir) {
    case kForward:
      switch (algo) {
        case 0: return 0;                                                       // IMPLICIT_GEMM
        case 1: return sizeof(int) * size_t(g.cg) * g.r * g.s + 128;            // IMPLICIT_PRECOMP_GEMM
        case 2: return im2col;                                                  // GEMM
        case 6: return small_winograd_fits(g) ? winograd : kNone;               // WINOGRAD
        default: return kNone;
      }
    case kBackwardData:
      switch (algo) {
        case 0: return 0;                                                       // ALGO_0
        case 1: return im2col;                                                  // ALGO_1
        case 4: return small_winograd_fits(g) ? winograd : kNone;               // WINOGRAD
        default: return kNone;
      }
    case kBackwardFilter:
      switch (algo) {
        case 0: return 0;                                                       // ALGO_0
        case 1: return im2col;                                                  // ALGO_1
        case 3: return sizeof(float) * g.w_size() + 256;                        // ALGO_3
        default: return kNone;
      }
  }
  return kNone;
}

// The heuristics' ranking: the algorithms with workspace first (as cuDNN tends to rank its
// faster ones), the one without after them, the unsupported ones last; for 1x1 filters, which
// need no unrolling, the one without workspace first.
std::vector<int> heuristic_order(Direction dir, const Geometry& g) {
  static const std::vector<int> orders[3] = {{1, 2, 6, 0, 3, 4, 5, 7}, {1, 4, 0, 2, 3, 5}, {1, 3, 0, 2, 4, 5, 6}};
  std::vector<int> order = orders[dir];
  if (g.r == 1 && g.s == 1) std::stable_partition(order.begin(), order.end(), [](int algo) { return algo == 0; });
  return order;
}

int perf_math(const ConvDesc* conv, int rank) {
  // Tensor-op math only where the descriptor allows it (FMA math forbids it); the best-ranked
  // algorithm is the tensor-op one.
  if (conv->math == kFmaMath) return kFmaMath;
  return rank == 0 ? kTensorOpMath : kDefaultMath;
}

int fill_perf(Direction dir, const Geometry& g, const ConvDesc* conv, int requested, int* returned, AlgoPerf* perf,
              bool measured, size_t workspace_given) {
  if (requested < 1) return kBadParam;
  if (!returned || !perf) return kBadParamNullPointer;
  std::vector<AlgoPerf> all;
  const std::vector<int> order = heuristic_order(dir, g);
  for (size_t rank = 0; rank < order.size(); ++rank) {
    AlgoPerf p{};
    p.algo = order[rank];
    const size_t ws = workspace_for(dir, p.algo, g);
    p.status = ws == std::numeric_limits<size_t>::max() ? kNotSupported : kSuccess;
    p.memory = p.status == kSuccess ? ws : 0;
    p.determinism = kDeterministic;
    p.mathType = perf_math(conv, static_cast<int>(rank));
    p.time = p.status == kSuccess ? 1.0f + 0.25f * static_cast<float>(rank) : -1.0f;
    if (measured && p.status == kSuccess) {
      // Measured: more workspace runs faster; an algorithm that needs more than it was given
      // fails (cudnnFind* tries each one within the workspace supplied).
      p.time = 1.0f / (1.0f + static_cast<float>(ws) / 1024.0f);
      if (ws > workspace_given) {
        p.status = kNotSupported;
        p.time = -1.0f;
      }
    }
    all.push_back(p);
  }
  if (measured) {
    // Sorted by time, the failed ones last.
    std::vector<AlgoPerf> sorted;
    for (const auto& p : all)
      if (p.status == kSuccess) sorted.push_back(p);
    for (size_t i = 1; i < sorted.size(); ++i)
      for (size_t j = i; j > 0 && sorted[j].time < sorted[j - 1].time; --j) std::swap(sorted[j], sorted[j - 1]);
    for (const auto& p : all)
      if (p.status != kSuccess) sorted.push_back(p);
    all = sorted;
  }
  const int count = std::min<int>(requested, static_cast<int>(all.size()));
  for (int i = 0; i < count; ++i) perf[i] = all[static_cast<size_t>(i)];
  *returned = count;
  return kSuccess;
}

int read_scalars(const void* alpha, const void* beta, float& a, float& b) {
  if (!alpha || !beta) return kBadParamNullPointer;
  // Float tensors take float scaling factors (host memory: the default pointer mode).
  a = *static_cast<const float*>(alpha);
  b = *static_cast<const float*>(beta);
  return kSuccess;
}

int check_workspace(Direction dir, int algo, const Geometry& g, const void* workspace, size_t bytes, size_t& needed) {
  if (algo < 0 || algo >= kAlgoCount[dir]) return kBadParam;
  needed = workspace_for(dir, algo, g);
  if (needed == std::numeric_limits<size_t>::max()) return kNotSupported;
  if (bytes < needed) return kBadParam;  // less workspace than cudnnGet*WorkspaceSize said
  if (needed > 0 && !workspace) return kBadParamNullPointer;
  return kSuccess;
}

// The filter tap a window position reads: rotated by 180 degrees in convolution mode.
inline size_t filter_index(const Geometry& g, int k, int cg, int i, int j) {
  const int fi = g.flip ? g.r - 1 - i : i, fj = g.flip ? g.s - 1 - j : j;
  return ((size_t(k) * g.cg + cg) * g.r + fi) * g.s + fj;
}

// Calls body(n, k, c, oy, ox, iy, ix, tap) for every product term of the convolution whose
// input position lies inside the image.
template <typename Body>
void for_each_term(const Geometry& g, Body body) {
  const int k_per_group = g.k / g.groups;
  for (int n = 0; n < g.n; ++n)
    for (int k = 0; k < g.k; ++k) {
      const int group = k / k_per_group;
      for (int cg = 0; cg < g.cg; ++cg) {
        const int c = group * g.cg + cg;
        for (int oy = 0; oy < g.oh; ++oy)
          for (int ox = 0; ox < g.ow; ++ox)
            for (int i = 0; i < g.r; ++i) {
              const int iy = oy * g.u - g.pad_h + i * g.dil_h;
              if (iy < 0 || iy >= g.h) continue;
              for (int j = 0; j < g.s; ++j) {
                const int ix = ox * g.v - g.pad_w + j * g.dil_w;
                if (ix < 0 || ix >= g.w) continue;
                body(n, k, c, oy, ox, iy, ix, filter_index(g, k, cg, i, j));
              }
            }
      }
    }
}

// out = alpha * acc + beta * out; out is not read when beta is 0.
void blend(float* out, const std::vector<double>& acc, float alpha, float beta) {
  for (size_t i = 0; i < acc.size(); ++i) {
    const float v = alpha * static_cast<float>(acc[i]);
    out[i] = beta == 0.0f ? v : v + beta * out[i];
  }
}

void compute(Direction dir, const Geometry& g, const float* in0, const float* in1, float* out, float alpha,
             float beta) {
  std::vector<double> acc;
  switch (dir) {
    case kForward: {  // in0 = x, in1 = w
      acc.assign(g.y_size(), 0.0);
      for_each_term(g, [&](int n, int k, int c, int oy, int ox, int iy, int ix, size_t tap) {
        acc[((size_t(n) * g.k + k) * g.oh + oy) * g.ow + ox] +=
            double(in0[((size_t(n) * g.c + c) * g.h + iy) * g.w + ix]) * in1[tap];
      });
      break;
    }
    case kBackwardData: {  // in0 = w, in1 = dy
      acc.assign(g.x_size(), 0.0);
      for_each_term(g, [&](int n, int k, int c, int oy, int ox, int iy, int ix, size_t tap) {
        acc[((size_t(n) * g.c + c) * g.h + iy) * g.w + ix] +=
            double(in1[((size_t(n) * g.k + k) * g.oh + oy) * g.ow + ox]) * in0[tap];
      });
      break;
    }
    case kBackwardFilter: {  // in0 = x, in1 = dy
      acc.assign(g.w_size(), 0.0);
      for_each_term(g, [&](int n, int k, int c, int oy, int ox, int iy, int ix, size_t tap) {
        acc[tap] += double(in0[((size_t(n) * g.c + c) * g.h + iy) * g.w + ix]) *
                    in1[((size_t(n) * g.k + k) * g.oh + oy) * g.ow + ox];
      });
      break;
    }
  }
  blend(out, acc, alpha, beta);
}

size_t out_size(Direction dir, const Geometry& g) {
  return dir == kForward ? g.y_size() : dir == kBackwardData ? g.x_size() : g.w_size();
}

int convolve(Handle* h, Direction dir, const Geometry& g, const void* alpha, const void* in0, const void* in1, int algo,
             void* workspace, size_t workspace_bytes, const void* beta, void* out) {
  if (!h) return kNotInitialized;
  float a = 0, b = 0;
  if (int st = read_scalars(alpha, beta, a, b); st != kSuccess) return st;
  if (!in0 || !in1 || !out) return kBadParamNullPointer;
  size_t needed = 0;
  if (int st = check_workspace(dir, algo, g, workspace, workspace_bytes, needed); st != kSuccess) return st;
  stand_in::on_device([=]() {
    // The algorithm's scratch space is really used: a workspace that is not device memory of
    // the size asked for faults here.
    if (needed > 0) std::memset(workspace, 0xff, needed);
    compute(dir, g, static_cast<const float*>(in0), static_cast<const float*>(in1), static_cast<float*>(out), a, b);
  });
  return kSuccess;
}

int find(Handle* h, Direction dir, const Geometry& g, const ConvDesc* conv, const void* in0, const void* in1, void* out,
         int requested, int* returned, AlgoPerf* perf, void* workspace, size_t workspace_bytes) {
  if (!h) return kNotInitialized;
  if (!in0 || !in1 || !out) return kBadParamNullPointer;
  if (workspace_bytes > 0 && !workspace) return kBadParamNullPointer;
  if (int st = fill_perf(dir, g, conv, requested, returned, perf, true, workspace_bytes); st != kSuccess) return st;
  const size_t n = out_size(dir, g);
  stand_in::on_device([=]() {
    // Trying the algorithms leaves arbitrary values in the output and the workspace.
    if (workspace_bytes > 0) std::memset(workspace, 0xff, workspace_bytes);
    float* o = static_cast<float*>(out);
    for (size_t i = 0; i < n; ++i) o[i] = std::numeric_limits<float>::quiet_NaN();
  });
  return kSuccess;
}

// Backward data: the filter and dy describe the forward convolution whose input is dx.
int backward_data_geometry(const FilterDesc* w, const TensorDesc* dy, const ConvDesc* conv, const TensorDesc* dx,
                           Geometry& g) {
  return full_geometry(dx, w, conv, dy, g);
}

}  // namespace

using cudnnStatus_t = int;
using cudnnHandle_t = Handle*;
using cudnnTensorDescriptor_t = TensorDesc*;
using cudnnFilterDescriptor_t = FilterDesc*;
using cudnnConvolutionDescriptor_t = ConvDesc*;

LRFACE_STAND_IN_EXPORT size_t cudnnGetVersion() { return 90600; }  // 9.6.0

LRFACE_STAND_IN_EXPORT const char* cudnnGetErrorString(cudnnStatus_t status) {
  switch (status) {
    case kSuccess: return "CUDNN_STATUS_SUCCESS";
    case kNotInitialized: return "CUDNN_STATUS_NOT_INITIALIZED";
    case kBadParam: return "CUDNN_STATUS_BAD_PARAM";
    case kBadParamNullPointer: return "CUDNN_STATUS_BAD_PARAM_NULL_POINTER";
    case kNotSupported: return "CUDNN_STATUS_NOT_SUPPORTED";
    default: return "CUDNN_STATUS_UNKNOWN (stand-in)";
  }
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) {
  if (!handle) return kBadParamNullPointer;
  *handle = new Handle();
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
  delete handle;
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, void* stream) {
  if (!handle) return kNotInitialized;
  handle->stream = stream;
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* desc) {
  if (!desc) return kBadParamNullPointer;
  *desc = new TensorDesc();
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t desc, int format, int type,
                                                                int n, int c, int h, int w) {
  if (!desc) return kBadParamNullPointer;
  if (!valid_format(format) || !valid_type(type) || n < 1 || c < 1 || h < 1 || w < 1) return kBadParam;
  if (int64_t(n) * c * h * w > std::numeric_limits<int32_t>::max()) return kNotSupported;
  *desc = TensorDesc{true, format, type, n, c, h, w};
  return kSuccess;
}

// Reads a descriptor back, with the strides its format implies (NCHW_VECT_C reported as NCHW).
LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnGetTensor4dDescriptor(cudnnTensorDescriptor_t desc, int* type, int* n,
                                                                int* c, int* h, int* w, int* n_stride, int* c_stride,
                                                                int* h_stride, int* w_stride) {
  if (!desc || !type || !n || !c || !h || !w || !n_stride || !c_stride || !h_stride || !w_stride)
    return kBadParamNullPointer;
  if (!desc->set) return kBadParam;
  *type = desc->type;
  *n = desc->n;
  *c = desc->c;
  *h = desc->h;
  *w = desc->w;
  *n_stride = desc->c * desc->h * desc->w;
  if (desc->format == kFormatNHWC) {
    *c_stride = 1;
    *h_stride = desc->w * desc->c;
    *w_stride = desc->c;
  } else {
    *c_stride = desc->h * desc->w;
    *h_stride = desc->w;
    *w_stride = 1;
  }
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t desc) {
  delete desc;
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* desc) {
  if (!desc) return kBadParamNullPointer;
  *desc = new FilterDesc();
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t desc, int type, int format,
                                                                int k, int c, int h, int w) {
  if (!desc) return kBadParamNullPointer;
  if (!valid_format(format) || !valid_type(type) || k < 1 || c < 1 || h < 1 || w < 1) return kBadParam;
  *desc = FilterDesc{true, type, format, k, c, h, w};
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t desc) {
  delete desc;
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* desc) {
  if (!desc) return kBadParamNullPointer;
  *desc = new ConvDesc();
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t desc, int pad_h,
                                                                     int pad_w, int u, int v, int dilation_h,
                                                                     int dilation_w, int mode, int compute_type) {
  if (!desc) return kBadParamNullPointer;
  if (pad_h < 0 || pad_w < 0 || u < 1 || v < 1 || dilation_h < 1 || dilation_w < 1) return kBadParam;
  if ((mode != kConvolution && mode != kCrossCorrelation) || !valid_type(compute_type)) return kBadParam;
  desc->set = true;
  desc->pad_h = pad_h;
  desc->pad_w = pad_w;
  desc->u = u;
  desc->v = v;
  desc->dil_h = dilation_h;
  desc->dil_w = dilation_w;
  desc->mode = mode;
  desc->compute = compute_type;
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t desc, int groups) {
  if (!desc) return kBadParamNullPointer;
  if (groups < 1) return kBadParam;
  desc->groups = groups;
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t desc, int math) {
  if (!desc) return kBadParamNullPointer;
  if (math < kDefaultMath || math > kFmaMath) return kBadParam;
  desc->math = math;
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t desc) {
  delete desc;
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(cudnnConvolutionDescriptor_t conv,
                                                                           cudnnTensorDescriptor_t x,
                                                                           cudnnFilterDescriptor_t w, int* n, int* c,
                                                                           int* h, int* wo) {
  if (!n || !c || !h || !wo) return kBadParamNullPointer;
  Geometry g{};
  if (int st = geometry(x, w, conv, g); st != kSuccess) return st;
  *n = g.n;
  *c = g.k;
  *h = g.oh;
  *wo = g.ow;
  return kSuccess;
}

// The workspace-size queries: the size `algo` needs for `g`, once the descriptors fit together.
static cudnnStatus_t workspace_query(Direction direction, const Geometry& g, int algo, size_t* bytes) {
  if (!bytes) return kBadParamNullPointer;
  if (algo < 0 || algo >= kAlgoCount[direction]) return kBadParam;
  const size_t ws = workspace_for(direction, algo, g);
  if (ws == std::numeric_limits<size_t>::max()) return kNotSupported;
  *bytes = ws;
  return kSuccess;
}

// ---- forward ----------------------------------------------------------------------------

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(
    cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t conv,
    cudnnTensorDescriptor_t y, int requested, int* returned, AlgoPerf* perf) {
  if (!h) return kNotInitialized;
  Geometry g{};
  if (int st = full_geometry(x, w, conv, y, g); st != kSuccess) return st;
  return fill_perf(kForward, g, conv, requested, returned, perf, false, 0);
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(
    cudnnHandle_t h, cudnnTensorDescriptor_t x_desc, const void* x, cudnnFilterDescriptor_t w_desc, const void* w,
    cudnnConvolutionDescriptor_t conv, cudnnTensorDescriptor_t y_desc, void* y, int requested, int* returned,
    AlgoPerf* perf, void* workspace, size_t workspace_bytes) {
  Geometry g{};
  if (int st = full_geometry(x_desc, w_desc, conv, y_desc, g); st != kSuccess) return st;
  return find(h, kForward, g, conv, x, w, y, requested, returned, perf, workspace, workspace_bytes);
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(
    cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t conv,
    cudnnTensorDescriptor_t y, int algo, size_t* bytes) {
  if (!h) return kNotInitialized;
  Geometry g{};
  if (int st = full_geometry(x, w, conv, y, g); st != kSuccess) return st;
  return workspace_query(kForward, g, algo, bytes);
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void* alpha,
                                                             cudnnTensorDescriptor_t x_desc, const void* x,
                                                             cudnnFilterDescriptor_t w_desc, const void* w,
                                                             cudnnConvolutionDescriptor_t conv, int algo,
                                                             void* workspace, size_t workspace_bytes,
                                                             const void* beta, cudnnTensorDescriptor_t y_desc,
                                                             void* y) {
  Geometry g{};
  if (int st = full_geometry(x_desc, w_desc, conv, y_desc, g); st != kSuccess) return st;
  return convolve(h, kForward, g, alpha, x, w, algo, workspace, workspace_bytes, beta, y);
}

// ---- backward data ------------------------------------------------------------------------

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(
    cudnnHandle_t h, cudnnFilterDescriptor_t w, cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t conv,
    cudnnTensorDescriptor_t dx, int requested, int* returned, AlgoPerf* perf) {
  if (!h) return kNotInitialized;
  Geometry g{};
  if (int st = backward_data_geometry(w, dy, conv, dx, g); st != kSuccess) return st;
  return fill_perf(kBackwardData, g, conv, requested, returned, perf, false, 0);
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(
    cudnnHandle_t h, cudnnFilterDescriptor_t w_desc, const void* w, cudnnTensorDescriptor_t dy_desc, const void* dy,
    cudnnConvolutionDescriptor_t conv, cudnnTensorDescriptor_t dx_desc, void* dx, int requested, int* returned,
    AlgoPerf* perf, void* workspace, size_t workspace_bytes) {
  Geometry g{};
  if (int st = backward_data_geometry(w_desc, dy_desc, conv, dx_desc, g); st != kSuccess) return st;
  return find(h, kBackwardData, g, conv, w, dy, dx, requested, returned, perf, workspace, workspace_bytes);
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(
    cudnnHandle_t h, cudnnFilterDescriptor_t w, cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t conv,
    cudnnTensorDescriptor_t dx, int algo, size_t* bytes) {
  if (!h) return kNotInitialized;
  Geometry g{};
  if (int st = backward_data_geometry(w, dy, conv, dx, g); st != kSuccess) return st;
  return workspace_query(kBackwardData, g, algo, bytes);
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void* alpha,
                                                                  cudnnFilterDescriptor_t w_desc, const void* w,
                                                                  cudnnTensorDescriptor_t dy_desc, const void* dy,
                                                                  cudnnConvolutionDescriptor_t conv, int algo,
                                                                  void* workspace, size_t workspace_bytes,
                                                                  const void* beta, cudnnTensorDescriptor_t dx_desc,
                                                                  void* dx) {
  Geometry g{};
  if (int st = backward_data_geometry(w_desc, dy_desc, conv, dx_desc, g); st != kSuccess) return st;
  return convolve(h, kBackwardData, g, alpha, w, dy, algo, workspace, workspace_bytes, beta, dx);
}

// ---- backward filter ----------------------------------------------------------------------

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(
    cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t conv,
    cudnnFilterDescriptor_t dw, int requested, int* returned, AlgoPerf* perf) {
  if (!h) return kNotInitialized;
  Geometry g{};
  if (int st = full_geometry(x, dw, conv, dy, g); st != kSuccess) return st;
  return fill_perf(kBackwardFilter, g, conv, requested, returned, perf, false, 0);
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(
    cudnnHandle_t h, cudnnTensorDescriptor_t x_desc, const void* x, cudnnTensorDescriptor_t dy_desc, const void* dy,
    cudnnConvolutionDescriptor_t conv, cudnnFilterDescriptor_t dw_desc, void* dw, int requested, int* returned,
    AlgoPerf* perf, void* workspace, size_t workspace_bytes) {
  Geometry g{};
  if (int st = full_geometry(x_desc, dw_desc, conv, dy_desc, g); st != kSuccess) return st;
  return find(h, kBackwardFilter, g, conv, x, dy, dw, requested, returned, perf, workspace, workspace_bytes);
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(
    cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t conv,
    cudnnFilterDescriptor_t dw, int algo, size_t* bytes) {
  if (!h) return kNotInitialized;
  Geometry g{};
  if (int st = full_geometry(x, dw, conv, dy, g); st != kSuccess) return st;
  return workspace_query(kBackwardFilter, g, algo, bytes);
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void* alpha,
                                                                    cudnnTensorDescriptor_t x_desc, const void* x,
                                                                    cudnnTensorDescriptor_t dy_desc, const void* dy,
                                                                    cudnnConvolutionDescriptor_t conv, int algo,
                                                                    void* workspace, size_t workspace_bytes,
                                                                    const void* beta, cudnnFilterDescriptor_t dw_desc,
                                                                    void* dw) {
  Geometry g{};
  if (int st = full_geometry(x_desc, dw_desc, conv, dy_desc, g); st != kSuccess) return st;
  return convolve(h, kBackwardFilter, g, alpha, x, dy, algo, workspace, workspace_bytes, beta, dw);
}

// ==== pooling, activation, softmax and batch normalization ===================================
// cudnn_ops.h's legacy entry points, for float NCHW tensors (other types and formats:
// CUDNN_STATUS_NOT_SUPPORTED). Results are computed in double and blended as
// y = alpha * result + beta * y, y never read when beta is 0. Where the documentation leaves a
// choice open the stand-in's choice is stated where it is made.

namespace {

constexpr int kDataDouble = 1;  // cudnnDataType_t CUDNN_DATA_DOUBLE
constexpr int kPropagateNan = 1;  // cudnnNanPropagation_t (CUDNN_NOT_PROPAGATE_NAN = 0)

// cudnnPoolingMode_t
constexpr int kPoolMax = 0;
constexpr int kPoolAverageIncludePadding = 1;
constexpr int kPoolAverageExcludePadding = 2;
constexpr int kPoolMaxDeterministic = 3;

// cudnnActivationMode_t
constexpr int kSigmoid = 0;
constexpr int kRelu = 1;
constexpr int kTanh = 2;
constexpr int kClippedRelu = 3;
constexpr int kElu = 4;
constexpr int kIdentity = 5;
constexpr int kSwish = 6;

// cudnnSoftmaxAlgorithm_t (FAST and ACCURATE both subtract the maximum here) and cudnnSoftmaxMode_t.
constexpr int kSoftmaxLog = 2;
constexpr int kSoftmaxModeInstance = 0;
constexpr int kSoftmaxModeChannel = 1;

// cudnnBatchNormMode_t
constexpr int kBatchNormPerActivation = 0;
constexpr int kBatchNormSpatialPersistent = 2;
// CUDNN_BN_MIN_EPSILON: cuDNN 9 allows any epsilon >= 0.0.
constexpr double kBatchNormMinEpsilon = 0.0;

struct PoolingDesc {
  bool set = false;
  int mode = kPoolMax, nan = 0, window_h = 1, window_w = 1, pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1;
};
struct ActivationDesc {
  bool set = false;
  int mode = kRelu, nan = 0;
  double coef = 0.0;
};

size_t element_count(const TensorDesc& t) { return size_t(t.n) * t.c * t.h * t.w; }
bool same_dims(const TensorDesc& a, const TensorDesc& b) { return a.n == b.n && a.c == b.c && a.h == b.h && a.w == b.w; }
bool float_nchw(const TensorDesc& t) { return t.type == kDataFloat && t.format == kFormatNCHW; }

// The check of tensors that must all have one shape and type (an elementwise call's input and
// output, their gradients): each given, set and matching the first (BAD_PARAM otherwise), and
// float NCHW (NOT_SUPPORTED otherwise).
int matching_float_tensors(std::initializer_list<const TensorDesc*> descs) {
  for (const TensorDesc* d : descs)
    if (!d) return kBadParamNullPointer;
  const TensorDesc& first = **descs.begin();
  for (const TensorDesc* d : descs)
    if (!d->set || !same_dims(*d, first) || d->type != first.type) return kBadParam;
  for (const TensorDesc* d : descs)
    if (!float_nchw(*d)) return kNotSupported;
  return kSuccess;
}

bool all_given(std::initializer_list<const void*> pointers) {
  for (const void* p : pointers)
    if (!p) return false;
  return true;
}

// ---- pooling ----

// One pooling call's shapes and settings, copied out of the descriptors.
struct PoolGeometry {
  int n, c, h, w, oh, ow;
  int window_h, window_w, pad_h, pad_w, stride_h, stride_w, mode;
  bool propagate_nan;
  size_t x_size() const { return size_t(n) * c * h * w; }
  size_t y_size() const { return size_t(n) * c * oh * ow; }
  bool max() const { return mode == kPoolMax || mode == kPoolMaxDeterministic; }
};

int pool_geometry(const PoolingDesc* p, const TensorDesc* x, PoolGeometry& g) {
  if (!p || !x) return kBadParamNullPointer;
  if (!p->set || !x->set) return kBadParam;
  g = PoolGeometry{x->n, x->c, x->h, x->w, 0, 0, p->window_h, p->window_w, p->pad_h, p->pad_w, p->stride_h,
                   p->stride_w, p->mode, p->nan == kPropagateNan};
  // 1 + (in + 2 * pad - window) / stride, the convolution's formula without dilation.
  g.oh = output_dim(x->h, p->pad_h, p->window_h, 1, p->stride_h);
  g.ow = output_dim(x->w, p->pad_w, p->window_w, 1, p->stride_w);
  if (g.oh < 1 || g.ow < 1) return kBadParam;
  return kSuccess;
}

// The computing calls' check: x and y (and their gradients) as the pooling gives them.
int full_pool_geometry(const PoolingDesc* p, const TensorDesc* x, const TensorDesc* y, PoolGeometry& g) {
  if (!y) return kBadParamNullPointer;
  if (int st = pool_geometry(p, x, g); st != kSuccess) return st;
  if (!y->set || y->type != x->type || y->n != g.n || y->c != g.c || y->h != g.oh || y->w != g.ow) return kBadParam;
  if (!float_nchw(*x) || !float_nchw(*y)) return kNotSupported;
  return kSuccess;
}

// Calls body(offset in the image plane) for each element of window (oy, ox) inside the image,
// in row-major window order; returns their count. Padding is never an element: as pad < window,
// every window holds at least one.
template <typename Body>
int for_each_in_window(const PoolGeometry& g, int oy, int ox, Body body) {
  int count = 0;
  for (int i = 0; i < g.window_h; ++i) {
    const int iy = oy * g.stride_h - g.pad_h + i;
    if (iy < 0 || iy >= g.h) continue;
    for (int j = 0; j < g.window_w; ++j) {
      const int ix = ox * g.stride_w - g.pad_w + j;
      if (ix < 0 || ix >= g.w) continue;
      body(size_t(iy) * g.w + ix);
      ++count;
    }
  }
  return count;
}

int average_divisor(const PoolGeometry& g, int oy, int ox) {
  if (g.mode == kPoolAverageIncludePadding) return g.window_h * g.window_w;
  return for_each_in_window(g, oy, ox, [](size_t) {});
}

void pool_forward(const PoolGeometry& g, const float* x, float* y, float alpha, float beta) {
  std::vector<double> acc(g.y_size());
  const size_t plane = size_t(g.h) * g.w;
  for (size_t p = 0; p < size_t(g.n) * g.c; ++p) {
    const float* xp = x + p * plane;
    for (int oy = 0; oy < g.oh; ++oy)
      for (int ox = 0; ox < g.ow; ++ox) {
        double result;
        if (g.max()) {
          // NaN never wins a comparison, so without propagation NaNs are skipped; a window of
          // NaNs only gives -inf (the stand-in's choice: the maximum of no numbers).
          double best = -std::numeric_limits<double>::infinity();
          bool saw_nan = false;
          for_each_in_window(g, oy, ox, [&](size_t i) {
            if (std::isnan(xp[i])) saw_nan = true;
            else if (xp[i] > best) best = xp[i];
          });
          result = saw_nan && g.propagate_nan ? std::numeric_limits<double>::quiet_NaN() : best;
        } else {
          double sum = 0;
          for_each_in_window(g, oy, ox, [&](size_t i) { sum += xp[i]; });
          result = sum / average_divisor(g, oy, ox);
        }
        acc[(p * g.oh + oy) * g.ow + ox] = result;
      }
  }
  blend(y, acc, alpha, beta);
}

// Max pooling routes each output's gradient to the element of its window equal to the output
// (NaN matching NaN). On ties the stand-in picks the FIRST such element in row-major window
// order; the real library may pick another one.
void pool_backward(const PoolGeometry& g, const float* y, const float* dy, const float* x, float* dx, float alpha,
                   float beta) {
  std::vector<double> acc(g.x_size(), 0.0);
  const size_t plane = size_t(g.h) * g.w;
  for (size_t p = 0; p < size_t(g.n) * g.c; ++p) {
    const float* xp = x + p * plane;
    double* ap = acc.data() + p * plane;
    for (int oy = 0; oy < g.oh; ++oy)
      for (int ox = 0; ox < g.ow; ++ox) {
        const size_t o = (p * g.oh + oy) * g.ow + ox;
        if (g.max()) {
          const float target = y[o];
          bool routed = false;
          for_each_in_window(g, oy, ox, [&](size_t i) {
            if (routed) return;
            if (xp[i] == target || (std::isnan(xp[i]) && std::isnan(target))) {
              ap[i] += dy[o];
              routed = true;
            }
          });
        } else {
          const double share = double(dy[o]) / average_divisor(g, oy, ox);
          for_each_in_window(g, oy, ox, [&](size_t i) { ap[i] += share; });
        }
      }
  }
  blend(dx, acc, alpha, beta);
}

// ---- activation ----

// cudnnActivationForward/Backward compute these modes; IDENTITY is documented for
// cudnnConvolutionBiasActivationForward only ("does not work with cudnnActivationForward() or
// cudnnActivationBackward()"), and SWISH is not reproduced: both NOT_SUPPORTED here.
bool computed_activation(int mode) { return mode >= kSigmoid && mode <= kElu; }

// The reluNanOpt applies to the two ReLU modes (the clamps); the other modes propagate NaN as
// arithmetic does.
double activate(int mode, bool propagate_nan, double coef, double x) {
  switch (mode) {
    case kSigmoid: return 1.0 / (1.0 + std::exp(-x));
    case kTanh: return std::tanh(x);
    case kRelu:
      if (std::isnan(x)) return propagate_nan ? x : 0.0;
      return x > 0 ? x : 0.0;
    case kClippedRelu:
      if (std::isnan(x)) return propagate_nan ? x : 0.0;
      return std::min(std::max(x, 0.0), coef);
    case kElu: return x > 0 ? x : coef * std::expm1(x);
  }
  return x;
}

// d(activation)/dx * dy, from the forward's output y where the derivative is a function of it.
double activation_gradient(int mode, double coef, double y, double dy, double x) {
  switch (mode) {
    case kSigmoid: return dy * y * (1.0 - y);
    case kTanh: return dy * (1.0 - y * y);
    case kRelu: return x > 0 ? dy : 0.0;
    case kClippedRelu: return x > 0 && x < coef ? dy : 0.0;
    case kElu: return x > 0 ? dy : dy * (y + coef);
  }
  return dy;
}

int activation_settings(const ActivationDesc* a) {
  if (!a) return kBadParamNullPointer;
  if (!a->set) return kBadParam;
  if (!computed_activation(a->mode)) return kNotSupported;
  return kSuccess;
}

// ---- softmax ----

// The rows a softmax runs along: element k of row (o, s) lies at (o * length + k) * inner + s.
struct SoftmaxGeometry {
  size_t outer, length, inner;
  bool log;
  size_t size() const { return outer * length * inner; }
};

int softmax_geometry(int algo, int mode, const TensorDesc& t, SoftmaxGeometry& g) {
  if (algo < 0 || algo > kSoftmaxLog || (mode != kSoftmaxModeInstance && mode != kSoftmaxModeChannel))
    return kBadParam;
  const size_t plane = size_t(t.h) * t.w;
  g = mode == kSoftmaxModeInstance ? SoftmaxGeometry{size_t(t.n), size_t(t.c) * plane, 1, algo == kSoftmaxLog}
                                   : SoftmaxGeometry{size_t(t.n), size_t(t.c), plane, algo == kSoftmaxLog};
  return kSuccess;
}

template <typename Body>
void for_each_softmax_row(const SoftmaxGeometry& g, Body body) {
  for (size_t o = 0; o < g.outer; ++o)
    for (size_t s = 0; s < g.inner; ++s) body(o * g.length * g.inner + s);
}

void softmax_forward(const SoftmaxGeometry& g, const float* x, float* y, float alpha, float beta) {
  std::vector<double> acc(g.size());
  for_each_softmax_row(g, [&](size_t base) {
    // Both FAST and ACCURATE subtract the row's maximum (so no exp overflows).
    double top = -std::numeric_limits<double>::infinity();
    for (size_t k = 0; k < g.length; ++k) top = std::max(top, double(x[base + k * g.inner]));
    double sum = 0;
    for (size_t k = 0; k < g.length; ++k) sum += std::exp(double(x[base + k * g.inner]) - top);
    const double log_sum = std::log(sum);
    for (size_t k = 0; k < g.length; ++k) {
      const size_t i = base + k * g.inner;
      const double shifted = double(x[i]) - top;
      acc[i] = g.log ? shifted - log_sum : std::exp(shifted) / sum;
    }
  });
  blend(y, acc, alpha, beta);
}

void softmax_backward(const SoftmaxGeometry& g, const float* y, const float* dy, float* dx, float alpha, float beta) {
  std::vector<double> acc(g.size());
  for_each_softmax_row(g, [&](size_t base) {
    double reduced = 0;  // softmax: sum(dy * y); log-softmax: sum(dy)
    for (size_t k = 0; k < g.length; ++k) {
      const size_t i = base + k * g.inner;
      reduced += g.log ? double(dy[i]) : double(dy[i]) * y[i];
    }
    for (size_t k = 0; k < g.length; ++k) {
      const size_t i = base + k * g.inner;
      acc[i] = g.log ? dy[i] - std::exp(double(y[i])) * reduced : y[i] * (dy[i] - reduced);
    }
  });
  blend(dx, acc, alpha, beta);
}

// ---- batch normalization ----

struct BatchNormGeometry {
  int n, c, h, w;
  size_t plane() const { return size_t(h) * w; }
  size_t per_channel() const { return size_t(n) * h * w; }  // m, the elements behind each statistic
  size_t size() const { return size_t(n) * c * h * w; }
};

// x and y (or x, dy and dx) of one shape, the parameter tensor 1xCx1x1 (spatial modes only).
int batch_norm_geometry(int mode, std::initializer_list<const TensorDesc*> data, const TensorDesc* bn,
                        BatchNormGeometry& g) {
  if (!bn) return kBadParamNullPointer;
  if (mode < kBatchNormPerActivation || mode > kBatchNormSpatialPersistent) return kBadParam;
  if (int st = matching_float_tensors(data); st == kBadParamNullPointer || st == kBadParam) return st;
  if (mode == kBatchNormPerActivation) return kNotSupported;
  const TensorDesc& x = **data.begin();
  if (!bn->set || bn->n != 1 || bn->c != x.c || bn->h != 1 || bn->w != 1) return kBadParam;
  if (!float_nchw(x) || !float_nchw(*bn)) return kNotSupported;
  g = BatchNormGeometry{x.n, x.c, x.h, x.w};
  return kSuccess;
}

bool valid_epsilon(double eps) { return eps >= kBatchNormMinEpsilon; }  // false for NaN too

template <typename Body>
void for_each_in_channel(const BatchNormGeometry& g, int c, Body body) {
  for (int n = 0; n < g.n; ++n) {
    const size_t base = (size_t(n) * g.c + c) * g.plane();
    for (size_t s = 0; s < g.plane(); ++s) body(base + s);
  }
}

// Mean and biased variance of channel c, two passes in double.
void channel_statistics(const BatchNormGeometry& g, const float* x, int c, double& mean, double& variance) {
  double sum = 0;
  for_each_in_channel(g, c, [&](size_t i) { sum += x[i]; });
  mean = sum / double(g.per_channel());
  double squares = 0;
  for_each_in_channel(g, c, [&](size_t i) { squares += (x[i] - mean) * (x[i] - mean); });
  variance = squares / double(g.per_channel());
}

int read_scalar(const void* p, float& v) {
  if (!p) return kBadParamNullPointer;
  v = *static_cast<const float*>(p);
  return kSuccess;
}

}  // namespace

using cudnnPoolingDescriptor_t = PoolingDesc*;
using cudnnActivationDescriptor_t = ActivationDesc*;

// ---- pooling ------------------------------------------------------------------------------

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnCreatePoolingDescriptor(cudnnPoolingDescriptor_t* desc) {
  if (!desc) return kBadParamNullPointer;
  *desc = new PoolingDesc();
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnSetPooling2dDescriptor(cudnnPoolingDescriptor_t desc, int mode, int nan_opt,
                                                                 int window_h, int window_w, int pad_h, int pad_w,
                                                                 int stride_h, int stride_w) {
  if (!desc) return kBadParamNullPointer;
  if (mode < kPoolMax || mode > kPoolMaxDeterministic || (nan_opt != 0 && nan_opt != kPropagateNan)) return kBadParam;
  if (window_h < 1 || window_w < 1 || stride_h < 1 || stride_w < 1 || pad_h < 0 || pad_w < 0) return kBadParam;
  // A window wholly in the padding would have nothing to pool.
  if (pad_h >= window_h || pad_w >= window_w) return kBadParam;
  *desc = PoolingDesc{true, mode, nan_opt, window_h, window_w, pad_h, pad_w, stride_h, stride_w};
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnDestroyPoolingDescriptor(cudnnPoolingDescriptor_t desc) {
  delete desc;
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnGetPooling2dForwardOutputDim(cudnnPoolingDescriptor_t desc,
                                                                       cudnnTensorDescriptor_t x, int* n, int* c,
                                                                       int* h, int* w) {
  if (!n || !c || !h || !w) return kBadParamNullPointer;
  PoolGeometry g{};
  if (int st = pool_geometry(desc, x, g); st != kSuccess) return st;
  *n = g.n;
  *c = g.c;
  *h = g.oh;
  *w = g.ow;
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnPoolingForward(cudnnHandle_t h, cudnnPoolingDescriptor_t desc,
                                                         const void* alpha, cudnnTensorDescriptor_t x_desc,
                                                         const void* x, const void* beta,
                                                         cudnnTensorDescriptor_t y_desc, void* y) {
  if (!h) return kNotInitialized;
  PoolGeometry g{};
  if (int st = full_pool_geometry(desc, x_desc, y_desc, g); st != kSuccess) return st;
  float a = 0, b = 0;
  if (int st = read_scalars(alpha, beta, a, b); st != kSuccess) return st;
  if (!all_given({x, y})) return kBadParamNullPointer;
  stand_in::on_device([=]() { pool_forward(g, static_cast<const float*>(x), static_cast<float*>(y), a, b); });
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnPoolingBackward(cudnnHandle_t h, cudnnPoolingDescriptor_t desc,
                                                          const void* alpha, cudnnTensorDescriptor_t y_desc,
                                                          const void* y, cudnnTensorDescriptor_t dy_desc,
                                                          const void* dy, cudnnTensorDescriptor_t x_desc,
                                                          const void* x, const void* beta,
                                                          cudnnTensorDescriptor_t dx_desc, void* dx) {
  if (!h) return kNotInitialized;
  PoolGeometry g{};
  if (int st = full_pool_geometry(desc, x_desc, y_desc, g); st != kSuccess) return st;
  if (int st = matching_float_tensors({y_desc, dy_desc}); st != kSuccess) return st;
  if (int st = matching_float_tensors({x_desc, dx_desc}); st != kSuccess) return st;
  float a = 0, b = 0;
  if (int st = read_scalars(alpha, beta, a, b); st != kSuccess) return st;
  if (!all_given({y, dy, x, dx})) return kBadParamNullPointer;
  stand_in::on_device([=]() {
    pool_backward(g, static_cast<const float*>(y), static_cast<const float*>(dy), static_cast<const float*>(x),
                  static_cast<float*>(dx), a, b);
  });
  return kSuccess;
}

// ---- activation ---------------------------------------------------------------------------

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnCreateActivationDescriptor(cudnnActivationDescriptor_t* desc) {
  if (!desc) return kBadParamNullPointer;
  *desc = new ActivationDesc();
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnSetActivationDescriptor(cudnnActivationDescriptor_t desc, int mode,
                                                                  int nan_opt, double coef) {
  if (!desc) return kBadParamNullPointer;
  if (mode < kSigmoid || mode > kSwish || (nan_opt != 0 && nan_opt != kPropagateNan) || std::isnan(coef))
    return kBadParam;
  *desc = ActivationDesc{true, mode, nan_opt, coef};
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnDestroyActivationDescriptor(cudnnActivationDescriptor_t desc) {
  delete desc;
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnActivationForward(cudnnHandle_t h, cudnnActivationDescriptor_t desc,
                                                            const void* alpha, cudnnTensorDescriptor_t x_desc,
                                                            const void* x, const void* beta,
                                                            cudnnTensorDescriptor_t y_desc, void* y) {
  if (!h) return kNotInitialized;
  if (int st = activation_settings(desc); st != kSuccess) return st;
  if (int st = matching_float_tensors({x_desc, y_desc}); st != kSuccess) return st;
  float a = 0, b = 0;
  if (int st = read_scalars(alpha, beta, a, b); st != kSuccess) return st;
  if (!all_given({x, y})) return kBadParamNullPointer;
  const int mode = desc->mode;
  const bool propagate = desc->nan == kPropagateNan;
  const double coef = desc->coef;
  const size_t count = element_count(*x_desc);
  stand_in::on_device([=]() {
    const float* xs = static_cast<const float*>(x);
    std::vector<double> acc(count);
    for (size_t i = 0; i < count; ++i) acc[i] = activate(mode, propagate, coef, xs[i]);
    blend(static_cast<float*>(y), acc, a, b);
  });
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnActivationBackward(cudnnHandle_t h, cudnnActivationDescriptor_t desc,
                                                             const void* alpha, cudnnTensorDescriptor_t y_desc,
                                                             const void* y, cudnnTensorDescriptor_t dy_desc,
                                                             const void* dy, cudnnTensorDescriptor_t x_desc,
                                                             const void* x, const void* beta,
                                                             cudnnTensorDescriptor_t dx_desc, void* dx) {
  if (!h) return kNotInitialized;
  if (int st = activation_settings(desc); st != kSuccess) return st;
  if (int st = matching_float_tensors({y_desc, dy_desc, x_desc, dx_desc}); st != kSuccess) return st;
  float a = 0, b = 0;
  if (int st = read_scalars(alpha, beta, a, b); st != kSuccess) return st;
  if (!all_given({y, dy, x, dx})) return kBadParamNullPointer;
  const int mode = desc->mode;
  const double coef = desc->coef;
  const size_t count = element_count(*x_desc);
  stand_in::on_device([=]() {
    const float *ys = static_cast<const float*>(y), *dys = static_cast<const float*>(dy),
                *xs = static_cast<const float*>(x);
    std::vector<double> acc(count);
    for (size_t i = 0; i < count; ++i) acc[i] = activation_gradient(mode, coef, ys[i], dys[i], xs[i]);
    blend(static_cast<float*>(dx), acc, a, b);
  });
  return kSuccess;
}

// ---- softmax ------------------------------------------------------------------------------

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnSoftmaxForward(cudnnHandle_t h, int algo, int mode, const void* alpha,
                                                         cudnnTensorDescriptor_t x_desc, const void* x,
                                                         const void* beta, cudnnTensorDescriptor_t y_desc, void* y) {
  if (!h) return kNotInitialized;
  if (int st = matching_float_tensors({x_desc, y_desc}); st != kSuccess) return st;
  SoftmaxGeometry g{};
  if (int st = softmax_geometry(algo, mode, *x_desc, g); st != kSuccess) return st;
  float a = 0, b = 0;
  if (int st = read_scalars(alpha, beta, a, b); st != kSuccess) return st;
  if (!all_given({x, y})) return kBadParamNullPointer;
  stand_in::on_device([=]() { softmax_forward(g, static_cast<const float*>(x), static_cast<float*>(y), a, b); });
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnSoftmaxBackward(cudnnHandle_t h, int algo, int mode, const void* alpha,
                                                          cudnnTensorDescriptor_t y_desc, const void* y,
                                                          cudnnTensorDescriptor_t dy_desc, const void* dy,
                                                          const void* beta, cudnnTensorDescriptor_t dx_desc,
                                                          void* dx) {
  if (!h) return kNotInitialized;
  if (int st = matching_float_tensors({y_desc, dy_desc, dx_desc}); st != kSuccess) return st;
  SoftmaxGeometry g{};
  if (int st = softmax_geometry(algo, mode, *y_desc, g); st != kSuccess) return st;
  float a = 0, b = 0;
  if (int st = read_scalars(alpha, beta, a, b); st != kSuccess) return st;
  if (!all_given({y, dy, dx})) return kBadParamNullPointer;
  stand_in::on_device([=]() {
    softmax_backward(g, static_cast<const float*>(y), static_cast<const float*>(dy), static_cast<float*>(dx), a, b);
  });
  return kSuccess;
}

// ---- batch normalization ------------------------------------------------------------------

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnDeriveBNTensorDescriptor(cudnnTensorDescriptor_t derived,
                                                                   cudnnTensorDescriptor_t x, int mode) {
  if (!derived || !x) return kBadParamNullPointer;
  if (!x->set || mode < kBatchNormPerActivation || mode > kBatchNormSpatialPersistent) return kBadParam;
  // Parameters are double for double data and float for every other type.
  const int type = x->type == kDataDouble ? kDataDouble : kDataFloat;
  *derived = mode == kBatchNormPerActivation ? TensorDesc{true, kFormatNCHW, type, 1, x->c, x->h, x->w}
                                             : TensorDesc{true, kFormatNCHW, type, 1, x->c, 1, 1};
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnBatchNormalizationForwardTraining(
    cudnnHandle_t h, int mode, const void* alpha, const void* beta, cudnnTensorDescriptor_t x_desc, const void* x,
    cudnnTensorDescriptor_t y_desc, void* y, cudnnTensorDescriptor_t bn_desc, const void* scale, const void* bias,
    double average_factor, void* running_mean, void* running_var, double eps, void* save_mean, void* save_inv_std) {
  if (!h) return kNotInitialized;
  BatchNormGeometry g{};
  if (int st = batch_norm_geometry(mode, {x_desc, y_desc}, bn_desc, g); st != kSuccess) return st;
  float a = 0, b = 0;
  if (int st = read_scalars(alpha, beta, a, b); st != kSuccess) return st;
  if (!all_given({x, y, scale, bias})) return kBadParamNullPointer;
  // The running statistics, and the saved ones, are given or left out in pairs.
  if ((running_mean == nullptr) != (running_var == nullptr)) return kBadParam;
  if ((save_mean == nullptr) != (save_inv_std == nullptr)) return kBadParam;
  if (!valid_epsilon(eps)) return kBadParam;
  if (g.per_channel() < 2) return kBadParam;  // one value per channel has no variance to train with
  stand_in::on_device([=]() {
    const float* xs = static_cast<const float*>(x);
    const float *gamma = static_cast<const float*>(scale), *shift = static_cast<const float*>(bias);
    const double m = double(g.per_channel());
    std::vector<double> acc(g.size());
    for (int c = 0; c < g.c; ++c) {
      double mean = 0, variance = 0;
      channel_statistics(g, xs, c, mean, variance);
      const double inv_std = 1.0 / std::sqrt(variance + eps);
      for_each_in_channel(g, c, [&](size_t i) { acc[i] = gamma[c] * (xs[i] - mean) * inv_std + shift[c]; });
      if (running_mean) {
        // The running variance is the unbiased one (m / (m - 1)), as frameworks expect.
        float *rm = static_cast<float*>(running_mean), *rv = static_cast<float*>(running_var);
        rm[c] = static_cast<float>(rm[c] * (1.0 - average_factor) + average_factor * mean);
        rv[c] = static_cast<float>(rv[c] * (1.0 - average_factor) + average_factor * variance * m / (m - 1.0));
      }
      if (save_mean) {
        static_cast<float*>(save_mean)[c] = static_cast<float>(mean);
        static_cast<float*>(save_inv_std)[c] = static_cast<float>(inv_std);
      }
    }
    blend(static_cast<float*>(y), acc, a, b);
  });
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnBatchNormalizationForwardInference(
    cudnnHandle_t h, int mode, const void* alpha, const void* beta, cudnnTensorDescriptor_t x_desc, const void* x,
    cudnnTensorDescriptor_t y_desc, void* y, cudnnTensorDescriptor_t bn_desc, const void* scale, const void* bias,
    const void* est_mean, const void* est_var, double eps) {
  if (!h) return kNotInitialized;
  BatchNormGeometry g{};
  if (int st = batch_norm_geometry(mode, {x_desc, y_desc}, bn_desc, g); st != kSuccess) return st;
  float a = 0, b = 0;
  if (int st = read_scalars(alpha, beta, a, b); st != kSuccess) return st;
  if (!all_given({x, y, scale, bias, est_mean, est_var})) return kBadParamNullPointer;
  if (!valid_epsilon(eps)) return kBadParam;
  stand_in::on_device([=]() {
    const float* xs = static_cast<const float*>(x);
    const float *gamma = static_cast<const float*>(scale), *shift = static_cast<const float*>(bias),
                *mean = static_cast<const float*>(est_mean), *var = static_cast<const float*>(est_var);
    std::vector<double> acc(g.size());
    for (int c = 0; c < g.c; ++c) {
      const double inv_std = 1.0 / std::sqrt(double(var[c]) + eps);
      for_each_in_channel(g, c, [&](size_t i) { acc[i] = gamma[c] * (xs[i] - double(mean[c])) * inv_std + shift[c]; });
    }
    blend(static_cast<float*>(y), acc, a, b);
  });
  return kSuccess;
}

LRFACE_STAND_IN_EXPORT cudnnStatus_t cudnnBatchNormalizationBackward(
    cudnnHandle_t h, int mode, const void* alpha_data, const void* beta_data, const void* alpha_param,
    const void* beta_param, cudnnTensorDescriptor_t x_desc, const void* x, cudnnTensorDescriptor_t dy_desc,
    const void* dy, cudnnTensorDescriptor_t dx_desc, void* dx, cudnnTensorDescriptor_t bn_desc, const void* scale,
    void* dscale, void* dbias, double eps, const void* saved_mean, const void* saved_inv_std) {
  if (!h) return kNotInitialized;
  BatchNormGeometry g{};
  if (int st = batch_norm_geometry(mode, {x_desc, dy_desc, dx_desc}, bn_desc, g); st != kSuccess) return st;
  float ad = 0, bd = 0, ap = 0, bp = 0;
  if (int st = read_scalars(alpha_data, beta_data, ad, bd); st != kSuccess) return st;
  if (int st = read_scalar(alpha_param, ap); st != kSuccess) return st;
  if (int st = read_scalar(beta_param, bp); st != kSuccess) return st;
  if (!all_given({x, dy, dx, scale, dscale, dbias})) return kBadParamNullPointer;
  if ((saved_mean == nullptr) != (saved_inv_std == nullptr)) return kBadParam;
  if (!valid_epsilon(eps)) return kBadParam;
  stand_in::on_device([=]() {
    const float *xs = static_cast<const float*>(x), *dys = static_cast<const float*>(dy),
                *gamma = static_cast<const float*>(scale);
    const double m = double(g.per_channel());
    std::vector<double> dx_acc(g.size()), dscale_acc(size_t(g.c)), dbias_acc(size_t(g.c));
    for (int c = 0; c < g.c; ++c) {
      double mean = 0, inv_std = 0;
      if (saved_mean) {
        mean = static_cast<const float*>(saved_mean)[c];
        inv_std = static_cast<const float*>(saved_inv_std)[c];
      } else {
        double variance = 0;
        channel_statistics(g, xs, c, mean, variance);
        inv_std = 1.0 / std::sqrt(variance + eps);
      }
      double sum_dy = 0, sum_dy_xhat = 0;
      for_each_in_channel(g, c, [&](size_t i) {
        sum_dy += dys[i];
        sum_dy_xhat += dys[i] * (xs[i] - mean) * inv_std;
      });
      for_each_in_channel(g, c, [&](size_t i) {
        const double xhat = (xs[i] - mean) * inv_std;
        dx_acc[i] = gamma[c] * inv_std / m * (m * dys[i] - sum_dy - xhat * sum_dy_xhat);
      });
      dscale_acc[size_t(c)] = sum_dy_xhat;
      dbias_acc[size_t(c)] = sum_dy;
    }
    blend(static_cast<float*>(dx), dx_acc, ad, bd);
    blend(static_cast<float*>(dscale), dscale_acc, ap, bp);
    blend(static_cast<float*>(dbias), dbias_acc, ap, bp);
  });
  return kSuccess;
}
