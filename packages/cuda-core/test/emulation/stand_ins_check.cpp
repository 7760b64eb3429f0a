// Checks the cuDNN and cuBLAS stand-ins (stand-ins/) against what NVIDIA documents, on host
// memory (opened without the emulated addon, they run their work at once): statuses for bad
// arguments, output sizes, results against textbook loops (column-major products) and the
// adjoint identities that tie the three convolution directions together, alpha/beta, the
// algorithm lists and workspace checks; for pooling, activation, softmax and batch
// normalization, results against textbook loops and hand-computed values, gradients against
// central finite differences of the forward calls, NaN handling and the error statuses.
// Run by run.mjs with the two libraries' paths.
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <vector>

namespace {

int failures = 0, checks = 0;
void expect(bool ok, const char* what, int line) {
  ++checks;
  if (!ok) {
    ++failures;
    std::printf("FAILED line %d: %s\n", line, what);
  }
}
#define EXPECT(cond) expect((cond), #cond, __LINE__)

void* lib = nullptr;
template <typename Fn>
Fn sym(const char* name) {
  void* p = dlsym(lib, name);
  if (!p) {
    std::printf("missing %s\n", name);
    std::exit(1);
  }
  return reinterpret_cast<Fn>(p);
}

std::vector<float> random(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}
double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * b[i];
  return s;
}
bool close(double a, double b, double tol = 1e-4) { return std::fabs(a - b) <= tol * (1 + std::fabs(b)); }

struct Perf {
  int algo, status;
  float time;
  size_t memory;
  int determinism, math, reserved[3];
};

void check_cudnn(const char* path) {
  lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    std::printf("cannot open %s: %s\n", path, dlerror());
    std::exit(1);
  }
  using P = void*;
  auto version = sym<size_t (*)()>("cudnnGetVersion");
  auto error_string = sym<const char* (*)(int)>("cudnnGetErrorString");
  auto create = sym<int (*)(P*)>("cudnnCreate");
  auto create_tensor = sym<int (*)(P*)>("cudnnCreateTensorDescriptor");
  auto set_tensor = sym<int (*)(P, int, int, int, int, int, int)>("cudnnSetTensor4dDescriptor");
  auto create_filter = sym<int (*)(P*)>("cudnnCreateFilterDescriptor");
  auto set_filter = sym<int (*)(P, int, int, int, int, int, int)>("cudnnSetFilter4dDescriptor");
  auto create_conv = sym<int (*)(P*)>("cudnnCreateConvolutionDescriptor");
  auto set_conv = sym<int (*)(P, int, int, int, int, int, int, int, int)>("cudnnSetConvolution2dDescriptor");
  auto set_groups = sym<int (*)(P, int)>("cudnnSetConvolutionGroupCount");
  auto set_math = sym<int (*)(P, int)>("cudnnSetConvolutionMathType");
  auto output_dim = sym<int (*)(P, P, P, int*, int*, int*, int*)>("cudnnGetConvolution2dForwardOutputDim");
  auto fwd_v7 = sym<int (*)(P, P, P, P, P, int, int*, Perf*)>("cudnnGetConvolutionForwardAlgorithm_v7");
  auto fwd_find = sym<int (*)(P, P, const void*, P, const void*, P, P, void*, int, int*, Perf*, void*, size_t)>(
      "cudnnFindConvolutionForwardAlgorithmEx");
  auto fwd_ws = sym<int (*)(P, P, P, P, P, int, size_t*)>("cudnnGetConvolutionForwardWorkspaceSize");
  auto forward = sym<int (*)(P, const void*, P, const void*, P, const void*, P, int, void*, size_t, const void*, P,
                             void*)>("cudnnConvolutionForward");
  auto bwd_data_v7 = sym<int (*)(P, P, P, P, P, int, int*, Perf*)>("cudnnGetConvolutionBackwardDataAlgorithm_v7");
  auto bwd_data = sym<int (*)(P, const void*, P, const void*, P, const void*, P, int, void*, size_t, const void*, P,
                              void*)>("cudnnConvolutionBackwardData");
  auto bwd_filter_v7 =
      sym<int (*)(P, P, P, P, P, int, int*, Perf*)>("cudnnGetConvolutionBackwardFilterAlgorithm_v7");
  auto bwd_filter = sym<int (*)(P, const void*, P, const void*, P, const void*, P, int, void*, size_t, const void*,
                                P, void*)>("cudnnConvolutionBackwardFilter");
  constexpr int kBadParam = 2000, kNotSupported = 3000, kFloat = 0, kNCHW = 0, kConv = 0, kCorr = 1;

  EXPECT(version() == 90600);
  EXPECT(error_string(kBadParam) != nullptr && error_string(kBadParam)[0] != '\0');
  P h = nullptr, x = nullptr, y = nullptr, w = nullptr, conv = nullptr;
  EXPECT(create(&h) == 0 && create_tensor(&x) == 0 && create_tensor(&y) == 0 && create_filter(&w) == 0 &&
         create_conv(&conv) == 0);
  // Invalid values.
  EXPECT(set_tensor(x, kNCHW, kFloat, 0, 4, 9, 10) == kBadParam);
  EXPECT(set_filter(w, kFloat, kNCHW, 6, -1, 3, 2) == kBadParam);
  EXPECT(set_conv(conv, 1, 1, 0, 1, 1, 1, kCorr, kFloat) == kBadParam);    // stride 0
  EXPECT(set_conv(conv, -1, 1, 1, 1, 1, 1, kCorr, kFloat) == kBadParam);   // negative padding
  EXPECT(set_conv(conv, 1, 1, 1, 1, 1, 1, 7, kFloat) == kBadParam);        // no such mode
  EXPECT(set_groups(conv, 0) == kBadParam);
  EXPECT(set_math(conv, 9) == kBadParam);
  // x [2, 4, 9, 10], w [6, 2, 3, 2], 2 groups, padding (2, 1), stride (1, 2), dilation (2, 1):
  // out = 1 + (in + 2 pad - ((f - 1) dil + 1)) / stride = 9 x 6.
  const int N = 2, C = 4, H = 9, W = 10, K = 6, CG = 2, R = 3, S = 2, OH = 9, OW = 6;
  EXPECT(set_tensor(x, kNCHW, kFloat, N, C, H, W) == 0);
  EXPECT(set_filter(w, kFloat, kNCHW, K, CG, R, S) == 0);
  EXPECT(set_conv(conv, 2, 1, 1, 2, 2, 1, kCorr, kFloat) == 0);
  int n = 0, c = 0, oh = 0, ow = 0;
  EXPECT(output_dim(conv, x, w, &n, &c, &oh, &ow) == kBadParam);  // 1 group: 4 channels against 2 per group
  EXPECT(set_groups(conv, 2) == 0);
  EXPECT(output_dim(conv, x, w, &n, &c, &oh, &ow) == 0 && n == N && c == K && oh == OH && ow == OW);

  EXPECT(set_tensor(y, kNCHW, kFloat, N, K, OH + 1, OW) == 0);
  Perf perf[8];
  int count = 0;
  EXPECT(fwd_v7(h, x, w, conv, y, 8, &count, perf) == kBadParam);  // y one row too tall
  EXPECT(set_tensor(y, kNCHW, kFloat, N, K, OH, OW) == 0);
  EXPECT(fwd_v7(h, x, w, conv, y, 8, &count, perf) == 0 && count == 8);
  int without_workspace = 0, with_workspace = 0;
  for (int i = 0; i < count; ++i) {
    if (perf[i].status != 0) continue;
    size_t bytes = 1;
    EXPECT(fwd_ws(h, x, w, conv, y, perf[i].algo, &bytes) == 0 && bytes == perf[i].memory);
    (bytes == 0 ? without_workspace : with_workspace)++;
  }
  EXPECT(without_workspace == 1 && with_workspace >= 2);
  size_t bytes = 0;
  EXPECT(fwd_ws(h, x, w, conv, y, 4, &bytes) == kNotSupported);  // FFT: not offered

  const auto xs = random(size_t(N) * C * H * W, 1), ws = random(size_t(K) * CG * R * S, 2),
             dy = random(size_t(N) * K * OH * OW, 3);
  // Textbook cross-correlation.
  std::vector<double> ref(dy.size(), 0.0);
  for (int b = 0; b < N; ++b)
    for (int k = 0; k < K; ++k)
      for (int i = 0; i < OH; ++i)
        for (int j = 0; j < OW; ++j)
          for (int cg = 0; cg < CG; ++cg)
            for (int r = 0; r < R; ++r)
              for (int s = 0; s < S; ++s) {
                const int ih = i * 1 - 2 + r * 2, iw = j * 2 - 1 + s * 1, ch = (k / (K / 2)) * CG + cg;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                ref[((size_t(b) * K + k) * OH + i) * OW + j] +=
                    double(xs[((size_t(b) * C + ch) * H + ih) * W + iw]) * ws[((size_t(k) * CG + cg) * R + r) * S + s];
              }
  const int algo = perf[0].algo;
  std::vector<char> workspace(perf[0].memory + 1);
  std::vector<float> out(dy.size(), std::numeric_limits<float>::quiet_NaN());
  const float one = 1, zero = 0, two = 2, half = 0.5f;
  EXPECT(perf[0].memory > 0);
  EXPECT(forward(h, &one, x, xs.data(), w, ws.data(), conv, algo, workspace.data(), perf[0].memory - 1, &zero, y,
                 out.data()) == kBadParam);  // a byte short of the workspace
  EXPECT(forward(h, &one, x, xs.data(), w, ws.data(), conv, algo, workspace.data(), perf[0].memory, &zero, y,
                 out.data()) == 0);
  bool same = true;
  for (size_t i = 0; i < out.size(); ++i) same = same && close(out[i], ref[i]);  // NaN never read with beta 0
  EXPECT(same);
  std::vector<float> blended(dy);
  EXPECT(forward(h, &two, x, xs.data(), w, ws.data(), conv, algo, workspace.data(), workspace.size(), &half, y,
                 blended.data()) == 0);
  same = true;
  for (size_t i = 0; i < out.size(); ++i) same = same && close(blended[i], 2 * ref[i] + 0.5 * dy[i]);
  EXPECT(same);
  // Convolution mode applies the filter rotated by 180 degrees.
  std::vector<float> flipped(ws.size());
  for (int k = 0; k < K * CG; ++k)
    for (int r = 0; r < R; ++r)
      for (int s = 0; s < S; ++s) flipped[(size_t(k) * R + r) * S + s] = ws[(size_t(k) * R + R - 1 - r) * S + S - 1 - s];
  std::vector<float> convolved(dy.size());
  EXPECT(set_conv(conv, 2, 1, 1, 2, 2, 1, kConv, kFloat) == 0);
  EXPECT(forward(h, &one, x, xs.data(), w, flipped.data(), conv, algo, workspace.data(), workspace.size(), &zero, y,
                 convolved.data()) == 0);
  same = true;
  for (size_t i = 0; i < out.size(); ++i) same = same && close(convolved[i], out[i]);
  EXPECT(same);
  EXPECT(set_conv(conv, 2, 1, 1, 2, 2, 1, kCorr, kFloat) == 0);

  // The adjoints: <conv(x, w), dy> = <x, backward_data(w, dy)> = <w, backward_filter(x, dy)>.
  const double forward_dot = dot(out, dy);
  EXPECT(bwd_data_v7(h, w, y, conv, x, 6, &count, perf) == 0 && count == 6 && perf[0].status == 0);
  std::vector<char> ws_data(perf[0].memory);
  std::vector<float> dx(xs.size(), std::numeric_limits<float>::quiet_NaN());
  EXPECT(bwd_data(h, &one, w, ws.data(), y, dy.data(), conv, perf[0].algo, ws_data.data(), ws_data.size(), &zero, x,
                  dx.data()) == 0);
  EXPECT(close(dot(xs, dx), forward_dot));
  EXPECT(bwd_filter_v7(h, x, y, conv, w, 7, &count, perf) == 0 && count == 7 && perf[0].status == 0);
  std::vector<char> ws_filter(perf[0].memory);
  std::vector<float> dw(ws.size(), std::numeric_limits<float>::quiet_NaN());
  EXPECT(bwd_filter(h, &one, x, xs.data(), y, dy.data(), conv, perf[0].algo, ws_filter.data(), ws_filter.size(), &zero,
                    w, dw.data()) == 0);
  EXPECT(close(dot(ws, dw), forward_dot));

  // Find: sorted by time, the algorithms needing more than the workspace given failed, and the
  // output left with arbitrary values.
  std::vector<float> found(dy.size(), 0.0f);
  std::vector<char> small(300);
  EXPECT(fwd_find(h, x, xs.data(), w, ws.data(), conv, y, found.data(), 8, &count, perf, small.data(), small.size()) ==
         0);
  bool sorted = true, within = true;
  for (int i = 0; i < count; ++i) {
    if (perf[i].status != 0) continue;
    within = within && perf[i].memory <= small.size();
    if (i > 0 && perf[i - 1].status == 0) sorted = sorted && perf[i - 1].time <= perf[i].time;
  }
  EXPECT(sorted && within && perf[0].status == 0);
  EXPECT(std::isnan(found[0]));
}

