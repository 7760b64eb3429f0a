// Checks the cuDNN and cuBLAS stand-ins (stand-ins/) against what NVIDIA documents, on host
// memory (opened without the emulated addon, they run their work at once): statuses for bad
// arguments, output sizes, results against textbook loops (column-major products) and the
// adjoint identities that tie the three convolution directions together, alpha/beta, the
// algorithm lists and workspace checks. Run by run.mjs with the two libraries' paths.
#include <dlfcn.h>

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
  check_cublas(argv[2]);
  std::printf("%d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
