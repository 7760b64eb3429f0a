// Runs the kernels of native/cuda/gemm_conv.cu on the host (cuda_runtime.h here emulates the
// runtime and the launches) and compares every result with naive double-precision references
// written from the definitions: products over explicit index loops, convolutions and their
// gradients as scatter sums over every (output pixel, tap). Every buffer is fenced by NaN
// guards that must stay untouched, outputs start as NaN (every element must be written, and
// beta == 0 must not read C), and the temporaries must all be returned to the allocator.
// Prints one line per failed check and a summary; exit status 1 on any failure.
//
// Built and run by run.mjs (the vitest suite calls it): g++ -I<this dir> -I<native/cuda>
// -DGEMM_CONV_SOURCE=<transformed gemm_conv.cu>.
#include "cuda_runtime.h"
// clang-format off
#include GEMM_CONV_SOURCE
// clang-format on

#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

namespace lrface::cuda {

// The allocator and stream as gemm_conv.cu sees them: plain host memory, poisoned with NaN so
// a kernel reading a temporary before writing it shows up in the results.
int64_t g_live_blocks = 0;

cudaStream_t device_stream(int) { return nullptr; }
DeviceGuard::DeviceGuard(int) {}
DeviceGuard::~DeviceGuard() {}
void* device_malloc(int, size_t bytes, size_t* capacity) {
  const size_t count = (bytes + sizeof(float) - 1) / sizeof(float);
  float* p = static_cast<float*>(std::malloc(count * sizeof(float) + 1));
  for (size_t i = 0; i < count; ++i) p[i] = std::nanf("");
  *capacity = bytes;
  ++g_live_blocks;
  return p;
}
void device_free(int, void* ptr, size_t) {
  if (!ptr) return;
  std::free(ptr);
  --g_live_blocks;
}
void device_zero(int, void* ptr, size_t bytes) { std::memset(ptr, 0, bytes); }
void host_to_device(int, void* dst, const void* src, size_t bytes) {
  if (bytes > 0) std::memcpy(dst, src, bytes);  // memcpy of null pointers is undefined even for 0 bytes
}
[[noreturn]] void fail_status(cudaError_t status, const char* call, const char* file, int line, size_t) {
  fail(ErrorKind::State, "CUDA error in ", call, " at ", file, ":", line, ": ", cudaGetErrorName(status));
}

}  // namespace lrface::cuda

namespace {

using lrface::cpu::ConvGeometry;
namespace dev = lrface::cuda;

int g_checks = 0, g_failures = 0;

void report(const std::string& what) {
  ++g_failures;
  if (g_failures <= 40) std::printf("FAIL %s\n", what.c_str());
}

uint32_t g_seed = 12345;
float next_uniform() {  // [-1, 1)
  g_seed = g_seed * 1664525u + 1013904223u;
  return static_cast<float>(g_seed >> 8) / float(1 << 23) - 1.0f;
}

uint32_t bits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return u;
}
float from_bits(uint32_t u) {
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}
const float kGuard = from_bits(0x7fc0dead);  // a NaN no kernel produces
constexpr size_t kGuardCount = 97;

// A buffer with NaN guards on both sides.
struct Buffer {
  std::vector<float> storage;
  size_t size;
  explicit Buffer(size_t n, float fill = std::nanf("")) : storage(n + 2 * kGuardCount, kGuard), size(n) {
    for (size_t i = 0; i < n; ++i) storage[kGuardCount + i] = fill;
  }
  float* data() { return storage.data() + kGuardCount; }
  float& operator[](size_t i) { return storage[kGuardCount + i]; }
  void randomize() {
    for (size_t i = 0; i < size; ++i) (*this)[i] = next_uniform();
  }
  bool guards_intact() const {
    for (size_t i = 0; i < kGuardCount; ++i)
      if (bits(storage[i]) != bits(kGuard) || bits(storage[kGuardCount + size + i]) != bits(kGuard)) return false;
    return true;
  }
};

// got against ref (with abs, the sum of the magnitudes of the terms, for the rounding bound).
bool close(float got, double ref, double abs) {
  if (std::isnan(ref)) return std::isnan(got);
  // abs is NaN where a NaN term was masked by the relu: that value must come out exact.
  return std::fabs(double(got) - ref) <= (std::isnan(abs) ? 0.0 : 2e-5 * abs + 1e-6);
}

