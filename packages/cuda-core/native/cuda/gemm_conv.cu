// The engine's own CUDA SGEMM and convolutions (see gemm_conv.h).
//
// SGEMM: 64 or 128 square or oblong output tiles per block of 256 threads, each thread a 4x4
// to 8x8 register tile fed by float4 shared-memory reads, k in steps of 8 through two
// shared-memory stages (the next one loaded while the current one is multiplied); every
// shape, leading dimension and transposition, edge tiles zero-filled. Batches run along grid
// z, each entry's operands located by a device offset table or by two strides. Products with
// too few tiles to fill the device and a long k are split along k: each slice writes its own
// partial sums, added in a fixed order after, so the result does not depend on scheduling.
//
// Convolution: im2col into a bounded column buffer (a chunk of images at a time, or a band of
// output rows of one large image) and the SGEMM for every (image, group) of the chunk in one
// launch; output planes under 128 pixels take the chunk's images side by side as the columns
// of one product per group instead (a product per image would leave its tiles mostly empty),
// scattered back to NCHW with the bias after. Input gradient: the SGEMM W^T @ gy into columns
// (images side by side likewise for small planes), then col2im as a gather (each input pixel
// sums the column entries that read it: no atomics, deterministic). Filter gradient: im2col
// with the chunk's pixels side by side along the columns and the SGEMM gy @ col^T,
// accumulating over chunks with beta = 1. Convolutions with one input channel per group
// (depthwise) run direct kernels instead: a GEMM with one row per group would leave its tiles
// almost empty.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "../core/error.h"
#include "check.h"
#include "context.h"
#include "device_memory.h"
#include "launch.h"
#include "gemm_conv.h"