// ---- cuDNN pooling, activation, softmax and batch normalization ----

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Equal within tolerance, NaN matching NaN only.
bool same_value(double got, double want, double tol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return close(got, want, tol);
}
bool all_close(const std::vector<float>& got, const std::vector<double>& want, double tol = 1e-5) {
  if (got.size() != want.size()) return false;
  for (size_t i = 0; i < got.size(); ++i)
    if (!same_value(got[i], want[i], tol)) return false;
  return true;
}
std::vector<double> widen(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }
std::vector<float> scaled(const std::vector<float>& v, float s) {
  std::vector<float> out(v);
  for (auto& x : out) x *= s;
  return out;
}
// alpha * result + beta * before, the blending every call documents.
std::vector<double> blended_ref(const std::vector<double>& result, double alpha, double beta,
                                const std::vector<float>& before) {
  std::vector<double> out(result.size());
  for (size_t i = 0; i < result.size(); ++i) out[i] = alpha * result[i] + beta * before[i];
  return out;
}

struct OpsApi {
  using P = void*;
  int (*create)(P*);
  int (*create_tensor)(P*);
  int (*set_tensor)(P, int, int, int, int, int, int);
  int (*get_tensor)(P, int*, int*, int*, int*, int*, int*, int*, int*, int*);
  int (*create_pool)(P*);
  int (*set_pool)(P, int, int, int, int, int, int, int, int);
  int (*destroy_pool)(P);
  int (*pool_dim)(P, P, int*, int*, int*, int*);
  int (*pool_fwd)(P, P, const void*, P, const void*, const void*, P, void*);
  int (*pool_bwd)(P, P, const void*, P, const void*, P, const void*, P, const void*, const void*, P, void*);
  int (*create_act)(P*);
  int (*set_act)(P, int, int, double);
  int (*destroy_act)(P);
  int (*act_fwd)(P, P, const void*, P, const void*, const void*, P, void*);
  int (*act_bwd)(P, P, const void*, P, const void*, P, const void*, P, const void*, const void*, P, void*);
  int (*softmax_fwd)(P, int, int, const void*, P, const void*, const void*, P, void*);
  int (*softmax_bwd)(P, int, int, const void*, P, const void*, P, const void*, const void*, P, void*);
  int (*derive_bn)(P, P, int);
  int (*bn_train)(P, int, const void*, const void*, P, const void*, P, void*, P, const void*, const void*, double,
                  void*, void*, double, void*, void*);
  int (*bn_infer)(P, int, const void*, const void*, P, const void*, P, void*, P, const void*, const void*,
                  const void*, const void*, double);
  int (*bn_bwd)(P, int, const void*, const void*, const void*, const void*, P, const void*, P, const void*, P, void*,
                P, const void*, void*, void*, double, const void*, const void*);
  P handle = nullptr;

  // A float NCHW descriptor unless told otherwise.
  P tensor(int n, int c, int h, int w, int type = 0, int format = 0) {
    P d = nullptr;
    if (create_tensor(&d) != 0 || set_tensor(d, format, type, n, c, h, w) != 0) {
      std::printf("cannot make a tensor descriptor\n");
      std::exit(1);
    }
    return d;
  }
};

constexpr int kOk = 0, kNotInit = 1001, kBad = 2000, kNull = 2002, kUnsupported = 3000;
constexpr int kHalf = 2, kNHWC = 1;
const float kOne = 1, kZero = 0, kTwo = 2, kHalfScalar = 0.5f, kThree = 3, kQuarter = 0.25f;

// ---- pooling ----

struct PoolShape {
  int n, c, h, w, wh, ww, ph, pw, sh, sw;
  int oh() const { return 1 + (h + 2 * ph - wh) / sh; }
  int ow() const { return 1 + (w + 2 * pw - ww) / sw; }
};

