// 1x1 convolutions (stride 1, no padding, one group). Per image this is the GEMM
//   out [O x P] = W [O x C] @ x [C x P]   (P = H*W pixels)
// with few rows (O: 16..256), a short k (C) and many columns. In NCHW each input channel's
// pixels are contiguous, so the product is vectorised along pixels and reads x where it lies:
// a register block of OB output channels by NV vectors of pixels accumulates over every
// channel, loading NV vectors of one input row per channel and broadcasting OB weights from a
// buffer arranged [O/OB][C][OB]; bias starts the sums, ReLU is applied in the store. A block of
// pixels is finished for every output channel before the next, so its C x NV*VW slab of x is
// read from memory once and from cache O/OB - 1 more times. No im2col, no packing of x.
// Compiled for AVX-512, AVX2 and the baseline with GCC vector extensions, following the GEMM's
// instruction-set choice.
#include "pointwise.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "../core/thread_pool.h"
#include "gemm.h"

// Vector values are passed only between always-inlined functions inside one target-attributed
// kernel, so no call crosses the ABI that -Wpsabi warns about.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace lrface::cpu {

namespace {

#define LR_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))
#define LR_AVX2 __attribute__((target("avx2,fma")))
#define LR_INLINE inline __attribute__((always_inline))

std::atomic<int64_t> g_forward_count{0};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <int VW>
struct Lanes {
  typedef float V __attribute__((vector_size(VW * sizeof(float))));
};

struct Args {
  int64_t c, o, pixels;
  const float* x;      // input, images c * pixels apart
  const float* wb;     // weights [ceil(O/OB)][C][OB], zero past O
  const float* bias;   // [ceil(O/OB) * OB], zero past O (and everywhere without a bias)
  float* out;
  bool relu;
};

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 misreads arrays of vectors
// Output rows [0, rows) of one block of OB channels, pixels [0, NV*VW) from xs (channel
// rows `plane` apart) into y (output rows `plane` apart).
template <int VW, int OB, int NV, bool PREFETCH = false>
LR_INLINE void product_block(const float* __restrict xs, int64_t plane, int64_t c, const float* __restrict wb,
                             const float* __restrict bias, float* __restrict y, int rows, bool relu,
                             int64_t ahead = 0) {
  using V = typename Lanes<VW>::V;
  V acc[OB][NV];
  _Pragma("GCC unroll 16")
  for (int o = 0; o < OB; ++o) {
    const V init = bias[o] - V{};  // s - 0 folds to a broadcast; s + 0 would not
    _Pragma("GCC unroll 16")
    for (int v = 0; v < NV; ++v) acc[o][v] = init;
  }
  for (int64_t ci = 0; ci < c; ++ci, xs += plane, wb += OB) {
    V xv[NV];
    _Pragma("GCC unroll 16")
    for (int v = 0; v < NV; ++v) {
      std::memcpy(&xv[v], xs + v * VW, sizeof(V));
      // Keep the vector in a register: folded into every FMA it would be loaded OB times.
      asm("" : "+v"(xv[v]));
    }
    if constexpr (PREFETCH) {
      _Pragma("GCC unroll 16")
      for (int v = 0; v < NV; ++v) __builtin_prefetch(xs + ahead + v * VW, 0, 3);
    }
    _Pragma("GCC unroll 16")
    for (int o = 0; o < OB; ++o) {
      const V wv = wb[o] - V{};
      _Pragma("GCC unroll 16")
      for (int v = 0; v < NV; ++v) acc[o][v] += wv * xv[v];
    }
  }
  if (relu) {
    _Pragma("GCC unroll 16")
    for (int o = 0; o < OB; ++o)
      _Pragma("GCC unroll 16")
      for (int v = 0; v < NV; ++v) acc[o][v] = acc[o][v] > 0.0f ? acc[o][v] : V{};
  }
  _Pragma("GCC unroll 16")
  for (int o = 0; o < OB; ++o) {
    if (o >= rows) break;
    _Pragma("GCC unroll 16")
    for (int v = 0; v < NV; ++v) std::memcpy(y + o * plane + v * VW, &acc[o][v], sizeof(V));
  }
}
#pragma GCC diagnostic pop

// Pixel units [lo, hi) (units of NV*VW pixels, numbered over images) through every block of
// output channels.
template <int VW, int OB, int NV>
LR_INLINE void run_units(const Args& a, int64_t lo, int64_t hi) {
  constexpr int64_t P = int64_t(NV) * VW;
  const int64_t units = ceil_div(a.pixels, P), blocks = ceil_div(a.o, OB);
  for (int64_t u = lo; u < hi; ++u) {
    const int64_t n = u / units, p0 = (u % units) * P, count = std::min(P, a.pixels - p0);
    const float* xs = a.x + n * a.c * a.pixels + p0;
    float* y = a.out + n * a.o * a.pixels + p0;
    const int64_t vectors = count / VW;
    for (int64_t b = 0; b < blocks; ++b) {
      const int rows = static_cast<int>(std::min<int64_t>(OB, a.o - b * OB));
      const float* wb = a.wb + b * a.c * OB;
      const float* bias = a.bias + b * OB;
      float* yb = y + b * OB * a.pixels;
      if (vectors == NV) {
        // The first block fetches the next unit's rows: 128 rows 64 KiB apart are more
        // streams than the hardware prefetchers follow (measured 66-84 -> 84-91 GFLOP/s).
        if (b == 0)
          product_block<VW, OB, NV, true>(xs, a.pixels, a.c, wb, bias, yb, rows, a.relu, P);
        else
          product_block<VW, OB, NV>(xs, a.pixels, a.c, wb, bias, yb, rows, a.relu);
        continue;
      }
      // The image's last unit: whole vectors first, then the pixels past them one by one.
      if constexpr (NV > 1) {
        int64_t v0 = 0;
        for (; v0 + 1 <= vectors; ++v0)
          product_block<VW, OB, 1>(xs + v0 * VW, a.pixels, a.c, wb, bias, yb + v0 * VW, rows, a.relu);
      }
      for (int64_t p = vectors * VW; p < count; ++p)
        for (int o = 0; o < rows; ++o) {
          float s = bias[o];
          for (int64_t ci = 0; ci < a.c; ++ci) s += wb[ci * OB + o] * xs[ci * a.pixels + p];
          yb[o * a.pixels + p] = a.relu ? (s > 0.0f ? s : 0.0f) : s;
        }
    }
  }
}

using UnitsFn = void (*)(const Args&, int64_t, int64_t);

struct Kernel {
  int vw, ob, nv;
  UnitsFn fn;
};

#define LR_POINTWISE_VARIANT(NAME, ATTR, VW, OB, NV) \
  ATTR void NAME(const Args& a, int64_t lo, int64_t hi) { run_units<VW, OB, NV>(a, lo, hi); }
LR_POINTWISE_VARIANT(units_avx512_8x3, LR_AVX512, 16, 8, 3)
LR_POINTWISE_VARIANT(units_avx2_4x3, LR_AVX2, 8, 4, 3)
LR_POINTWISE_VARIANT(units_base_4x3, , 4, 4, 3)
#undef LR_POINTWISE_VARIANT

Kernel pick_kernel() {
  const char* isa = gemm_isa();
  // 8 x 3 vectors: 24 accumulators, 3 loads and 8 broadcasts per 24 FMAs; measured ahead of
  // 8 x 2, 4 x 6 and 6 x 4 (68.7 against 65.5, 59.4, 56.1 GFLOP/s on one thread, 128 -> 32).
  if (std::strcmp(isa, "avx512") == 0) return {16, 8, 3, units_avx512_8x3};
  if (std::strcmp(isa, "avx2") == 0) return {8, 4, 3, units_avx2_4x3};
  return {4, 4, 3, units_base_4x3};
}

struct Buffer {
  float* data = nullptr;
  size_t size = 0;
  float* get(size_t n) {
    if (n > size) {
      std::free(data);
      data = static_cast<float*>(std::aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64));
      size = data ? n : 0;
      if (!data) throw std::bad_alloc();
    }
    return data;
  }
  ~Buffer() { std::free(data); }
};

}  // namespace

