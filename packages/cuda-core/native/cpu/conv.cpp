// 2-D convolution kernels. Which one runs depends on the shape:
//
// - Winograd F(4x4, 3x3) and F(4x4, 5x5) (winograd.cpp) for 3x3 and 5x5 stride-1 ungrouped
//   convolutions with enough channels and tiles: a quarter (a sixth) of the multiplies.
// - 1x1 stride-1 unpadded ungrouped convolutions (pointwise.cpp): a product vectorised along
//   the pixels of the input planes as they lie.
// - GEMM with implicit im2col (the general case): per (image, group),
//   out = W_g [og x kdim] @ col [kdim x out_h*out_w]. The strips of col are packed straight
//   from a zero-padded image by the GEMM's B callback, so the matrix is never written out; the
//   bias rides along as one more k step (a row of the transposed weights, a row of ones in B).
// - Direct loops (unit column stride and few output channels per group, or few taps): vector
//   accumulators over a run of output pixels, fed from a zero-padded band of input rows; the
//   GEMM would run its 12-row micro-kernel mostly empty or spend its time packing.
// - Depthwise loops for strided or single-output depthwise cases.
// Filter gradient: Winograd's adjoint where the forward would use Winograd at 3x3; otherwise
// direct register-blocked sums (few outputs or taps), output channels along the vector lanes
// with the taps broadcast from the input (conv_filter.cpp; one group, up to 128 outputs), the
// same with input and output swapped (stride 1, up to 8 outputs from whole vectors of inputs),
// or gw_g = gy_g @ col^T as one GEMM over all images (k = images x pixels).
// Input gradient: at stride 1, a forward convolution of gy with the flipped, transposed kernel
// (so it gets the same choice of kernels); strided, by sub-pixel phases (each output phase a
// stride-1 convolution of gy with its share of the taps, then scattered) where the kernel
// windows overlap enough, otherwise GEMM into a column buffer scattered back by col2im.
#include "conv.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "../core/error.h"
#include "../core/thread_pool.h"
#include "conv_filter.h"
#include "kernel_util.h"
#include "gemm.h"
#include "pointwise.h"
#include "winograd.h"

namespace lrface::cpu {

namespace {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// [lo, hi): the t in [0, len) with 0 <= base + t * step < size (step >= 1).
inline void valid_range(int64_t base, int64_t step, int64_t size, int64_t len, int64_t& lo, int64_t& hi) {
  if (step == 1) {  // the common case, without the divisions
    lo = std::max<int64_t>(0, -base);
    hi = size - base;
  } else {
    lo = base >= 0 ? 0 : ceil_div(-base, step);
    hi = base > size - 1 ? 0 : (size - 1 - base) / step + 1;
  }
  lo = std::min(lo, len);
  hi = std::max(lo, std::min(hi, len));
}

}  // namespace

void pad_planes(const ConvGeometry& g, const float* x, int64_t planes, int64_t rows, int64_t cols, float* dst) {
  int64_t lo, hi;
  valid_range(-g.pl, 1, g.w, cols, lo, hi);
  if (cols <= 32) {
    // Small planes: one fill of everything, then the image rows, rather than three calls per
    // row of a few floats.
    std::fill(dst, dst + planes * rows * cols, 0.0f);
    int64_t r0, r1;
    valid_range(-g.pt, 1, g.h, rows, r0, r1);
    for (int64_t ci = 0; ci < planes; ++ci)
      for (int64_t r = r0; r < r1; ++r) {
        const float* srow = x + (ci * g.h + r - g.pt) * g.w - g.pl;
        float* d = dst + (ci * rows + r) * cols;
        for (int64_t j = lo; j < hi; ++j) d[j] = srow[j];
      }
    return;
  }
  for (int64_t ci = 0; ci < planes; ++ci)
    for (int64_t r = 0; r < rows; ++r) {
      float* d = dst + (ci * rows + r) * cols;
      const int64_t ih = r - g.pt;
      if (ih < 0 || ih >= g.h) {
        std::fill(d, d + cols, 0.0f);
        continue;
      }
      const float* srow = x + (ci * g.h + ih) * g.w - g.pl;
      std::fill(d, d + lo, 0.0f);
      std::copy(srow + lo, srow + hi, d + lo);
      std::fill(d + hi, d + cols, 0.0f);
    }
}

namespace {

using kernel::Scratch;

// One image's group of channels as the packers read it: element (ci, r, c) at
// data[ci * plane + r * pitch + c] with r = oh*sh + i*dh and c = ow*sw + j*dw, never out of
// bounds: a zero-padded copy unless the convolution reads only inside the image.
struct Source {
  const float* data;
  int64_t plane, pitch;
};

Source padded_source(const ConvGeometry& g, const float* x, int64_t cg, Scratch& scratch) {
  const int64_t rows = (g.out_h - 1) * g.sh + (g.kh - 1) * g.dh + 1;
  const int64_t cols = (g.out_w - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  if (g.pt == 0 && g.pl == 0 && rows <= g.h && cols <= g.w) return Source{x, g.h * g.w, g.w};
  float* buf = scratch.get(cg * rows * cols);
  pad_planes(g, x, cg, rows, cols, buf);
  return Source{buf, rows * cols, cols};
}

// Source over all images and channels (images c * plane apart), padded in parallel.
Source padded_batch(const ConvGeometry& g, const float* x, Scratch& scratch) {
  const int64_t rows = (g.out_h - 1) * g.sh + (g.kh - 1) * g.dh + 1;
  const int64_t cols = (g.out_w - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  if (g.pt == 0 && g.pl == 0 && rows <= g.h && cols <= g.w) return Source{x, g.h * g.w, g.w};
  float* buf = scratch.get(g.n * g.c * rows * cols);
  parallel_for(g.n * g.c, 4, [&](int64_t lo, int64_t hi) {
    pad_planes(g, x + lo * g.h * g.w, hi - lo, rows, cols, buf + lo * rows * cols);
  });
  return Source{buf, rows * cols, cols};
}

// B strips of the im2col matrix of one image's group:
// col[(ci*kh + i)*kw + j][oh*out_w + ow] = src(ci, oh*sh + i*dh, ow*sw + j*dw).
// Rows from kdim on are ones (the bias step). With `image` > 0 the columns run on across
// images (column n*out_h*out_w + pixel reads image n, `image` elements after image n - 1).
PackB im2col_pack(const ConvGeometry& g, Source src, int64_t kdim, int64_t image = 0) {
  return pack_b_by_strips([&g, src, kdim, image](int64_t p0, int64_t kc, int64_t j0, int64_t w, int nr, float* dst) {
    // The strip's columns as runs along output rows (or whole images where those are contiguous).
    using Run = StripRun;
    Run runs[32];
    int nruns = 0;
    const int64_t ohw = g.out_h * g.out_w;
    int64_t n = j0 / ohw, q = j0 % ohw;
    if (g.sh == 1 && g.sw == 1 && src.pitch == g.out_w) {
      // Output pixels map to consecutive source elements within an image.
      for (int64_t t = 0; t < w; q = 0, ++n) {
        const int64_t len = std::min(w - t, ohw - q);
        runs[nruns++] = Run{t, len, n * image + q};
        t += len;
      }
    } else {
      for (int64_t t = 0, oh = q / g.out_w, ow = q % g.out_w; t < w; ow = 0) {
        const int64_t len = std::min(w - t, g.out_w - ow);
        runs[nruns++] = Run{t, len, n * image + oh * g.sh * src.pitch + ow * g.sw};
        t += len;
        if (++oh == g.out_h) {
          oh = 0;
          ++n;
        }
      }
    }
    const bool one_run = nruns == 1 && g.sw == 1;
    int64_t ci = p0 / (g.kh * g.kw), i = (p0 / g.kw) % g.kh, j = p0 % g.kw;
    if (!one_run && g.sw == 1) {
      // Contiguous runs (small planes, several output rows or images to a strip): the rows'
      // tap offsets, then one vectorised gather of every stored row.
      const int64_t stored = std::max<int64_t>(0, std::min(kc, kdim - p0));
      int64_t offsets[1024];
      for (int64_t p1 = 0; p1 < stored; p1 += 1024) {
        const int64_t rows = std::min<int64_t>(1024, stored - p1);
        for (int64_t p = 0; p < rows; ++p) {
          offsets[p] = ci * src.plane + i * g.dh * src.pitch + j * g.dw;
          if (++j == g.kw) {
            j = 0;
            if (++i == g.kh) {
              i = 0;
              ++ci;
            }
          }
        }
        gemm_gather_strip_runs(dst + p1 * nr, rows, src.data, offsets, runs, nruns, w);
      }
      for (int64_t p = stored; p < kc; ++p) {  // the bias step
        for (int64_t t = 0; t < w; ++t) dst[p * nr + t] = 1.0f;
        for (int64_t t = w; t < nr; ++t) dst[p * nr + t] = 0.0f;
      }
      return;
    }
    for (int64_t p = 0; p < kc; ++p) {
      float* d = dst + p * nr;
      if (p0 + p >= kdim) {
        for (int64_t t = 0; t < w; ++t) d[t] = 1.0f;
        for (int64_t t = w; t < nr; ++t) d[t] = 0.0f;
        continue;
      }
      const float* base = src.data + ci * src.plane + i * g.dh * src.pitch + j * g.dw;
      if (one_run) {
        gemm_copy_strip_row(d, base + runs[0].offset, w);
      } else {
        for (int r = 0; r < nruns; ++r) {
          const float* s = base + runs[r].offset;
          float* dd = d + runs[r].t0;
          for (int64_t t = 0; t < runs[r].len; ++t) dd[t] = s[t * g.sw];
        }
        for (int64_t t = w; t < nr; ++t) d[t] = 0.0f;
      }
      if (++j == g.kw) {
        j = 0;
        if (++i == g.kh) {
          i = 0;
          ++ci;
        }
      }
    }
  });
}

// The GEMM's A operand for one group: the weights as stored, [og][kdim] (packing reads a strip's
// rows in step; a transposed copy would cost a strided pass over every weight per call), with
// the bias as column kdim (the k step whose B row is ones) when there is one.
PackA weight_pack(const float* w, const float* bias, int64_t kdim) {
  return [rows = plain_pack_a(w, kdim, false), bias, kdim](int64_t i0, int64_t h, int64_t p0, int64_t kc, int mr,
                                                            float* dst) {
    const int64_t stored = std::max<int64_t>(0, std::min(kc, kdim - p0));
    if (stored > 0) rows(i0, h, p0, stored, mr, dst);
    for (int64_t p = stored; p < kc; ++p)
      for (int64_t i = 0; i < mr; ++i) dst[p * mr + i] = i < h ? bias[i0 + i] : 0.0f;
  };
}

// Runs of tasks (image x group products): whole tasks per thread when they divide evenly or
// are many or small; otherwise one task at a time with every thread inside its GEMM.
template <typename F>
void run_tasks(int64_t tasks, double task_flops, F&& task) {
  const int threads = num_threads();
  const bool over_tasks = threads > 1 && tasks > 1 &&
                          (tasks % threads == 0 || tasks >= 4 * threads || task_flops < double(1 << 18));
  if (over_tasks) {
    parallel_for(tasks, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) task(t, 1);
    });
  } else {
    for (int64_t t = 0; t < tasks; ++t) task(t, threads);
  }
}

// ---- depthwise (one input channel per group) --------------------------------------------
// The plane loops are written once and compiled three times (AVX-512, AVX2, baseline) so the
// inner row loops vectorise at the machine's width.


// y = b + sum_ij w[i,j] * x shifted; x one input plane, y one output plane.
LR_INLINE void dw_forward_plane(const ConvGeometry& g, const float* __restrict x, const float* __restrict w, float b,
                                float* __restrict y) {
  for (int64_t oh = 0; oh < g.out_h; ++oh) {
    float* __restrict yrow = y + oh * g.out_w;
    for (int64_t ow = 0; ow < g.out_w; ++ow) yrow[ow] = b;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t ih = oh * g.sh - g.pt + i * g.dh;
      if (ih < 0 || ih >= g.h) continue;
      const float* __restrict xrow = x + ih * g.w;
      for (int64_t j = 0; j < g.kw; ++j) {
        const float wv = w[i * g.kw + j];
        const int64_t base = j * g.dw - g.pl;
        int64_t lo, hi;
        valid_range(base, g.sw, g.w, g.out_w, lo, hi);
        if (g.sw == 1) {
          const float* __restrict src = xrow + base;
          for (int64_t ow = lo; ow < hi; ++ow) yrow[ow] += wv * src[ow];
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) yrow[ow] += wv * xrow[base + ow * g.sw];
        }
      }
    }
  }
}