// Textbook pooling: each window clamped to the image, max (NaNs skipped, or NaN when
// propagated), averages over the full window or the clamped one.
std::vector<double> pool_ref(const PoolShape& s, int mode, bool propagate, const std::vector<float>& x) {
  std::vector<double> y;
  for (int p = 0; p < s.n * s.c; ++p)
    for (int oy = 0; oy < s.oh(); ++oy)
      for (int ox = 0; ox < s.ow(); ++ox) {
        const int y0 = std::max(oy * s.sh - s.ph, 0), y1 = std::min(oy * s.sh - s.ph + s.wh, s.h);
        const int x0 = std::max(ox * s.sw - s.pw, 0), x1 = std::min(ox * s.sw - s.pw + s.ww, s.w);
        double sum = 0, best = -INFINITY;
        bool nan = false;
        for (int i = y0; i < y1; ++i)
          for (int j = x0; j < x1; ++j) {
            const float v = x[(size_t(p) * s.h + i) * s.w + j];
            sum += v;
            if (v != v) nan = true;
            else best = std::max(best, double(v));
          }
        if (mode == 0 || mode == 3) y.push_back(nan && propagate ? NAN : best);
        else y.push_back(sum / (mode == 1 ? s.wh * s.ww : (y1 - y0) * (x1 - x0)));
      }
  return y;
}

// Textbook pooling gradient: max routes dy to the first maximum in row-major window order,
// averages spread it over the window's image elements.
std::vector<double> pool_grad_ref(const PoolShape& s, int mode, const std::vector<float>& x,
                                  const std::vector<float>& dy) {
  std::vector<double> dx(x.size(), 0.0);
  size_t o = 0;
  for (int p = 0; p < s.n * s.c; ++p)
    for (int oy = 0; oy < s.oh(); ++oy)
      for (int ox = 0; ox < s.ow(); ++ox, ++o) {
        const int y0 = std::max(oy * s.sh - s.ph, 0), y1 = std::min(oy * s.sh - s.ph + s.wh, s.h);
        const int x0 = std::max(ox * s.sw - s.pw, 0), x1 = std::min(ox * s.sw - s.pw + s.ww, s.w);
        const size_t base = size_t(p) * s.h * s.w;
        if (mode == 0 || mode == 3) {
          size_t arg = base + size_t(y0) * s.w + x0;
          for (int i = y0; i < y1; ++i)
            for (int j = x0; j < x1; ++j)
              if (x[base + size_t(i) * s.w + j] > x[arg]) arg = base + size_t(i) * s.w + j;
          dx[arg] += dy[o];
        } else {
          const double divisor = mode == 1 ? s.wh * s.ww : (y1 - y0) * (x1 - x0);
          for (int i = y0; i < y1; ++i)
            for (int j = x0; j < x1; ++j) dx[base + size_t(i) * s.w + j] += dy[o] / divisor;
        }
      }
  return dx;
}

void check_pooling(OpsApi& api) {
  using P = void*;
  P h = api.handle, pool = nullptr;
  EXPECT(api.create_pool(nullptr) == kNull);
  EXPECT(api.create_pool(&pool) == kOk);
  // Descriptor values.
  EXPECT(api.set_pool(nullptr, 0, 0, 2, 2, 0, 0, 2, 2) == kNull);
  EXPECT(api.set_pool(pool, 4, 0, 2, 2, 0, 0, 2, 2) == kBad);   // no such mode
  EXPECT(api.set_pool(pool, 0, 2, 2, 2, 0, 0, 2, 2) == kBad);   // no such NaN option
  EXPECT(api.set_pool(pool, 0, 0, 0, 2, 0, 0, 2, 2) == kBad);   // empty window
  EXPECT(api.set_pool(pool, 0, 0, 2, 2, 0, 0, 2, 0) == kBad);   // stride 0
  EXPECT(api.set_pool(pool, 0, 0, 2, 2, -1, 0, 2, 2) == kBad);  // negative padding
  EXPECT(api.set_pool(pool, 0, 0, 2, 2, 0, 2, 2, 2) == kBad);   // padding as wide as the window
  P x3 = api.tensor(1, 1, 3, 3);
  int n = 0, c = 0, oh = 0, ow = 0;
  EXPECT(api.pool_dim(pool, x3, &n, &c, &oh, &ow) == kBad);  // never set
  // Output dims: 1 + (in + 2 pad - window) / stride.
  const PoolShape s{2, 3, 7, 6, 3, 2, 1, 1, 2, 2};
  EXPECT(s.oh() == 4 && s.ow() == 4);
  EXPECT(api.set_pool(pool, 0, 0, s.wh, s.ww, s.ph, s.pw, s.sh, s.sw) == kOk);
  P x = api.tensor(s.n, s.c, s.h, s.w), y = api.tensor(s.n, s.c, s.oh(), s.ow());
  EXPECT(api.pool_dim(pool, x, &n, &c, &oh, &ow) == kOk && n == 2 && c == 3 && oh == 4 && ow == 4);
  EXPECT(api.pool_dim(pool, x, &n, &c, nullptr, &ow) == kNull);
  EXPECT(api.pool_dim(nullptr, x, &n, &c, &oh, &ow) == kNull);
  P narrow = api.tensor(1, 1, 2, 2);  // a 3x3 window without padding does not fit in 2x2
  EXPECT(api.set_pool(pool, 0, 0, 3, 3, 0, 0, 1, 1) == kOk);
  EXPECT(api.pool_dim(pool, narrow, &n, &c, &oh, &ow) == kBad);
  EXPECT(api.set_pool(pool, 0, 0, s.wh, s.ww, s.ph, s.pw, s.sh, s.sw) == kOk);

  // Hand-computed: x = 1..9 in 3x3, window 2, padding 1, stride 2 gives 2x2 windows holding
  // {1}, {2,3}, {4,7}, {5,6,8,9}.
  const std::vector<float> nine{1, 2, 3, 4, 5, 6, 7, 8, 9};
  const std::vector<double> hand[4] = {{1, 3, 7, 9}, {0.25, 1.25, 2.75, 7}, {1, 2.5, 5.5, 7}, {1, 3, 7, 9}};
  P y2 = api.tensor(1, 1, 2, 2);
  for (int mode = 0; mode < 4; ++mode) {
    EXPECT(api.set_pool(pool, mode, 0, 2, 2, 1, 1, 2, 2) == kOk);
    std::vector<float> out(4, kNaN);  // never read with beta 0
    EXPECT(api.pool_fwd(h, pool, &kOne, x3, nine.data(), &kZero, y2, out.data()) == kOk);
    EXPECT(all_close(out, hand[mode]));
  }

  // Every mode, padding and stride 2, against the textbook loops; backward too, and the
  // adjoint identity <pool(x), dy> = <x, dx> (exact for averages, and for max where each
  // output is one of the inputs).
  const auto xs = random(size_t(s.n) * s.c * s.h * s.w, 11), dys = random(size_t(s.n) * s.c * s.oh() * s.ow(), 12);
  for (int mode = 0; mode < 4; ++mode) {
    EXPECT(api.set_pool(pool, mode, 0, s.wh, s.ww, s.ph, s.pw, s.sh, s.sw) == kOk);
    std::vector<float> out(dys.size(), kNaN), dx(xs.size(), kNaN);
    EXPECT(api.pool_fwd(h, pool, &kOne, x, xs.data(), &kZero, y, out.data()) == kOk);
    EXPECT(all_close(out, pool_ref(s, mode, false, xs)));
    EXPECT(api.pool_bwd(h, pool, &kOne, y, out.data(), y, dys.data(), x, xs.data(), &kZero, x, dx.data()) == kOk);
    EXPECT(all_close(dx, pool_grad_ref(s, mode, xs, dys)));
    EXPECT(close(dot(out, dys), dot(xs, dx)));
  }
  // Average pooling at the borders: the divisors differ only there (corner window {x[0]} is
  // divided by 6 when padding counts, by 1 when it does not).
  {
    std::vector<float> inc(dys.size()), exc(dys.size());
    api.set_pool(pool, 1, 0, s.wh, s.ww, s.ph, s.pw, s.sh, s.sw);
    api.pool_fwd(h, pool, &kOne, x, xs.data(), &kZero, y, inc.data());
    api.set_pool(pool, 2, 0, s.wh, s.ww, s.ph, s.pw, s.sh, s.sw);
    api.pool_fwd(h, pool, &kOne, x, xs.data(), &kZero, y, exc.data());
    // Window (0, 0): rows -1..1, columns -1..0 hold x[0][0], x[1][0]: 2 of 6 elements.
    const double corner = double(xs[0]) + xs[size_t(s.w)];
    EXPECT(close(inc[0], corner / 6) && close(exc[0], corner / 2));
    // Window (1, 1): rows 1..3, columns 1..2, wholly inside: the same divisor.
    EXPECT(close(inc[size_t(s.ow()) + 1], exc[size_t(s.ow()) + 1]));
  }

  // NaN in a max window: propagated, or skipped.
  const std::vector<float> with_nan{1, kNaN, 3, 2};
  P x22 = api.tensor(1, 1, 2, 2), y11 = api.tensor(1, 1, 1, 1);
  for (int mode : {0, 3}) {
    float out = 0;
    EXPECT(api.set_pool(pool, mode, 1, 2, 2, 0, 0, 1, 1) == kOk);
    EXPECT(api.pool_fwd(h, pool, &kOne, x22, with_nan.data(), &kZero, y11, &out) == kOk && std::isnan(out));
    EXPECT(api.set_pool(pool, mode, 0, 2, 2, 0, 0, 1, 1) == kOk);
    EXPECT(api.pool_fwd(h, pool, &kOne, x22, with_nan.data(), &kZero, y11, &out) == kOk && out == 3);
  }
  // Ties in max backward: x = [[4, 7, 7], [7, 1, 2]], window 2x2, stride 1; both windows'
  // maximum 7 first appears at (0, 1), which takes both gradients (1 + 10).
  {
    const std::vector<float> tied{4, 7, 7, 7, 1, 2}, dy2{1, 10};
    P xt = api.tensor(1, 1, 2, 3), yt = api.tensor(1, 1, 1, 2);
    EXPECT(api.set_pool(pool, 0, 0, 2, 2, 0, 0, 1, 1) == kOk);
    std::vector<float> yv(2), dx(6, kNaN);
    EXPECT(api.pool_fwd(h, pool, &kOne, xt, tied.data(), &kZero, yt, yv.data()) == kOk && yv[0] == 7 && yv[1] == 7);
    EXPECT(api.pool_bwd(h, pool, &kOne, yt, yv.data(), yt, dy2.data(), xt, tied.data(), &kZero, xt, dx.data()) ==
           kOk);
    EXPECT(all_close(dx, {0, 11, 0, 0, 0, 0}));
  }
  // alpha / beta.
  {
    EXPECT(api.set_pool(pool, 2, 0, s.wh, s.ww, s.ph, s.pw, s.sh, s.sw) == kOk);
    const auto before = random(dys.size(), 13);
    std::vector<float> out(before);
    EXPECT(api.pool_fwd(h, pool, &kTwo, x, xs.data(), &kHalfScalar, y, out.data()) == kOk);
    EXPECT(all_close(out, blended_ref(pool_ref(s, 2, false, xs), 2, 0.5, before)));
    const auto dx_before = random(xs.size(), 14);
    std::vector<float> dx(dx_before), yv(dys.size());
    api.pool_fwd(h, pool, &kOne, x, xs.data(), &kZero, y, yv.data());
    EXPECT(api.pool_bwd(h, pool, &kThree, y, yv.data(), y, dys.data(), x, xs.data(), &kQuarter, x, dx.data()) == kOk);
    EXPECT(all_close(dx, blended_ref(pool_grad_ref(s, 2, xs, dys), 3, 0.25, dx_before)));
  }
  // Errors.
  {
    std::vector<float> out(dys.size()), dx(xs.size());
    P tall = api.tensor(s.n, s.c, s.oh() + 1, s.ow()), unset = nullptr;
    api.create_tensor(&unset);
    EXPECT(api.pool_fwd(h, pool, &kOne, x, xs.data(), &kZero, tall, out.data()) == kBad);
    EXPECT(api.pool_fwd(h, pool, &kOne, x, xs.data(), &kZero, unset, out.data()) == kBad);
    EXPECT(api.pool_fwd(h, pool, &kOne, x, xs.data(), &kZero, nullptr, out.data()) == kNull);
    EXPECT(api.pool_fwd(h, pool, &kOne, x, nullptr, &kZero, y, out.data()) == kNull);
    EXPECT(api.pool_fwd(h, pool, nullptr, x, xs.data(), &kZero, y, out.data()) == kNull);
    EXPECT(api.pool_fwd(nullptr, pool, &kOne, x, xs.data(), &kZero, y, out.data()) == kNotInit);
    P xh = api.tensor(s.n, s.c, s.h, s.w, kHalf), yh = api.tensor(s.n, s.c, s.oh(), s.ow(), kHalf);
    EXPECT(api.pool_fwd(h, pool, &kOne, xh, xs.data(), &kZero, yh, out.data()) == kUnsupported);
    EXPECT(api.pool_fwd(h, pool, &kOne, x, xs.data(), &kZero, yh, out.data()) == kBad);  // types differ
    P xn = api.tensor(s.n, s.c, s.h, s.w, 0, kNHWC), yn = api.tensor(s.n, s.c, s.oh(), s.ow(), 0, kNHWC);
    EXPECT(api.pool_fwd(h, pool, &kOne, xn, xs.data(), &kZero, yn, out.data()) == kUnsupported);
    EXPECT(api.pool_bwd(h, pool, &kOne, y, out.data(), tall, dys.data(), x, xs.data(), &kZero, x, dx.data()) == kBad);
    EXPECT(api.pool_bwd(h, pool, &kOne, y, out.data(), y, dys.data(), x, xs.data(), &kZero, y, dx.data()) == kBad);
    EXPECT(api.pool_bwd(h, pool, &kOne, y, out.data(), y, nullptr, x, xs.data(), &kZero, x, dx.data()) == kNull);
  }
  EXPECT(api.destroy_pool(pool) == kOk);
}

