// 1x1 convolutions (stride 1, no padding, one group). Per image this is the GEMM
//   out [O x P] = W [O x C] @ x [C x P]   (P = H*W pixels)
// with few rows (O: 16..256), a short k (C) and many columns. In NCHW each input channel's
// pixels are contiguous, so the product is vectorised along pixels and reads x where it lies:
// a register block of OB output channels by NV vectors of pixels accumulates over every
// channel, loading NV vectors of one input row per channel and broadcasting OB weights from a
// buffer arranged [O/OB][C][OB]; bias starts the sums, ReLU is applied in the store. A block of
// pixels is finished for every output channel before the next, so its C x NV*VW slab of x is
// read from memory once and from cache O/OB - 1 more times. No im2col. On large planes the
// 16-channel AVX-512 kernel packs each unit's slab (so it is read from L1, not L2), the copy
// made while the previous unit computes; a copy made before its own unit measured no faster.
// The vectors of a block are numbered over all images, so 4x4 or 8x8 planes of a batch still
// fill it.
// Compiled for AVX-512, AVX2 and the baseline with GCC vector extensions, following the GEMM's
// instruction-set choice.
#include "pointwise.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "../core/thread_pool.h"
#include "gemm.h"
#include "kernel_util.h"

// Vector values are passed only between always-inlined functions inside one target-attributed
// kernel, so no call crosses the ABI that -Wpsabi warns about.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace lrface::cpu {