namespace lrface::cuda {

namespace {

using cpu::ConvGeometry;

constexpr int64_t kMaxGridYZ = 65535;

// ---- SGEMM --------------------------------------------------------------------------------

// A block of 256 threads (16 x 16) computes a tile of Bm x Bn of C (64 or 128 each), each
// thread (Bm/16) x (Bn/16) of it in registers: rows (i / 4) * 64 + ty * 4 + i % 4, columns
// likewise with tx, so its operands come from shared memory as float4 reads. k advances kStep
// at a time through two shared-memory stages: the next stage's global loads are in registers
// while the current one is multiplied.
constexpr int kStep = 8;
constexpr int kPad = 4;  // keeps rows 16-byte aligned and spreads the transposing stores over the banks

// Where batch entry z's operand starts, in elements: offsets[z] from a device table, or
// (z / count) * outer + (z % count) * inner (one stride when count = 1, two for the (image,
// group) entries of a convolution).
struct BatchIndex {
  const int64_t* offsets;
  int64_t count, inner, outer;
  __device__ __forceinline__ int64_t at(int64_t z) const {
    return offsets ? offsets[z] : (z / count) * outer + (z % count) * inner;
  }
};

BatchIndex stride_index(int64_t stride) { return BatchIndex{nullptr, 1, 0, stride}; }
BatchIndex group_index(int64_t groups, int64_t group_stride, int64_t image_stride) {
  return BatchIndex{nullptr, groups, group_stride, image_stride};
}

struct GemmArgs {
  int64_t m, n, k;
  float alpha, beta;
  const float* a;
  int64_t lda;
  BatchIndex a_at;
  const float* b;
  int64_t ldb;
  BatchIndex b_at;
  float* c;
  int64_t ldc, c_stride;
  // Grid entry z is product z / slices over k in [s * k_slice, min(k, (s + 1) * k_slice)),
  // s = z % slices. With slices > 1 its raw sums go to partial + z * m * n (rows of n).
  int64_t slices, k_slice;
  float* partial;
  int64_t z0, y0;  // this launch's first grid entry along z and along y (grids past 65535)
};

template <int Bm, int Bn, bool TransA, bool TransB>
__global__ void __launch_bounds__(kThreads) sgemm_tiles(GemmArgs p) {
  constexpr int Tm = Bm / 16, Tn = Bn / 16;            // C per thread
  constexpr int La = Bm * kStep / kThreads, Lb = Bn * kStep / kThreads;  // loads per thread per stage
  // a_tile[s][kk][i] = op(A)[m0 + i, k0 + kk], b_tile[s][kk][j] = op(B)[k0 + kk, n0 + j].
  __shared__ __align__(16) float a_tile[2][kStep][Bm + kPad];
  __shared__ __align__(16) float b_tile[2][kStep][Bn + kPad];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t z = p.z0 + blockIdx.z;
  const int64_t entry = z / p.slices, slice = z % p.slices;
  const int64_t m0 = (p.y0 + blockIdx.y) * int64_t(Bm), n0 = int64_t(blockIdx.x) * Bn;
  const int64_t k_begin = slice * p.k_slice;
  const int64_t k_end = min(p.k, k_begin + p.k_slice);
  const float* a = p.a + p.a_at.at(entry);
  const float* b = p.b + p.b_at.at(entry);

  // Element e of a stage: consecutive threads take consecutive addresses of the stored matrix
  // (along k when it is stored row by row of op(), along m or n when stored transposed), so
  // the global reads coalesce. Outside the matrix (edge tiles, the end of k) reads are 0.
  float a_next[La], b_next[Lb];
  auto load = [&](int64_t k0) {
#pragma unroll
    for (int r = 0; r < La; ++r) {
      const int e = threadIdx.x + kThreads * r;
      const int i = TransA ? e % Bm : e / kStep, kk = TransA ? e / Bm : e % kStep;
      const int64_t row = m0 + i, kp = k0 + kk;
      a_next[r] = row < p.m && kp < k_end ? (TransA ? a[kp * p.lda + row] : a[row * p.lda + kp]) : 0.0f;
    }
#pragma unroll
    for (int r = 0; r < Lb; ++r) {
      const int e = threadIdx.x + kThreads * r;
      const int j = TransB ? e / kStep : e % Bn, kk = TransB ? e % kStep : e / Bn;
      const int64_t col = n0 + j, kp = k0 + kk;
      b_next[r] = col < p.n && kp < k_end ? (TransB ? b[col * p.ldb + kp] : b[kp * p.ldb + col]) : 0.0f;
    }
  };
  auto store = [&](int stage) {
#pragma unroll
    for (int r = 0; r < La; ++r) {
      const int e = threadIdx.x + kThreads * r;
      a_tile[stage][TransA ? e / Bm : e % kStep][TransA ? e % Bm : e / kStep] = a_next[r];
    }
#pragma unroll
    for (int r = 0; r < Lb; ++r) {
      const int e = threadIdx.x + kThreads * r;
      b_tile[stage][TransB ? e % kStep : e / Bn][TransB ? e / kStep : e % Bn] = b_next[r];
    }
  };

  float acc[Tm][Tn];
#pragma unroll
  for (int i = 0; i < Tm; ++i)
#pragma unroll
    for (int j = 0; j < Tn; ++j) acc[i][j] = 0.0f;

  if (k_begin < k_end) {
    load(k_begin);
    store(0);
    __syncthreads();
  }
  int stage = 0;
  for (int64_t k0 = k_begin; k0 < k_end; k0 += kStep) {
    const bool more = k0 + kStep < k_end;  // the same for every thread of the block
    if (more) load(k0 + kStep);
#pragma unroll
    for (int kk = 0; kk < kStep; ++kk) {
      float av[Tm], bv[Tn];
#pragma unroll
      for (int q = 0; q < Tm / 4; ++q) {
        const float4 v = *reinterpret_cast<const float4*>(&a_tile[stage][kk][q * 64 + ty * 4]);
        av[q * 4] = v.x, av[q * 4 + 1] = v.y, av[q * 4 + 2] = v.z, av[q * 4 + 3] = v.w;
      }
#pragma unroll
      for (int q = 0; q < Tn / 4; ++q) {
        const float4 v = *reinterpret_cast<const float4*>(&b_tile[stage][kk][q * 64 + tx * 4]);
        bv[q * 4] = v.x, bv[q * 4 + 1] = v.y, bv[q * 4 + 2] = v.z, bv[q * 4 + 3] = v.w;
      }
#pragma unroll
      for (int i = 0; i < Tm; ++i)
#pragma unroll
        for (int j = 0; j < Tn; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    // The other stage was last read before the previous barrier: safe to refill now, and the
    // barrier below publishes it before anyone reads it.
    if (more) store(stage ^ 1);
    __syncthreads();
    stage ^= 1;
  }

#pragma unroll
  for (int i = 0; i < Tm; ++i) {
    const int64_t row = m0 + (i / 4) * 64 + ty * 4 + i % 4;
    if (row >= p.m) continue;
#pragma unroll
    for (int j = 0; j < Tn; ++j) {
      const int64_t col = n0 + (j / 4) * 64 + tx * 4 + j % 4;
      if (col >= p.n) continue;
      if (p.slices > 1) {
        p.partial[(z * p.m + row) * p.n + col] = acc[i][j];
      } else {
        float* cp = p.c + entry * p.c_stride + row * p.ldc + col;
        // beta == 0 never reads C: its old contents may be NaN or uninitialised.
        *cp = p.beta == 0.0f ? p.alpha * acc[i][j] : p.alpha * acc[i][j] + p.beta * *cp;
      }
    }
  }
}

// C = alpha * (sum of the slices' partial products, slice 0 first) + beta * C.
__global__ void sum_slices(const float* partial, int64_t slices, int64_t entries, int64_t m, int64_t n, float alpha,
                           float beta, float* c, int64_t ldc, int64_t c_stride) {
  const int64_t mn = m * n;
  LR_GRID_STRIDE(t, entries * mn) {
    const int64_t entry = t / mn, rc = t % mn, row = rc / n, col = rc % n;
    const float* src = partial + entry * slices * mn + rc;
    float s = 0.0f;
    for (int64_t q = 0; q < slices; ++q) s += src[q * mn];
    float* cp = c + entry * c_stride + row * ldc + col;
    *cp = beta == 0.0f ? alpha * s : alpha * s + beta * *cp;
  }
}

constexpr int64_t kMinSliceK = 256;                 // k per slice worth a block's start-up
constexpr int64_t kPartialBudget = int64_t(16) << 20;  // floats of split-k partial sums (64 MiB)

int multiprocessors(int device) {
  int count = 0;
  LR_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  return count > 0 ? count : 1;
}

template <int Bm, int Bn>
void launch_tiles(cudaStream_t stream, GemmArgs p, bool trans_a, bool trans_b, int64_t x_tiles, int64_t y_tiles,
                  int64_t grid_z) {
  for (int64_t y0 = 0; y0 < y_tiles; y0 += kMaxGridYZ)
    for (int64_t z0 = 0; z0 < grid_z; z0 += kMaxGridYZ) {
      p.y0 = y0;
      p.z0 = z0;
      const dim3 grid(static_cast<unsigned>(x_tiles), static_cast<unsigned>(std::min(kMaxGridYZ, y_tiles - y0)),
                      static_cast<unsigned>(std::min(kMaxGridYZ, grid_z - z0)));
      void (*kernel)(GemmArgs) = trans_a ? (trans_b ? sgemm_tiles<Bm, Bn, true, true> : sgemm_tiles<Bm, Bn, true, false>)
                                         : (trans_b ? sgemm_tiles<Bm, Bn, false, true> : sgemm_tiles<Bm, Bn, false, false>);
      LRFACE_LAUNCH(kernel, grid, kThreads, 0, stream)(p);
      LR_CUDA_CHECK(cudaGetLastError());
    }
}

// The batched product on the device's stream; a_at / b_at locate each entry's operands.
void gemm(int device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, BatchIndex a_at, const float* b, int64_t ldb, BatchIndex b_at, float beta, float* c, int64_t ldc,
          int64_t c_stride, int64_t batch) {
  if (m <= 0 || n <= 0 || batch <= 0) return;
  // The largest tiles (more arithmetic per load) that still give every multiprocessor a block;
  // 64 x 64 otherwise, split along k below if even those are too few.
  const int64_t sms = multiprocessors(device);
  auto tiles = [&](int64_t bm, int64_t bn) { return ((m + bm - 1) / bm) * ((n + bn - 1) / bn) * batch; };
  int bm = 64, bn = 64;
  if (m > 64 && n > 64 && tiles(128, 128) >= sms) bm = bn = 128;
  else if (n > 64 && tiles(64, 128) >= sms) bn = 128;
  else if (m > 64 && tiles(128, 64) >= sms) bm = 128;
  const int64_t x_tiles = (n + bn - 1) / bn, y_tiles = (m + bm - 1) / bm;
  LR_CHECK(x_tiles <= INT32_MAX, Range, "cuda gemm: ", n, " columns are more than one grid holds");

  // Split k when the tiles cannot fill the device twice over and each slice keeps a long k.
  int64_t slices = 1;
  const int64_t target = 2 * sms, count = tiles(bm, bn);
  if (count < target && k >= 2 * kMinSliceK) {
    slices = std::min((target + count - 1) / count, k / kMinSliceK);
    while (slices > 1 && slices * batch * m * n > kPartialBudget) --slices;
  }
  int64_t k_slice = k;
  if (slices > 1) {
    k_slice = ((k + slices - 1) / slices + kStep - 1) / kStep * kStep;
    slices = (k + k_slice - 1) / k_slice;  // every slice non-empty
  }
  DeviceBuffer partial(device, sizeof(float) * size_t(slices > 1 ? slices * batch * m * n : 0));

  const GemmArgs p{m, n, k, alpha, beta, a, lda, a_at, b, ldb, b_at, c, ldc, c_stride, slices, k_slice,
                   partial.as<float>(), 0, 0};
  {
    cudaStream_t stream = device_stream(device);
    DeviceGuard guard(device);
    const int64_t grid_z = batch * slices;
    if (bm == 128 && bn == 128) launch_tiles<128, 128>(stream, p, trans_a, trans_b, x_tiles, y_tiles, grid_z);
    else if (bn == 128) launch_tiles<64, 128>(stream, p, trans_a, trans_b, x_tiles, y_tiles, grid_z);
    else if (bm == 128) launch_tiles<128, 64>(stream, p, trans_a, trans_b, x_tiles, y_tiles, grid_z);
    else launch_tiles<64, 64>(stream, p, trans_a, trans_b, x_tiles, y_tiles, grid_z);
  }
  if (slices > 1) launch(device, batch * m * n, sum_slices, static_cast<const float*>(partial.as<float>()), slices,
                         batch, m, n, alpha, beta, c, ldc, c_stride);
}

// Host offsets as two strides when they follow offsets[i] = offsets[0] + (i / count) * outer +
// (i % count) * inner (every batch of matmul's broadcasting with at most one broadcast
// boundary). Only differences of actual offsets are compared, so nothing can overflow.
bool offsets_as_strides(const int64_t* offsets, int64_t batch, BatchIndex* out) {
  if (batch == 1) {
    *out = stride_index(0);
    return true;
  }
  const int64_t inner = offsets[1] - offsets[0];
  int64_t count = batch;
  for (int64_t i = 2; i < batch; ++i)
    if (offsets[i] - offsets[i - 1] != inner) {
      count = i;
      break;
    }
  const int64_t outer = count < batch ? offsets[count] - offsets[0] : 0;
  for (int64_t i = count; i < batch; ++i) {
    const bool same = i % count == 0 ? offsets[i] - offsets[i - count] == outer : offsets[i] - offsets[i - 1] == inner;
    if (!same) return false;
  }
  *out = BatchIndex{nullptr, count, inner, outer};
  return true;
}

// ---- convolution helpers ------------------------------------------------------------------

// col[img * img_stride + row * row_stride + q] = x(img, ci, oh*sh - pt + i*dh, ow*sw - pl + j*dw)
// (0 outside the image) for row = (ci * kh + i) * kw + j over all c channels and the output rows
// oh = oh0 + q / out_w of a band of `rows` rows, ow = q % out_w.
__global__ void im2col_kernel(const float* x, float* col, ConvGeometry g, int64_t images, int64_t img_stride,
                              int64_t row_stride, int64_t oh0, int64_t rows) {
  const int64_t pixels = rows * g.out_w, taps = g.kh * g.kw, col_rows = g.c * taps;
  LR_GRID_STRIDE(idx, images * col_rows * pixels) {
    const int64_t q = idx % pixels, t = idx / pixels, row = t % col_rows, img = t / col_rows;
    const int64_t ci = row / taps, tap = row % taps, i = tap / g.kw, j = tap % g.kw;
    const int64_t oh = oh0 + q / g.out_w, ow = q % g.out_w;
    const int64_t ih = oh * g.sh - g.pt + i * g.dh, iw = ow * g.sw - g.pl + j * g.dw;
    float v = 0.0f;
    if (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w) v = x[((img * g.c + ci) * g.h + ih) * g.w + iw];
    col[img * img_stride + row * row_stride + q] = v;
  }
}

// The input rows [ih0, ih0 + in_rows) of gx for a band of output rows [oh0, oh0 + rows): each
// pixel (img, ci, ih, iw) sums the column entries that read it (laid out as im2col_kernel
// writes them, with the same img_stride and row_stride): tap (i, j) reads it from output
// (oh, ow) when oh*sh = ih + pt - i*dh and ow*sw = iw + pl - j*dw. The sum replaces gx with
// bias[ci] + sum, or is added to gx when `accumulate` (the later bands).
__global__ void col2im_kernel(const float* col, const float* bias, float* gx, ConvGeometry g, int64_t images,
                              int64_t img_stride, int64_t row_stride, int64_t ih0, int64_t in_rows, int64_t oh0,
                              int64_t rows, bool accumulate) {
  const int64_t taps = g.kh * g.kw;
  LR_GRID_STRIDE(idx, images * g.c * in_rows * g.w) {
    const int64_t iw = idx % g.w, t = idx / g.w, ih = ih0 + t % in_rows, plane = t / in_rows, ci = plane % g.c;
    const float* src = col + (plane / g.c) * img_stride + ci * taps * row_stride;  // plane = img * c + ci
    float s = 0.0f;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t ry = ih + g.pt - i * g.dh;
      if (ry < 0 || ry % g.sh != 0) continue;
      const int64_t r = ry / g.sh - oh0;
      if (r < 0 || r >= rows) continue;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t rx = iw + g.pl - j * g.dw;
        if (rx < 0 || rx % g.sw != 0) continue;
        const int64_t ow = rx / g.sw;
        if (ow >= g.out_w) continue;
        s += src[(i * g.kw + j) * row_stride + r * g.out_w + ow];
      }
    }
    float* dst = gx + (plane * g.h + ih) * g.w + iw;
    *dst = accumulate ? *dst + s : (bias ? bias[ci] : 0.0f) + s;
  }
}

// dst[oc, img, q] = gy[img, oc, q] for the chunk's images: the output gradient with the images
// side by side, as the filter gradient's product reads it.
__global__ void images_side_by_side(const float* gy, float* dst, int64_t images, int64_t channels, int64_t ohw) {
  LR_GRID_STRIDE(idx, channels * images * ohw) {
    const int64_t q = idx % ohw, t = idx / ohw, img = t % images, oc = t / images;
    dst[idx] = gy[(img * channels + oc) * ohw + q];
  }
}

// out[img, oc, q] = side[oc, img, q] + bias[oc] (bias may be null), then relu (NaN -> 0) if
// asked: a product over the chunk's images side by side back to NCHW.
__global__ void images_apart(const float* side, const float* bias, bool relu, float* out, int64_t images,
                             int64_t channels, int64_t ohw) {
  LR_GRID_STRIDE(idx, images * channels * ohw) {
    const int64_t q = idx % ohw, t = idx / ohw, oc = t % channels, img = t / channels;
    float v = side[(oc * images + img) * ohw + q];
    if (bias) v += bias[oc];
    out[idx] = relu ? (v > 0.0f ? v : 0.0f) : v;
  }
}

// ---- depthwise (one input channel per group) ------------------------------------------------

__global__ void depthwise_forward_kernel(const float* x, const float* w, const float* bias, float* out, ConvGeometry g,
                                         bool relu) {
  const int64_t ohw = g.out_h * g.out_w, og = g.o / g.groups;
  LR_GRID_STRIDE(idx, g.n * g.o * ohw) {
    const int64_t q = idx % ohw, plane = idx / ohw, oc = plane % g.o, img = plane / g.o;
    const int64_t oh = q / g.out_w, ow = q % g.out_w;
    const float* xp = x + (img * g.c + oc / og) * g.h * g.w;
    const float* wp = w + oc * g.kh * g.kw;
    float s = bias ? bias[oc] : 0.0f;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t ih = oh * g.sh - g.pt + i * g.dh;
      if (ih < 0 || ih >= g.h) continue;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t iw = ow * g.sw - g.pl + j * g.dw;
        if (iw >= 0 && iw < g.w) s = fmaf(xp[ih * g.w + iw], wp[i * g.kw + j], s);
      }
    }
    out[idx] = relu ? (s > 0.0f ? s : 0.0f) : s;
  }
}