// ---- activation ----

// Textbook activations and their derivatives, from x.
double act_ref(int mode, double coef, double x) {
  switch (mode) {
    case 0: return 1 / (1 + std::exp(-x));
    case 1: return x > 0 ? x : 0;
    case 2: return (std::exp(x) - std::exp(-x)) / (std::exp(x) + std::exp(-x));
    case 3: return x < 0 ? 0 : x > coef ? coef : x;
    default: return x > 0 ? x : coef * (std::exp(x) - 1);
  }
}
double act_derivative_ref(int mode, double coef, double x) {
  switch (mode) {
    case 0: return std::exp(-x) / ((1 + std::exp(-x)) * (1 + std::exp(-x)));
    case 1: return x > 0 ? 1 : 0;
    case 2: return 1 / (std::cosh(x) * std::cosh(x));
    case 3: return x > 0 && x < coef ? 1 : 0;
    default: return x > 0 ? 1 : coef * std::exp(x);
  }
}

void check_activation(OpsApi& api) {
  using P = void*;
  P h = api.handle, act = nullptr;
  EXPECT(api.create_act(nullptr) == kNull && api.create_act(&act) == kOk);
  EXPECT(api.set_act(nullptr, 1, 0, 0.0) == kNull);
  EXPECT(api.set_act(act, 7, 0, 0.0) == kBad);  // no such mode
  EXPECT(api.set_act(act, 1, 3, 0.0) == kBad);  // no such NaN option
  P x = api.tensor(2, 3, 2, 4);
  const size_t count = 2 * 3 * 2 * 4;
  auto xs = scaled(random(count, 21), 2.0f);
  // Away from the kinks at 0 and at the clipping ceiling, where finite differences straddle them.
  for (auto& v : xs)
    if (std::fabs(v) < 0.05f || std::fabs(v - 0.8f) < 0.05f) v += 0.2f;
  const auto dys = random(count, 22);
  std::vector<float> out(count, kNaN);
  EXPECT(api.act_fwd(h, act, &kOne, x, xs.data(), &kZero, x, out.data()) == kBad);  // never set
  const double coefs[5] = {0, 0, 0, 0.8, 0.7};
  const float step = 1e-2f;
  for (int mode = 0; mode < 5; ++mode) {
    EXPECT(api.set_act(act, mode, 0, coefs[mode]) == kOk);
    std::vector<double> want(count), grad(count);
    for (size_t i = 0; i < count; ++i) {
      want[i] = act_ref(mode, coefs[mode], xs[i]);
      grad[i] = dys[i] * act_derivative_ref(mode, coefs[mode], xs[i]);
    }
    std::vector<float> y(count, kNaN), dx(count, kNaN);
    EXPECT(api.act_fwd(h, act, &kOne, x, xs.data(), &kZero, x, y.data()) == kOk);
    EXPECT(all_close(y, want));
    EXPECT(api.act_bwd(h, act, &kOne, x, y.data(), x, dys.data(), x, xs.data(), &kZero, x, dx.data()) == kOk);
    EXPECT(all_close(dx, grad, 1e-4));
    // Central finite differences of the stand-in's own forward (elementwise, so one shifted
    // call per side gives every derivative).
    std::vector<float> up(xs), down(xs), y_up(count), y_down(count);
    for (size_t i = 0; i < count; ++i) up[i] += step, down[i] -= step;
    api.act_fwd(h, act, &kOne, x, up.data(), &kZero, x, y_up.data());
    api.act_fwd(h, act, &kOne, x, down.data(), &kZero, x, y_down.data());
    bool fd = true;
    for (size_t i = 0; i < count; ++i)
      fd = fd && std::fabs(dx[i] - dys[i] * (double(y_up[i]) - y_down[i]) / (double(up[i]) - down[i])) < 2e-3;
    EXPECT(fd);
  }
  // NaN through ReLU: kept with PROPAGATE_NAN, zero without.
  const std::vector<float> nan_in{kNaN, -1, 2, kNaN};
  P x4 = api.tensor(1, 1, 1, 4);
  std::vector<float> y4(4);
  EXPECT(api.set_act(act, 1, 1, 0.0) == kOk);
  EXPECT(api.act_fwd(h, act, &kOne, x4, nan_in.data(), &kZero, x4, y4.data()) == kOk);
  EXPECT(all_close(y4, {NAN, 0, 2, NAN}));
  EXPECT(api.set_act(act, 1, 0, 0.0) == kOk);
  EXPECT(api.act_fwd(h, act, &kOne, x4, nan_in.data(), &kZero, x4, y4.data()) == kOk);
  EXPECT(all_close(y4, {0, 0, 2, 0}));
  // alpha / beta (forward and backward) and in place (y = x).
  {
    EXPECT(api.set_act(act, 2, 0, 0.0) == kOk);
    const auto before = random(count, 23);
    std::vector<float> y(before), dx(before), t(count);
    std::vector<double> want(count), grad(count);
    for (size_t i = 0; i < count; ++i) {
      want[i] = std::tanh(double(xs[i]));
      grad[i] = dys[i] * act_derivative_ref(2, 0, xs[i]);
    }
    EXPECT(api.act_fwd(h, act, &kTwo, x, xs.data(), &kHalfScalar, x, y.data()) == kOk);
    EXPECT(all_close(y, blended_ref(want, 2, 0.5, before)));
    api.act_fwd(h, act, &kOne, x, xs.data(), &kZero, x, t.data());
    EXPECT(api.act_bwd(h, act, &kThree, x, t.data(), x, dys.data(), x, xs.data(), &kQuarter, x, dx.data()) == kOk);
    EXPECT(all_close(dx, blended_ref(grad, 3, 0.25, before), 1e-4));
    std::vector<float> inplace(xs);
    EXPECT(api.act_fwd(h, act, &kOne, x, inplace.data(), &kZero, x, inplace.data()) == kOk);
    EXPECT(all_close(inplace, want));
  }
  // Errors.
  {
    P other = api.tensor(2, 3, 4, 2), xh = api.tensor(2, 3, 2, 4, kHalf), xn = api.tensor(2, 3, 2, 4, 0, kNHWC);
    std::vector<float> dx(count);
    EXPECT(api.set_act(act, 5, 0, 0.0) == kOk);  // IDENTITY: for fused convolutions only
    EXPECT(api.act_fwd(h, act, &kOne, x, xs.data(), &kZero, x, out.data()) == kUnsupported);
    EXPECT(api.set_act(act, 4, 0, 1.0) == kOk);
    EXPECT(api.act_fwd(h, act, &kOne, x, xs.data(), &kZero, other, out.data()) == kBad);  // shapes differ
    EXPECT(api.act_fwd(h, act, &kOne, x, xs.data(), &kZero, xh, out.data()) == kBad);     // types differ
    EXPECT(api.act_fwd(h, act, &kOne, xh, xs.data(), &kZero, xh, out.data()) == kUnsupported);
    EXPECT(api.act_fwd(h, act, &kOne, xn, xs.data(), &kZero, xn, out.data()) == kUnsupported);
    EXPECT(api.act_fwd(h, act, &kOne, x, nullptr, &kZero, x, out.data()) == kNull);
    EXPECT(api.act_fwd(h, act, &kOne, x, xs.data(), nullptr, x, out.data()) == kNull);
    EXPECT(api.act_fwd(h, nullptr, &kOne, x, xs.data(), &kZero, x, out.data()) == kNull);
    EXPECT(api.act_bwd(h, act, &kOne, x, out.data(), other, dys.data(), x, xs.data(), &kZero, x, dx.data()) == kBad);
    EXPECT(api.act_bwd(h, act, &kOne, x, out.data(), x, dys.data(), x, xs.data(), &kZero, x, nullptr) == kNull);
  }
  EXPECT(api.destroy_act(act) == kOk);
}