// gx (one input plane) += sum over its og output planes of the scattered gy * w.
LR_INLINE void dw_backward_data_plane(const ConvGeometry& g, int64_t og, const float* __restrict gy, int64_t gy_stride,
                                      const float* __restrict w, float* __restrict gx) {
  for (int64_t q = 0; q < og; ++q) {
    const float* gyp = gy + q * gy_stride;
    const float* wq = w + q * g.kh * g.kw;
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const float* __restrict gyrow = gyp + oh * g.out_w;
      for (int64_t i = 0; i < g.kh; ++i) {
        const int64_t ih = oh * g.sh - g.pt + i * g.dh;
        if (ih < 0 || ih >= g.h) continue;
        float* __restrict gxrow = gx + ih * g.w;
        for (int64_t j = 0; j < g.kw; ++j) {
          const float wv = wq[i * g.kw + j];
          const int64_t base = j * g.dw - g.pl;
          int64_t lo, hi;
          valid_range(base, g.sw, g.w, g.out_w, lo, hi);
          if (g.sw == 1) {
            float* __restrict dst = gxrow + base;
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow] += wv * gyrow[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) gxrow[base + ow * g.sw] += wv * gyrow[ow];
          }
        }
      }
    }
  }
}

// acc[(i*kw + j)*out_w + ow] += gy[oh, ow] * x[ih, iw] over one (gy plane, x plane) pair;
// per-column sums keep the loop free of reductions, so it vectorises without reassociation.
LR_INLINE void dw_backward_filter_plane(const ConvGeometry& g, const float* __restrict gy, const float* __restrict x,
                                        float* __restrict acc) {
  for (int64_t oh = 0; oh < g.out_h; ++oh) {
    const float* __restrict gyrow = gy + oh * g.out_w;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t ih = oh * g.sh - g.pt + i * g.dh;
      if (ih < 0 || ih >= g.h) continue;
      const float* __restrict xrow = x + ih * g.w;
      for (int64_t j = 0; j < g.kw; ++j) {
        float* __restrict a = acc + (i * g.kw + j) * g.out_w;
        const int64_t base = j * g.dw - g.pl;
        int64_t lo, hi;
        valid_range(base, g.sw, g.w, g.out_w, lo, hi);
        if (g.sw == 1) {
          const float* __restrict src = xrow + base;
          for (int64_t ow = lo; ow < hi; ++ow) a[ow] += gyrow[ow] * src[ow];
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) a[ow] += gyrow[ow] * xrow[base + ow * g.sw];
        }
      }
    }
  }
}

LR_AVX512 void dw_forward_avx512(const ConvGeometry& g, const float* x, const float* w, float b, float* y) { dw_forward_plane(g, x, w, b, y); }
LR_AVX2 void dw_forward_avx2(const ConvGeometry& g, const float* x, const float* w, float b, float* y) { dw_forward_plane(g, x, w, b, y); }
void dw_forward_base(const ConvGeometry& g, const float* x, const float* w, float b, float* y) { dw_forward_plane(g, x, w, b, y); }

LR_AVX512 void dw_backward_data_avx512(const ConvGeometry& g, int64_t og, const float* gy, int64_t s, const float* w, float* gx) { dw_backward_data_plane(g, og, gy, s, w, gx); }
LR_AVX2 void dw_backward_data_avx2(const ConvGeometry& g, int64_t og, const float* gy, int64_t s, const float* w, float* gx) { dw_backward_data_plane(g, og, gy, s, w, gx); }
void dw_backward_data_base(const ConvGeometry& g, int64_t og, const float* gy, int64_t s, const float* w, float* gx) { dw_backward_data_plane(g, og, gy, s, w, gx); }

LR_AVX512 void dw_backward_filter_avx512(const ConvGeometry& g, const float* gy, const float* x, float* acc) { dw_backward_filter_plane(g, gy, x, acc); }
LR_AVX2 void dw_backward_filter_avx2(const ConvGeometry& g, const float* gy, const float* x, float* acc) { dw_backward_filter_plane(g, gy, x, acc); }
void dw_backward_filter_base(const ConvGeometry& g, const float* gy, const float* x, float* acc) { dw_backward_filter_plane(g, gy, x, acc); }

bool is_depthwise(const ConvGeometry& g) { return g.c == g.groups; }

void depthwise_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* out) {
  const int level = gemm_isa_level();
  const int64_t og = g.o / g.groups, plane_in = g.h * g.w, plane_out = g.out_h * g.out_w, taps = g.kh * g.kw;
  parallel_for(g.n * g.o, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t n = t / g.o, o = t % g.o;
      const float* xp = x + (n * g.c + o / og) * plane_in;
      const float b = bias ? bias[o] : 0.0f;
      float* y = out + t * plane_out;
      if (level == 2) dw_forward_avx512(g, xp, w + o * taps, b, y);
      else if (level == 1) dw_forward_avx2(g, xp, w + o * taps, b, y);
      else dw_forward_base(g, xp, w + o * taps, b, y);
    }
  });
}

void depthwise_backward_data(const ConvGeometry& g, const float* gy, const float* w, const float* bias, float* gx) {
  const int level = gemm_isa_level();
  const int64_t og = g.o / g.groups, plane_in = g.h * g.w, plane_out = g.out_h * g.out_w, taps = g.kh * g.kw;
  parallel_for(g.n * g.c, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t n = t / g.c, ci = t % g.c;
      float* dst = gx + t * plane_in;
      const float b = bias ? bias[ci] : 0.0f;
      for (int64_t k = 0; k < plane_in; ++k) dst[k] = b;
      const float* src = gy + (n * g.o + ci * og) * plane_out;
      const float* wc = w + ci * og * taps;
      if (level == 2) dw_backward_data_avx512(g, og, src, plane_out, wc, dst);
      else if (level == 1) dw_backward_data_avx2(g, og, src, plane_out, wc, dst);
      else dw_backward_data_base(g, og, src, plane_out, wc, dst);
    }
  });
}

void depthwise_backward_filter(const ConvGeometry& g, const float* x, const float* gy, float* gw) {
  const int level = gemm_isa_level();
  const int64_t og = g.o / g.groups, plane_in = g.h * g.w, plane_out = g.out_h * g.out_w, taps = g.kh * g.kw;
  parallel_for(g.o, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> acc(taps * g.out_w);
    for (int64_t o = lo; o < hi; ++o) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t n = 0; n < g.n; ++n) {
        const float* gyp = gy + (n * g.o + o) * plane_out;
        const float* xp = x + (n * g.c + o / og) * plane_in;
        if (level == 2) dw_backward_filter_avx512(g, gyp, xp, acc.data());
        else if (level == 1) dw_backward_filter_avx2(g, gyp, xp, acc.data());
        else dw_backward_filter_base(g, gyp, xp, acc.data());
      }
      for (int64_t k = 0; k < taps; ++k) {
        double s = 0.0;
        for (int64_t ow = 0; ow < g.out_w; ++ow) s += acc[k * g.out_w + ow];
        gw[o * taps + k] = static_cast<float>(s);
      }
    }
  });
}

// ---- direct convolution for few output channels per group (unit column stride) ------------
// A GEMM with a handful of rows wastes most of its 12-row micro-kernel and spends its time
// packing im2col strips. Here each tap's input run is loaded straight from a zero-padded
// copy of the input and multiplied into OB x NV vector accumulators (OB output channels by
// NV vectors of output pixels), written with GCC vector extensions so the same code compiles
// to zmm, ymm or xmm registers.

template <int VW>
struct Lanes {
  typedef float V __attribute__((vector_size(VW * sizeof(float))));
};

