// A stand-in for cuDNN 9 (built as libcudnn.so.9 by the emulated build only, never shipped):
// the legacy convolution API's entry points, written from NVIDIA's API reference as plain
// loops over the emulated device's memory, so the emulated test run drives the addon's cuDNN
// path (native/cuda/libs/cudnn_conv.cpp) end to end. Independent of the addon's own
// declarations: the vendor's C names and plain C types only.
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
#include <cstring>
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