// ---- softmax ----

// Textbook softmax over axis 1 (channel mode) or over axes 1-3 (instance mode) of [n, c, h, w]:
// exp(x) / sum(exp(x)) with no shift, log-softmax as x - log(sum(exp(x))).
std::vector<double> softmax_ref(int algo, int mode, int n, int c, int h, int w, const std::vector<float>& x) {
  std::vector<double> y(x.size());
  const int hw = h * w;
  for (int b = 0; b < n; ++b)
    for (int s = 0; s < (mode == 1 ? hw : 1); ++s) {
      std::vector<size_t> row;
      if (mode == 1)
        for (int k = 0; k < c; ++k) row.push_back((size_t(b) * c + k) * hw + s);
      else
        for (int k = 0; k < c * hw; ++k) row.push_back(size_t(b) * c * hw + k);
      double sum = 0;
      for (size_t i : row) sum += std::exp(double(x[i]));
      for (size_t i : row) y[i] = algo == 2 ? x[i] - std::log(sum) : std::exp(double(x[i])) / sum;
    }
  return y;
}

void check_softmax(OpsApi& api) {
  using P = void*;
  P h = api.handle;
  // [2, 3, 2, 2], and [outer, n, inner, 1] = [2, 4, 3, 1] as callers describe a softmax along
  // one axis of a larger tensor.
  const int shapes[2][4] = {{2, 3, 2, 2}, {2, 4, 3, 1}};
  for (const auto& sh : shapes) {
    const int N = sh[0], C = sh[1], H = sh[2], W = sh[3];
    const size_t count = size_t(N) * C * H * W;
    P t = api.tensor(N, C, H, W);
    const auto xs = scaled(random(count, 31), 3.0f), dys = random(count, 32);
    for (int algo = 0; algo < 3; ++algo)
      for (int mode = 0; mode < 2; ++mode) {
        std::vector<float> y(count, kNaN), dx(count, kNaN);
        EXPECT(api.softmax_fwd(h, algo, mode, &kOne, t, xs.data(), &kZero, t, y.data()) == kOk);
        EXPECT(all_close(y, softmax_ref(algo, mode, N, C, H, W, xs)));
        EXPECT(api.softmax_bwd(h, algo, mode, &kOne, t, y.data(), t, dys.data(), &kZero, t, dx.data()) == kOk);
        // dx against central differences of L(x) = sum(dy * y(x)).
        const float step = 1e-2f;
        bool fd = true;
        std::vector<float> shifted(xs), yp(count), ym(count);
        for (size_t j = 0; j < count; ++j) {
          shifted[j] = xs[j] + step;
          api.softmax_fwd(h, algo, mode, &kOne, t, shifted.data(), &kZero, t, yp.data());
          shifted[j] = xs[j] - step;
          api.softmax_fwd(h, algo, mode, &kOne, t, shifted.data(), &kZero, t, ym.data());
          shifted[j] = xs[j];
          const double numeric = (dot(dys, yp) - dot(dys, ym)) / (2.0 * step);
          fd = fd && std::fabs(dx[j] - numeric) < 2e-3;
        }
        EXPECT(fd);
      }
  }
  P t = api.tensor(2, 3, 2, 2);
  const size_t count = 24;
  const auto xs = random(count, 33), dys = random(count, 34);
  // Large inputs: the maximum is subtracted, so nothing overflows (1000 and 1001 over channels).
  {
    P pair = api.tensor(1, 2, 1, 1);
    const std::vector<float> big{1000, 1001};
    std::vector<float> y(2);
    for (int algo = 0; algo < 2; ++algo) {
      EXPECT(api.softmax_fwd(h, algo, 1, &kOne, pair, big.data(), &kZero, pair, y.data()) == kOk);
      EXPECT(all_close(y, {1 / (1 + std::exp(1.0)), 1 / (1 + std::exp(-1.0))}));
    }
    EXPECT(api.softmax_fwd(h, 2, 1, &kOne, pair, big.data(), &kZero, pair, y.data()) == kOk);
    EXPECT(all_close(y, {-std::log1p(std::exp(1.0)), -std::log1p(std::exp(-1.0))}));
  }
  // alpha / beta.
  {
    const auto before = random(count, 35);
    std::vector<float> y(before), s(count), dx(before);
    EXPECT(api.softmax_fwd(h, 1, 1, &kTwo, t, xs.data(), &kHalfScalar, t, y.data()) == kOk);
    const auto want = softmax_ref(1, 1, 2, 3, 2, 2, xs);
    EXPECT(all_close(y, blended_ref(want, 2, 0.5, before)));
    api.softmax_fwd(h, 1, 1, &kOne, t, xs.data(), &kZero, t, s.data());
    std::vector<double> grad(count);  // y * (dy - sum over channels of dy * y)
    for (int b = 0; b < 2; ++b)
      for (int p = 0; p < 4; ++p) {
        double sum = 0;
        for (int k = 0; k < 3; ++k) sum += dys[size_t(b * 3 + k) * 4 + p] * want[size_t(b * 3 + k) * 4 + p];
        for (int k = 0; k < 3; ++k) {
          const size_t i = size_t(b * 3 + k) * 4 + p;
          grad[i] = want[i] * (dys[i] - sum);
        }
      }
    EXPECT(api.softmax_bwd(h, 1, 1, &kThree, t, s.data(), t, dys.data(), &kQuarter, t, dx.data()) == kOk);
    EXPECT(all_close(dx, blended_ref(grad, 3, 0.25, before), 1e-4));
  }
  // Errors.
  {
    std::vector<float> y(count), dx(count);
    P other = api.tensor(2, 3, 4, 1), th = api.tensor(2, 3, 2, 2, kHalf), tn = api.tensor(2, 3, 2, 2, 0, kNHWC);
    EXPECT(api.softmax_fwd(h, 3, 0, &kOne, t, xs.data(), &kZero, t, y.data()) == kBad);  // no such algorithm
    EXPECT(api.softmax_fwd(h, 0, 2, &kOne, t, xs.data(), &kZero, t, y.data()) == kBad);  // no such mode
    EXPECT(api.softmax_fwd(h, 0, 0, &kOne, t, xs.data(), &kZero, other, y.data()) == kBad);
    EXPECT(api.softmax_fwd(h, 0, 0, &kOne, th, xs.data(), &kZero, th, y.data()) == kUnsupported);
    EXPECT(api.softmax_fwd(h, 0, 0, &kOne, tn, xs.data(), &kZero, tn, y.data()) == kUnsupported);
    EXPECT(api.softmax_fwd(h, 0, 0, &kOne, t, xs.data(), &kZero, nullptr, y.data()) == kNull);
    EXPECT(api.softmax_fwd(h, 0, 0, &kOne, t, xs.data(), &kZero, t, nullptr) == kNull);
    EXPECT(api.softmax_fwd(nullptr, 0, 0, &kOne, t, xs.data(), &kZero, t, y.data()) == kNotInit);
    EXPECT(api.softmax_bwd(h, 0, 0, &kOne, t, y.data(), other, dys.data(), &kZero, t, dx.data()) == kBad);
    EXPECT(api.softmax_bwd(h, 0, 0, &kOne, t, y.data(), t, nullptr, &kZero, t, dx.data()) == kNull);
  }
}

