// Filter gradient with the output channels along the vector lanes:
//   gw^T[tap][o] = sum over images and output pixels of src(tap, pixel) * gy^T[pixel][o].
// For layers with few input channels and large kernels (SRCNN's 9x9 3->64) the GEMM's
// operand of taps x pixels is many times larger than gy and packing it costs more than the
// products. Here src(tap, pixel) is broadcast straight from a zero-padded band of input rows
// (any stride or dilation: the lanes never run along pixels), and gy is transposed per band
// to [pixel][o], so VW output channels are one aligned load. Register blocks of TB taps by NV
// vectors of output channels sum a band's pixels, then are added to the thread's accumulator
// (a sum of band sums); the threads' accumulators are added in double at the end.
// With few output channels (SRCNN's 5x5 32->3, VDSR's 3x3 64->1) the lanes would run mostly
// empty; at stride 1 the same kernel then runs on the input gradient's convolution (gy to x),
// whose outputs are the input channels.
#include "conv_filter.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include "../core/thread_pool.h"
#include "gemm.h"
#include "kernel_util.h"

namespace lrface::cpu {

namespace {

using namespace kernel;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

constexpr int64_t kMaxOutputs = 128;  // see filter_by_outputs_wins
constexpr int kTapBlock = 6;  // TB: taps per register block, every instruction set
// Output rows per band: gy^T of a band (rows x out_w x o_pad floats), read once per block of
// taps, stays near 128 KiB (in L2).
constexpr int64_t kBandFloats = int64_t(1) << 15;
// Final sums over fewer floats than this run on the calling thread.
constexpr int64_t kInlineFloats = int64_t(1) << 16;

struct Args {
  const ConvGeometry* g;
  const float* gy;
  int64_t o_pad;     // O rounded up to whole vectors
  int64_t k, k_pad;  // taps (C kh kw), rounded up to whole blocks of TB
  int64_t band, bands;
  int64_t cols;      // padded input row length
  int64_t lo_c, hi_c;  // padded columns that hold image pixels
};

// acc[t][o] += sum over the band's pixels of src[taps[t] + pixel's first tap] * gyt[pixel][o],
// for TB taps and NV vectors of output channels from o0.
template <int VW, int NV>
LR_INLINE void band_block(const Args& a, const float* src, const int64_t* taps, int64_t rows, const float* gyt,
                          int64_t o0, float* acc_mem) {
  using V = typename Vec<VW>::V;
  const ConvGeometry& g = *a.g;
  constexpr int TB = kTapBlock;
  V acc[TB][NV];
  for (int t = 0; t < TB; ++t)
    for (int j = 0; j < NV; ++j) acc[t][j] = V{};
  const int64_t row_step = g.sh * a.cols;
  for (int64_t r = 0; r < rows; ++r) {
    const float* p[TB];
    for (int t = 0; t < TB; ++t) p[t] = src + taps[t] + r * row_step;
    const float* gp = gyt + r * g.out_w * a.o_pad + o0;
    for (int64_t ow = 0; ow < g.out_w; ++ow, gp += a.o_pad) {
      V b[NV];
      for (int j = 0; j < NV; ++j) b[j] = vload<VW>(gp + j * VW);
      const int64_t at = ow * g.sw;
      for (int t = 0; t < TB; ++t) {
        const V s = p[t][at] - V{};  // s - 0 folds to a broadcast
        for (int j = 0; j < NV; ++j) acc[t][j] += s * b[j];
      }
    }
  }
  for (int t = 0; t < TB; ++t)
    for (int j = 0; j < NV; ++j) {
      float* m = acc_mem + t * a.o_pad + o0 + j * VW;
      vstore<VW>(m, vload<VW>(m) + acc[t][j]);
    }
}

// gyt[r][ow][o] = gy[n][o][oh0 + r][ow] for the band's rows, channels past O zero: VW
// channels by VW pixels at a time, transposed in registers.
template <int VW>
LR_INLINE void transpose_band(const Args& a, int64_t n, int64_t oh0, int64_t rows, float* gyt) {
  using V = typename Vec<VW>::V;
  const ConvGeometry& g = *a.g;
  const int64_t plane = g.out_h * g.out_w;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t ow = 0; ow < g.out_w; ow += VW) {
      const int64_t valid = std::min<int64_t>(VW, g.out_w - ow);
      for (int64_t o0 = 0; o0 < a.o_pad; o0 += VW) {
        V v[VW];
        for (int i = 0; i < VW; ++i) {
          if (o0 + i >= g.o) {
            v[i] = V{};
            continue;
          }
          const float* s = a.gy + (n * g.o + o0 + i) * plane + (oh0 + r) * g.out_w + ow;
          v[i] = valid == VW ? vload<VW>(s) : vload_partial<VW>(s, valid);
        }
        transpose_square<VW>(v);
        for (int64_t p = 0; p < valid; ++p) vstore<VW>(gyt + ((r * g.out_w) + ow + p) * a.o_pad + o0, v[p]);
      }
    }
}

// One band (image n, output rows [oh0, oh0 + rows)) into acc [k_pad][o_pad]: gy^T, then every
// block of taps by every strip of up to NVMAX vectors of output channels.
template <int VW, int NVMAX>
LR_INLINE void run_band(const Args& a, const float* src, const int64_t* taps, int64_t n, int64_t oh0, int64_t rows,
                        float* gyt, float* acc) {
  transpose_band<VW>(a, n, oh0, rows, gyt);
  const int64_t vectors = a.o_pad / VW;
  for (int64_t tb = 0; tb < a.k_pad; tb += kTapBlock)
    for (int64_t j = 0; j < vectors;) {
      const int64_t nv = std::min<int64_t>(NVMAX, vectors - j);
      float* m = acc + tb * a.o_pad;
      if constexpr (NVMAX >= 4) {
        if (nv == 4) band_block<VW, 4>(a, src, taps + tb, rows, gyt, j * VW, m);
        if (nv == 3) band_block<VW, 3>(a, src, taps + tb, rows, gyt, j * VW, m);
      }
      if (nv == 2) band_block<VW, 2>(a, src, taps + tb, rows, gyt, j * VW, m);
      if (nv == 1) band_block<VW, 1>(a, src, taps + tb, rows, gyt, j * VW, m);
      j += nv;
    }
}

using BandFn = void (*)(const Args&, const float*, const int64_t*, int64_t, int64_t, int64_t, float*, float*);
// TB = 6 taps by NV vectors: 6 x 4 zmm (24 of 32 registers), 6 x 2 ymm or xmm (12 of 16).
LR_AVX512 void band_avx512(const Args& a, const float* s, const int64_t* t, int64_t n, int64_t oh0, int64_t rows, float* gyt, float* acc) { run_band<16, 4>(a, s, t, n, oh0, rows, gyt, acc); }
LR_AVX2 void band_avx2(const Args& a, const float* s, const int64_t* t, int64_t n, int64_t oh0, int64_t rows, float* gyt, float* acc) { run_band<8, 2>(a, s, t, n, oh0, rows, gyt, acc); }
void band_base(const Args& a, const float* s, const int64_t* t, int64_t n, int64_t oh0, int64_t rows, float* gyt, float* acc) { run_band<4, 2>(a, s, t, n, oh0, rows, gyt, acc); }

std::atomic<int64_t> g_count{0}, g_inputs_count{0};

}  // namespace

