// The engine's own CUDA kernels (see kernels.h). Grid-stride loops over 64-bit indices; every
// launch goes on the device's stream and is checked at once.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../cpu/random.h"
#include "check.h"
#include "context.h"
#include "device_memory.h"
#include "launch.h"
#include "kernels.h"

namespace lrface::cuda {

namespace {

// ---- elementwise -------------------------------------------------------------------------

struct Broadcast {
  int rank;
  int64_t shape[kMaxRank];
  int64_t a_stride[kMaxRank];  // 0 along broadcast axes
  int64_t b_stride[kMaxRank];
};

__device__ __forceinline__ float apply_binary(int code, float x, float y) {
  switch (code) {
    case 0: return x + y;
    case 1: return x - y;
    case 2: return x * y;
    case 3: return x / y;
    case 4: return powf(x, y);
    case 5: return x >= y ? x : y;
    case 6: return x <= y ? x : y;
    case 7: return x >= y ? 1.0f : 0.0f;
    default: return x <= y ? 1.0f : 0.0f;
  }
}

__global__ void binary_same_shape(int code, float* out, const float* a, const float* b, int64_t n) {
  LR_GRID_STRIDE(i, n) out[i] = apply_binary(code, a[i], b[i]);
}

__global__ void binary_broadcast(int code, float* out, const float* a, const float* b, int64_t n, Broadcast bc) {
  LR_GRID_STRIDE(i, n) {
    int64_t rem = i, oa = 0, ob = 0;
    for (int k = bc.rank - 1; k >= 0; --k) {
      int64_t idx = rem % bc.shape[k];
      rem /= bc.shape[k];
      oa += idx * bc.a_stride[k];
      ob += idx * bc.b_stride[k];
    }
    out[i] = apply_binary(code, a[oa], b[ob]);
  }
}

__device__ __forceinline__ float sigmoid(float v) {
  return v >= 0 ? 1.0f / (1.0f + expf(-v)) : expf(v) / (1.0f + expf(v));
}

__global__ void unary_kernel(int code, float* out, const float* x, int64_t n, float p0, float p1) {
  LR_GRID_STRIDE(i, n) {
    const float v = x[i];
    float r;
    switch (code) {
      case 0: r = -v; break;
      case 1: r = expf(v); break;
      case 2: r = logf(v); break;
      case 3: r = sqrtf(v); break;
      case 4: r = fabsf(v); break;
      case 5: r = v > 0 ? v : 0.0f; break;
      case 6: r = sigmoid(v); break;
      case 7: r = tanhf(v); break;
      case 8: r = v > 0 ? v : v * p0; break;
      case 9: r = fminf(fmaxf(v, p0), p1); break;
      case 10: r = v * p0 + p1; break;
      case 11: r = powf(v, p0); break;
      default: r = v * v; break;
    }
    out[i] = r;
  }
}

__global__ void unary_backward_kernel(int code, float* gx, const float* gy, const float* x, const float* y, int64_t n,
                                      float p0, float p1) {
  LR_GRID_STRIDE(i, n) {
    float d;
    switch (code) {
      case 0: d = -1.0f; break;
      case 1: d = y[i]; break;
      case 2: d = 1.0f / x[i]; break;
      case 3: d = 0.5f / y[i]; break;
      case 4: d = x[i] > 0 ? 1.0f : (x[i] < 0 ? -1.0f : 0.0f); break;
      case 5: d = x[i] > 0 ? 1.0f : 0.0f; break;
      case 6: d = y[i] * (1.0f - y[i]); break;
      case 7: d = 1.0f - y[i] * y[i]; break;
      case 8: d = x[i] > 0 ? 1.0f : p0; break;
      case 9: d = x[i] >= p0 && x[i] <= p1 ? 1.0f : 0.0f; break;
      case 10: d = p0; break;
      case 11: d = p0 * powf(x[i], p0 - 1.0f); break;
      default: d = 2.0f * x[i]; break;
    }
    gx[i] = gy[i] * d;
  }
}

// ---- reductions and layout ---------------------------------------------------------------

// One thread per output element; sums accumulate in double like the CPU kernel.
__global__ void reduce_axis_kernel(int code, float* out, int32_t* index, const float* x, int64_t outer, int64_t n,
                                   int64_t inner) {
  LR_GRID_STRIDE(k, outer * inner) {
    const int64_t o = k / inner, i = k % inner;
    const float* p = x + o * n * inner + i;
    if (code == 0 || code == 1) {
      double acc = 0;
      for (int64_t j = 0; j < n; ++j) acc += p[j * inner];
      out[k] = static_cast<float>(code == 1 ? acc / static_cast<double>(n) : acc);
    } else {
      const bool is_max = code == 2;
      float best = p[0];
      int32_t best_j = 0;
      for (int64_t j = 1; j < n; ++j) {
        float v = p[j * inner];
        if (best != best) break;  // NaN wins, as on the CPU
        if (v != v || (is_max ? v > best : v < best)) {
          best = v;
          best_j = static_cast<int32_t>(j);
        }
      }
      out[k] = best;
      if (index) index[k] = best_j;
    }
  }
}

__global__ void scatter_axis_kernel(float* gx, const float* gy, const int32_t* index, int64_t outer, int64_t n,
                                    int64_t inner) {
  LR_GRID_STRIDE(k, outer * inner) {
    const int64_t o = k / inner, i = k % inner;
    const int32_t j = index[k];
    if (j >= 0 && j < n) gx[(o * n + j) * inner + i] = gy[k];
  }
}

struct Permutation {
  int rank;
  int64_t out_shape[kMaxRank];
  int64_t src_stride[kMaxRank];
};

template <typename T>
__global__ void permute_kernel(T* out, const T* x, int64_t total, Permutation pm) {
  LR_GRID_STRIDE(i, total) {
    int64_t rem = i, off = 0;
    for (int k = pm.rank - 1; k >= 0; --k) {
      off += (rem % pm.out_shape[k]) * pm.src_stride[k];
      rem /= pm.out_shape[k];
    }
    out[i] = x[off];
  }
}

template <typename To, typename From>
__device__ __forceinline__ To convert(From v) {
  if constexpr (std::is_same<To, uint8_t>::value && std::is_floating_point<From>::value) {
    // Images: round to nearest and saturate, NaN to 0 (as the CPU kernel).
    From f = v != v ? From(0) : v;
    return static_cast<uint8_t>(fminf(255.0f, fmaxf(0.0f, f + 0.5f)));
  } else if constexpr (std::is_same<To, uint8_t>::value) {
    int64_t i = static_cast<int64_t>(v);
    return static_cast<uint8_t>(i < 0 ? 0 : (i > 255 ? 255 : i));
  } else if constexpr (std::is_same<To, int32_t>::value && std::is_floating_point<From>::value) {
    From f = v != v ? From(0) : v;
    return static_cast<int32_t>(fminf(2147483647.0f, fmaxf(-2147483648.0f, f)));
  } else {
    return static_cast<To>(v);
  }
}

template <typename To, typename From>
__global__ void cast_kernel(To* out, const From* x, int64_t n) {
  LR_GRID_STRIDE(i, n) out[i] = convert<To, From>(x[i]);
}

template <typename From>
void cast_from(int device, int out_dtype, void* out, const From* x, int64_t n) {
  switch (out_dtype) {
    case 0: return launch(device, n, cast_kernel<float, From>, static_cast<float*>(out), x, n);
    case 1: return launch(device, n, cast_kernel<int32_t, From>, static_cast<int32_t*>(out), x, n);
    default: return launch(device, n, cast_kernel<uint8_t, From>, static_cast<uint8_t*>(out), x, n);
  }
}

// ---- resampling, pixel shuffle, padding --------------------------------------------------

// Both separable passes at once: out[p,i,j] = sum_t sum_u hw[i,t] ww[j,u] x[p, hi[i,t], wi[j,u]].
// Zero weights are skipped so their element is never read (an Inf there does not become NaN).
__global__ void resample2d_kernel(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, const int32_t* h_index,
                                  const float* h_weight, int64_t h_taps, const int32_t* w_index, const float* w_weight,
                                  int64_t w_taps, const float* x, float* out) {
  LR_GRID_STRIDE(k, planes * oh * ow) {
    const int64_t j = k % ow, i = (k / ow) % oh, p = k / (ow * oh);
    const float* src = x + p * h * w;
    float acc = 0.0f;
    for (int64_t t = 0; t < h_taps; ++t) {
      const float wt = h_weight[i * h_taps + t];
      if (wt == 0.0f) continue;
      const float* row = src + static_cast<int64_t>(h_index[i * h_taps + t]) * w;
      float row_acc = 0.0f;
      for (int64_t u = 0; u < w_taps; ++u) {
        const float wu = w_weight[j * w_taps + u];
        if (wu != 0.0f) row_acc += wu * row[w_index[j * w_taps + u]];
      }
      acc += wt * row_acc;
    }
    out[k] = acc;
  }
}

// One thread per element of the shuffled side s = [n, c, h*r, w*r].
__global__ void pixel_shuffle_kernel(int64_t n, int64_t c, int64_t h, int64_t w, int64_t r, bool inverse,
                                     const float* in, float* out) {
  const int64_t sh = h * r, sw = w * r;
  LR_GRID_STRIDE(k, n * c * sh * sw) {
    const int64_t xs = k % sw, row = k / sw;
    const int64_t bc = row / sh, ys = row % sh;
    const int64_t y = ys / r, i = ys % r, xx = xs / r, j = xs % r;
    const int64_t u = ((bc * r + i) * r + j) * h * w + y * w + xx;
    if (inverse)
      out[u] = in[k];
    else
      out[k] = in[u];
  }
}

__device__ __forceinline__ int64_t pad_source(int64_t i, int64_t n, int mode) {
  if (i >= 0 && i < n) return i;
  if (mode == 0) return -1;
  if (mode == 2) return i < 0 ? 0 : n - 1;
  return i < 0 ? -i : 2 * (n - 1) - i;
}

__global__ void pad2d_kernel(int64_t planes, int64_t h, int64_t w, int64_t pt, int64_t oh, int64_t pl, int64_t ow,
                             int mode, float value, const float* x, float* out) {
  LR_GRID_STRIDE(k, planes * oh * ow) {
    const int64_t j = k % ow, i = (k / ow) % oh, p = k / (ow * oh);
    const int64_t y = pad_source(i - pt, h, mode);
    const int64_t xx = pad_source(j - pl, w, mode);
    out[k] = (y < 0 || xx < 0) ? value : x[(p * h + y) * w + xx];
  }
}

// The adjoint: each output position adds its gradient to the element it copied (several
// fold onto one with reflect/replicate, hence atomics; gx is zeroed first).
__global__ void pad2d_backward_kernel(int64_t planes, int64_t h, int64_t w, int64_t pt, int64_t oh, int64_t pl,
                                      int64_t ow, int mode, const float* gy, float* gx) {
  LR_GRID_STRIDE(k, planes * oh * ow) {
    const int64_t j = k % ow, i = (k / ow) % oh, p = k / (ow * oh);
    const int64_t y = pad_source(i - pt, h, mode);
    const int64_t xx = pad_source(j - pl, w, mode);
    if (y >= 0 && xx >= 0) atomicAdd(gx + (p * h + y) * w + xx, gy[k]);
  }
}

// ---- joining and cutting ------------------------------------------------------------------

// out[o, i, j] = x[o, start + i*step, j] (scatter = false), or the reverse assignment into
// x-shaped memory (scatter = true, for the gradient).
template <typename T>
__global__ void slice_rows_kernel(const T* x, T* out, int64_t outer, int64_t n, int64_t m, int64_t inner, int64_t start,
                                  int64_t step, bool scatter) {
  LR_GRID_STRIDE(k, outer * m * inner) {
    const int64_t j = k % inner, i = (k / inner) % m, o = k / (inner * m);
    const int64_t src = (o * n + start + i * step) * inner + j;
    if (scatter)
      out[src] = x[k];
    else
      out[k] = x[src];
  }
}

// ---- activations along an axis, PReLU, MFM, dropout --------------------------------------------

// One thread per lane (o, i) of [outer, n, inner]; sums in double as the CPU kernels.
__global__ void softmax_kernel(const float* x, float* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  LR_GRID_STRIDE(lane, outer * inner) {
    const int64_t base = (lane / inner) * n * inner + lane % inner;
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) mx = fmaxf(mx, x[base + j * inner]);
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      const float e = expf(x[base + j * inner] - mx);
      if (!log) y[base + j * inner] = e;
      sum += e;
    }
    if (log) {
      const float lse = static_cast<float>(::log(sum));
      for (int64_t j = 0; j < n; ++j) y[base + j * inner] = (x[base + j * inner] - mx) - lse;
    } else {
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t j = 0; j < n; ++j) y[base + j * inner] *= inv;
    }
  }
}