// ---- batch normalization ----

struct BnCase {
  int n, c, h, w;
  size_t size() const { return size_t(n) * c * h * w; }
  size_t m() const { return size_t(n) * h * w; }
  size_t at(int b, int k, int s) const { return (size_t(b) * c + k) * h * w + s; }
};

// Mean and biased variance per channel, one pass of sums of squares in double (the stand-in
// uses two passes).
void bn_stats_ref(const BnCase& s, const std::vector<float>& x, std::vector<double>& mean, std::vector<double>& var) {
  mean.assign(size_t(s.c), 0);
  var.assign(size_t(s.c), 0);
  for (int k = 0; k < s.c; ++k) {
    double sum = 0, squares = 0;
    for (int b = 0; b < s.n; ++b)
      for (int p = 0; p < s.h * s.w; ++p) {
        sum += x[s.at(b, k, p)];
        squares += double(x[s.at(b, k, p)]) * x[s.at(b, k, p)];
      }
    mean[size_t(k)] = sum / s.m();
    var[size_t(k)] = squares / s.m() - mean[size_t(k)] * mean[size_t(k)];
  }
}

void check_batch_norm(OpsApi& api) {
  using P = void*;
  P h = api.handle;
  const BnCase s{3, 2, 2, 3};
  P x = api.tensor(s.n, s.c, s.h, s.w), bn = nullptr, per_act = nullptr;
  api.create_tensor(&bn);
  api.create_tensor(&per_act);
  // Derived parameter descriptors: 1xCx1x1 for the spatial modes, 1xCxHxW per activation,
  // float for float (and half) data, double for double.
  int type = -1, n = 0, c = 0, hh = 0, ww = 0, ns = 0, cs = 0, hs = 0, ws = 0;
  EXPECT(api.derive_bn(bn, x, 1) == kOk);
  EXPECT(api.get_tensor(bn, &type, &n, &c, &hh, &ww, &ns, &cs, &hs, &ws) == kOk && type == 0 && n == 1 && c == 2 &&
         hh == 1 && ww == 1 && ns == 2 && cs == 1 && ws == 1);
  EXPECT(api.derive_bn(per_act, api.tensor(s.n, s.c, s.h, s.w, kHalf), 0) == kOk);
  EXPECT(api.get_tensor(per_act, &type, &n, &c, &hh, &ww, &ns, &cs, &hs, &ws) == kOk && type == 0 && n == 1 &&
         c == 2 && hh == 2 && ww == 3 && cs == 6 && hs == 3);
  P dbl = nullptr;
  api.create_tensor(&dbl);
  EXPECT(api.derive_bn(dbl, api.tensor(1, 5, 1, 1, 1), 2) == kOk);
  EXPECT(api.get_tensor(dbl, &type, &n, &c, &hh, &ww, &ns, &cs, &hs, &ws) == kOk && type == 1 && c == 5);
  EXPECT(api.derive_bn(bn, x, 3) == kBad);
  EXPECT(api.derive_bn(nullptr, x, 1) == kNull);
  EXPECT(api.derive_bn(bn, nullptr, 1) == kNull);

  const auto xs = scaled(random(s.size(), 41), 2.0f), dys = random(s.size(), 42);
  const std::vector<float> gamma{1.5f, -0.7f}, beta{0.2f, -0.4f}, rm0{0.5f, -1.0f}, rv0{2.0f, 0.25f};
  const double eps = 1e-3, factor = 0.3;
  std::vector<double> mean, var;
  bn_stats_ref(s, xs, mean, var);
  std::vector<double> y_ref(s.size()), rm_ref(2), rv_ref(2), inv_ref(2);
  for (int k = 0; k < s.c; ++k) {
    inv_ref[size_t(k)] = 1 / std::sqrt(var[size_t(k)] + eps);
    rm_ref[size_t(k)] = (1 - factor) * rm0[size_t(k)] + factor * mean[size_t(k)];
    rv_ref[size_t(k)] = (1 - factor) * rv0[size_t(k)] + factor * var[size_t(k)] * s.m() / (s.m() - 1.0);
    for (int b = 0; b < s.n; ++b)
      for (int p = 0; p < s.h * s.w; ++p) {
        const size_t i = s.at(b, k, p);
        y_ref[i] = gamma[size_t(k)] * (xs[i] - mean[size_t(k)]) * inv_ref[size_t(k)] + beta[size_t(k)];
      }
  }
  // Training forward, both spatial modes.
  for (int mode : {1, 2}) {
    std::vector<float> y(s.size(), kNaN), rm(rm0), rv(rv0), sm(2, kNaN), si(2, kNaN);
    EXPECT(api.bn_train(h, mode, &kOne, &kZero, x, xs.data(), x, y.data(), bn, gamma.data(), beta.data(), factor,
                        rm.data(), rv.data(), eps, sm.data(), si.data()) == kOk);
    EXPECT(all_close(y, y_ref, 1e-4));
    EXPECT(all_close(rm, rm_ref) && all_close(rv, rv_ref));  // running variance unbiased
    EXPECT(all_close(sm, mean) && all_close(si, inv_ref));
  }
  // Without running or saved statistics; and blended.
  {
    const auto before = random(s.size(), 43);
    std::vector<float> y(before);
    EXPECT(api.bn_train(h, 1, &kTwo, &kHalfScalar, x, xs.data(), x, y.data(), bn, gamma.data(), beta.data(), factor,
                        nullptr, nullptr, eps, nullptr, nullptr) == kOk);
    EXPECT(all_close(y, blended_ref(y_ref, 2, 0.5, before), 1e-4));
  }
  // Inference: y = scale (x - mean) / sqrt(var + eps) + bias with the given statistics.
  {
    std::vector<double> want(s.size());
    for (int b = 0; b < s.n; ++b)
      for (int k = 0; k < s.c; ++k)
        for (int p = 0; p < s.h * s.w; ++p) {
          const size_t i = s.at(b, k, p);
          want[i] = gamma[size_t(k)] * (xs[i] - rm0[size_t(k)]) / std::sqrt(rv0[size_t(k)] + eps) + beta[size_t(k)];
        }
    std::vector<float> y(s.size(), kNaN);
    EXPECT(api.bn_infer(h, 1, &kOne, &kZero, x, xs.data(), x, y.data(), bn, gamma.data(), beta.data(), rm0.data(),
                        rv0.data(), eps) == kOk);
    EXPECT(all_close(y, want, 1e-5));
    const auto before = random(s.size(), 44);
    std::vector<float> yb(before);
    EXPECT(api.bn_infer(h, 2, &kThree, &kQuarter, x, xs.data(), x, yb.data(), bn, gamma.data(), beta.data(),
                        rm0.data(), rv0.data(), eps) == kOk);
    EXPECT(all_close(yb, blended_ref(want, 3, 0.25, before), 1e-5));
  }
  // Backward against central differences of L = sum(dy * y_train(x, scale, bias)), with the
  // saved statistics and recomputing them.
  {
    auto loss = [&](const std::vector<float>& xv, const std::vector<float>& g, const std::vector<float>& b) {
      std::vector<float> y(s.size());
      api.bn_train(h, 1, &kOne, &kZero, x, xv.data(), x, y.data(), bn, g.data(), b.data(), 1.0, nullptr, nullptr, eps,
                   nullptr, nullptr);
      return dot(dys, y);
    };
    const float step = 1e-2f;
    std::vector<double> dx_fd(s.size()), dg_fd(2), db_fd(2);
    std::vector<float> xv(xs), g(gamma), b(beta);
    for (size_t j = 0; j < s.size(); ++j) {
      xv[j] = xs[j] + step;
      const double up = loss(xv, gamma, beta);
      xv[j] = xs[j] - step;
      dx_fd[j] = (up - loss(xv, gamma, beta)) / (2.0 * step);
      xv[j] = xs[j];
    }
    for (size_t k = 0; k < 2; ++k) {
      g[k] = gamma[k] + step;
      const double gu = loss(xs, g, beta);
      g[k] = gamma[k] - step;
      dg_fd[k] = (gu - loss(xs, g, beta)) / (2.0 * step);
      g[k] = gamma[k];
      b[k] = beta[k] + step;
      const double bu = loss(xs, gamma, b);
      b[k] = beta[k] - step;
      db_fd[k] = (bu - loss(xs, gamma, b)) / (2.0 * step);
      b[k] = beta[k];
    }
    std::vector<float> y(s.size()), sm(2), si(2);
    api.bn_train(h, 1, &kOne, &kZero, x, xs.data(), x, y.data(), bn, gamma.data(), beta.data(), 1.0, nullptr, nullptr,
                 eps, sm.data(), si.data());
    auto near = [](const std::vector<float>& got, const std::vector<double>& want) {
      bool ok = got.size() == want.size();
      for (size_t i = 0; ok && i < got.size(); ++i) ok = std::fabs(got[i] - want[i]) < 3e-3 * (1 + std::fabs(want[i]));
      return ok;
    };
    for (bool saved : {true, false}) {
      std::vector<float> dx(s.size(), kNaN), dg(2, kNaN), db(2, kNaN);
      EXPECT(api.bn_bwd(h, 1, &kOne, &kZero, &kOne, &kZero, x, xs.data(), x, dys.data(), x, dx.data(), bn,
                        gamma.data(), dg.data(), db.data(), eps, saved ? sm.data() : nullptr,
                        saved ? si.data() : nullptr) == kOk);
      EXPECT(near(dx, dx_fd) && near(dg, dg_fd) && near(db, db_fd));
    }
    // alpha / beta: data gradients blended with the data factors, parameter gradients
    // accumulated (alpha 1, beta 1) with the parameter factors.
    std::vector<float> dx_plain(s.size()), dg_plain(2), db_plain(2);
    api.bn_bwd(h, 1, &kOne, &kZero, &kOne, &kZero, x, xs.data(), x, dys.data(), x, dx_plain.data(), bn, gamma.data(),
               dg_plain.data(), db_plain.data(), eps, sm.data(), si.data());
    const auto dx_before = random(s.size(), 45);
    const std::vector<float> dg_before{0.5f, -2.0f}, db_before{1.0f, 3.0f};
    std::vector<float> dx(dx_before), dg(dg_before), db(db_before);
    EXPECT(api.bn_bwd(h, 2, &kTwo, &kHalfScalar, &kOne, &kOne, x, xs.data(), x, dys.data(), x, dx.data(), bn,
                      gamma.data(), dg.data(), db.data(), eps, sm.data(), si.data()) == kOk);
    EXPECT(all_close(dx, blended_ref(widen(dx_plain), 2, 0.5, dx_before), 1e-5));
    EXPECT(all_close(dg, blended_ref(widen(dg_plain), 1, 1, dg_before)) &&
           all_close(db, blended_ref(widen(db_plain), 1, 1, db_before)));
  }
  // Errors.
  {
    std::vector<float> y(s.size()), rm(rm0), rv(rv0), sm(2), si(2), dx(s.size()), dg(2), db(2);
    auto train = [&](int mode, P xd, P yd, P bd, const void* scale, void* rmean, void* rvar, double e, void* smean,
                     void* sinv) {
      return api.bn_train(h, mode, &kOne, &kZero, xd, xs.data(), yd, y.data(), bd, scale, beta.data(), factor, rmean,
                          rvar, e, smean, sinv);
    };
    EXPECT(train(0, x, x, per_act, gamma.data(), rm.data(), rv.data(), eps, sm.data(), si.data()) == kUnsupported);
    EXPECT(train(3, x, x, bn, gamma.data(), rm.data(), rv.data(), eps, sm.data(), si.data()) == kBad);
    EXPECT(train(1, x, x, per_act, gamma.data(), rm.data(), rv.data(), eps, sm.data(), si.data()) == kBad);
    EXPECT(train(1, x, x, api.tensor(1, 3, 1, 1), gamma.data(), rm.data(), rv.data(), eps, sm.data(), si.data()) ==
           kBad);  // 3 channels against 2
    EXPECT(train(1, x, api.tensor(s.n, s.c, s.h, s.w + 1), bn, gamma.data(), rm.data(), rv.data(), eps, sm.data(),
                 si.data()) == kBad);
    EXPECT(train(1, x, x, nullptr, gamma.data(), rm.data(), rv.data(), eps, sm.data(), si.data()) == kNull);
    EXPECT(train(1, x, x, bn, nullptr, rm.data(), rv.data(), eps, sm.data(), si.data()) == kNull);
    EXPECT(train(1, x, x, bn, gamma.data(), rm.data(), nullptr, eps, sm.data(), si.data()) == kBad);  // one of a pair
    EXPECT(train(1, x, x, bn, gamma.data(), rm.data(), rv.data(), eps, nullptr, si.data()) == kBad);
    // CUDNN_BN_MIN_EPSILON is 0.0 in cuDNN 9: 0 is allowed, below it not.
    EXPECT(train(1, x, x, bn, gamma.data(), rm.data(), rv.data(), -1e-5, sm.data(), si.data()) == kBad);
    EXPECT(train(1, x, x, bn, gamma.data(), rm.data(), rv.data(), std::nan(""), sm.data(), si.data()) == kBad);
    EXPECT(train(1, x, x, bn, gamma.data(), rm.data(), rv.data(), 0.0, sm.data(), si.data()) == kOk);
    P single = api.tensor(1, 2, 1, 1);  // one value per channel
    EXPECT(train(1, single, single, bn, gamma.data(), rm.data(), rv.data(), eps, sm.data(), si.data()) == kBad);
    P xh = api.tensor(s.n, s.c, s.h, s.w, kHalf), xn = api.tensor(s.n, s.c, s.h, s.w, 0, kNHWC);
    EXPECT(train(1, xh, xh, bn, gamma.data(), rm.data(), rv.data(), eps, sm.data(), si.data()) == kUnsupported);
    EXPECT(train(1, xn, xn, bn, gamma.data(), rm.data(), rv.data(), eps, sm.data(), si.data()) == kUnsupported);
    EXPECT(api.bn_train(nullptr, 1, &kOne, &kZero, x, xs.data(), x, y.data(), bn, gamma.data(), beta.data(), factor,
                        rm.data(), rv.data(), eps, sm.data(), si.data()) == kNotInit);
    EXPECT(api.bn_train(h, 1, &kOne, nullptr, x, xs.data(), x, y.data(), bn, gamma.data(), beta.data(), factor,
                        rm.data(), rv.data(), eps, sm.data(), si.data()) == kNull);
    EXPECT(api.bn_infer(h, 1, &kOne, &kZero, x, xs.data(), x, y.data(), bn, gamma.data(), beta.data(), rm0.data(),
                        nullptr, eps) == kNull);
    EXPECT(api.bn_infer(h, 1, &kOne, &kZero, x, xs.data(), x, y.data(), bn, gamma.data(), beta.data(), rm0.data(),
                        rv0.data(), -1.0) == kBad);
    EXPECT(api.bn_infer(h, 0, &kOne, &kZero, x, xs.data(), x, y.data(), per_act, gamma.data(), beta.data(),
                        rm0.data(), rv0.data(), eps) == kUnsupported);
    EXPECT(api.bn_bwd(h, 1, &kOne, &kZero, &kOne, nullptr, x, xs.data(), x, dys.data(), x, dx.data(), bn, gamma.data(),
                      dg.data(), db.data(), eps, sm.data(), si.data()) == kNull);
    EXPECT(api.bn_bwd(h, 1, &kOne, &kZero, &kOne, &kZero, x, xs.data(), x, dys.data(), x, dx.data(), bn, gamma.data(),
                      nullptr, db.data(), eps, sm.data(), si.data()) == kNull);
    EXPECT(api.bn_bwd(h, 1, &kOne, &kZero, &kOne, &kZero, x, xs.data(), x, dys.data(), x, dx.data(), bn, gamma.data(),
                      dg.data(), db.data(), eps, sm.data(), nullptr) == kBad);
    EXPECT(api.bn_bwd(h, 1, &kOne, &kZero, &kOne, &kZero, x, xs.data(), api.tensor(s.n, s.c, s.h + 1, s.w),
                      dys.data(), x, dx.data(), bn, gamma.data(), dg.data(), db.data(), eps, sm.data(),
                      si.data()) == kBad);
  }
}