namespace {


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
// What a block fetches for later units while it computes: nothing; the next unit's rows into
// L2 (pf[v] + ci * pixels); or, for one vector, the next unit's rows (already in L2, at
// stage_src + ci * pixels) copied into a packed slab (stage_dst + ci * VW) while the unit
// after it (pf[0]) is fetched into L2 (see run_tasks' STAGE).
enum class Fetch { None, Prefetch, Stage };

// Output rows [0, rows) of one block of OB channels for NV vectors of pixels: vector v reads
// channel ci at xs[v] + ci * x_stride (pixels where x lies, VW in a packed slab) and is stored
// at ys[v] + o * pixels.
template <int VW, int OB, int NV, Fetch FETCH = Fetch::None>
LR_INLINE void product_block(const float* const* xs, int64_t x_stride, int64_t pixels, int64_t c,
                             const float* __restrict wb, const float* __restrict bias, float* const* ys, int rows,
                             bool relu, const float* const* pf = nullptr, const float* stage_src = nullptr,
                             float* stage_dst = nullptr) {
  static_assert(FETCH != Fetch::Stage || NV == 1, "staging copies one vector per channel");
  using V = typename Lanes<VW>::V;
  V acc[OB][NV];
  _Pragma("GCC unroll 16")
  for (int o = 0; o < OB; ++o) {
    const V init = bias[o] - V{};  // s - 0 folds to a broadcast; s + 0 would not
    _Pragma("GCC unroll 16")
    for (int v = 0; v < NV; ++v) acc[o][v] = init;
  }
  for (int64_t ci = 0; ci < c; ++ci, wb += OB) {
    V xv[NV];
    _Pragma("GCC unroll 16")
    for (int v = 0; v < NV; ++v) {
      std::memcpy(&xv[v], xs[v] + ci * x_stride, sizeof(V));
      // Keep the vector in a register: folded into every FMA it would be loaded OB times.
      asm("" : "+v"(xv[v]));
    }
    if constexpr (FETCH != Fetch::None) {
      _Pragma("GCC unroll 16")
      for (int v = 0; v < NV; ++v) __builtin_prefetch(pf[v] + ci * pixels, 0, 2);
    }
    if constexpr (FETCH == Fetch::Stage) {
      V next;
      std::memcpy(&next, stage_src + ci * pixels, sizeof(V));
      std::memcpy(stage_dst + ci * VW, &next, sizeof(V));
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
    for (int v = 0; v < NV; ++v) std::memcpy(ys[v] + o * pixels, &acc[o][v], sizeof(V));
  }
}
#pragma GCC diagnostic pop

thread_local kernel::Scratch t_slab;

// Tasks [lo, hi): first the units, NV whole vectors of pixels each, numbered over the images'
// vectors in order (so a unit may take vectors of two images: small planes still fill the
// register block), then one task per image for its pixels past the last whole vector.
// STAGE (one vector per unit): a task's units read x from two packed slabs in turn, the next
// unit's slab filled by the current unit's first block: every other block then reads the C
// rows from L1 instead of from L2 (rows 64 KiB apart share one L1 set).
template <int VW, int OB, int NV, bool STAGE = false>
LR_INLINE void run_tasks(const Args& a, int64_t images, int64_t lo, int64_t hi) {
  const int64_t per_image = a.pixels / VW, total = images * per_image, units = ceil_div(total, NV);
  const int64_t blocks = ceil_div(a.o, OB), tail = a.pixels - per_image * VW;
  // Where vector i of the flattened list starts in x and out.
  auto x_at = [&](int64_t i) { return a.x + (i / per_image) * a.c * a.pixels + (i % per_image) * VW; };
  auto y_at = [&](int64_t i) { return a.out + (i / per_image) * a.o * a.pixels + (i % per_image) * VW; };
  if constexpr (STAGE) {
    float* slab = t_slab.get(2 * a.c * VW);
    const int64_t last = std::min(hi, units);
    if (lo < last)
      for (int64_t ci = 0; ci < a.c; ++ci) std::memcpy(slab + ci * VW, x_at(lo) + ci * a.pixels, VW * sizeof(float));
    for (int64_t t = lo; t < last; ++t) {
      const float* cur[1] = {slab + ((t - lo) & 1) * a.c * VW};
      float* next = slab + ((t - lo + 1) & 1) * a.c * VW;
      const float* after[1] = {x_at(std::min(t + 2, total - 1))};
      for (int64_t b = 0; b < blocks; ++b) {
        const int rows = static_cast<int>(std::min<int64_t>(OB, a.o - b * OB));
        float* yb[1] = {y_at(t) + b * OB * a.pixels};
        const float* wb = a.wb + b * a.c * OB;
        if (b == 0 && t + 1 < last)
          product_block<VW, OB, 1, Fetch::Stage>(cur, VW, a.pixels, a.c, wb, a.bias, yb, rows, a.relu, after,
                                                 x_at(t + 1), next);
        else
          product_block<VW, OB, 1>(cur, VW, a.pixels, a.c, wb, a.bias + b * OB, yb, rows, a.relu);
      }
    }
    lo = std::max(lo, units);
  }
  for (int64_t t = lo; t < hi; ++t) {
    if (t < units) {
      const int64_t v0 = t * NV, count = std::min<int64_t>(NV, total - v0);
      const float* xs[NV];
      const float* pf[NV];
      float* ys[NV];
      for (int v = 0; v < NV; ++v) {
        const int64_t i = std::min(v0 + v, total - 1);
        xs[v] = x_at(i);
        ys[v] = y_at(i);
        pf[v] = x_at(std::min(v0 + NV + v, total - 1));
      }
      for (int64_t b = 0; b < blocks; ++b) {
        const int rows = static_cast<int>(std::min<int64_t>(OB, a.o - b * OB));
        const float* wb = a.wb + b * a.c * OB;
        const float* bias = a.bias + b * OB;
        float* yb[NV];
        for (int v = 0; v < NV; ++v) yb[v] = ys[v] + b * OB * a.pixels;
        if (count == NV) {
          // The first block fetches the next unit's rows into L2: 128 rows 64 KiB apart are
          // more streams than the hardware prefetchers follow, and would alias in L1 (one
          // thread 66-84 -> 84-91 GFLOP/s; two threads, input not in cache, 58 -> 69).
          if (b == 0)
            product_block<VW, OB, NV, Fetch::Prefetch>(xs, a.pixels, a.pixels, a.c, wb, bias, yb, rows, a.relu, pf);
          else
            product_block<VW, OB, NV>(xs, a.pixels, a.pixels, a.c, wb, bias, yb, rows, a.relu);
        } else {
          for (int64_t v = 0; v < count; ++v)
            product_block<VW, OB, 1>(xs + v, a.pixels, a.pixels, a.c, wb, bias, yb + v, rows, a.relu);
        }
      }
      continue;
    }
    // Image t - units: its last `tail` pixels, plain sums in the same channel order.
    const int64_t n = t - units, p0 = per_image * VW;
    const float* xs = a.x + n * a.c * a.pixels + p0;
    float* y = a.out + n * a.o * a.pixels + p0;
    for (int64_t o = 0; o < a.o; ++o) {
      const float* wcol = a.wb + (o / OB) * a.c * OB + o % OB;
      for (int64_t p = 0; p < tail; ++p) {
        float s = a.bias[o];
        for (int64_t ci = 0; ci < a.c; ++ci) s += wcol[ci * OB] * xs[ci * a.pixels + p];
        y[o * a.pixels + p] = a.relu ? (s > 0.0f ? s : 0.0f) : s;
      }
    }
  }
}

using TasksFn = void (*)(const Args&, int64_t, int64_t, int64_t);

struct Kernel {
  int vw, ob, nv;
  TasksFn fn;
  int64_t min_grain = 1;  // units per task at least
};

#define LR_POINTWISE_VARIANT(NAME, ATTR, VW, OB, NV) \
  ATTR void NAME(const Args& a, int64_t n, int64_t lo, int64_t hi) { run_tasks<VW, OB, NV>(a, n, lo, hi); }
LR_POINTWISE_VARIANT(tasks_avx512_8x3, LR_AVX512, 16, 8, 3)
LR_POINTWISE_VARIANT(tasks_avx512_16x1, LR_AVX512, 16, 16, 1)
LR_AVX512 void tasks_avx512_16x1_staged(const Args& a, int64_t n, int64_t lo, int64_t hi) {
  run_tasks<16, 16, 1, true>(a, n, lo, hi);
}
LR_POINTWISE_VARIANT(tasks_avx2_4x3, LR_AVX2, 8, 4, 3)
LR_POINTWISE_VARIANT(tasks_base_4x3, , 4, 4, 3)
#undef LR_POINTWISE_VARIANT

// From this many vectors of pixels on, the 16 x 1 kernel stages its input (run_tasks' STAGE):
// with fewer, each task's first slab, gathered without overlap, costs about what staging saves
// (one 32x32 plane, 128 -> 32: 46 -> 60 us; one 64x64 plane even), with more it wins (eight
// 32x32 planes, 64 -> 64: 0.52 -> 0.41 ms; eight 8x8, 256 -> 256: 0.30 -> 0.28 ms).
constexpr int64_t kStagedMinVectors = 512;

// aligned_rows: x's channel rows all start on a cache line; vectors: of pixels, in all images.
Kernel pick_kernel(int64_t out_channels, bool aligned_rows, int64_t vectors) {
  const char* isa = gemm_isa();
  if (std::strcmp(isa, "avx512") == 0) {
    // 16 channels x 1 vector where the channels fill whole blocks and every vector is one
    // cache line: x's slab (C rows 64 KiB apart in a 128x128 plane, of which L1 and L2 hold
    // only a few ways) is read O/16 times instead of O/8, and a unit's C lines are a third of
    // 8 x 3's. 128 -> 32 at 128x128, one thread, input in L3: 110 GFLOP/s against 97 (8 x 2:
    // 103, 4 x 6: 94). Rows off the line boundary would make each vector two lines (127x129:
    // 47 against 58), so those keep 8 x 3.
    // Staged, the slab is read from L1 by every block after the first; 128 -> 32 at 128x128 on
    // two threads, input not in cache: 0.65 -> 0.56 ms; 128 -> 96: 1.83 -> 1.36 ms.
    if (out_channels % 16 == 0 && aligned_rows && vectors >= kStagedMinVectors)
      return {16, 16, 1, tasks_avx512_16x1_staged, 8};
    if (out_channels % 16 == 0 && aligned_rows) return {16, 16, 1, tasks_avx512_16x1};
    // 8 x 3 vectors: 24 accumulators, 3 loads and 8 broadcasts per 24 FMAs; measured ahead of
    // 8 x 2, 4 x 6 and 6 x 4 (68.7 against 65.5, 59.4, 56.1 GFLOP/s on one thread, 128 -> 32).
    return {16, 8, 3, tasks_avx512_8x3};
  }
  if (std::strcmp(isa, "avx2") == 0) return {8, 4, 3, tasks_avx2_4x3};
  return {4, 4, 3, tasks_base_4x3};
}

using Buffer = kernel::Scratch;

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
  const bool aligned_rows = reinterpret_cast<uintptr_t>(x) % 64 == 0 && pixels % 16 == 0;
  const Kernel k = pick_kernel(g.o, aligned_rows, g.n * (pixels / 16));
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
  const int64_t vectors = g.n * (pixels / k.vw), units = ceil_div(vectors, k.nv);
  const int64_t tasks = units + (pixels % k.vw ? g.n : 0);
  // Chunks of at least ~256 kFLOP, so the pool's hand-off stays small against the work.
  const int64_t grain =
      std::max<int64_t>(k.min_grain, (int64_t(1) << 17) / std::max<int64_t>(1, int64_t(k.nv) * k.vw * g.o * g.c));
  parallel_for(tasks, grain, [&](int64_t lo, int64_t hi) { k.fn(a, g.n, lo, hi); });
}

}  // namespace lrface::cpu
