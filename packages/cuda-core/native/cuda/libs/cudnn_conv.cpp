// Convolutions through cuDNN's convolution API (the same calls in cuDNN 8 and 9): one set
// of descriptors and one algorithm per shape, chosen by cuDNN's heuristics or, with
// set_cudnn_benchmark(true), by timing every algorithm once on the first call.
#include "cudnn_conv.h"

#include <climits>
#include <cstring>
#include <map>
#include <vector>

#include "../check.h"
#include "../device_memory.h"
#include "../device_query.h"
#include "library_session.h"

namespace lrface::cuda {

namespace {

// Algorithms asking for more workspace than this are passed over (cuDNN's fastest ones for
// large layers need tens of MiB; a few GiB would crowd out the caller's tensors).
constexpr size_t kMaxWorkspaceBytes = size_t(1) << 30;
// Distinct shapes kept; past this the cache starts over (varying image sizes would grow it).
constexpr size_t kMaxPlans = 1024;

enum class Direction { Forward = 0, BackwardData = 1, BackwardFilter = 2 };

struct PlanKey {
  int device;
  bool tf32;
  bool measured;
  int64_t geom[16];
  bool operator<(const PlanKey& o) const {
    if (device != o.device) return device < o.device;
    if (tf32 != o.tf32) return tf32 < o.tf32;
    if (measured != o.measured) return measured < o.measured;
    return std::memcmp(geom, o.geom, sizeof geom) < 0;
  }
};

struct Choice {
  int algo = -1;  // -1: not chosen yet
  int math_type = 0;
  size_t workspace = 0;
};

struct Plan {
  cudnn::TensorDesc x = nullptr;  // the convolution's input [n, c, h, w]
  cudnn::TensorDesc y = nullptr;  // its output [n, o, out_h, out_w]
  cudnn::FilterDesc w = nullptr;  // [o, c / groups, kh, kw]
  cudnn::ConvDesc conv = nullptr;
  bool usable = false;  // false: cuDNN's output size differs from ours (asymmetric padding)
  Choice choice[3];
};

// The plans are guarded by the CudnnSession lock.
std::map<PlanKey, Plan>& plans() {
  static auto* p = new std::map<PlanKey, Plan>();  // never destroyed: descriptors may be in use at exit
  return *p;
}

void destroy(const CudnnApi& api, Plan& p) {
  if (p.x) api.DestroyTensorDescriptor(p.x);
  if (p.y) api.DestroyTensorDescriptor(p.y);
  if (p.w) api.DestroyFilterDescriptor(p.w);
  if (p.conv) api.DestroyConvolutionDescriptor(p.conv);
}

bool fits_int(const cpu::ConvGeometry& g) {
  const int64_t limit = INT_MAX;
  const int64_t x = g.n * g.c * g.h * g.w, y = g.n * g.o * g.out_h * g.out_w, w = g.o * (g.c / g.groups) * g.kh * g.kw;
  return x <= limit && y <= limit && w <= limit && g.n <= limit;
}

// Caller holds a CudnnSession.
Plan& plan_for(const CudnnApi& api, int device, const cpu::ConvGeometry& g, bool tf32, bool measured) {
  PlanKey key{device, tf32, measured, {g.n, g.c, g.h, g.w, g.o, g.kh, g.kw, g.sh, g.sw, g.pt, g.pl, g.dh, g.dw,
                                       g.groups, g.out_h, g.out_w}};
  auto& cache = plans();
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  if (cache.size() >= kMaxPlans) {
    for (auto& entry : cache) destroy(api, entry.second);
    cache.clear();
  }
  Plan& p = cache[key];
  const auto i = [](int64_t v) { return static_cast<int>(v); };
  LR_CUDA_CHECK(api.CreateTensorDescriptor(&p.x));
  LR_CUDA_CHECK(api.CreateTensorDescriptor(&p.y));
  LR_CUDA_CHECK(api.CreateFilterDescriptor(&p.w));
  LR_CUDA_CHECK(api.CreateConvolutionDescriptor(&p.conv));
  LR_CUDA_CHECK(api.SetTensor4dDescriptor(p.x, cudnn::kTensorNCHW, cudnn::kDataFloat, i(g.n), i(g.c), i(g.h), i(g.w)));
  LR_CUDA_CHECK(
      api.SetTensor4dDescriptor(p.y, cudnn::kTensorNCHW, cudnn::kDataFloat, i(g.n), i(g.o), i(g.out_h), i(g.out_w)));
  LR_CUDA_CHECK(api.SetFilter4dDescriptor(p.w, cudnn::kDataFloat, cudnn::kTensorNCHW, i(g.o), i(g.c / g.groups),
                                          i(g.kh), i(g.kw)));
  // Symmetric padding pt/pl: windows start where ours do; rows past the bottom read zeros
  // in both, so equal output sizes mean equal results.
  LR_CUDA_CHECK(api.SetConvolution2dDescriptor(p.conv, i(g.pt), i(g.pl), i(g.sh), i(g.sw), i(g.dh), i(g.dw),
                                               cudnn::kCrossCorrelation, cudnn::kDataFloat));
  LR_CUDA_CHECK(api.SetConvolutionGroupCount(p.conv, i(g.groups)));
  LR_CUDA_CHECK(api.SetConvolutionMathType(p.conv, tf32 ? cudnn::kTensorOpMath : cudnn::kFmaMath));
  int n = 0, c = 0, h = 0, w = 0;
  LR_CUDA_CHECK(api.GetConvolution2dForwardOutputDim(p.conv, p.x, p.w, &n, &c, &h, &w));
  p.usable = n == g.n && c == g.o && h == g.out_h && w == g.out_w;
  return p;
}

// The first algorithm, in cuDNN's order (heuristic rank, or measured time), that succeeded,
// fits the workspace limit and, without TF32, does not use tensor-op math.
Choice pick(const cudnn::AlgoPerf* perf, int count, bool tf32) {
  for (int k = 0; k < count; ++k) {
    const cudnn::AlgoPerf& r = perf[k];
    if (r.status != CudnnStatus::Success || r.memory > kMaxWorkspaceBytes) continue;
    if (!tf32 && r.math_type != cudnn::kFmaMath && r.math_type != cudnn::kDefaultMath) continue;
    return Choice{r.algo, tf32 ? r.math_type : cudnn::kFmaMath, r.memory};
  }
  return Choice{};
}

// Heuristic ranking of every algorithm for `dir`, as cuDNN's perf list.
std::vector<cudnn::AlgoPerf> rank(const CudnnApi& api, cudnn::Handle h, const Plan& p, Direction dir) {
  std::vector<cudnn::AlgoPerf> perf(8);
  int count = 0;
  switch (dir) {
    case Direction::Forward:
      LR_CUDA_CHECK(api.GetConvolutionForwardAlgorithm_v7(h, p.x, p.w, p.conv, p.y, cudnn::kFwdAlgoCount, &count,
                                                          perf.data()));
      break;
    case Direction::BackwardData:
      LR_CUDA_CHECK(api.GetConvolutionBackwardDataAlgorithm_v7(h, p.w, p.y, p.conv, p.x, cudnn::kBwdDataAlgoCount,
                                                               &count, perf.data()));
      break;
    case Direction::BackwardFilter:
      LR_CUDA_CHECK(api.GetConvolutionBackwardFilterAlgorithm_v7(h, p.x, p.y, p.conv, p.w,
                                                                 cudnn::kBwdFilterAlgoCount, &count, perf.data()));
      break;
  }
  perf.resize(static_cast<size_t>(count));
  return perf;
}

// Times every algorithm on the call's own tensors (writing into its output, which the call
// then overwrites), with a workspace as large as the largest the heuristics list within the limit.
std::vector<cudnn::AlgoPerf> measure(const CudnnApi& api, cudnn::Handle h, int device, const Plan& p, Direction dir,
                                     const void* in0, const void* in1, void* out) {
  size_t largest = 0;
  for (const auto& r : rank(api, h, p, dir))
    if (r.status == CudnnStatus::Success && r.memory <= kMaxWorkspaceBytes && r.memory > largest) largest = r.memory;
  DeviceBuffer ws(device, largest);
  std::vector<cudnn::AlgoPerf> perf(8);
  int count = 0;
  switch (dir) {
    case Direction::Forward:
      LR_CUDA_CHECK(api.FindConvolutionForwardAlgorithmEx(h, p.x, in0, p.w, in1, p.conv, p.y, out,
                                                          cudnn::kFwdAlgoCount, &count, perf.data(), ws.as(),
                                                          ws.bytes()));
      break;
    case Direction::BackwardData:
      LR_CUDA_CHECK(api.FindConvolutionBackwardDataAlgorithmEx(h, p.w, in0, p.y, in1, p.conv, p.x, out,
                                                               cudnn::kBwdDataAlgoCount, &count, perf.data(),
                                                               ws.as(), ws.bytes()));
      break;
    case Direction::BackwardFilter:
      LR_CUDA_CHECK(api.FindConvolutionBackwardFilterAlgorithmEx(h, p.x, in0, p.y, in1, p.conv, p.w, out,
                                                                 cudnn::kBwdFilterAlgoCount, &count, perf.data(),
                                                                 ws.as(), ws.bytes()));
      break;
  }
  perf.resize(static_cast<size_t>(count));
  count_cudnn_measured();
  return perf;
}

size_t workspace_size(const CudnnApi& api, cudnn::Handle h, const Plan& p, Direction dir, int algo) {
  size_t bytes = 0;
  switch (dir) {
    case Direction::Forward:
      LR_CUDA_CHECK(api.GetConvolutionForwardWorkspaceSize(h, p.x, p.w, p.conv, p.y, algo, &bytes));
      break;
    case Direction::BackwardData:
      LR_CUDA_CHECK(api.GetConvolutionBackwardDataWorkspaceSize(h, p.w, p.y, p.conv, p.x, algo, &bytes));
      break;
    case Direction::BackwardFilter:
      LR_CUDA_CHECK(api.GetConvolutionBackwardFilterWorkspaceSize(h, p.x, p.y, p.conv, p.w, algo, &bytes));
      break;
  }
  return bytes;
}

// in0/in1 are the direction's inputs in cuDNN's argument order: forward (x, w), backward data
// (w, dy), backward filter (x, dy).
bool run(int device, const cpu::ConvGeometry& g, Direction dir, const void* in0, const void* in1, void* out) {
  const CudnnApi* api = cudnn_api();
  if (!api || g.n < 1 || !fits_int(g)) return false;
  const bool tf32 = allow_tf32(), measured = cudnn_benchmark();
  CudnnSession session(*api, device);
  cudnn::Handle h = session.handle();
  Plan& p = plan_for(*api, device, g, tf32, measured);
  if (!p.usable) return false;
  Choice& c = p.choice[static_cast<int>(dir)];
  if (c.algo < 0) {
    // Another direction's choice may have left its math type on the shared descriptor.
    LR_CUDA_CHECK(api->SetConvolutionMathType(p.conv, tf32 ? cudnn::kTensorOpMath : cudnn::kFmaMath));
    const auto perf = measured ? measure(*api, h, device, p, dir, in0, in1, out) : rank(*api, h, p, dir);
    Choice chosen = pick(perf.data(), static_cast<int>(perf.size()), tf32);
    if (chosen.algo < 0) return false;  // nothing within the limits: the engine's own kernels
    LR_CUDA_CHECK(api->SetConvolutionMathType(p.conv, chosen.math_type));
    chosen.workspace = workspace_size(*api, h, p, dir, chosen.algo);
    c = chosen;
  } else {
    LR_CUDA_CHECK(api->SetConvolutionMathType(p.conv, c.math_type));
  }
  DeviceBuffer ws(device, c.workspace);
  const float one = 1.0f, zero = 0.0f;
  switch (dir) {
    case Direction::Forward:
      LR_CUDA_CHECK(api->ConvolutionForward(h, &one, p.x, in0, p.w, in1, p.conv, c.algo, ws.as(), ws.bytes(), &zero,
                                            p.y, out));
      break;
    case Direction::BackwardData:
      LR_CUDA_CHECK(api->ConvolutionBackwardData(h, &one, p.w, in0, p.y, in1, p.conv, c.algo, ws.as(), ws.bytes(),
                                                 &zero, p.x, out));
      break;
    case Direction::BackwardFilter:
      LR_CUDA_CHECK(api->ConvolutionBackwardFilter(h, &one, p.x, in0, p.y, in1, p.conv, c.algo, ws.as(),
                                                   ws.bytes(), &zero, p.w, out));
      break;
  }
  count_cudnn_conv();
  return true;
}

}  // namespace

bool cudnn_conv2d_forward(int device, const cpu::ConvGeometry& g, const float* x, const float* w, float* out) {
  return run(device, g, Direction::Forward, x, w, out);
}

bool cudnn_conv2d_backward_data(int device, const cpu::ConvGeometry& g, const float* gy, const float* w, float* gx) {
  return run(device, g, Direction::BackwardData, w, gy, gx);
}

bool cudnn_conv2d_backward_filter(int device, const cpu::ConvGeometry& g, const float* x, const float* gy, float* gw) {
  return run(device, g, Direction::BackwardFilter, x, gy, gw);
}

}  // namespace lrface::cuda