void check_cudnn_ops(const char* path) {
  lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    std::printf("cannot open %s: %s\n", path, dlerror());
    std::exit(1);
  }
  using P = void*;
  OpsApi api{};
  api.create = sym<int (*)(P*)>("cudnnCreate");
  api.create_tensor = sym<int (*)(P*)>("cudnnCreateTensorDescriptor");
  api.set_tensor = sym<int (*)(P, int, int, int, int, int, int)>("cudnnSetTensor4dDescriptor");
  api.get_tensor = sym<decltype(api.get_tensor)>("cudnnGetTensor4dDescriptor");
  api.create_pool = sym<decltype(api.create_pool)>("cudnnCreatePoolingDescriptor");
  api.set_pool = sym<decltype(api.set_pool)>("cudnnSetPooling2dDescriptor");
  api.destroy_pool = sym<decltype(api.destroy_pool)>("cudnnDestroyPoolingDescriptor");
  api.pool_dim = sym<decltype(api.pool_dim)>("cudnnGetPooling2dForwardOutputDim");
  api.pool_fwd = sym<decltype(api.pool_fwd)>("cudnnPoolingForward");
  api.pool_bwd = sym<decltype(api.pool_bwd)>("cudnnPoolingBackward");
  api.create_act = sym<decltype(api.create_act)>("cudnnCreateActivationDescriptor");
  api.set_act = sym<decltype(api.set_act)>("cudnnSetActivationDescriptor");
  api.destroy_act = sym<decltype(api.destroy_act)>("cudnnDestroyActivationDescriptor");
  api.act_fwd = sym<decltype(api.act_fwd)>("cudnnActivationForward");
  api.act_bwd = sym<decltype(api.act_bwd)>("cudnnActivationBackward");
  api.softmax_fwd = sym<decltype(api.softmax_fwd)>("cudnnSoftmaxForward");
  api.softmax_bwd = sym<decltype(api.softmax_bwd)>("cudnnSoftmaxBackward");
  api.derive_bn = sym<decltype(api.derive_bn)>("cudnnDeriveBNTensorDescriptor");
  api.bn_train = sym<decltype(api.bn_train)>("cudnnBatchNormalizationForwardTraining");
  api.bn_infer = sym<decltype(api.bn_infer)>("cudnnBatchNormalizationForwardInference");
  api.bn_bwd = sym<decltype(api.bn_bwd)>("cudnnBatchNormalizationBackward");
  EXPECT(api.create(&api.handle) == kOk);
  check_pooling(api);
  check_activation(api);
  check_softmax(api);
  check_batch_norm(api);
}