// gx(img, ci, ih, iw) = bias[ci] + sum over the group's og outputs and the taps that read the pixel.
__global__ void depthwise_backward_data_kernel(const float* gy, const float* w, const float* bias, float* gx,
                                               ConvGeometry g) {
  const int64_t ohw = g.out_h * g.out_w, og = g.o / g.groups, taps = g.kh * g.kw;
  LR_GRID_STRIDE(idx, g.n * g.c * g.h * g.w) {
    const int64_t iw = idx % g.w, t = idx / g.w, ih = t % g.h, plane = t / g.h, ci = plane % g.c, img = plane / g.c;
    float s = bias ? bias[ci] : 0.0f;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t ry = ih + g.pt - i * g.dh;
      if (ry < 0 || ry % g.sh != 0 || ry / g.sh >= g.out_h) continue;
      const int64_t oh = ry / g.sh;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t rx = iw + g.pl - j * g.dw;
        if (rx < 0 || rx % g.sw != 0 || rx / g.sw >= g.out_w) continue;
        const int64_t q = oh * g.out_w + rx / g.sw;
        for (int64_t ol = 0; ol < og; ++ol) {
          const int64_t oc = ci * og + ol;
          s = fmaf(gy[(img * g.o + oc) * ohw + q], w[oc * taps + i * g.kw + j], s);
        }
      }
    }
    gx[idx] = s;
  }
}