struct DirectArgs {
  const ConvGeometry* g;
  int64_t cg, og, k;          // channels per group in/out, taps per output channel (cg*kh*kw)
  const float* wt;            // weights transposed, [group][tap][og], groups wstride apart
  int64_t wstride;
  const float* bias;          // [o] or null
  float* out;
  int64_t cols;               // padded row length: (out_w - 1) + (kw - 1)*dw + 1
};

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 misreads arrays of vectors
// acc[o][v] = bias + sum over taps t of w[t][o] * row0[taps[t] + lane]; stores the first
// `valid` pixels of each of the OB output rows.
template <int VW, int OB, int NV>
LR_INLINE void direct_segment(const DirectArgs& a, const float* row0, const int64_t* taps, const float* wt,
                              const float* bias, float* y, int64_t valid) {
  using V = typename Lanes<VW>::V;
  const ConvGeometry& g = *a.g;
  const int64_t ohw = g.out_h * g.out_w;
  V acc[OB][NV];
  for (int o = 0; o < OB; ++o) {
    const V init = (bias ? bias[o] : 0.0f) - V{};  // s - 0 folds to a broadcast; s + 0 would not
    for (int v = 0; v < NV; ++v) acc[o][v] = init;
  }
  const float* wp = wt;
  for (int64_t t = 0; t < a.k; ++t, wp += a.og) {
    const float* xs = row0 + taps[t];
    V xv[NV];
    for (int v = 0; v < NV; ++v) {
      std::memcpy(&xv[v], xs + v * VW, sizeof(V));
      // Keep the run in a register: folded into every FMA it would be loaded OB times,
      // mostly across cache lines, and the loads (not the FMAs) would set the pace.
      asm("" : "+v"(xv[v]));
    }
    for (int o = 0; o < OB; ++o) {
      const V wv = wp[o] - V{};
      for (int v = 0; v < NV; ++v) acc[o][v] += wv * xv[v];
    }
  }
  if (valid == NV * VW) {
    for (int o = 0; o < OB; ++o)
      for (int v = 0; v < NV; ++v) std::memcpy(y + o * ohw + v * VW, &acc[o][v], sizeof(V));
  } else {
    for (int o = 0; o < OB; ++o) {
      float tmp[NV * VW];
      for (int v = 0; v < NV; ++v) std::memcpy(tmp + v * VW, &acc[o][v], sizeof(V));
      std::memcpy(y + o * ohw, tmp, sizeof(float) * valid);
    }
  }
}
#pragma GCC diagnostic pop

// Output rows [oh0, oh1) of image n, group gr; src is their zero-padded input band, where
// tap t of an output pixel lies taps[t] elements after its first tap.
template <int VW, int NV>
LR_INLINE void direct_rows(const DirectArgs& a, const float* src, const int64_t* taps, int64_t n, int64_t gr,
                           int64_t oh0, int64_t oh1) {
  const ConvGeometry& g = *a.g;
  const int64_t ohw = g.out_h * g.out_w;
  const float* wt = a.wt + gr * a.wstride;
  const float* bias = a.bias ? a.bias + gr * a.og : nullptr;
  for (int64_t oh = oh0; oh < oh1; ++oh) {
    const float* row = src + (oh - oh0) * g.sh * a.cols;
    float* y = a.out + (n * g.o + gr * a.og) * ohw + oh * g.out_w;
    for (int64_t ow0 = 0; ow0 < g.out_w; ow0 += NV * VW) {
      const int64_t valid = std::min<int64_t>(NV * VW, g.out_w - ow0);
      int64_t ob = 0;
      for (; ob + 4 <= a.og; ob += 4)
        direct_segment<VW, 4, NV>(a, row + ow0, taps, wt + ob, bias ? bias + ob : nullptr, y + ob * ohw + ow0, valid);
      const float* b = bias ? bias + ob : nullptr;
      switch (a.og - ob) {
        case 3: direct_segment<VW, 3, NV>(a, row + ow0, taps, wt + ob, b, y + ob * ohw + ow0, valid); break;
        case 2: direct_segment<VW, 2, NV>(a, row + ow0, taps, wt + ob, b, y + ob * ohw + ow0, valid); break;
        case 1: direct_segment<VW, 1, NV>(a, row + ow0, taps, wt + ob, b, y + ob * ohw + ow0, valid); break;
        default: break;
      }
    }
  }
}

// Pixels per segment: two vectors where they tile the row (measured faster than four: half
// the input lines per tap, 8 accumulators still cover the FMA latency), else as few vectors
// as cover a short row, up to four.
template <int VW>
LR_INLINE void direct_rows_any(const DirectArgs& a, const float* src, const int64_t* taps, int64_t n, int64_t gr,
                               int64_t oh0, int64_t oh1) {
  const int64_t w = a.g->out_w;
  if (w % (2 * VW) == 0) return direct_rows<VW, 2>(a, src, taps, n, gr, oh0, oh1);
  if (w <= VW) direct_rows<VW, 1>(a, src, taps, n, gr, oh0, oh1);
  else if (w <= 2 * VW) direct_rows<VW, 2>(a, src, taps, n, gr, oh0, oh1);
  else direct_rows<VW, 4>(a, src, taps, n, gr, oh0, oh1);
}

using DirectRowsFn = void (*)(const DirectArgs&, const float*, const int64_t*, int64_t, int64_t, int64_t, int64_t);
LR_AVX512 void direct_rows_avx512(const DirectArgs& a, const float* s, const int64_t* t, int64_t n, int64_t gr, int64_t o0, int64_t o1) { direct_rows_any<16>(a, s, t, n, gr, o0, o1); }
LR_AVX2 void direct_rows_avx2(const DirectArgs& a, const float* s, const int64_t* t, int64_t n, int64_t gr, int64_t o0, int64_t o1) { direct_rows_any<8>(a, s, t, n, gr, o0, o1); }
void direct_rows_base(const DirectArgs& a, const float* s, const int64_t* t, int64_t n, int64_t gr, int64_t o0, int64_t o1) { direct_rows_any<4>(a, s, t, n, gr, o0, o1); }

constexpr int64_t kDirectSlack = 64;  // over-read past a band's last row: 4 vectors of 16
// The direct loops beat the GEMM for few output channels per group (its 12-row micro-kernel
// runs mostly empty) and for few taps per output (its k loop is too short to pay for the
// packing); the filter gradient's GEMM packs a transposed im2col, so its direct loops win longer.
constexpr int64_t kDirectMaxChannels = 24;
// Forward: up to 32 output channels (SRINC's inception branches, 32 -> 32 at 3x3 and 5x5 on
// 128x128, measured 25% faster than the GEMM, whose 12-row strips would cover 36 rows); wider
// layers go to the GEMM, whose flattened pixel columns do not depend on the row width.
constexpr int64_t kDirectForwardMaxChannels = 32;
// Rows of whole 32-pixel segments (or 16 pixels), in planes too large for the batched GEMM:
// direct loops for up to 256 output channels, measured 8-30% faster than a GEMM per image
// (64 -> 64 3x3: 100 against 77 GFLOP/s on 8x32x32, 102 against 78 on VDSR's 128x128).
constexpr int64_t kDirectWholeRowMaxChannels = 256;
constexpr int64_t kBatchedPlanePixels = 400;  // see batched_forward below
// Winograd needs enough channels both ways for its 36 products to fill their register blocks
// (fewer outputs go to the direct loops), and enough 4x4 tiles to pay for transforming the
// filter: from 96 tiles at any such channels; from 64 (one image of 32x32, eight of 8x16) past
// 16 -> 16 (two threads, against the direct loops on one 32x32 image: 64 -> 64 2.6x, 256 -> 256
// 4.9x faster; against the GEMM on eight 8x16: 32 -> 32 1.3x, 256 -> 256 1.9x); from 16 (one
// 16x16 image) where the direct loops would run it, from 64 -> 64 (1.6x; 256 -> 256 4.5x;
// 32 -> 32 0.9x). Against the batched GEMM on 8 images of 8x8 (32 tiles) it measured even
// inside a network (alone 1.1-1.3x faster, 0.95x at 512 -> 512), so that stays the GEMM's.
constexpr int64_t kWinogradMinChannels = 16, kWinogradMinTiles = 96;
constexpr int64_t kWinogradFewTiles = 64, kWinogradFewTilesMinPairs = 512;
constexpr int64_t kWinogradOverDirectMinTiles = 16, kWinogradOverDirectMinPairs = 4096;
// F(4x4, 5x5) saves 6.25x the multiplies, so it pays much sooner. On two threads (AVX-512)
// against the direct and GEMM kernels: 32 -> 32 on 128x128 3x faster, on 16x16 (16 tiles) 1.9x,
// 128 -> 128 on 16x16 3.1x but on 8x8 (4 tiles) 0.7x, where the filter transform dominates; 3 or
// more inputs won (2 -> 32 1.3x on 64x64, 1 -> 32 0.9x), 6 or more outputs (32 -> 6 1.4x, 32 -> 4
// 0.9x, SRCNN's 32 -> 3 0.7x: the direct loops).
constexpr int64_t kWinograd5MinInputs = 3, kWinograd5MinOutputs = 6, kWinograd5MinTiles = 16;
bool direct_forward_wins(const ConvGeometry& g) {
  if (g.sw != 1) return false;
  const int64_t og = g.o / g.groups;
  if (og <= kDirectForwardMaxChannels || (g.c / g.groups) * g.kh * g.kw <= 16) return true;
  return og <= kDirectWholeRowMaxChannels && (g.out_w % 32 == 0 || g.out_w == 16) &&
         (g.n == 1 || g.out_h * g.out_w > kBatchedPlanePixels);
}
// Winograd F(4x4, 3x3) or F(4x4, 5x5) against the GEMM and direct kernels. LRFACE_CONV_ALGO, read at each call,
// overrides the choice: "winograd" wherever it applies, "gemm" never (the GEMM or direct
// kernels, not the 1x1 kernel either), "auto" (or unset) by shape.
enum class ConvAlgo { Auto, Winograd, Gemm };
ConvAlgo conv_algo() {
  const char* algo = std::getenv("LRFACE_CONV_ALGO");
  if (!algo || !*algo || std::strcmp(algo, "auto") == 0) return ConvAlgo::Auto;
  if (std::strcmp(algo, "winograd") == 0) return ConvAlgo::Winograd;
  if (std::strcmp(algo, "gemm") == 0) return ConvAlgo::Gemm;
  fail(ErrorKind::Range, "conv2d: LRFACE_CONV_ALGO must be winograd, gemm or auto, got '", algo, "'");
}
// Whether Winograd runs g; `forward` (the forward and the input gradient) also takes the
// small-plane cases measured for it above; the filter gradient keeps kWinogradMinTiles.
bool winograd_wins(const ConvGeometry& g, bool forward) {
  if (!winograd_applies(g)) return false;
  const ConvAlgo algo = conv_algo();
  if (algo != ConvAlgo::Auto) return algo == ConvAlgo::Winograd;
  const int64_t tiles = g.n * ceil_div(g.out_h, 4) * ceil_div(g.out_w, 4);
  if (g.kh == 5) return g.c >= kWinograd5MinInputs && g.o >= kWinograd5MinOutputs && tiles >= kWinograd5MinTiles;
  if (g.c < kWinogradMinChannels || g.o < kWinogradMinChannels) return false;
  if (tiles >= kWinogradMinTiles) return true;
  if (!forward) return false;
  const int64_t pairs = g.c * g.o;
  if (tiles >= kWinogradFewTiles) return pairs >= kWinogradFewTilesMinPairs;
  return tiles >= kWinogradOverDirectMinTiles && pairs >= kWinogradOverDirectMinPairs && direct_forward_wins(g);
}
// The 1x1 kernel (pointwise.cpp) wherever it applies; LRFACE_CONV_ALGO=gemm turns it off too.
bool pointwise_wins(const ConvGeometry& g) { return pointwise_applies(g) && conv_algo() != ConvAlgo::Gemm; }
bool direct_filter_wins(const ConvGeometry& g) {
  // Plain depthwise (one output per input channel): the per-plane loops measured faster.
  if (g.c == g.groups && g.o == g.groups) return false;
  return g.sw == 1 && (g.o / g.groups <= kDirectMaxChannels || (g.c / g.groups) * g.kh * g.kw <= 64);
}