__global__ void softmax_backward_kernel(const float* y, const float* gy, float* gx, int64_t outer, int64_t n,
                                        int64_t inner, bool log) {
  LR_GRID_STRIDE(lane, outer * inner) {
    const int64_t base = (lane / inner) * n * inner + lane % inner;
    double dot = 0;
    for (int64_t j = 0; j < n; ++j) {
      const int64_t t = base + j * inner;
      dot += log ? gy[t] : static_cast<double>(gy[t]) * y[t];
    }
    const float s = static_cast<float>(dot);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t t = base + j * inner;
      gx[t] = log ? gy[t] - expf(y[t]) * s : y[t] * (gy[t] - s);
    }
  }
}

__global__ void l2_normalize_kernel(const float* x, float* y, int64_t outer, int64_t n, int64_t inner, float eps) {
  LR_GRID_STRIDE(lane, outer * inner) {
    const int64_t base = (lane / inner) * n * inner + lane % inner;
    double ss = 0;
    for (int64_t j = 0; j < n; ++j) {
      const double v = x[base + j * inner];
      ss += v * v;
    }
    const double norm = fmax(sqrt(ss), static_cast<double>(eps));
    for (int64_t j = 0; j < n; ++j) y[base + j * inner] = static_cast<float>(x[base + j * inner] / norm);
  }
}