// One block per weight (oc, i, j): the sum over every image and output pixel of gy * the input
// pixel the tap reads, reduced in a fixed tree (deterministic).
__global__ void __launch_bounds__(kThreads) depthwise_backward_filter_kernel(const float* x, const float* gy,
                                                                             float* gw, ConvGeometry g) {
  __shared__ float partial[kThreads];
  const int64_t ohw = g.out_h * g.out_w, og = g.o / g.groups, taps = g.kh * g.kw;
  for (int64_t wi = blockIdx.x; wi < g.o * taps; wi += gridDim.x) {
    const int64_t oc = wi / taps, tap = wi % taps, i = tap / g.kw, j = tap % g.kw, ci = oc / og;
    float s = 0.0f;
    for (int64_t t = threadIdx.x; t < g.n * ohw; t += kThreads) {
      const int64_t img = t / ohw, q = t % ohw, oh = q / g.out_w, ow = q % g.out_w;
      const int64_t ih = oh * g.sh - g.pt + i * g.dh, iw = ow * g.sw - g.pl + j * g.dw;
      if (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w)
        s = fmaf(gy[(img * g.o + oc) * ohw + q], x[((img * g.c + ci) * g.h + ih) * g.w + iw], s);
    }
    partial[threadIdx.x] = s;
    __syncthreads();
    for (int half = kThreads / 2; half > 0; half /= 2) {
      if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
      __syncthreads();
    }
    if (threadIdx.x == 0) gw[wi] = partial[0];
    __syncthreads();  // partial is refilled for the next weight
  }
}