void check_cublas(const char* path) {
  lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    std::printf("cannot open %s: %s\n", path, dlerror());
    std::exit(1);
  }
  using P = void*;
  auto create = sym<int (*)(P*)>("cublasCreate_v2");
  auto property = sym<int (*)(int, int*)>("cublasGetProperty");
  auto set_math = sym<int (*)(P, int)>("cublasSetMathMode");
  auto get_math = sym<int (*)(P, int*)>("cublasGetMathMode");
  auto sgemm = sym<int (*)(P, int, int, int, int, int, const float*, const float*, int, const float*, int,
                           const float*, float*, int)>("cublasSgemm_v2");
  auto strided = sym<int (*)(P, int, int, int, int, int, const float*, const float*, int, long long, const float*, int,
                             long long, const float*, float*, int, long long, int)>("cublasSgemmStridedBatched");
  constexpr int kInvalid = 7;
  int major = 0, minor = -1, patch = -1, unused = 0;
  EXPECT(property(0, &major) == 0 && property(1, &minor) == 0 && property(2, &patch) == 0);
  EXPECT(major == 13 && minor == 0 && patch == 0);
  EXPECT(property(3, &unused) == kInvalid);
  P h = nullptr;
  EXPECT(create(&h) == 0);
  EXPECT(set_math(h, 3) == 0 && get_math(h, &unused) == 0 && unused == 3);
  EXPECT(set_math(h, 5) == kInvalid);

  // C (m x n, ldc 7) = alpha op(A) op(B) + beta C, column-major, every transposition.
  const int m = 5, n = 4, k = 3, ld = 7;
  const float alpha = 1.5f, beta = 0.5f, zero = 0.0f;
  const auto a = random(ld * 5, 4), b = random(ld * 5, 5), c0 = random(ld * n, 6);
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      std::vector<float> c(c0);
      EXPECT(sgemm(h, ta, tb, m, n, k, &alpha, a.data(), ld, b.data(), ld, &beta, c.data(), ld) == 0);
      bool same = true;
      for (int j = 0; j < n; ++j)
        for (int i = 0; i < m; ++i) {
          double s = 0;
          for (int p = 0; p < k; ++p) s += double(ta ? a[p + i * ld] : a[i + p * ld]) * (tb ? b[j + p * ld] : b[p + j * ld]);
          same = same && close(c[i + j * ld], alpha * s + beta * c0[i + j * ld]);
        }
      EXPECT(same);
    }
  // beta 0 never reads C.
  std::vector<float> c(ld * n, std::numeric_limits<float>::quiet_NaN());
  EXPECT(sgemm(h, 0, 0, m, n, k, &alpha, a.data(), ld, b.data(), ld, &zero, c.data(), ld) == 0 && !std::isnan(c[0]));
  // Leading dimensions below max(1, rows as stored), negative sizes.
  EXPECT(sgemm(h, 0, 0, m, n, k, &alpha, a.data(), m - 1, b.data(), ld, &beta, c.data(), ld) == kInvalid);
  EXPECT(sgemm(h, 1, 0, m, n, k, &alpha, a.data(), k - 1, b.data(), ld, &beta, c.data(), ld) == kInvalid);
  EXPECT(sgemm(h, 1, 0, m, n, k, &alpha, a.data(), k, b.data(), ld, &beta, c.data(), ld) == 0);
  EXPECT(sgemm(h, 0, 1, m, n, k, &alpha, a.data(), ld, b.data(), n - 1, &beta, c.data(), ld) == kInvalid);
  EXPECT(sgemm(h, 0, 0, m, n, k, &alpha, a.data(), ld, b.data(), ld, &beta, c.data(), m - 1) == kInvalid);
  EXPECT(sgemm(h, 0, 0, m, n, 0, &alpha, a.data(), m, b.data(), 0, &beta, c.data(), ld) == kInvalid);  // ldb < 1
  EXPECT(sgemm(h, 0, 0, -1, n, k, &alpha, a.data(), ld, b.data(), ld, &beta, c.data(), ld) == kInvalid);
  // Strided batches with a shared A (stride 0) equal one call per batch.
  std::vector<float> batched(3 * ld * n, 0.0f), looped(batched);
  EXPECT(strided(h, 0, 0, m, n, k, &alpha, a.data(), ld, 0, b.data(), ld, 5, &zero, batched.data(), ld, ld * n, 3) == 0);
  for (int i = 0; i < 3; ++i)
    sgemm(h, 0, 0, m, n, k, &alpha, a.data(), ld, b.data() + 5 * i, ld, &zero, looped.data() + i * ld * n, ld);
  EXPECT(batched == looped);
  EXPECT(strided(h, 0, 0, m, n, k, &alpha, a.data(), ld, 0, b.data(), ld, 5, &zero, batched.data(), ld, ld * n, -1) ==
         kInvalid);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::printf("usage: stand_ins_check LIBCUDNN LIBCUBLAS\n");
    return 2;
  }
  check_cudnn(argv[1]);
  check_cudnn_ops(argv[1]);
  check_cublas(argv[2]);
  std::printf("%d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