void check_values(const std::string& name, Buffer& got, const std::vector<double>& ref, const std::vector<double>& abs,
                  const std::vector<char>& written, const std::vector<float>& before) {
  ++g_checks;
  if (!got.guards_intact()) return report(name + ": wrote outside the buffer");
  for (size_t i = 0; i < got.size; ++i) {
    if (written[i] ? !close(got[i], ref[i], abs[i]) : bits(got[i]) != bits(before[i])) {
      char msg[256];
      std::snprintf(msg, sizeof msg, ": element %zu is %.9g, expected %.9g%s", i, got[i], written[i] ? ref[i] : before[i],
                    written[i] ? "" : " (untouched)");
      return report(name + msg);
    }
  }
}

// ---- GEMM ---------------------------------------------------------------------------------------

struct Offsets {
  const char* name;
  std::vector<int64_t> a, b;  // in units of one matrix, scaled by its size below
};

void gemm_case(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, float beta, int64_t pad,
               const Offsets& offs) {
  const int64_t batch = static_cast<int64_t>(offs.a.size());
  const int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
  const int64_t a_rows = ta ? k : m, b_rows = tb ? n : k;
  const int64_t a_mat = std::max<int64_t>(1, a_rows * lda), b_mat = std::max<int64_t>(1, b_rows * ldb);
  const int64_t c_stride = m * ldc + 3;
  std::vector<int64_t> ao(batch), bo(batch);
  int64_t a_end = 1, b_end = 1;
  for (int64_t i = 0; i < batch; ++i) {
    ao[i] = offs.a[i] * a_mat + 1;  // + 1: offsets need not be aligned
    bo[i] = offs.b[i] * b_mat;
    a_end = std::max(a_end, ao[i] + a_mat);
    b_end = std::max(b_end, bo[i] + b_mat);
  }
  Buffer a(a_end), b(b_end), c(batch * c_stride);
  a.randomize();
  b.randomize();
  if (beta != 0) c.randomize();
  std::vector<float> before(c.size);
  for (size_t i = 0; i < c.size; ++i) before[i] = c[i];

  std::vector<double> ref(c.size), abs(c.size);
  std::vector<char> written(c.size, 0);
  for (int64_t e = 0; e < batch; ++e)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0, sa = 0;
        for (int64_t p = 0; p < k; ++p) {
          const double av = ta ? a[ao[e] + p * lda + i] : a[ao[e] + i * lda + p];
          const double bv = tb ? b[bo[e] + j * ldb + p] : b[bo[e] + p * ldb + j];
          s += av * bv;
          sa += std::fabs(av * bv);
        }
        const size_t at = e * c_stride + i * ldc + j;
        ref[at] = alpha * s + (beta != 0 ? beta * double(before[at]) : 0.0);
        abs[at] = std::fabs(alpha) * sa + (beta != 0 ? std::fabs(beta * double(before[at])) : 0.0);
        written[at] = 1;
      }
  dev::own_sgemm_batched(0, ta, tb, m, n, k, alpha, a.data(), lda, ao.data(), b.data(), ldb, bo.data(), beta, c.data(),
                         ldc, c_stride, batch);
  char name[200];
  std::snprintf(name, sizeof name, "sgemm ta=%d tb=%d m=%" PRId64 " n=%" PRId64 " k=%" PRId64 " alpha=%g beta=%g pad=%" PRId64
                " batch %s", ta, tb, m, n, k, alpha, beta, pad, offs.name);
  check_values(name, c, ref, abs, written, before);
  if (!a.guards_intact() || !b.guards_intact()) report(std::string(name) + ": wrote into an input's guard");
}