__global__ void channel_bias_kernel(float* out, const float* bias, int64_t channels, int64_t inner, int64_t total,
                                    bool relu) {
  LR_GRID_STRIDE(i, total) {
    float v = out[i];
    if (bias) v += bias[(i / inner) % channels];
    out[i] = relu ? (v > 0.0f ? v : 0.0f) : v;  // v > 0 is false for NaN: relu(NaN) = 0
  }
}

// ---- convolution plans ----------------------------------------------------------------------

constexpr int64_t kColumnBudget = int64_t(64) << 20;  // floats per column buffer (256 MiB)

bool is_depthwise(const ConvGeometry& g) { return g.c == g.groups; }

// 1x1, stride 1, no padding, output as large as the input: the input planes are the columns.
bool is_pointwise(const ConvGeometry& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && g.out_h == g.h &&
         g.out_w == g.w;
}

// How a column buffer (at most kColumnBudget floats) covers the batch: `images` whole images
// at a time, or, where one image's columns exceed the budget, bands of `rows` output rows of
// one image.
struct ColumnChunks {
  int64_t images, rows;
};

ColumnChunks column_chunks(const ConvGeometry& g) {
  const int64_t per_row = g.c * g.kh * g.kw * g.out_w, per_image = per_row * g.out_h;
  if (per_image <= kColumnBudget) return {std::max<int64_t>(1, std::min(g.n, kColumnBudget / per_image)), g.out_h};
  return {1, std::max<int64_t>(1, kColumnBudget / per_row)};
}