// Direct tasks are bands of output rows of one (image, group); each pads just the input rows
// its band reads into a thread-local buffer, which stays in cache.
struct Bands {
  int64_t cols;    // padded row length: (out_w - 1) + (kw - 1)*dw + 1 (unit column stride)
  int64_t band;    // output rows per task
  int64_t blocks;  // bands per image
  int64_t lo_c, hi_c;  // padded columns that hold image pixels
};

Bands plan_bands(const ConvGeometry& g) {
  Bands b;
  const int64_t cg = g.c / g.groups;
  b.cols = (g.out_w - 1) + (g.kw - 1) * g.dw + 1;
  // Enough tasks for the threads, input bands of at most ~1 MiB.
  const int64_t images = g.n * g.groups, threads = num_threads();
  const int64_t by_threads = images >= 4 * threads ? g.out_h : ceil_div(g.out_h * images, 4 * threads);
  const int64_t by_cache = std::max<int64_t>(1, ((int64_t(1) << 18) / std::max<int64_t>(1, cg * b.cols)) / g.sh);
  b.band = std::max<int64_t>(1, std::min({g.out_h, by_threads, by_cache}));
  b.blocks = ceil_div(g.out_h, b.band);
  valid_range(-g.pl, 1, g.w, b.cols, b.lo_c, b.hi_c);
  return b;
}

// The zero-padded input rows of output rows [oh0, oh1) of image n, group gr (plus zero slack
// for over-reads), and taps[t] = offset of tap t (ci, i, j) from an output pixel's first tap.
const float* pad_band(const ConvGeometry& g, const Bands& b, const float* x, int64_t n, int64_t gr, int64_t oh0,
                      int64_t oh1, Scratch& scratch, std::vector<int64_t>& taps) {
  const int64_t cg = g.c / g.groups, cols = b.cols;
  const int64_t rows = (oh1 - oh0 - 1) * g.sh + (g.kh - 1) * g.dh + 1;
  // Planes a multiple of 4 KiB apart would put every channel's tap in the same L1 sets (a
  // 1x1 band of 16 rows of 128 is 8 KiB): one cache line more keeps them apart.
  const int64_t plane = rows * cols + ((rows * cols) % 1024 == 0 ? 16 : 0);
  float* src = scratch.get(cg * plane + kDirectSlack);
  for (int64_t ci = 0; ci < cg; ++ci) {
    const float* xp = x + (n * g.c + gr * cg + ci) * g.h * g.w;
    for (int64_t r = 0; r < rows; ++r) {
      float* d = src + ci * plane + r * cols;
      const int64_t ih = oh0 * g.sh + r - g.pt;
      if (ih < 0 || ih >= g.h) {
        std::fill(d, d + cols, 0.0f);
        continue;
      }
      const float* srow = xp + ih * g.w - g.pl;
      std::fill(d, d + b.lo_c, 0.0f);
      std::copy(srow + b.lo_c, srow + b.hi_c, d + b.lo_c);
      std::fill(d + b.hi_c, d + cols, 0.0f);
    }
  }
  std::fill(src + cg * plane, src + cg * plane + kDirectSlack, 0.0f);
  taps.resize(cg * g.kh * g.kw);
  for (int64_t ci = 0, t = 0; ci < cg; ++ci)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) taps[t++] = ci * plane + i * g.dh * cols + j * g.dw;
  return src;
}

void direct_forward(const ConvGeometry& g, const float* x, const float* wt, int64_t wstride, const float* bias, float* out) {
  const int64_t cg = g.c / g.groups, og = g.o / g.groups, k = cg * g.kh * g.kw;
  const Bands b = plan_bands(g);
  const DirectArgs a{&g, cg, og, k, wt, wstride, bias, out, b.cols};
  const int level = gemm_isa_level();
  const DirectRowsFn rows_fn = level == 2 ? direct_rows_avx512 : level == 1 ? direct_rows_avx2 : direct_rows_base;
  parallel_for(g.n * g.groups * b.blocks, 1, [&](int64_t lo, int64_t hi) {
    thread_local Scratch t_band;
    std::vector<int64_t> taps;
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t ng = t / b.blocks, n = ng / g.groups, gr = ng % g.groups;
      const int64_t oh0 = (t % b.blocks) * b.band, oh1 = std::min(g.out_h, oh0 + b.band);
      const float* src = pad_band(g, b, x, n, gr, oh0, oh1, t_band, taps);
      rows_fn(a, src, taps.data(), n, gr, oh0, oh1);
    }
  });
}

// ---- direct filter gradient (unit column stride) -------------------------------------------
// gw[o][t] = sum over pixels of gy[o][pixel] * src(t, pixel). Register blocks of TB taps by OB
// output channels hold per-lane partial sums while a chunk of output rows streams through;
// between chunks they live in a per-thread accumulator, summed over lanes and threads at the end.

struct FilterArgs {
  const ConvGeometry* g;
  int64_t og, og_pad, k, k_pad;   // output channels and taps per group, padded to the blocks
  int64_t row_pad;                // gy row length rounded up to whole vectors
};

// acc_mem: [k_pad / TB][og_pad / OB][TB][OB] vectors for one group. gyb: [og_pad][rows][row_pad],
// zero beyond out_w and og. Rows [0, rows) of a band whose padded input is src.
template <int VW, int OB, int TB>
LR_INLINE void filter_band(const FilterArgs& a, const float* src, const int64_t* taps, int64_t cols, const float* gyb,
                           int64_t rows, float* acc_mem) {
  using V = typename Lanes<VW>::V;
  const ConvGeometry& g = *a.g;
  const int64_t segs = a.row_pad / VW, tail = g.out_w - (segs - 1) * VW;
  V lane_ok;  // lanes of the last segment that are real pixels
  for (int l = 0; l < VW; ++l) lane_ok[l] = l < tail ? 1.0f : 0.0f;
  const int64_t chunk = std::max<int64_t>(1, 512 / a.row_pad);  // rows whose data stays in L1
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t r1 = std::min(rows, r0 + chunk);
    for (int64_t tb = 0; tb < a.k_pad; tb += TB)
      for (int64_t ob = 0; ob < a.og_pad; ob += OB) {
        V* mem = reinterpret_cast<V*>(acc_mem) + ((tb / TB) * (a.og_pad / OB) + ob / OB) * TB * OB;
        V acc[TB][OB];
        for (int t = 0; t < TB; ++t)
          for (int o = 0; o < OB; ++o) std::memcpy(&acc[t][o], mem + t * OB + o, sizeof(V));
        for (int64_t r = r0; r < r1; ++r) {
          const float* xrow = src + r * g.sh * cols;
          const float* grow = gyb + r * a.row_pad;
          for (int64_t sgi = 0; sgi < segs; ++sgi) {
            V gv[OB];
            for (int o = 0; o < OB; ++o) {
              std::memcpy(&gv[o], grow + (ob + o) * rows * a.row_pad + sgi * VW, sizeof(V));
              asm("" : "+v"(gv[o]));
            }
            const bool last = sgi == segs - 1;
            for (int t = 0; t < TB; ++t) {
              V xv;
              std::memcpy(&xv, xrow + taps[tb + t] + sgi * VW, sizeof(V));
              // Past the row end the loads see the next row: zero them, so that an infinity
              // there cannot turn into NaN against a zero gradient.
              if (last) xv = lane_ok != 0.0f ? xv : V{};
              asm("" : "+v"(xv));
              for (int o = 0; o < OB; ++o) acc[t][o] += gv[o] * xv;
            }
          }
        }
        for (int t = 0; t < TB; ++t)
          for (int o = 0; o < OB; ++o) std::memcpy(mem + t * OB + o, &acc[t][o], sizeof(V));
      }
  }
}

using FilterBandFn = void (*)(const FilterArgs&, const float*, const int64_t*, int64_t, const float*, int64_t, float*);