__global__ void l2_normalize_backward_kernel(const float* x, const float* gy, float* gx, int64_t outer, int64_t n,
                                             int64_t inner, float eps) {
  LR_GRID_STRIDE(lane, outer * inner) {
    const int64_t base = (lane / inner) * n * inner + lane % inner;
    double ss = 0, dot = 0;
    for (int64_t j = 0; j < n; ++j) {
      const double v = x[base + j * inner];
      ss += v * v;
      dot += v * gy[base + j * inner];
    }
    const double norm = sqrt(ss);
    const double a = norm >= eps ? 1.0 / norm : 1.0 / eps;
    const double b = norm >= eps ? dot / (norm * norm * norm) : 0.0;
    for (int64_t j = 0; j < n; ++j) {
      const int64_t t = base + j * inner;
      gx[t] = static_cast<float>(a * gy[t] - b * x[t]);
    }
  }
}

__global__ void prelu_kernel(const float* x, const float* w, float* y, int64_t total, int64_t c, int64_t inner,
                             bool shared) {
  LR_GRID_STRIDE(k, total) {
    const float a = w[shared ? 0 : (k / inner) % c];
    y[k] = x[k] > 0 ? x[k] : a * x[k];
  }
}

__global__ void prelu_input_grad_kernel(const float* x, const float* w, const float* gy, float* gx, int64_t total,
                                        int64_t c, int64_t inner, bool shared) {
  LR_GRID_STRIDE(k, total) {
    const float a = w[shared ? 0 : (k / inner) % c];
    gx[k] = x[k] > 0 ? gy[k] : a * gy[k];
  }
}

constexpr int kReduceThreads = 256;

// One block per slope: the block's threads stride over the slope's elements, then a tree
// reduction in shared memory. The order is fixed by the launch shape, so runs agree.
__global__ void prelu_weight_grad_kernel(const float* x, const float* gy, float* gw, int64_t outer, int64_t c,
                                         int64_t inner, bool shared) {
  __shared__ double partial[kReduceThreads];
  const int64_t ch = blockIdx.x;
  const int64_t per_row = shared ? c * inner : inner;  // elements of this slope in one outer row
  const int64_t count = outer * per_row;
  double s = 0;
  for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
    const int64_t o = e / per_row, r = e % per_row;
    const int64_t k = shared ? o * c * inner + r : (o * c + ch) * inner + r;
    if (!(x[k] > 0)) s += static_cast<double>(x[k]) * gy[k];
  }
  partial[threadIdx.x] = s;
  __syncthreads();
  for (int half = kReduceThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) gw[ch] = static_cast<float>(partial[0]);
}

__global__ void mfm_kernel(const float* x, float* y, int64_t outer, int64_t half, int64_t inner) {
  LR_GRID_STRIDE(k, outer * half * inner) {
    const int64_t i = k % inner, r = k / inner, o = r / half, ch = r % half;
    const float a = x[(o * 2 * half + ch) * inner + i];
    const float b = x[(o * 2 * half + half + ch) * inner + i];
    y[k] = (a >= b || a != a) ? a : b;
  }
}

__global__ void mfm_backward_kernel(const float* x, const float* gy, float* gx, int64_t outer, int64_t half,
                                    int64_t inner) {
  LR_GRID_STRIDE(k, outer * half * inner) {
    const int64_t i = k % inner, r = k / inner, o = r / half, ch = r % half;
    const int64_t ia = (o * 2 * half + ch) * inner + i, ib = ia + half * inner;
    const float a = x[ia], b = x[ib], g = gy[k];
    if (a == b) {
      gx[ia] = gx[ib] = 0.5f * g;
    } else {
      const bool first = a > b || a != a;
      gx[ia] = first ? g : 0.0f;
      gx[ib] = first ? 0.0f : g;
    }
  }
}