void gemm_suite() {
  const std::vector<Offsets> batches = {
      {"single", {0}, {0}},
      {"strided", {0, 1, 2}, {0, 1, 2}},
      {"broadcast A over an outer axis", {0, 1, 2, 0, 1, 2}, {0, 1, 2, 3, 4, 5}},
      {"broadcast B", {0, 1, 2, 3}, {0, 0, 0, 0}},
      {"two strides with a permutation", {2, 0, 1}, {1, 2, 0}},
      {"irregular (device table)", {0, 1, 5, 6, 7, 8}, {1, 2, 0, 0, 1, 2}},
  };
  const int64_t shapes[][3] = {{1, 1, 1}, {65, 130, 17}, {150, 140, 33}, {64, 64, 16}, {33, 7, 40}, {7, 20, 1000}, {5, 3, 0}, {2, 70, 513}, {150, 9, 5}};
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (const auto& s : shapes)
        for (size_t i = 0; i < batches.size(); ++i) {
          // Alternating: C overwritten (beta 0) or scaled and added to, tight or padded rows.
          if (i % 2 == 0) gemm_case(ta, tb, s[0], s[1], s[2], 1.0f, 0.0f, 0, batches[i]);
          else gemm_case(ta, tb, s[0], s[1], s[2], 0.5f, 1.5f, 3, batches[i]);
        }
  // Both forms of C's update with the device table of offsets.
  gemm_case(false, true, 33, 7, 40, 1.0f, 0.0f, 3, batches.back());
  gemm_case(true, false, 33, 7, 40, -0.5f, 2.0f, 0, batches.back());
}

// ---- convolution ----------------------------------------------------------------------------

struct ConvSpec {
  const char* name;
  int64_t n, c, h, w, o, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, groups;
};

ConvGeometry geometry(const ConvSpec& s) {
  const int64_t out_h = (s.h + s.pt + s.pb - s.dh * (s.kh - 1) - 1) / s.sh + 1;
  const int64_t out_w = (s.w + s.pl + s.pr - s.dw * (s.kw - 1) - 1) / s.sw + 1;
  return ConvGeometry{s.n, s.c, s.h, s.w, s.o, s.kh, s.kw, s.sh, s.sw, s.pt, s.pl, s.dh, s.dw, s.groups, out_h, out_w};
}

// Calls visit(x index, w index, out index) for every product term of the convolution.
template <typename Visit>
void for_each_term(const ConvGeometry& g, Visit visit) {
  const int64_t cg = g.c / g.groups, og = g.o / g.groups;
  for (int64_t img = 0; img < g.n; ++img)
    for (int64_t oc = 0; oc < g.o; ++oc)
      for (int64_t oh = 0; oh < g.out_h; ++oh)
        for (int64_t ow = 0; ow < g.out_w; ++ow)
          for (int64_t cl = 0; cl < cg; ++cl)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t ih = oh * g.sh - g.pt + i * g.dh, iw = ow * g.sw - g.pl + j * g.dw;
                if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                const int64_t ci = (oc / og) * cg + cl;
                visit(((img * g.c + ci) * g.h + ih) * g.w + iw, ((oc * cg + cl) * g.kh + i) * g.kw + j,
                      ((img * g.o + oc) * g.out_h + oh) * g.out_w + ow);
              }
}

std::vector<float> snapshot(Buffer& b) {
  std::vector<float> v(b.size);
  for (size_t i = 0; i < b.size; ++i) v[i] = b[i];
  return v;
}