bool filter_by_outputs_wins(const ConvGeometry& g) { return g.groups == 1 && g.o <= kMaxOutputs; }

bool filter_by_inputs_wins(const ConvGeometry& g) {
  return g.groups == 1 && g.sh == 1 && g.sw == 1 && g.o <= 8 && g.c >= 16 && g.c % 16 == 0;
}

int64_t filter_by_outputs_count() { return g_count.load(std::memory_order_relaxed); }
int64_t filter_by_inputs_count() { return g_inputs_count.load(std::memory_order_relaxed); }

void conv2d_filter_by_outputs(const ConvGeometry& g, const float* x, const float* gy, float* gw) {
  g_count.fetch_add(1, std::memory_order_relaxed);
  const int64_t k = g.c * g.kh * g.kw;
  if (g.o * k == 0) return;
  if (g.n == 0 || g.out_h <= 0 || g.out_w <= 0) {
    std::fill(gw, gw + g.o * k, 0.0f);
    return;
  }
  const char* isa = gemm_isa();
  const int vw = std::strcmp(isa, "avx512") == 0 ? 16 : std::strcmp(isa, "avx2") == 0 ? 8 : 4;
  const BandFn fn = vw == 16 ? band_avx512 : vw == 8 ? band_avx2 : band_base;
  Args a{};
  a.g = &g;
  a.gy = gy;
  a.o_pad = ceil_div(g.o, vw) * vw;
  a.k = k;
  a.k_pad = ceil_div(k, kTapBlock) * kTapBlock;
  a.cols = (g.out_w - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  a.band = std::clamp<int64_t>(kBandFloats / (g.out_w * a.o_pad), 1, g.out_h);
  a.bands = ceil_div(g.out_h, a.band);
  a.lo_c = std::clamp<int64_t>(g.pl, 0, a.cols);
  a.hi_c = std::clamp<int64_t>(g.pl + g.w, a.lo_c, a.cols);
  const int64_t tasks = g.n * a.bands;
  // The tasks in a fixed number of contiguous chunks, each summed in task order into its own
  // accumulator, the accumulators added in chunk order: the same gradient on every run. Chunks
  // are handed out as threads free up (threads on a shared machine progress unevenly); which
  // thread runs a chunk does not change its sum.
  const int64_t chunks = std::min<int64_t>(tasks, 2 * int64_t(num_threads()));
  const int parts = static_cast<int>(std::min<int64_t>(num_threads(), chunks));
  const int64_t acc_size = a.k_pad * a.o_pad;
  std::vector<float> acc(size_t(chunks) * acc_size);
  std::atomic<int64_t> next{0};
  parallel_for(parts, 1, [&](int64_t lo, int64_t hi) {
    thread_local Scratch t_src, t_gyt;
    std::vector<int64_t> taps(a.k_pad);
    for (int64_t part = lo; part < hi; ++part)
      for (int64_t chunk; (chunk = next.fetch_add(1, std::memory_order_relaxed)) < chunks;)
        for (int64_t t = chunk * tasks / chunks; t < (chunk + 1) * tasks / chunks; ++t) {
          const int64_t n = t / a.bands, oh0 = (t % a.bands) * a.band, rows = std::min(a.band, g.out_h - oh0);
          // The band's input rows, zero-padded: row r is input row oh0 sh + r - pt.
          const int64_t in_rows = (rows - 1) * g.sh + (g.kh - 1) * g.dh + 1, plane = in_rows * a.cols;
          float* src = t_src.get(g.c * plane, false);
          for (int64_t c = 0; c < g.c; ++c)
            for (int64_t r = 0; r < in_rows; ++r) {
              float* d = src + c * plane + r * a.cols;
              const int64_t ih = oh0 * g.sh + r - g.pt;
              if (ih < 0 || ih >= g.h) {
                std::fill(d, d + a.cols, 0.0f);
                continue;
              }
              const float* s = x + ((n * g.c + c) * g.h + ih) * g.w - g.pl;
              std::fill(d, d + a.lo_c, 0.0f);
              std::copy(s + a.lo_c, s + a.hi_c, d + a.lo_c);
              std::fill(d + a.hi_c, d + a.cols, 0.0f);
            }
          // Tap t = (c, i, j) lies taps[t] floats after its output pixel's first tap; padding
          // taps up to k_pad repeat tap 0 and their sums are dropped.
          for (int64_t c = 0, t2 = 0; c < g.c; ++c)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) taps[t2++] = c * plane + i * g.dh * a.cols + j * g.dw;
          std::fill(taps.begin() + k, taps.end(), 0);
          float* gyt = t_gyt.get(rows * g.out_w * a.o_pad, false);
          fn(a, src, taps.data(), n, oh0, rows, gyt, acc.data() + chunk * acc_size);
        }
  });
  // Threads only for large sums: another parallel region costs a wake-up, which on a busy
  // machine can outlast a small layer's whole gradient.
  parallel_for(g.o, std::max<int64_t>(1, kInlineFloats / (k * chunks)), [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o)
      for (int64_t t = 0; t < k; ++t) {
        double s = 0.0;
        for (int64_t chunk = 0; chunk < chunks; ++chunk) s += acc[chunk * acc_size + t * a.o_pad + o];
        gw[o * k + t] = static_cast<float>(s);
      }
  });
}