// One thread per Philox block of 4 values, as the CPU's for_random_blocks(n, 4, ...).
__global__ void dropout_kernel(const float* x, float* y, int64_t n, double p, float scale, uint64_t seed, uint32_t stream,
                               uint64_t offset) {
  LR_GRID_STRIDE(b, (n + 3) / 4) {
    const cpu::Block128 r = cpu::random_block(seed, static_cast<cpu::RandomStream>(stream), offset / 4 + b);
    for (int k = 0; k < 4; ++k) {
      const int64_t i = b * 4 + k;
      if (i < n) y[i] = cpu::unit32(r.w[k]) >= p ? x[i] * scale : 0.0f;
    }
  }
}

// The generator: one thread per Philox block, as for_random_blocks in ../cpu/random.h.
__global__ void random_uniform_kernel(float* out, int64_t n, uint64_t seed, uint64_t offset, double low, double high) {
  const float lo_f = static_cast<float>(low), hi_f = static_cast<float>(high);
  const float below_high = nextafterf(hi_f, -INFINITY);
  const double span = high - low;
  LR_GRID_STRIDE(b, (n + 3) / 4) {
    const cpu::Block128 r = cpu::random_block(seed, cpu::RandomStream::Generator, offset / 4 + b);
    for (int k = 0; k < 4 && b * 4 + k < n; ++k) {
      float v = static_cast<float>(low + span * cpu::unit32(r.w[k]));
      if (span > 0 && v >= hi_f) v = below_high;
      out[b * 4 + k] = v < lo_f ? lo_f : v;
    }
  }
}

__global__ void random_normal_kernel(float* out, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) {
  LR_GRID_STRIDE(b, (n + 1) / 2) {
    const cpu::Block128 r = cpu::random_block(seed, cpu::RandomStream::Generator, offset / 4 + b);
    const double u1 = 1.0 - cpu::unit64(cpu::join64(r.w[0], r.w[1]));
    const double u2 = cpu::unit64(cpu::join64(r.w[2], r.w[3]));
    const double radius = sqrt(-2.0 * ::log(u1));
    const double theta = 6.283185307179586 * u2;
    out[2 * b] = static_cast<float>(mean + std * radius * cos(theta));
    if (2 * b + 1 < n) out[2 * b + 1] = static_cast<float>(mean + std * radius * sin(theta));
  }
}

// (bits * span) >> 64 with span < 2^33: the high word of the 128-bit product, as on the CPU.
__global__ void random_int_kernel(int32_t* out, int64_t n, uint64_t seed, uint64_t offset, int64_t low, uint64_t span) {
  LR_GRID_STRIDE(b, (n + 1) / 2) {
    const cpu::Block128 r = cpu::random_block(seed, cpu::RandomStream::Generator, offset / 4 + b);
    for (int k = 0; k < 2 && 2 * b + k < n; ++k) {
      const uint64_t bits = cpu::join64(r.w[2 * k], r.w[2 * k + 1]);
      out[2 * b + k] = static_cast<int32_t>(low + static_cast<int64_t>(__umul64hi(bits, span)));
    }
  }
}

// ---- pooling ------------------------------------------------------------------------------

__global__ void max_pool2d_kernel(cpu::PoolGeometry g, const float* x, float* out, int32_t* index) {
  LR_GRID_STRIDE(k, g.planes * g.out_h * g.out_w) {
    const int64_t ox = k % g.out_w, oy = (k / g.out_w) % g.out_h, p = k / (g.out_w * g.out_h);
    int64_t best_i;
    out[k] = cpu::max_pool_window(g, x + p * g.h * g.w, oy, ox, &best_i);
    if (index) index[k] = static_cast<int32_t>(best_i);
  }
}

__global__ void max_pool2d_backward_kernel(cpu::PoolGeometry g, const float* gy, const int32_t* index, float* gx) {
  LR_GRID_STRIDE(k, g.planes * g.out_h * g.out_w) {
    const int64_t p = k / (g.out_h * g.out_w);
    const int32_t at = index[k];
    if (at >= 0 && at < g.h * g.w) atomicAdd(gx + p * g.h * g.w + at, gy[k]);
  }
}

struct AvgWindow {
  int64_t y0, y1, x0, x1, divisor;
};

__device__ AvgWindow avg_window(const cpu::PoolGeometry& g, bool include_pad, int64_t pb, int64_t pr, int64_t oy,
                                int64_t ox) {
  int64_t y0 = oy * g.sh - g.pt, x0 = ox * g.sw - g.pl;
  int64_t y1 = min(y0 + g.kh, g.h + pb), x1 = min(x0 + g.kw, g.w + pr);
  const int64_t padded = (y1 - y0) * (x1 - x0);
  y0 = max(y0, int64_t(0));
  x0 = max(x0, int64_t(0));
  y1 = min(y1, g.h);
  x1 = min(x1, g.w);
  if (y0 >= y1 || x0 >= x1) return {0, 0, 0, 0, 0};
  return {y0, y1, x0, x1, include_pad ? padded : (y1 - y0) * (x1 - x0)};
}

__global__ void avg_pool2d_kernel(cpu::PoolGeometry g, bool include_pad, int64_t pb, int64_t pr, const float* x,
                                  float* out) {
  LR_GRID_STRIDE(k, g.planes * g.out_h * g.out_w) {
    const int64_t ox = k % g.out_w, oy = (k / g.out_w) % g.out_h, p = k / (g.out_w * g.out_h);
    const float* src = x + p * g.h * g.w;
    const AvgWindow win = avg_window(g, include_pad, pb, pr, oy, ox);
    double acc = 0;
    for (int64_t y = win.y0; y < win.y1; ++y)
      for (int64_t xx = win.x0; xx < win.x1; ++xx) acc += src[y * g.w + xx];
    out[k] = win.divisor > 0 ? static_cast<float>(acc / win.divisor) : 0.0f;
  }
}