void conv_case(const ConvSpec& s, bool nan_input) {
  const ConvGeometry g = geometry(s);
  const int64_t cg = g.c / g.groups;
  const size_t xs = g.n * g.c * g.h * g.w, ws = g.o * cg * g.kh * g.kw, ys = g.n * g.o * g.out_h * g.out_w;
  Buffer x(xs), w(ws), bias_o(g.o), bias_c(g.c), gy(ys);
  x.randomize();
  w.randomize();
  bias_o.randomize();
  bias_c.randomize();
  gy.randomize();
  if (nan_input && xs > 5) x[xs / 2 + 1] = std::nanf("");
  const std::string base = std::string("conv ") + s.name + (nan_input ? " (a NaN input)" : "");

  // Forward, with and without bias, with and without the fused relu.
  for (int variant = 0; variant < 4; ++variant) {
    const bool with_bias = variant & 1, relu = variant & 2;
    if (nan_input && !relu) continue;
    std::vector<double> ref(ys, 0.0), abs(ys, 0.0);
    for_each_term(g, [&](int64_t xi, int64_t wi, int64_t yi) {
      ref[yi] += double(x[xi]) * w[wi];
      abs[yi] += std::fabs(double(x[xi]) * w[wi]);
    });
    const int64_t plane = g.out_h * g.out_w;
    for (size_t yi = 0; yi < ys; ++yi) {
      if (with_bias) {
        const double b = bias_o[(yi / plane) % g.o];
        ref[yi] += b;
        abs[yi] += std::fabs(b);
      }
      if (relu) ref[yi] = ref[yi] > 0 ? ref[yi] : 0.0;  // relu(NaN) = 0
    }
    Buffer out(ys);
    const auto before = snapshot(out);
    dev::own_conv2d_forward(0, g, x.data(), w.data(), with_bias ? bias_o.data() : nullptr, out.data(), relu);
    check_values(base + " forward" + (with_bias ? " +bias" : "") + (relu ? " +relu" : ""), out, ref, abs,
                 std::vector<char>(ys, 1), before);
  }
  if (nan_input) return;

  // Input gradient, with and without the per-input-channel bias (conv_transpose2d's).
  for (int with_bias = 0; with_bias < 2; ++with_bias) {
    std::vector<double> ref(xs, 0.0), abs(xs, 0.0);
    for_each_term(g, [&](int64_t xi, int64_t wi, int64_t yi) {
      ref[xi] += double(gy[yi]) * w[wi];
      abs[xi] += std::fabs(double(gy[yi]) * w[wi]);
    });
    if (with_bias)
      for (size_t xi = 0; xi < xs; ++xi) {
        const double b = bias_c[(xi / (g.h * g.w)) % g.c];
        ref[xi] += b;
        abs[xi] += std::fabs(b);
      }
    Buffer gx(xs);
    const auto before = snapshot(gx);
    dev::own_conv2d_backward_data(0, g, gy.data(), w.data(), with_bias ? bias_c.data() : nullptr, gx.data());
    check_values(base + " backward data" + (with_bias ? " +bias" : ""), gx, ref, abs, std::vector<char>(xs, 1), before);
  }

  // Filter gradient, over an output that starts as NaN (overwritten, not accumulated).
  {
    std::vector<double> ref(ws, 0.0), abs(ws, 0.0);
    for_each_term(g, [&](int64_t xi, int64_t wi, int64_t yi) {
      ref[wi] += double(gy[yi]) * x[xi];
      abs[wi] += std::fabs(double(gy[yi]) * x[xi]);
    });
    Buffer gw(ws);
    const auto before = snapshot(gw);
    dev::own_conv2d_backward_filter(0, g, x.data(), gy.data(), gw.data());
    check_values(base + " backward filter", gw, ref, abs, std::vector<char>(ws, 1), before);
  }
  if (!x.guards_intact() || !w.guards_intact() || !gy.guards_intact() || !bias_o.guards_intact() ||
      !bias_c.guards_intact())
    report(base + ": wrote into an input's guard");
}