// Output planes this small would leave most columns of a product's tiles empty, image by
// image: their chunks run as one product per group over the images side by side.
constexpr int64_t kSmallPlane = 128;
bool images_side_by_side_wins(const ConvGeometry& g, const ColumnChunks& chunks) {
  return chunks.images > 1 && g.out_h * g.out_w < kSmallPlane;
}

void im2col(int device, const ConvGeometry& g, const float* x, float* col, int64_t images, int64_t img_stride,
            int64_t row_stride, int64_t oh0, int64_t rows) {
  launch(device, images * g.c * g.kh * g.kw * rows * g.out_w, im2col_kernel, x, col, g, images, img_stride,
         row_stride, oh0, rows);
}

}  // namespace

// ---- entry points -----------------------------------------------------------------------------

void own_sgemm_batched(int device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                       const float* a, int64_t lda, const int64_t* a_offsets, const float* b, int64_t ldb,
                       const int64_t* b_offsets, float beta, float* c, int64_t ldc, int64_t c_stride, int64_t batch) {
  if (m <= 0 || n <= 0 || batch <= 0) return;
  BatchIndex a_at{}, b_at{};
  const bool a_strided = offsets_as_strides(a_offsets, batch, &a_at);
  const bool b_strided = offsets_as_strides(b_offsets, batch, &b_at);
  // Irregular offsets go to the device as a table.
  DeviceCopy<int64_t> a_table(device, a_offsets, a_strided ? 0 : batch);
  DeviceCopy<int64_t> b_table(device, b_offsets, b_strided ? 0 : batch);
  if (!a_strided) a_at = BatchIndex{a_table.get(), 1, 0, 0};
  if (!b_strided) b_at = BatchIndex{b_table.get(), 1, 0, 0};
  // The strided forms count from the first entry's offset.
  gemm(device, trans_a, trans_b, m, n, k, alpha, a_strided ? a + a_offsets[0] : a, lda, a_at,
       b_strided ? b + b_offsets[0] : b, ldb, b_at, beta, c, ldc, c_stride, batch);
}

void channel_bias(int device, float* out, const float* bias, int64_t outer, int64_t channels, int64_t inner, bool relu) {
  if (bias == nullptr && !relu) return;
  launch(device, outer * channels * inner, channel_bias_kernel, out, bias, channels, inner, outer * channels * inner,
         relu);
}