void conv2d_filter_by_inputs(const ConvGeometry& g, const float* x, const float* gy, float* gw) {
  // gw[o][c][i][j] = sum over input pixels q of x[c][q] gy[o][q - tap offset]: the filter
  // gradient of the input gradient's convolution (gy to x, flipped, stride 1), whose outputs
  // are the C input channels, with its taps in reverse order.
  g_inputs_count.fetch_add(1, std::memory_order_relaxed);
  const int64_t taps = g.kh * g.kw;
  const ConvGeometry f{g.n, g.o, g.out_h, g.out_w, g.c, g.kh, g.kw, 1, 1, g.dh * (g.kh - 1) - g.pt,
                       g.dw * (g.kw - 1) - g.pl, g.dh, g.dw, 1, g.h, g.w};
  std::vector<float> flipped(g.c * g.o * taps);
  conv2d_filter_by_outputs(f, gy, x, flipped.data());
  parallel_for(g.o, std::max<int64_t>(1, kInlineFloats / (g.c * taps)), [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o)
      for (int64_t c = 0; c < g.c; ++c)
        for (int64_t t = 0; t < taps; ++t) gw[(o * g.c + c) * taps + t] = flipped[(c * g.o + o) * taps + taps - 1 - t];
  });
}

}  // namespace lrface::cpu