__global__ void avg_pool2d_backward_kernel(cpu::PoolGeometry g, bool include_pad, int64_t pb, int64_t pr,
                                           const float* gy, float* gx) {
  LR_GRID_STRIDE(k, g.planes * g.out_h * g.out_w) {
    const int64_t ox = k % g.out_w, oy = (k / g.out_w) % g.out_h, p = k / (g.out_w * g.out_h);
    const AvgWindow win = avg_window(g, include_pad, pb, pr, oy, ox);
    if (win.divisor <= 0) continue;
    const float v = gy[k] / static_cast<float>(win.divisor);
    float* dst = gx + p * g.h * g.w;
    for (int64_t y = win.y0; y < win.y1; ++y)
      for (int64_t xx = win.x0; xx < win.x1; ++xx) atomicAdd(dst + y * g.w + xx, v);
  }
}

__global__ void adaptive_avg_pool2d_kernel(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, const float* x,
                                           float* out) {
  LR_GRID_STRIDE(k, planes * oh * ow) {
    const int64_t j = k % ow, i = (k / ow) % oh, p = k / (ow * oh);
    const int64_t y0 = i * h / oh, y1 = ((i + 1) * h + oh - 1) / oh;
    const int64_t x0 = j * w / ow, x1 = ((j + 1) * w + ow - 1) / ow;
    double acc = 0;
    for (int64_t y = y0; y < y1; ++y)
      for (int64_t xx = x0; xx < x1; ++xx) acc += x[(p * h + y) * w + xx];
    out[k] = static_cast<float>(acc / ((y1 - y0) * (x1 - x0)));
  }
}

__global__ void adaptive_avg_pool2d_backward_kernel(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow,
                                                    const float* gy, float* gx) {
  LR_GRID_STRIDE(k, planes * oh * ow) {
    const int64_t j = k % ow, i = (k / ow) % oh, p = k / (ow * oh);
    const int64_t y0 = i * h / oh, y1 = ((i + 1) * h + oh - 1) / oh;
    const int64_t x0 = j * w / ow, x1 = ((j + 1) * w + ow - 1) / ow;
    const float v = gy[k] / static_cast<float>((y1 - y0) * (x1 - x0));
    for (int64_t y = y0; y < y1; ++y)
      for (int64_t xx = x0; xx < x1; ++xx) atomicAdd(gx + (p * h + y) * w + xx, v);
  }
}

// ---- batch norm: one block per channel ---------------------------------------------------

// The block's sum of v, in a fixed order (the same result on every run); all threads get it.
__device__ double block_sum(double v, double* scratch) {
  scratch[threadIdx.x] = v;
  __syncthreads();
  for (int half = kReduceThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) scratch[threadIdx.x] += scratch[threadIdx.x + half];
    __syncthreads();
  }
  const double total = scratch[0];
  __syncthreads();  // scratch is reused by the next call
  return total;
}

// out[ch] for block ch: each image's plane read by the block's threads side by side.
__global__ void channel_sum_kernel(int64_t n, int64_t c, int64_t hw, const float* x, float* out) {
  __shared__ double scratch[kReduceThreads];
  const int64_t ch = blockIdx.x;
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* plane = x + (i * c + ch) * hw;
    for (int64_t p = threadIdx.x; p < hw; p += blockDim.x) s += plane[p];
  }
  const double total = block_sum(s, scratch);
  if (threadIdx.x == 0) out[ch] = static_cast<float>(total);
}

__global__ void batch_norm_forward_kernel(int64_t n, int64_t c, int64_t hw, const float* x, const float* weight,
                                          const float* bias, float* running_mean, float* running_var, bool training,
                                          float momentum, float eps, float* mean, float* invstd, float* y) {
  __shared__ double scratch[kReduceThreads];
  const int64_t ch = blockIdx.x, count = n * hw;
  double m, var;
  if (training) {
    double s = 0;
    for (int64_t e = threadIdx.x; e < count; e += blockDim.x) s += x[((e / hw) * c + ch) * hw + e % hw];
    m = block_sum(s, scratch) / count;
    double ss = 0;
    for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
      const float v = x[((e / hw) * c + ch) * hw + e % hw];
      ss += (v - m) * (v - m);
    }
    var = block_sum(ss, scratch) / count;
  } else {
    m = running_mean[ch];
    var = running_var[ch];
  }
  const float mean_f = static_cast<float>(m), invstd_f = static_cast<float>(1.0 / sqrt(var + eps));
  if (threadIdx.x == 0) {
    if (training && running_mean) running_mean[ch] = static_cast<float>((1.0 - momentum) * running_mean[ch] + momentum * m);
    if (training && running_var)
      running_var[ch] = static_cast<float>((1.0 - momentum) * running_var[ch] +
                                           momentum * (count > 1 ? var * count / (count - 1) : var));
    mean[ch] = mean_f;
    invstd[ch] = invstd_f;
  }
  const float scale = invstd_f * (weight ? weight[ch] : 1.0f);
  const float shift = (bias ? bias[ch] : 0.0f) - mean_f * scale;
  for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
    const int64_t at = ((e / hw) * c + ch) * hw + e % hw;
    y[at] = x[at] * scale + shift;
  }
}

__global__ void batch_norm_backward_kernel(int64_t n, int64_t c, int64_t hw, const float* x, const float* gy,
                                           const float* weight, const float* mean, const float* invstd, bool training,
                                           float* gx, float* gw, float* gb) {
  __shared__ double scratch[kReduceThreads];
  const int64_t ch = blockIdx.x, count = n * hw;
  const double m = mean[ch], is = invstd[ch];
  double sg = 0, sgx = 0;
  for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
    const int64_t at = ((e / hw) * c + ch) * hw + e % hw;
    sg += gy[at];
    sgx += gy[at] * (x[at] - m) * is;
  }
  const double sum_g = block_sum(sg, scratch);
  const double sum_gxhat = block_sum(sgx, scratch);
  if (threadIdx.x == 0) {
    if (gb) gb[ch] = static_cast<float>(sum_g);
    if (gw) gw[ch] = static_cast<float>(sum_gxhat);
  }
  if (!gx) return;
  const double k = (weight ? weight[ch] : 1.0) * is;
  const double mg = training ? sum_g / count : 0.0, mgx = training ? sum_gxhat / count : 0.0;
  for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
    const int64_t at = ((e / hw) * c + ch) * hw + e % hw;
    gx[at] = static_cast<float>(k * (gy[at] - mg - (x[at] - m) * is * mgx));
  }
}

}  // namespace