void conv_suite() {
  const std::vector<ConvSpec> specs = {
      // name                          n  c   h   w  o kh kw sh sw pt pb pl pr dh dw groups
      {"3x3 pad 1", 2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
      {"3x3 stride 2, asymmetric pad", 2, 3, 9, 8, 5, 3, 3, 2, 2, 1, 0, 2, 1, 1, 1, 1},
      {"3x3 dilation 2", 2, 4, 10, 9, 6, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1},
      {"groups 2", 2, 4, 6, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2},
      {"groups 3, stride 2, dilation 2", 3, 6, 11, 9, 9, 3, 2, 2, 1, 1, 2, 0, 1, 2, 2, 3},
      {"depthwise 3x3 stride 2", 2, 5, 9, 8, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 5},
      {"depthwise, 2 outputs per channel, dilation", 2, 3, 8, 9, 6, 3, 3, 1, 1, 2, 1, 2, 2, 2, 1, 3},
      {"1x1 (input planes as columns)", 3, 6, 5, 4, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
      {"1x1 groups 2", 2, 6, 4, 5, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2},
      {"1x1 stride 2", 2, 6, 7, 6, 5, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1},
      {"1x1 padded", 1, 3, 4, 4, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
      {"2x5 stride (2,1) dilation (1,2)", 2, 3, 9, 12, 4, 2, 5, 2, 1, 1, 0, 2, 3, 1, 2, 1},
      {"one input channel, 8 outputs", 2, 1, 9, 7, 8, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1},
      {"stride 3 leaving rows unread", 2, 2, 10, 11, 3, 2, 2, 3, 3, 0, 0, 0, 0, 1, 1, 1},
      {"kernel larger than the input", 1, 2, 3, 2, 3, 5, 4, 1, 1, 2, 2, 2, 2, 1, 1, 1},
      {"many pixels (split k in the filter gradient)", 3, 2, 20, 20, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
      {"many channels (several tiles)", 2, 24, 5, 5, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
      {"five images (several chunks under small limits)", 5, 2, 6, 5, 3, 2, 2, 1, 1, 0, 0, 0, 0, 1, 1, 1},
      {"tall image, stride 2 (bands of rows under small limits)", 2, 3, 17, 6, 4, 3, 3, 2, 1, 1, 2, 1, 1, 1, 1, 1},
  };
  for (const auto& s : specs) {
    conv_case(s, false);
    conv_case(s, true);
  }
  // An empty batch: nothing to compute, the filter gradient is zero.
  const ConvGeometry g = geometry({"empty", 0, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1});
  Buffer gw(4 * 3 * 9);
  const auto before = snapshot(gw);
  dev::own_conv2d_backward_filter(0, g, nullptr, nullptr, gw.data());
  check_values("conv empty batch: backward filter", gw, std::vector<double>(gw.size, 0.0),
               std::vector<double>(gw.size, 0.0), std::vector<char>(gw.size, 1), before);
  Buffer out(1);
  dev::own_conv2d_forward(0, g, nullptr, nullptr, nullptr, out.data(), true);
  check_values("conv empty batch: forward writes nothing", out, {0.0}, {0.0}, {0}, snapshot(out));
}

void channel_bias_suite() {
  const int64_t outer = 3, channels = 5, inner = 7, total = outer * channels * inner;
  for (int variant = 1; variant < 4; ++variant) {
    const bool with_bias = variant & 1, relu = variant & 2;
    Buffer out(total), bias(channels);
    out.randomize();
    bias.randomize();
    out[4] = std::nanf("");
    const auto before = snapshot(out);
    std::vector<double> ref(total), abs(total);
    for (int64_t i = 0; i < total; ++i) {
      // One float addition, as the kernel: the reference rounds the same single sum.
      const double v = double(before[i] + (with_bias ? bias[(i / inner) % channels] : 0.0f));
      ref[i] = relu ? (v > 0 ? v : 0.0) : v;
      abs[i] = 0;
    }
    dev::channel_bias(0, out.data(), with_bias ? bias.data() : nullptr, outer, channels, inner, relu);
    check_values(std::string("channel_bias") + (with_bias ? " +bias" : "") + (relu ? " +relu" : ""), out, ref, abs,
                 std::vector<char>(total, 1), before);
  }
  // Neither bias nor relu: nothing to do, nothing touched.
  Buffer out(total);
  out.randomize();
  const auto before = snapshot(out);
  dev::channel_bias(0, out.data(), nullptr, outer, channels, inner, false);
  check_values("channel_bias without bias or relu", out, {}, {}, std::vector<char>(total, 0), before);
}

}  // namespace

int main() {
  try {
    // On a large device (small problems take 64 x 64 tiles and split k), then the products
    // again on a device of one multiprocessor (the 128-wide tiles, no split; the convolutions
    // call the same product whatever its tiles).
    emu::multiprocessors = 132;
    gemm_suite();
    conv_suite();
    emu::multiprocessors = 1;
    gemm_suite();
    channel_bias_suite();
  } catch (const std::exception& e) {
    std::printf("FAIL exception: %s\n", e.what());
    return 1;
  }
  ++g_checks;
  if (lrface::cuda::g_live_blocks != 0) report("device blocks not returned: " + std::to_string(lrface::cuda::g_live_blocks));
  std::printf("%d checks, %d failed, %" PRId64 " kernel launches\n", g_checks, g_failures, emu::launches);
  return g_failures == 0 ? 0 : 1;
}