void own_conv2d_forward(int device, const ConvGeometry& g, const float* x, const float* w, const float* bias,
                        float* out, bool relu) {
  if (g.n <= 0) return;
  const int64_t cg = g.c / g.groups, og = g.o / g.groups;
  const int64_t kdim = cg * g.kh * g.kw, ohw = g.out_h * g.out_w;
  if (is_depthwise(g)) {
    launch(device, g.n * g.o * ohw, depthwise_forward_kernel, x, w, bias, out, g, relu);
    return;
  }
  // Entry z = img * groups + gr: W_g [og, kdim] @ columns of (img, gr) [kdim, ohw] into
  // out + (img * o + gr * og) * ohw = out + z * og * ohw.
  if (is_pointwise(g)) {
    gemm(device, false, false, og, ohw, kdim, 1.0f, w, kdim, group_index(g.groups, og * kdim, 0), x, ohw,
         group_index(g.groups, cg * ohw, g.c * ohw), 0.0f, out, ohw, og * ohw, g.n * g.groups);
  } else {
    const ColumnChunks chunks = column_chunks(g);
    DeviceBuffer col(device, sizeof(float) * size_t(chunks.images * g.c * g.kh * g.kw * chunks.rows * g.out_w));
    if (images_side_by_side_wins(g, chunks)) {
      // Per chunk, its k = images * ohw pixels side by side: out_g [og, k] = W_g @ col_g [kdim, k]
      // into a [o, k] buffer, then back to NCHW with the bias and relu.
      DeviceBuffer side(device, sizeof(float) * size_t(chunks.images * g.o * ohw));
      for (int64_t n0 = 0; n0 < g.n; n0 += chunks.images) {
        const int64_t images = std::min(chunks.images, g.n - n0), k = images * ohw;
        im2col(device, g, x + n0 * g.c * g.h * g.w, col.as<float>(), images, ohw, k, 0, g.out_h);
        gemm(device, false, false, og, k, kdim, 1.0f, w, kdim, stride_index(og * kdim), col.as<float>(), k,
             stride_index(kdim * k), 0.0f, side.as<float>(), k, og * k, g.groups);
        launch(device, images * g.o * ohw, images_apart, static_cast<const float*>(side.as<float>()), bias, relu,
               out + n0 * g.o * ohw, images, g.o, ohw);
      }
      return;
    }
    // Per chunk (images x a band of rows, `pixels` output pixels per image): columns of (img, gr)
    // at col + img * per_image + gr * kdim * pixels; results into rows r0.. of the output planes.
    for (int64_t n0 = 0; n0 < g.n; n0 += chunks.images)
      for (int64_t r0 = 0; r0 < g.out_h; r0 += chunks.rows) {
        const int64_t images = std::min(chunks.images, g.n - n0), rows = std::min(chunks.rows, g.out_h - r0);
        const int64_t pixels = rows * g.out_w, per_image = g.c * g.kh * g.kw * pixels;
        im2col(device, g, x + n0 * g.c * g.h * g.w, col.as<float>(), images, per_image, pixels, r0, rows);
        gemm(device, false, false, og, pixels, kdim, 1.0f, w, kdim, group_index(g.groups, og * kdim, 0),
             col.as<float>(), pixels, group_index(g.groups, kdim * pixels, per_image), 0.0f,
             out + n0 * g.o * ohw + r0 * g.out_w, ohw, og * ohw, images * g.groups);
      }
  }
  channel_bias(device, out, bias, g.n, g.o, ohw, relu);
}

void own_conv2d_backward_data(int device, const ConvGeometry& g, const float* gy, const float* w, const float* bias,
                              float* gx) {
  if (g.n <= 0) return;
  const int64_t cg = g.c / g.groups, og = g.o / g.groups;
  const int64_t kdim = cg * g.kh * g.kw, ohw = g.out_h * g.out_w, hw = g.h * g.w;
  if (is_depthwise(g)) {
    launch(device, g.n * g.c * hw, depthwise_backward_data_kernel, gy, w, bias, gx, g);
    return;
  }
  // Entry z = img * groups + gr: W_g^T [kdim, og] @ gy of (img, gr) [og, ohw], which lies at
  // gy + (img * o + gr * og) * ohw = gy + z * og * ohw.
  if (is_pointwise(g)) {
    gemm(device, true, false, kdim, hw, og, 1.0f, w, kdim, group_index(g.groups, og * kdim, 0), gy, ohw,
         stride_index(og * ohw), 0.0f, gx, hw, cg * hw, g.n * g.groups);
    channel_bias(device, gx, bias, g.n, g.c, hw, false);
    return;
  }
  const ColumnChunks chunks = column_chunks(g);
  DeviceBuffer col(device, sizeof(float) * size_t(chunks.images * g.c * g.kh * g.kw * chunks.rows * g.out_w));
  if (images_side_by_side_wins(g, chunks)) {
    // Per chunk, its k = images * ohw pixels side by side: col_g [kdim, k] = W_g^T @ gy_g [og, k].
    DeviceBuffer side(device, sizeof(float) * size_t(chunks.images * g.o * ohw));
    for (int64_t n0 = 0; n0 < g.n; n0 += chunks.images) {
      const int64_t images = std::min(chunks.images, g.n - n0), k = images * ohw;
      launch(device, g.o * k, images_side_by_side, gy + n0 * g.o * ohw, side.as<float>(), images, g.o, ohw);
      gemm(device, true, false, kdim, k, og, 1.0f, w, kdim, stride_index(og * kdim), side.as<float>(), k,
           stride_index(og * k), 0.0f, col.as<float>(), k, kdim * k, g.groups);
      launch(device, images * g.c * hw, col2im_kernel, static_cast<const float*>(col.as<float>()), bias,
             gx + n0 * g.c * hw, g, images, ohw, k, int64_t(0), g.h, int64_t(0), g.out_h, false);
    }
    return;
  }
  const bool banded = chunks.rows < g.out_h;
  // Bands add into gx, so it starts as the bias (or zero); whole images write it in one pass.
  if (banded) {
    device_zero(device, gx, sizeof(float) * static_cast<size_t>(g.n * g.c * hw));
    channel_bias(device, gx, bias, g.n, g.c, hw, false);
  }
  for (int64_t n0 = 0; n0 < g.n; n0 += chunks.images)
    for (int64_t r0 = 0; r0 < g.out_h; r0 += chunks.rows) {
      const int64_t images = std::min(chunks.images, g.n - n0), rows = std::min(chunks.rows, g.out_h - r0);
      const int64_t pixels = rows * g.out_w;
      // Columns of (img, gr) at col + (img * groups + gr) * kdim * pixels = col + z * kdim * pixels.
      gemm(device, true, false, kdim, pixels, og, 1.0f, w, kdim, group_index(g.groups, og * kdim, 0),
           gy + n0 * g.o * ohw + r0 * g.out_w, ohw, stride_index(og * ohw), 0.0f, col.as<float>(), pixels,
           kdim * pixels, images * g.groups);
      // The input rows this band's outputs read: from r0*sh - pt to (r0 + rows - 1)*sh - pt + (kh - 1)*dh.
      int64_t ih0 = 0, ih1 = g.h;
      if (banded) {
        ih0 = std::max<int64_t>(0, r0 * g.sh - g.pt);
        ih1 = std::min<int64_t>(g.h, (r0 + rows - 1) * g.sh - g.pt + (g.kh - 1) * g.dh + 1);
      }
      if (ih1 > ih0)
        launch(device, images * g.c * (ih1 - ih0) * g.w, col2im_kernel, static_cast<const float*>(col.as<float>()),
               bias, gx + n0 * g.c * hw, g, images, g.c * g.kh * g.kw * pixels, pixels, ih0, ih1 - ih0, r0, rows,
               banded);
    }
}