bool pointwise_applies(const ConvGeometry& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && g.groups == 1 &&
         g.out_h == g.h && g.out_w == g.w;
}

int64_t pointwise_forward_count() { return g_forward_count.load(std::memory_order_relaxed); }

void pointwise_conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* out,
                              bool relu) {
  g_forward_count.fetch_add(1, std::memory_order_relaxed);
  const int64_t pixels = g.h * g.w;
  if (g.n == 0 || g.o == 0 || pixels == 0) return;
  const Kernel k = pick_kernel();
  // Weights as [O/OB][C][OB] and the bias padded to whole blocks, into kept per-thread buffers.
  const int64_t blocks = ceil_div(g.o, k.ob);
  thread_local Buffer t_w, t_bias;
  float* wb = t_w.get(std::max<int64_t>(1, blocks * g.c * k.ob));
  float* bb = t_bias.get(blocks * k.ob);
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t ci = 0; ci < g.c; ++ci)
      for (int64_t i = 0; i < k.ob; ++i) {
        const int64_t o = b * k.ob + i;
        wb[(b * g.c + ci) * k.ob + i] = o < g.o ? w[o * g.c + ci] : 0.0f;
      }
  for (int64_t o = 0; o < blocks * k.ob; ++o) bb[o] = bias && o < g.o ? bias[o] : 0.0f;
  const Args a{g.c, g.o, pixels, x, wb, bb, out, relu};
  const int64_t unit = int64_t(k.nv) * k.vw, units = g.n * ceil_div(pixels, unit);
  // Chunks of at least ~256 kFLOP, so the pool's hand-off stays small against the work.
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 17) / std::max<int64_t>(1, unit * g.o * g.c));
  parallel_for(units, grain, [&](int64_t lo, int64_t hi) { k.fn(a, lo, hi); });
}

}  // namespace lrface::cpu