void channel_sum(int device, float* out, const float* x, int64_t n, int64_t c, int64_t hw) {
  if (c == 0) return;
  if (n == 0 || hw == 0) return device_zero(device, out, sizeof(float) * static_cast<size_t>(c));
  cudaStream_t stream = device_stream(device);
  DeviceGuard guard(device);
  LRFACE_LAUNCH(channel_sum_kernel, static_cast<unsigned>(c), kReduceThreads, 0, stream)(n, c, hw, x, out);
  LR_CUDA_CHECK(cudaGetLastError());
}

void batch_norm_forward(int device, int64_t n, int64_t c, int64_t hw, const float* x, const float* weight,
                        const float* bias, float* running_mean, float* running_var, bool training, float momentum,
                        float eps, float* mean, float* invstd, float* y) {
  if (c <= 0) return;
  cudaStream_t stream = device_stream(device);
  DeviceGuard guard(device);
  LRFACE_LAUNCH(batch_norm_forward_kernel, static_cast<unsigned>(c), kReduceThreads, 0, stream)(
      n, c, hw, x, weight, bias, running_mean, running_var, training, momentum, eps, mean, invstd, y);
  LR_CUDA_CHECK(cudaGetLastError());
}

void batch_norm_backward(int device, int64_t n, int64_t c, int64_t hw, const float* x, const float* gy,
                         const float* weight, const float* mean, const float* invstd, bool training, float* gx, float* gw,
                         float* gb) {
  if (c <= 0) return;
  cudaStream_t stream = device_stream(device);
  DeviceGuard guard(device);
  LRFACE_LAUNCH(batch_norm_backward_kernel, static_cast<unsigned>(c), kReduceThreads, 0, stream)(
      n, c, hw, x, gy, weight, mean, invstd, training, gx, gw, gb);
  LR_CUDA_CHECK(cudaGetLastError());
}

void max_pool2d(int device, const cpu::PoolGeometry& g, const float* x, float* out, int32_t* index) {
  launch(device, g.planes * g.out_h * g.out_w, max_pool2d_kernel, g, x, out, index);
}

void max_pool2d_backward(int device, const cpu::PoolGeometry& g, const float* gy, const int32_t* index, float* gx) {
  device_zero(device, gx, sizeof(float) * static_cast<size_t>(g.planes * g.h * g.w));
  launch(device, g.planes * g.out_h * g.out_w, max_pool2d_backward_kernel, g, gy, index, gx);
}

void avg_pool2d(int device, const cpu::PoolGeometry& g, bool count_include_pad, int64_t pb, int64_t pr, const float* x,
                float* out) {
  launch(device, g.planes * g.out_h * g.out_w, avg_pool2d_kernel, g, count_include_pad, pb, pr, x, out);
}

void avg_pool2d_backward(int device, const cpu::PoolGeometry& g, bool count_include_pad, int64_t pb, int64_t pr,
                         const float* gy, float* gx) {
  device_zero(device, gx, sizeof(float) * static_cast<size_t>(g.planes * g.h * g.w));
  launch(device, g.planes * g.out_h * g.out_w, avg_pool2d_backward_kernel, g, count_include_pad, pb, pr, gy, gx);
}

void adaptive_avg_pool2d(int device, int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, const float* x,
                         float* out) {
  launch(device, planes * oh * ow, adaptive_avg_pool2d_kernel, planes, h, w, oh, ow, x, out);
}

void adaptive_avg_pool2d_backward(int device, int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow,
                                  const float* gy, float* gx) {
  device_zero(device, gx, sizeof(float) * static_cast<size_t>(planes * h * w));
  launch(device, planes * oh * ow, adaptive_avg_pool2d_backward_kernel, planes, h, w, oh, ow, gy, gx);
}

void random_uniform(int device, float* out, int64_t n, uint64_t seed, uint64_t offset, double low, double high) {
  launch(device, (n + 3) / 4, random_uniform_kernel, out, n, seed, offset, low, high);
}

void random_normal(int device, float* out, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) {
  launch(device, (n + 1) / 2, random_normal_kernel, out, n, seed, offset, mean, std);
}

void random_int(int device, int32_t* out, int64_t n, uint64_t seed, uint64_t offset, int64_t low, int64_t high) {
  launch(device, (n + 1) / 2, random_int_kernel, out, n, seed, offset, low, static_cast<uint64_t>(high - low));
}

void softmax(int device, const float* x, float* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  launch(device, outer * inner, softmax_kernel, x, y, outer, n, inner, log);
}

void softmax_backward(int device, const float* y, const float* gy, float* gx, int64_t outer, int64_t n, int64_t inner,
                      bool log) {
  launch(device, outer * inner, softmax_backward_kernel, y, gy, gx, outer, n, inner, log);
}

void l2_normalize(int device, const float* x, float* y, int64_t outer, int64_t n, int64_t inner, float eps) {
  launch(device, outer * inner, l2_normalize_kernel, x, y, outer, n, inner, eps);
}

void l2_normalize_backward(int device, const float* x, const float* gy, float* gx, int64_t outer, int64_t n, int64_t inner,
                           float eps) {
  launch(device, outer * inner, l2_normalize_backward_kernel, x, gy, gx, outer, n, inner, eps);
}

void prelu(int device, const float* x, const float* w, float* y, int64_t outer, int64_t c, int64_t inner, bool shared) {
  launch(device, outer * c * inner, prelu_kernel, x, w, y, outer * c * inner, c, inner, shared);
}