void own_conv2d_backward_filter(int device, const ConvGeometry& g, const float* x, const float* gy, float* gw) {
  const int64_t cg = g.c / g.groups, og = g.o / g.groups;
  const int64_t kdim = cg * g.kh * g.kw, ohw = g.out_h * g.out_w;
  if (g.n <= 0) {
    device_zero(device, gw, sizeof(float) * static_cast<size_t>(g.o * kdim));
    return;
  }
  if (is_depthwise(g)) {
    const int64_t weights = g.o * g.kh * g.kw;
    cudaStream_t stream = device_stream(device);
    DeviceGuard guard(device);
    LRFACE_LAUNCH(depthwise_backward_filter_kernel, static_cast<unsigned>(std::min<int64_t>(weights, 65535 * 8)),
                  kThreads, 0, stream)(x, gy, gw, g);
    LR_CUDA_CHECK(cudaGetLastError());
    return;
  }
  // Per chunk of images (or band of one image's output rows), with the chunk's pixels side by
  // side (k of them): gw_g [og, kdim] (+)= gy_g [og, k] @ (col_g [kdim, k])^T, one entry per group.
  const ColumnChunks chunks = column_chunks(g);
  DeviceBuffer col(device, sizeof(float) * size_t(chunks.images * g.c * g.kh * g.kw * chunks.rows * g.out_w));
  DeviceBuffer side(device, sizeof(float) * size_t(chunks.images > 1 ? chunks.images * g.o * ohw : 0));
  for (int64_t n0 = 0; n0 < g.n; n0 += chunks.images)
    for (int64_t r0 = 0; r0 < g.out_h; r0 += chunks.rows) {
      const int64_t images = std::min(chunks.images, g.n - n0), rows = std::min(chunks.rows, g.out_h - r0);
      const int64_t k = images * rows * g.out_w;
      im2col(device, g, x + n0 * g.c * g.h * g.w, col.as<float>(), images, rows * g.out_w, k, r0, rows);
      // One image's gy rows are [o, pixels] with row stride ohw already; several go side by side.
      const float* gyc = gy + n0 * g.o * ohw + r0 * g.out_w;
      int64_t lda = ohw;
      if (images > 1) {
        launch(device, g.o * k, images_side_by_side, gyc, side.as<float>(), images, g.o, ohw);
        gyc = side.as<float>();
        lda = k;
      }
      gemm(device, false, true, og, kdim, k, 1.0f, gyc, lda, stride_index(og * lda), col.as<float>(), k,
           stride_index(kdim * k), n0 == 0 && r0 == 0 ? 0.0f : 1.0f, gw, kdim, og * kdim, g.groups);
    }
}

}  // namespace lrface::cuda