// Blocks by instruction set and output channels: (lanes, OB, TB).
#define LR_FILTER_VARIANT(NAME, ATTR, VW, OB, TB)                                                                  \
  ATTR void NAME(const FilterArgs& a, const float* s, const int64_t* t, int64_t c, const float* gyb, int64_t r,  \
                 float* m) {                                                                                       \
    filter_band<VW, OB, TB>(a, s, t, c, gyb, r, m);                                                                \
  }
LR_FILTER_VARIANT(filter_avx512_1, LR_AVX512, 16, 1, 12)
LR_FILTER_VARIANT(filter_avx512_2, LR_AVX512, 16, 2, 8)
LR_FILTER_VARIANT(filter_avx512_4, LR_AVX512, 16, 4, 6)
LR_FILTER_VARIANT(filter_avx2_1, LR_AVX2, 8, 1, 6)
LR_FILTER_VARIANT(filter_avx2_2, LR_AVX2, 8, 2, 4)
LR_FILTER_VARIANT(filter_avx2_3, LR_AVX2, 8, 3, 3)
LR_FILTER_VARIANT(filter_base_1, , 4, 1, 6)
LR_FILTER_VARIANT(filter_base_2, , 4, 2, 4)
LR_FILTER_VARIANT(filter_base_3, , 4, 3, 3)
#undef LR_FILTER_VARIANT

void direct_backward_filter(const ConvGeometry& g, const float* x, const float* gy, float* gw) {
  const int level = gemm_isa_level();
  const int64_t cg = g.c / g.groups, og = g.o / g.groups, k = cg * g.kh * g.kw;
  struct Variant {
    FilterBandFn fn;
    int vw, ob, tb;
  };
  Variant v;
  if (level == 2) v = og == 1 ? Variant{filter_avx512_1, 16, 1, 12} : og == 2 ? Variant{filter_avx512_2, 16, 2, 8} : Variant{filter_avx512_4, 16, 4, 6};
  else if (level == 1) v = og == 1 ? Variant{filter_avx2_1, 8, 1, 6} : og == 2 ? Variant{filter_avx2_2, 8, 2, 4} : Variant{filter_avx2_3, 8, 3, 3};
  else v = og == 1 ? Variant{filter_base_1, 4, 1, 6} : og == 2 ? Variant{filter_base_2, 4, 2, 4} : Variant{filter_base_3, 4, 3, 3};
  const FilterArgs a{&g, og, ceil_div(og, v.ob) * v.ob, k, ceil_div(k, v.tb) * v.tb, ceil_div(g.out_w, v.vw) * v.vw};
  const Bands b = plan_bands(g);
  const int64_t tasks = g.n * g.groups * b.blocks;
  const int parts = static_cast<int>(std::min<int64_t>(num_threads(), tasks));
  const int64_t group_acc = a.k_pad * a.og_pad * v.vw;  // floats per group and part
  std::vector<float> acc(size_t(parts) * g.groups * group_acc, 0.0f);
  const int64_t ohw = g.out_h * g.out_w;
  parallel_for(parts, 1, [&](int64_t plo, int64_t phi) {
    thread_local Scratch t_band, t_gy;
    std::vector<int64_t> taps;
    for (int64_t part = plo; part < phi; ++part)
      for (int64_t t = tasks * part / parts; t < tasks * (part + 1) / parts; ++t) {
        const int64_t ng = t / b.blocks, n = ng / g.groups, gr = ng % g.groups;
        const int64_t oh0 = (t % b.blocks) * b.band, oh1 = std::min(g.out_h, oh0 + b.band), rows = oh1 - oh0;
        const float* src = pad_band(g, b, x, n, gr, oh0, oh1, t_band, taps);
        // Padding taps (up to k_pad) reuse tap 0; their sums are dropped.
        taps.resize(a.k_pad, 0);
        float* gyb = t_gy.get(a.og_pad * rows * a.row_pad);
        for (int64_t o = 0; o < a.og_pad; ++o)
          for (int64_t r = 0; r < rows; ++r) {
            float* d = gyb + (o * rows + r) * a.row_pad;
            if (o < og) {
              const float* srow = gy + (n * g.o + gr * og + o) * ohw + (oh0 + r) * g.out_w;
              std::copy(srow, srow + g.out_w, d);
              std::fill(d + g.out_w, d + a.row_pad, 0.0f);
            } else {
              std::fill(d, d + a.row_pad, 0.0f);
            }
          }
        v.fn(a, src, taps.data(), b.cols, gyb, rows, acc.data() + (part * g.groups + gr) * group_acc);
      }
  });
  // gw[gr*og + o][t] = sum over parts and lanes.
  parallel_for(g.groups * og, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t go = lo; go < hi; ++go) {
      const int64_t gr = go / og, o = go % og, ob = o / v.ob, oi = o % v.ob;
      for (int64_t t = 0; t < k; ++t) {
        const int64_t tb = t / v.tb, ti = t % v.tb;
        const int64_t at = ((tb * (a.og_pad / v.ob) + ob) * v.tb * v.ob + ti * v.ob + oi) * v.vw;
        double s = 0.0;
        for (int part = 0; part < parts; ++part) {
          const float* m = acc.data() + (part * g.groups + gr) * group_acc + at;
          for (int l = 0; l < v.vw; ++l) s += m[l];
        }
        gw[go * k + t] = static_cast<float>(s);
      }
    }
  });
}

// ---- column buffer path (backward data with stride > 1) -----------------------------------

// gx[ci] += scatter of col rows [r0, r1) of output rows; ci-major so threads never share a pixel.
void col2im(const ConvGeometry& g, int64_t cg, const float* col, float* gx, int64_t r0, int64_t r1, bool parallel) {
  const int64_t ohw = (r1 - r0) * g.out_w;
  auto body = [&](int64_t lo, int64_t hi) {
    for (int64_t ci = lo; ci < hi; ++ci) {
      float* dst = gx + ci * g.h * g.w;
      for (int64_t i = 0; i < g.kh; ++i)
        for (int64_t j = 0; j < g.kw; ++j) {
          const float* src = col + ((ci * g.kh + i) * g.kw + j) * ohw;
          const int64_t base = j * g.dw - g.pl;
          int64_t lo_w, hi_w;
          valid_range(base, g.sw, g.w, g.out_w, lo_w, hi_w);
          for (int64_t oh = r0; oh < r1; ++oh) {
            const int64_t ih = oh * g.sh - g.pt + i * g.dh;
            if (ih < 0 || ih >= g.h) continue;
            float* drow = dst + ih * g.w + base;
            const float* s = src + (oh - r0) * g.out_w;
            for (int64_t ow = lo_w; ow < hi_w; ++ow) drow[ow * g.sw] += s[ow];
          }
        }
    }
  };
  if (parallel) parallel_for(cg, 1, body);
  else body(0, cg);
}

// Output rows per column-buffer band: keeps the buffer near 4 MiB for large images.
int64_t band_rows(const ConvGeometry& g) {
  const int64_t kdim = (g.c / g.groups) * g.kh * g.kw;
  const int64_t cols = std::max<int64_t>(256, (int64_t(1) << 20) / std::max<int64_t>(kdim, 1));
  return std::max<int64_t>(1, std::min<int64_t>(g.out_h, cols / std::max<int64_t>(g.out_w, 1)));
}

void backward_data_col(const ConvGeometry& g, const float* gy, const float* w, const float* bias, float* gx) {
  const int64_t cg = g.c / g.groups, og = g.o / g.groups;
  const int64_t kdim = cg * g.kh * g.kw, ohw = g.out_h * g.out_w;
  const int64_t band = band_rows(g);
  run_tasks(g.n * g.groups, double(kdim) * ohw * og, [&](int64_t t, int threads) {
    thread_local Scratch t_col;
    const int64_t n = t / g.groups, gr = t % g.groups;
    float* gxin = gx + (n * g.c + gr * cg) * g.h * g.w;
    const float* gyo = gy + (n * g.o + gr * og) * ohw;
    const float* wg = w + gr * og * kdim;
    float* col = t_col.get(kdim * band * g.out_w);
    for (int64_t ci = 0; ci < cg; ++ci)
      std::fill(gxin + ci * g.h * g.w, gxin + (ci + 1) * g.h * g.w, bias ? bias[gr * cg + ci] : 0.0f);
    for (int64_t r0 = 0; r0 < g.out_h; r0 += band) {
      const int64_t r1 = std::min(g.out_h, r0 + band), cols = (r1 - r0) * g.out_w;
      gemm_packed(kdim, cols, og, 1.0f, plain_pack_a(wg, kdim, true), plain_pack_b(gyo + r0 * g.out_w, ohw, false), 0.0f,
                  col, cols, threads);
      col2im(g, cg, col, gxin, r0, r1, threads > 1);
    }
  });
}

// ---- small output planes: one GEMM over every image ---------------------------------------
// Deep layers of U-Nets and ResNets on small faces have a handful of output pixels per image
// (4x4, 5x4, 8x8, 12x10): a GEMM per image runs its 32-wide column strips mostly empty and packs
// the whole weight matrix again for every image. Here the GEMM's columns are the (image,
// pixel) pairs of all images at once, its result [og][image, pixel] scattered to NCHW after,
// with the bias and ReLU. The weights are read in place by the micro-kernel (gemm_stored_a):
// with so few columns, packing them would cost each thread a good share of the arithmetic.

// kBatchedPlanePixels (above): up to 20x20 output pixels; measured gains to 16x16 (4x4: 2.5x),
// none from 26x22 up.
// Columns of one GEMM: bounds its product buffer and padded input copy on large batches.
constexpr int64_t kBatchedColumns = 4096;
bool batched_forward_wins(const ConvGeometry& g) { return g.n > 1 && g.out_h * g.out_w <= kBatchedPlanePixels; }

// How many convolutions have run through batched_forward since start-up.
std::atomic<int64_t> g_batched_forward_runs{0};