void prelu_backward(int device, const float* x, const float* w, const float* gy, float* gx, float* gw, int64_t outer,
                    int64_t c, int64_t inner, bool shared) {
  if (gx) launch(device, outer * c * inner, prelu_input_grad_kernel, x, w, gy, gx, outer * c * inner, c, inner, shared);
  if (gw) {
    const int64_t slopes = shared ? 1 : c;
    if (slopes == 0) return;
    cudaStream_t stream = device_stream(device);
    DeviceGuard guard(device);
    LRFACE_LAUNCH(prelu_weight_grad_kernel, static_cast<unsigned>(slopes), kReduceThreads, 0, stream)(
        x, gy, gw, outer, c, inner, shared);
    LR_CUDA_CHECK(cudaGetLastError());
  }
}

void mfm(int device, const float* x, float* y, int64_t outer, int64_t half, int64_t inner) {
  launch(device, outer * half * inner, mfm_kernel, x, y, outer, half, inner);
}

void mfm_backward(int device, const float* x, const float* gy, float* gx, int64_t outer, int64_t half, int64_t inner) {
  launch(device, outer * half * inner, mfm_backward_kernel, x, gy, gx, outer, half, inner);
}

void dropout(int device, const float* x, float* y, int64_t n, double p, float scale, uint64_t seed, uint32_t stream,
             uint64_t offset) {
  launch(device, (n + 3) / 4, dropout_kernel, x, y, n, p, scale, seed, stream, offset);
}

void concat_axis(int device, void* out, const std::vector<const void*>& inputs, const std::vector<int64_t>& sizes,
                 int64_t outer, int64_t inner, int64_t elem_size) {
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  if (outer * total * inner == 0) return;
  cudaStream_t stream = device_stream(device);
  DeviceGuard guard(device);
  // Each input is `outer` rows of sizes[k]*inner elements, landing at a column offset of
  // every output row: one strided 2-D copy per input.
  const size_t dst_pitch = static_cast<size_t>(total * inner * elem_size);
  int64_t at = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const size_t width = static_cast<size_t>(sizes[k] * inner * elem_size);
    if (width > 0)
      LR_CUDA_CHECK(cudaMemcpy2DAsync(static_cast<char*>(out) + at * inner * elem_size, dst_pitch, inputs[k], width, width,
                                      static_cast<size_t>(outer), cudaMemcpyDeviceToDevice, stream));
    at += sizes[k];
  }
}

void slice_axis(int device, const void* x, void* out, int64_t outer, int64_t n, int64_t m, int64_t inner, int64_t start,
                int64_t step, int64_t elem_size) {
  switch (elem_size) {
    case 1:
      return launch(device, outer * m * inner, slice_rows_kernel<uint8_t>, static_cast<const uint8_t*>(x),
                    static_cast<uint8_t*>(out), outer, n, m, inner, start, step, false);
    case 4:
      return launch(device, outer * m * inner, slice_rows_kernel<uint32_t>, static_cast<const uint32_t*>(x),
                    static_cast<uint32_t*>(out), outer, n, m, inner, start, step, false);
    default: fail(ErrorKind::Range, "slice_axis: CUDA supports elements of 1 or 4 bytes, got ", elem_size);
  }
}

void slice_axis_backward(int device, const float* gy, float* gx, int64_t outer, int64_t n, int64_t m, int64_t inner,
                         int64_t start, int64_t step) {
  device_zero(device, gx, sizeof(float) * static_cast<size_t>(outer * n * inner));
  launch(device, outer * m * inner, slice_rows_kernel<float>, gy, gx, outer, n, m, inner, start, step, true);
}

void binary(int device, int code, float* out, const float* a, const float* b, const std::vector<int64_t>& shape,
            const std::vector<int64_t>& a_shape, const std::vector<int64_t>& b_shape) {
  int64_t total = 1;
  for (int64_t d : shape) total *= d;
  if (total == 0) return;
  if (a_shape == shape && b_shape == shape) return launch(device, total, binary_same_shape, code, out, a, b, total);
  LR_CHECK(shape.size() <= static_cast<size_t>(kMaxRank), Range, "binary: CUDA broadcasting supports up to ", kMaxRank,
           " axes, got ", shape.size());
  Broadcast bc{};
  bc.rank = static_cast<int>(shape.size());
  int64_t ra = 1, rb = 1;
  for (size_t k = shape.size(); k-- > 0;) {
    bc.shape[k] = shape[k];
    bc.a_stride[k] = a_shape[k] == 1 ? 0 : ra;
    bc.b_stride[k] = b_shape[k] == 1 ? 0 : rb;
    ra *= a_shape[k];
    rb *= b_shape[k];
  }
  launch(device, total, binary_broadcast, code, out, a, b, total, bc);
}

void unary(int device, int code, float* out, const float* x, int64_t n, float p0, float p1) {
  launch(device, n, unary_kernel, code, out, x, n, p0, p1);
}

void unary_backward(int device, int code, float* gx, const float* gy, const float* x, const float* y, int64_t n, float p0,
                    float p1) {
  launch(device, n, unary_backward_kernel, code, gx, gy, x, y, n, p0, p1);
}

void reduce_axis(int device, int code, float* out, int32_t* index, const float* x, int64_t outer, int64_t n,
                 int64_t inner) {
  launch(device, outer * inner, reduce_axis_kernel, code, out, index, x, outer, n, inner);
}

void scatter_axis(int device, float* gx, const float* gy, const int32_t* index, int64_t outer, int64_t n, int64_t inner) {
  device_zero(device, gx, sizeof(float) * static_cast<size_t>(outer * n * inner));
  launch(device, outer * inner, scatter_axis_kernel, gx, gy, index, outer, n, inner);
}