// The images of g (all of them, at most kBatchedColumns output pixels) as one GEMM per group.
void batched_forward_images(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* out,
                            bool relu) {
  const int64_t cg = g.c / g.groups, og = g.o / g.groups, kdim = cg * g.kh * g.kw;
  const int64_t ohw = g.out_h * g.out_w, cols = g.n * ohw;
  thread_local Scratch t_padded, t_product;
  const Source src = padded_batch(g, x, t_padded);
  const int64_t image = g.c * src.plane;
  float* product = t_product.get(og * cols);
  for (int64_t gr = 0; gr < g.groups; ++gr) {
    const Source group_src{src.data + gr * cg * src.plane, src.plane, src.pitch};
    gemm_stored_a(og, cols, kdim, 1.0f, w + gr * og * kdim, kdim, im2col_pack(g, group_src, kdim, image), 0.0f,
                  product, cols);
    // out[n, gr*og + o, q] = bias[o] + product[o, n*ohw + q]: one output plane per task.
    parallel_for(g.n * og, std::max<int64_t>(1, 4096 / ohw), [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        const int64_t n = t / og, o = t % og;
        const float* from = product + o * cols + n * ohw;
        float* to = out + (n * g.o + gr * og + o) * ohw;
        const float b = bias ? bias[gr * og + o] : 0.0f;
        if (relu)
          for (int64_t i = 0; i < ohw; ++i) {
            const float v = from[i] + b;
            to[i] = v > 0.0f ? v : 0.0f;
          }
        else
          for (int64_t i = 0; i < ohw; ++i) to[i] = from[i] + b;
      }
    });
  }
}

void batched_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* out, bool relu) {
  g_batched_forward_runs.fetch_add(1, std::memory_order_relaxed);
  const int64_t ohw = g.out_h * g.out_w, per_gemm = std::max<int64_t>(1, kBatchedColumns / ohw);
  for (int64_t n0 = 0; n0 < g.n; n0 += per_gemm) {
    ConvGeometry part = g;
    part.n = std::min(per_gemm, g.n - n0);
    batched_forward_images(part, x + n0 * g.c * g.h * g.w, w, bias, out + n0 * g.o * ohw, relu);
  }
}

}  // namespace

namespace {
// v > 0 ? v : 0, the relu op's rule; a select the compiler vectorises.
void relu_in_place(float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

// The whole output at once, for the kernels that do not run image by image.
void relu_output(const ConvGeometry& g, float* out) {
  const int64_t plane = g.out_h * g.out_w;
  parallel_for(g.n * g.o, std::max<int64_t>(1, 16384 / plane), [&](int64_t lo, int64_t hi) {
    relu_in_place(out + lo * plane, (hi - lo) * plane);
  });
}

// The GEMM with implicit im2col, one product per (image, group).
void gemm_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* out, bool relu) {
  const int64_t cg = g.c / g.groups, og = g.o / g.groups;
  const int64_t kdim = cg * g.kh * g.kw, ohw = g.out_h * g.out_w;
  const int64_t k = kdim + (bias ? 1 : 0);
  run_tasks(g.n * g.groups, double(og) * ohw * k, [&](int64_t t, int threads) {
    thread_local Scratch t_padded;
    const int64_t n = t / g.groups, gr = t % g.groups;
    const Source src = padded_source(g, x + (n * g.c + gr * cg) * g.h * g.w, cg, t_padded);
    float* y = out + (n * g.o + gr * og) * ohw;
    gemm_packed(og, ohw, k, 1.0f, weight_pack(w + gr * og * kdim, bias ? bias + gr * og : nullptr, kdim),
                im2col_pack(g, src, kdim), 0.0f, y, ohw, threads);
    if (!relu) return;
    if (threads == 1) return relu_in_place(y, og * ohw);
    parallel_for(og, 1, [&](int64_t lo, int64_t hi) { relu_in_place(y + lo * ohw, (hi - lo) * ohw); });
  });
}
}  // namespace

int64_t batched_forward_count() { return g_batched_forward_runs.load(std::memory_order_relaxed); }

void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* out, bool relu,
                    const float* residual) {
  if (winograd_wins(g, true)) return winograd_conv2d_forward(g, x, w, bias, out, relu, residual);
  if (residual) {
    conv2d_forward(g, x, w, bias, out, false);
    const int64_t plane = g.out_h * g.out_w;
    parallel_for(g.n * g.o, std::max<int64_t>(1, 16384 / plane), [&](int64_t lo, int64_t hi) {
      float* __restrict y = out + lo * plane;
      const float* __restrict r = residual + lo * plane;
      const int64_t count = (hi - lo) * plane;
      if (relu)
        for (int64_t i = 0; i < count; ++i) {
          const float v = y[i] + r[i];
          y[i] = v > 0.0f ? v : 0.0f;
        }
      else
        for (int64_t i = 0; i < count; ++i) y[i] += r[i];
    });
    return;
  }
  if (pointwise_wins(g)) return pointwise_conv2d_forward(g, x, w, bias, out, relu);
  const bool direct = direct_forward_wins(g);
  if (is_depthwise(g) && !direct) {
    depthwise_forward(g, x, w, bias, out);
    if (relu) relu_output(g, out);
    return;
  }
  const int64_t og = g.o / g.groups, kdim = (g.c / g.groups) * g.kh * g.kw;
  if (direct) {
    // The direct loops read one tap's weights for a block of output channels at once:
    // transposed to [group][tap][og], into a kept buffer (a fresh one over glibc's mmap
    // threshold would fault its pages in again on every call).
    thread_local Scratch t_wt;
    float* wt = t_wt.get(g.groups * kdim * og);
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      float* dst = wt + gr * kdim * og;
      for (int64_t o = 0; o < og; ++o) {
        const float* src = w + (gr * og + o) * kdim;
        for (int64_t p = 0; p < kdim; ++p) dst[p * og + o] = src[p];
      }
    }
    direct_forward(g, x, wt, kdim * og, bias, out);
    if (relu) relu_output(g, out);
    return;
  }
  if (batched_forward_wins(g)) return batched_forward(g, x, w, bias, out, relu);
  gemm_forward(g, x, w, bias, out, relu);
}