void permute(int device, void* out, const void* x, const std::vector<int64_t>& shape, const std::vector<int64_t>& perm,
             int64_t elem_size) {
  const size_t rank = shape.size();
  LR_CHECK(rank <= static_cast<size_t>(kMaxRank), Range, "permute: CUDA supports up to ", kMaxRank, " axes, got ", rank);
  Permutation pm{};
  pm.rank = static_cast<int>(rank);
  std::vector<int64_t> in_strides(rank, 1);
  for (size_t k = rank; k-- > 1;) in_strides[k - 1] = in_strides[k] * shape[k];
  int64_t total = 1;
  for (size_t k = 0; k < rank; ++k) {
    pm.out_shape[k] = shape[perm[k]];
    pm.src_stride[k] = in_strides[perm[k]];
    total *= pm.out_shape[k];
  }
  switch (elem_size) {
    case 1: return launch(device, total, permute_kernel<uint8_t>, static_cast<uint8_t*>(out), static_cast<const uint8_t*>(x), total, pm);
    case 4: return launch(device, total, permute_kernel<uint32_t>, static_cast<uint32_t*>(out), static_cast<const uint32_t*>(x), total, pm);
    default: fail(ErrorKind::Range, "permute: CUDA supports elements of 1 or 4 bytes, got ", elem_size);
  }
}

void cast(int device, int out_dtype, void* out, int in_dtype, const void* x, int64_t n) {
  switch (in_dtype) {
    case 0: return cast_from(device, out_dtype, out, static_cast<const float*>(x), n);
    case 1: return cast_from(device, out_dtype, out, static_cast<const int32_t*>(x), n);
    default: return cast_from(device, out_dtype, out, static_cast<const uint8_t*>(x), n);
  }
}

void resample2d(int device, int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, const int32_t* h_index,
                const float* h_weight, int64_t h_taps, const int32_t* w_index, const float* w_weight, int64_t w_taps,
                const float* x, float* out) {
  if (planes * oh * ow == 0) return;
  DeviceCopy<int32_t> hi(device, h_index, oh * h_taps), wi(device, w_index, ow * w_taps);
  DeviceCopy<float> hw(device, h_weight, oh * h_taps), ww(device, w_weight, ow * w_taps);
  launch(device, planes * oh * ow, resample2d_kernel, planes, h, w, oh, ow, static_cast<const int32_t*>(hi.get()),
         static_cast<const float*>(hw.get()), h_taps, static_cast<const int32_t*>(wi.get()),
         static_cast<const float*>(ww.get()), w_taps, x, out);
}

void pixel_shuffle(int device, int64_t n, int64_t c, int64_t h, int64_t w, int64_t r, bool inverse, const float* in,
                   float* out) {
  launch(device, n * c * h * r * w * r, pixel_shuffle_kernel, n, c, h, w, r, inverse, in, out);
}

void pad2d(int device, int64_t planes, int64_t h, int64_t w, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int mode,
           float value, const float* x, float* out) {
  const int64_t oh = h + pt + pb, ow = w + pl + pr;
  launch(device, planes * oh * ow, pad2d_kernel, planes, h, w, pt, oh, pl, ow, mode, value, x, out);
}

void pad2d_backward(int device, int64_t planes, int64_t h, int64_t w, int64_t pt, int64_t pb, int64_t pl, int64_t pr,
                    int mode, const float* gy, float* gx) {
  const int64_t oh = h + pt + pb, ow = w + pl + pr;
  device_zero(device, gx, sizeof(float) * static_cast<size_t>(planes * h * w));
  launch(device, planes * oh * ow, pad2d_backward_kernel, planes, h, w, pt, oh, pl, ow, mode, gy, gx);
}

// ---- optimiser updates ------------------------------------------------------------------

namespace {

// Up to this many tensors per launch, their pointers passed by value in the kernel's
// parameters (well under the 4 KiB limit): a model's few hundred parameters take a few
// launches rather than one (or several) per tensor.
constexpr int kSlotsPerLaunch = 32;

template <class Slot>
struct SlotTable {
  int count;
  int64_t start[kSlotsPerLaunch + 1];  // where each slot's elements begin in the launch's range
  Slot slot[kSlotsPerLaunch];
};

// The slot holding element i of the launch's range: the last starting at or before i.
template <class Slot>
__device__ inline int slot_of(const SlotTable<Slot>& t, int64_t i) {
  int lo = 0, hi = t.count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (t.start[mid] <= i) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

__global__ void adam_kernel(cpu::AdamHyper h, SlotTable<cpu::AdamSlot> t) {
  LR_GRID_STRIDE(i, t.start[t.count]) {
    const int k = slot_of(t, i);
    const cpu::AdamSlot& s = t.slot[k];
    cpu::adam_element(h, s.step_size, s.denom_scale, s.param, s.grad, s.exp_avg, s.exp_avg_sq, i - t.start[k]);
  }
}

__global__ void sgd_kernel(cpu::SgdHyper h, SlotTable<cpu::SgdSlot> t) {
  LR_GRID_STRIDE(i, t.start[t.count]) {
    const int k = slot_of(t, i);
    const cpu::SgdSlot& s = t.slot[k];
    cpu::sgd_element(h, s.first, s.param, s.grad, s.momentum_buffer, i - t.start[k]);
  }
}

// The non-empty slots in tables of kSlotsPerLaunch, one launch of kernel each.
template <class Hyper, class Slot>
void launch_slots(int device, const Hyper& h, const std::vector<Slot>& slots,
                  void (*kernel)(Hyper, SlotTable<Slot>)) {
  SlotTable<Slot> table{};
  const auto flush = [&] {
    if (table.count > 0) launch(device, table.start[table.count], kernel, h, table);
    table.count = 0;
  };
  for (const Slot& s : slots) {
    if (s.n == 0) continue;
    table.slot[table.count] = s;
    table.start[table.count + 1] = table.start[table.count] + s.n;
    if (++table.count == kSlotsPerLaunch) flush();
  }
  flush();
}

}  // namespace

void adam_update(int device, const cpu::AdamHyper& h, const std::vector<cpu::AdamSlot>& slots) {
  launch_slots(device, h, slots, adam_kernel);
}

void sgd_update(int device, const cpu::SgdHyper& h, const std::vector<cpu::SgdSlot>& slots) {
  launch_slots(device, h, slots, sgd_kernel);
}

}  // namespace lrface::cuda