namespace {

// ---- sub-pixel path (backward data with stride > 1, dilation 1) ---------------------------
// gx[c, y, x] gets tap (i, j) only where y + pt - i and x + pl - j are multiples of the
// strides, so gx splits into sh x sw phases (py, px) = ((y + pt) mod sh, (x + pl) mod sw), each
// reached by its own taps i = py + sh*a, j = px + sw*b. On its sub-grid y = Y*sh + py - pt a
// phase is a stride-1 correlation of gy with those taps flipped, as on the stride-1 path:
// sum over o, a' < A of gy[o, Y - (A-1) + a'] * w[o, c, py + sh*(A-1-a'), ...]. Phases with as
// many taps each way run as one convolution (conv2d_forward's kernels), their weights stacked
// along the output channels: one product with more rows over the same gy (DIC's 12/8/2 has 64
// phases of 2 or 1 taps each way, so 4 products). The products go to a buffer that is then
// scattered into gx with the bias, every pixel written once; the column buffer instead writes
// kh*kw/(sh*sw) times gx's size and adds that into gx.

// One axis of one phase.
struct PhaseAxis {
  int64_t taps;   // kernel taps that reach it (0 where the kernel is shorter than the stride)
  int64_t first;  // sub-grid index of its first pixel in gx
  int64_t count;  // its pixels in gx
  int64_t cls;    // its class, -1 where it has no taps or no pixels
  int64_t slot;   // its place among the phases of its class
};
// Phases with as many taps, computed by one convolution over the sub-grid indices
// [first, first + count) that any of them needs (a phase starting one index later computes
// one row it does not use, so that k = 4, s = 2, p = 1 is one convolution, not four).
struct PhaseClass {
  int64_t taps, first, count;
  int64_t pad() const { return taps - 1 - first; }  // leading padding of the convolution over gy
  std::vector<int64_t> phases;
};
struct PhaseAxisPlan {
  std::vector<PhaseAxis> phases;  // by phase
  std::vector<PhaseClass> classes;
};

// The phases along one axis: kernel k, stride s, leading padding pad, gx extent size.
PhaseAxisPlan plan_phase_axis(int64_t k, int64_t s, int64_t pad, int64_t size) {
  PhaseAxisPlan plan;
  for (int64_t p = 0; p < s; ++p) {
    PhaseAxis a;
    a.taps = p < k ? (k - 1 - p) / s + 1 : 0;
    a.first = ceil_div(pad - p, s);  // pad - p > -s, so never below 0
    const int64_t span = size - 1 + pad - p;  // the last sub-grid index is span / s
    a.count = span < 0 ? 0 : std::max<int64_t>(0, span / s - a.first + 1);
    a.cls = -1;
    a.slot = 0;
    if (a.taps > 0 && a.count > 0) {
      for (size_t c = 0; c < plan.classes.size() && a.cls < 0; ++c)
        if (plan.classes[c].taps == a.taps) a.cls = int64_t(c);
      if (a.cls < 0) {
        a.cls = int64_t(plan.classes.size());
        plan.classes.push_back(PhaseClass{a.taps, a.first, a.count, {}});
      }
      PhaseClass& pc = plan.classes[a.cls];
      const int64_t end = std::max(pc.first + pc.count, a.first + a.count);
      pc.first = std::min(pc.first, a.first);
      pc.count = end - pc.first;
      a.slot = int64_t(pc.phases.size());
      pc.phases.push_back(p);
    }
    plan.phases.push_back(a);
  }
  return plan;
}

// A phase's stride-1 convolution: the GEMM, except where the usual choice is Winograd (3x3 or
// 5x5 phases), the direct loops for few outputs or taps, and one GEMM over the batch for planes
// of up to 144 pixels rather than 400: its weights read in place measured slower on the
// phases' wider products (DIC's 12/8/2 on four 16x16 images, 17x17 phase planes: 11.8 ms
// against 14.0 on one thread; on 9x9 planes, k4s2p1 256 -> 128 on eight 8x8 images, it wins,
// 6.6 against 7.3). The whole-row direct loops and the 1x1 kernel lose to the GEMM on these
// products too (two threads: 64 -> 256 2x2 on 32x32, 0.48 ms against 0.78; 64 -> 1024 1x1,
// 0.48 against 0.94).
constexpr int64_t kPhaseBatchedPixels = 144;
void phase_forward(const ConvGeometry& f, const float* gy, const float* w, float* out) {
  const int64_t og = f.o / f.groups, kdim = (f.c / f.groups) * f.kh * f.kw;
  if (winograd_wins(f, true) || is_depthwise(f) || og <= kDirectMaxChannels || kdim <= 16)
    return conv2d_forward(f, gy, w, nullptr, out);
  if (f.n > 1 && f.out_h * f.out_w <= kPhaseBatchedPixels) return batched_forward(f, gy, w, nullptr, out, false);
  gemm_forward(f, gy, w, nullptr, out, false);
}

// row[X*SW + px] = src[px][X] + b for X < n: a run of whole groups of the sw column phases,
// written in order (a compile-time SW lets the compiler interleave in registers; storing each
// phase in turn, sw floats apart, measured 1.6x slower at sw = 8 and 1.25x at sw = 2).
template <int SW>
void interleave_phases(float* __restrict row, const float* const* src, int64_t n, float b) {
  for (int64_t X = 0; X < n; ++X)
    for (int px = 0; px < SW; ++px) row[X * SW + px] = src[px][X] + b;
}
void interleave_phases(float* __restrict row, const float* const* src, int64_t sw, int64_t n, float b) {
  switch (sw) {
    case 2: return interleave_phases<2>(row, src, n, b);
    case 3: return interleave_phases<3>(row, src, n, b);
    case 4: return interleave_phases<4>(row, src, n, b);
    case 8: return interleave_phases<8>(row, src, n, b);
    default:
      for (int64_t X = 0; X < n; ++X)
        for (int64_t px = 0; px < sw; ++px) row[X * sw + px] = src[px][X] + b;
  }
}
constexpr int64_t kMaxInterleavedPhases = 16;

// Images whose phase buffers fit in this many floats run together (at least one at a time);
// the buffer is kept between calls up to this size (a fresh one would fault its pages in again),
// and so are the stacked weights up to theirs.
constexpr int64_t kPhaseBufferFloats = int64_t(1) << 23;   // 32 MiB
constexpr int64_t kStackedWeightFloats = int64_t(1) << 22;  // 16 MiB

void backward_data_subpixel(const ConvGeometry& g, const PhaseAxisPlan& rows, const PhaseAxisPlan& cols, const float* gy,
                            const float* w, const float* bias, float* gx) {
  const int64_t cg = g.c / g.groups, og = g.o / g.groups, taps = g.kh * g.kw;
  const int64_t plane_in = g.h * g.w, plane_out = g.out_h * g.out_w;
  const int64_t rc = int64_t(rows.classes.size()), cc = int64_t(cols.classes.size());

  // One convolution per (row class, column class): its weights [group][phase][cg][og][A][B] at
  // `weights`, its outputs [image][channels][rows][cols] at images * `outputs` in the buffer.
  struct Block {
    int64_t weights, outputs, channels, phases;
  };
  std::vector<Block> blocks(rc * cc);
  int64_t weight_floats = 0, image_floats = 0;
  for (int64_t r = 0; r < rc; ++r)
    for (int64_t c = 0; c < cc; ++c) {
      const PhaseClass &R = rows.classes[r], &C = cols.classes[c];
      const int64_t phases = int64_t(R.phases.size() * C.phases.size()), channels = g.groups * phases * cg;
      blocks[r * cc + c] = Block{weight_floats, image_floats, channels, phases};
      weight_floats += channels * og * R.taps * C.taps;
      image_floats += channels * R.count * C.count;
    }

  // Where each phase's weights come from: og*A*B offsets from kernel (0, ci) of a group, in
  // the order they are stored, so the copy below is one gather loop per phase.
  struct PhaseWeights {
    int64_t dst, per_input, per_group;  // first stored weight; step per input channel, per group
    int64_t from, len;                  // its offsets in `sources`
  };
  std::vector<PhaseWeights> phase_weights;
  std::vector<int32_t> sources;
  for (int64_t r = 0; r < rc; ++r)
    for (int64_t c = 0; c < cc; ++c) {
      const PhaseClass &R = rows.classes[r], &C = cols.classes[c];
      const Block& blk = blocks[r * cc + c];
      const int64_t A = R.taps, B = C.taps, nx = int64_t(C.phases.size());
      for (int64_t q = 0; q < blk.phases; ++q) {
        const int64_t py = R.phases[q / nx], px = C.phases[q % nx];
        phase_weights.push_back(PhaseWeights{blk.weights + q * cg * og * A * B, og * A * B, blk.phases * cg * og * A * B,
                                             int64_t(sources.size()), og * A * B});
        for (int64_t o = 0; o < og; ++o)
          for (int64_t a = A - 1; a >= 0; --a)
            for (int64_t b = B - 1; b >= 0; --b)
              sources.push_back(int32_t(o * cg * taps + (py + g.sh * a) * g.kw + px + g.sw * b));
      }
    }
  thread_local Scratch t_stacked;
  float* stacked = t_stacked.get(weight_floats);
  parallel_for(g.groups * cg, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t gr = t / cg, ci = t % cg;
      const float* __restrict wk = w + (gr * og * cg + ci) * taps;
      for (const PhaseWeights& pw : phase_weights) {
        float* __restrict d = stacked + pw.dst + gr * pw.per_group + ci * pw.per_input;
        const int32_t* __restrict from = sources.data() + pw.from;
        for (int64_t e = 0; e < pw.len; ++e) d[e] = wk[from[e]];
      }
    }
  });

  // Where phase (py, px)'s rows are: channel (n, gr, ci), sub-grid row Y at
  // base + n*per_image + gr*per_group + ci*per_input + Y*pitch; its pixels of a gx row start
  // at column `first`, sw apart.
  struct PhaseRows {
    bool bias_only;  // no tap reaches it
    int64_t base, per_image, per_group, per_input, pitch, count, first;
  };
  std::vector<PhaseRows> phase_rows(g.sh * g.sw);
  const int64_t chunk = std::max<int64_t>(1, std::min(g.n, kPhaseBufferFloats / std::max<int64_t>(1, image_floats)));
  thread_local Scratch t_phases;
  float* buf = t_phases.get(chunk * image_floats);
  for (int64_t n0 = 0; n0 < g.n; n0 += chunk) {
    const int64_t images = std::min(chunk, g.n - n0);
    for (int64_t k = 0; k < rc * cc; ++k) {
      const PhaseClass &R = rows.classes[k / cc], &C = cols.classes[k % cc];
      const Block& blk = blocks[k];
      const ConvGeometry f{images, g.o, g.out_h, g.out_w, blk.channels, R.taps, C.taps, 1, 1, R.pad(), C.pad(),
                           1, 1, g.groups, R.count, C.count};
      phase_forward(f, gy + n0 * g.o * plane_out, stacked + blk.weights, buf + images * blk.outputs);
    }
    for (int64_t py = 0; py < g.sh; ++py)
      for (int64_t px = 0; px < g.sw; ++px) {
        const PhaseAxis &ra = rows.phases[py], &ca = cols.phases[px];
        PhaseRows& pr = phase_rows[py * g.sw + px];
        pr.count = ca.count;
        pr.first = ca.first * g.sw + px - g.pl;  // gx column of its first pixel
        pr.bias_only = ra.cls < 0 || ca.cls < 0;
        if (pr.bias_only) continue;
        const Block& blk = blocks[ra.cls * cc + ca.cls];
        const PhaseClass &R = rows.classes[ra.cls], &C = cols.classes[ca.cls];
        const int64_t plane = R.count * C.count;
        const int64_t q = ra.slot * int64_t(C.phases.size()) + ca.slot;
        pr.pitch = C.count;
        pr.base = images * blk.outputs + q * cg * plane - R.first * C.count + ca.first - C.first;
        pr.per_image = blk.channels * plane;
        pr.per_group = blk.phases * cg * plane;
        pr.per_input = plane;
      }
    // Sub-grid columns [inner_lo, inner_hi) have a pixel of every column phase: there gx rows
    // are written whole groups at a time; the phases' other pixels (the borders) one by one.
    int64_t inner_lo = 0, inner_hi = 0;
    bool interleave = g.sw <= kMaxInterleavedPhases;
    for (int64_t px = 0; px < g.sw; ++px) {
      const PhaseAxis& ca = cols.phases[px];
      interleave = interleave && ca.cls >= 0;
      inner_lo = px == 0 ? ca.first : std::max(inner_lo, ca.first);
      inner_hi = px == 0 ? ca.first + ca.count : std::min(inner_hi, ca.first + ca.count);
    }
    interleave = interleave && inner_hi > inner_lo;
    // gx planes of these images, row by row.
    float* gxc = gx + n0 * g.c * plane_in;
    parallel_for(images * g.c, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, plane_in)), [&](int64_t lo, int64_t hi) {
      const float* src[kMaxInterleavedPhases];
      for (int64_t t = lo; t < hi; ++t) {
        const int64_t n = t / g.c, ch = t % g.c, gr = ch / cg, ci = ch % cg;
        const float b = bias ? bias[ch] : 0.0f;
        for (int64_t y = 0; y < g.h; ++y) {
          float* row = gxc + t * plane_in + y * g.w;
          const int64_t py = (y + g.pt) % g.sh, sub_row = (y + g.pt) / g.sh;
          if (rows.phases[py].cls < 0) {  // no tap reaches this row
            std::fill(row, row + g.w, b);
            continue;
          }
          for (int64_t px = 0; px < g.sw; ++px) {
            const PhaseRows& pr = phase_rows[py * g.sw + px];
            float* d = row + pr.first;
            if (pr.bias_only) {
              for (int64_t k = 0; k < pr.count; ++k) d[k * g.sw] = b;
              continue;
            }
            const float* s = buf + pr.base + n * pr.per_image + gr * pr.per_group + ci * pr.per_input + sub_row * pr.pitch;
            if (!interleave) {
              for (int64_t k = 0; k < pr.count; ++k) d[k * g.sw] = s[k] + b;
              continue;
            }
            const int64_t first = cols.phases[px].first, head = inner_lo - first, tail = first + pr.count - inner_hi;
            for (int64_t k = 0; k < head; ++k) d[k * g.sw] = s[k] + b;
            for (int64_t k = pr.count - tail; k < pr.count; ++k) d[k * g.sw] = s[k] + b;
            src[px] = s + head;
          }
          if (interleave) interleave_phases(row + inner_lo * g.sw - g.pl, src, g.sw, inner_hi - inner_lo, b);
        }
      }
    });
  }
  t_phases.trim(kPhaseBufferFloats);
  t_stacked.trim(kStackedWeightFloats);
}

// Sub-pixel phases or the column buffer. LRFACE_DECONV_ALGO, read at each call, overrides the
// choice: "subpixel" wherever it applies (dilation 1; depthwise layers keep their own loops),
// "columns" never, "auto" (or unset) by shape.
enum class DeconvAlgo { Auto, Subpixel, Columns };
DeconvAlgo deconv_algo() {
  const char* algo = std::getenv("LRFACE_DECONV_ALGO");
  if (!algo || !*algo || std::strcmp(algo, "auto") == 0) return DeconvAlgo::Auto;
  if (std::strcmp(algo, "subpixel") == 0) return DeconvAlgo::Subpixel;
  if (std::strcmp(algo, "columns") == 0) return DeconvAlgo::Columns;
  fail(ErrorKind::Range, "conv2d: LRFACE_DECONV_ALGO must be subpixel, columns or auto, got '", algo, "'");
}

// By shape, measured against the column buffer (median ms on two AVX-512 cores, columns
// first): the phases win where the kernel windows overlap (kh*kw > sh*sw: the column buffer
// holds that many times gx's size) with a few taps per phase product, gx has 8 channels or more
// per group (fewer make thin phase products) and the column product's k (og) is short against
// the overlap. DIC's 12/8/2 64 -> 64 on 32x32: 11.1 against 8.6 (48 channels on 16x16: 1.74,
// 1.44), its 8/4/2 64 -> 64 on 64x64 16.9 against 10.9; k4s2p1 64 -> 64 on 64x64 4.1, 2.6,
// 8 -> 8 0.33, 0.16, 128 -> 64 on 32x32 even (one or four images), 256 -> 128 on two 16x16
// images 2.2, 2.7; k5s3p1 32 -> 32 on 40x40 1.10, 0.75; k6s2p2 (3x3 phases: Winograd) 1.94,
// 0.66. Kept on the column buffer: k3s2p1 (phases of 2x2, 2x1, 1x2 and 1x1 taps, each its own
// product: 64 -> 64 on 64x64 2.39, 2.58; 128 -> 64 on eight 16x16 images 1.45, 1.88), 12/8/2
// 128 -> 128 on 16x16 (8.4, 8.8), gx of 3 to 6 channels (k4s2p1 32 -> 3 0.18, 0.19), kernels
// no larger than the stride (nothing to save). Batches of gy planes of up to 4x4 pixels take
// the phases whatever the rest (the column buffer has a 16-column GEMM per image, the phases
// one over the batch): k4s2p1 512 -> 256 on eight 4x4 images 8.0, 6.0 (one image: 1.0, 2.2,
// stacking the weights), k3s2p1 256 -> 128 0.94, 0.66.
bool subpixel_wins(const ConvGeometry& g, int64_t convolutions) {
  const int64_t cg = g.c / g.groups, og = g.o / g.groups, taps = g.kh * g.kw, phases = g.sh * g.sw;
  if (cg < 8) return false;
  if (g.n >= 4 && g.out_h * g.out_w <= 16) return true;
  return taps > phases && taps >= 4 * convolutions && og * phases <= 32 * taps;
}

}  // namespace

void conv2d_backward_data(const ConvGeometry& g, const float* gy, const float* w, const float* bias, float* gx) {
  if (g.sh != 1 || g.sw != 1) {
    if (is_depthwise(g)) return depthwise_backward_data(g, gy, w, bias, gx);
    const DeconvAlgo algo = deconv_algo();
    // (A group's weights are indexed with 32 bits on the sub-pixel path.)
    const bool applies = g.dh == 1 && g.dw == 1 && g.n > 0 && g.c > 0 && g.o > 0 &&
                         (g.o / g.groups) * (g.c / g.groups) * g.kh * g.kw <= INT32_MAX;
    if (algo == DeconvAlgo::Columns || !applies) return backward_data_col(g, gy, w, bias, gx);
    const PhaseAxisPlan rows = plan_phase_axis(g.kh, g.sh, g.pt, g.h), cols = plan_phase_axis(g.kw, g.sw, g.pl, g.w);
    if (algo == DeconvAlgo::Subpixel || subpixel_wins(g, int64_t(rows.classes.size() * cols.classes.size())))
      return backward_data_subpixel(g, rows, cols, gy, w, bias, gx);
    return backward_data_col(g, gy, w, bias, gx);
  }
  // gx[c, y, x] = sum_{o,i,j} gy[o, y + pt - i*dh, x + pl - j*dw] * w[o, c, i, j]: a stride-1
  // convolution of gy by w'[c, o, i', j'] = w[o, c, kh-1-i', kw-1-j'], padded by d*(k-1) - p
  // (negative padding just starts inside gy).
  const int64_t cg = g.c / g.groups, og = g.o / g.groups, taps = g.kh * g.kw;
  std::vector<float> flipped(g.o * cg * taps);
  for (int64_t gr = 0; gr < g.groups; ++gr)
    for (int64_t c = 0; c < cg; ++c)
      for (int64_t o = 0; o < og; ++o)
        for (int64_t t = 0; t < taps; ++t)
          flipped[((gr * cg + c) * og + o) * taps + t] = w[((gr * og + o) * cg + c) * taps + (taps - 1 - t)];
  ConvGeometry f{g.n, g.o, g.out_h, g.out_w, g.c, g.kh, g.kw, 1, 1, g.dh * (g.kh - 1) - g.pt, g.dw * (g.kw - 1) - g.pl,
                 g.dh, g.dw, g.groups, g.h, g.w};
  conv2d_forward(f, gy, flipped.data(), bias, gx);
}

void conv2d_backward_filter(const ConvGeometry& g, const float* x, const float* gy, float* gw) {
  if (g.n == 0) {
    std::memset(gw, 0, sizeof(float) * g.o * (g.c / g.groups) * g.kh * g.kw);
    return;
  }
  if (winograd_filter_applies(g) && winograd_wins(g, false)) return winograd_conv2d_backward_filter(g, x, gy, gw);
  if (filter_by_inputs_wins(g)) return conv2d_filter_by_inputs(g, x, gy, gw);
  if (direct_filter_wins(g)) return direct_backward_filter(g, x, gy, gw);
  if (is_depthwise(g)) return depthwise_backward_filter(g, x, gy, gw);
  if (filter_by_outputs_wins(g)) return conv2d_filter_by_outputs(g, x, gy, gw);
  const int64_t cg = g.c / g.groups, og = g.o / g.groups;
  const int64_t kdim = cg * g.kh * g.kw, ohw = g.out_h * g.out_w;
  const int64_t k = g.n * ohw;
  // Every image zero-padded once (each thread packs pixels of any image); freed on return,
  // as a whole batch is too large to keep around.
  Scratch padded;
  const Source src = padded_batch(g, x, padded);
  const int64_t image = g.c * src.plane;
  for (int64_t gr = 0; gr < g.groups; ++gr) {
    // A = gy_g [og x (images, pixels)], B = col^T [(images, pixels) x kdim].
    PackA pack_a = [&g, gy, gr, og, ohw](int64_t i0, int64_t h, int64_t p0, int64_t kc, int mr, float* dst) {
      for (int64_t i = 0; i < mr; ++i) {
        if (i >= h) {
          for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = 0.0f;
          continue;
        }
        for (int64_t p = 0; p < kc;) {
          const int64_t n = (p0 + p) / ohw, q = (p0 + p) % ohw, len = std::min(kc - p, ohw - q);
          const float* src = gy + ((n * g.o + gr * og + i0 + i) * ohw + q);
          for (int64_t t = 0; t < len; ++t) dst[(p + t) * mr + i] = src[t];
          p += len;
        }
      }
    };
    // op(B)[(n, pixel)][tap] = src(n, tap, pixel): per run of pixels along an output row,
    // each tap is one contiguous (or strided) read.
    const float* xg = src.data + gr * cg * src.plane;
    PackB pack_b = pack_b_by_strips([&g, xg, &src, image](int64_t p0, int64_t kc, int64_t j0, int64_t w, int nr, float* dst) {
      thread_local std::vector<int64_t> runs;  // (first p, length, offset) triples
      runs.clear();
      const int64_t ohw = g.out_h * g.out_w;
      for (int64_t p = 0; p < kc;) {
        const int64_t n = (p0 + p) / ohw, q = (p0 + p) % ohw, oh = q / g.out_w, ow = q % g.out_w;
        const int64_t len = std::min(kc - p, g.out_w - ow);
        runs.insert(runs.end(), {p, len, n * image + oh * g.sh * src.pitch + ow * g.sw});
        p += len;
      }
      for (int64_t jj = 0; jj < nr; ++jj) {
        if (jj >= w) {
          for (int64_t p = 0; p < kc; ++p) dst[p * nr + jj] = 0.0f;
          continue;
        }
        const int64_t tap = j0 + jj, j = tap % g.kw, i = (tap / g.kw) % g.kh, ci = tap / (g.kw * g.kh);
        const float* base = xg + ci * src.plane + i * g.dh * src.pitch + j * g.dw;
        for (size_t r = 0; r < runs.size(); r += 3) {
          const float* sp = base + runs[r + 2];
          float* d = dst + runs[r] * nr + jj;
          const int64_t len = runs[r + 1];
          if (g.sw == 1)
            for (int64_t t = 0; t < len; ++t) d[t * nr] = sp[t];
          else
            for (int64_t t = 0; t < len; ++t) d[t * nr] = sp[t * g.sw];
        }
      }
    });
    gemm_packed(og, kdim, k, 1.0f, pack_a, pack_b, 0.0f, gw + gr * og * kdim, kdim, 0);
  }
}

}  // namespace lrface::cpu
