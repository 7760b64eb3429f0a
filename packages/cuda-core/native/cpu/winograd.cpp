// Winograd F(4x4, 3x3) convolution (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2016):
//   Y = A^T [ (G g G^T) .* (B^T d B) ] A
// for a 6x6 input tile d, a 3x3 filter g and a 4x4 output tile Y, with interpolation points
// 0, 1, -1, 2, -1/2 and infinity instead of Lavin's 0, +-1, +-2: in float32 their error is
// 2-3x smaller (Barabasz et al., "Error analysis and improving the accuracy of Winograd
// convolution for deep neural networks", 2020), for a few more additions.
// 5x5 filters run F(4x4, 5x5) on 8x8 input tiles the same way, with points 0, 1, -1, 2, -2,
// 1/2, -1/2 and infinity (those of the common F(6x6, 3x3)): 64 multiplies per tile and channel
// pair instead of 400, for 5e-6 of the largest output in rounding error at 32 channels and 6e-6
// at 128 (F(4x4, 3x3): 1.5e-6 and 2.3e-6; the GEMM 1e-6). F(2x2, 5x5) on the 6x6 tiles would
// reuse more of the 3x3 code but cut the multiplies 2.8x only, and transform a 6x6 input tile
// for every 4 outputs instead of an 8x8 one for 16.
// Summed over input channels, the element-wise product becomes S^2 (36 or 64) independent
// matrix products, one per tile element e:
//   M_e [O x tiles] = U_e [O x C] @ V_e [C x tiles].
//
// Tiles are numbered over (image, tile row, tile column) and cut into blocks of T, so a block
// may span images and small images still fill the products. Each block runs on one thread:
//   1. input transform of its tiles, every channel -> V [S^2][C][T] (fits L2 for typical C);
//   2. S^2 register-blocked products (MR output channels x NV vectors of tiles), U from the
//      filter transform done once per call, packed [S^2][O/MR][C][MR] so one product step
//      broadcasts MR consecutive floats;
//   3. output transform of M [S^2][O][T] to 4x4 tiles, plus bias and ReLU, straight into out.
// The transforms work on VW tiles at once, one tile per vector lane: each padded input row is
// split into its four column phases (column mod 4) with shuffles, so the same element of VW
// neighbouring tiles is one vector load (an input tile's columns 4 to S-1 are the next tile's
// phases 0 to S-5); the output tiles' columns are merged back the same way.
// Everything is written once with GCC vector extensions and compiled for AVX-512, AVX2 and the
// baseline, following the GEMM's instruction-set choice.
#include "winograd.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "../core/thread_pool.h"
#include "gemm.h"
#include "kernel_util.h"

namespace lrface::cpu {

namespace {

using namespace kernel;

std::atomic<int64_t> g_forward_count{0};
std::atomic<int64_t> g_filter_count{0};

// Tiles per block, T: a multiple of every product's strip width (48, 24, 12). Blocks of 96
// (reusing each strip of U twice) measured no faster, and small blocks share the work among
// threads more evenly. V and M of a block then take 36 x 64 x 48 floats each (432 KiB) at 64
// channels, and stay in L2.
constexpr int64_t kBlockTiles = 48;
// Smaller forward blocks (forward_block_tiles) are multiples of this: whole vectors at every width.
constexpr int64_t kBlockQuantum = 16;
// Tiles per block of the filter gradient: its products' k dimension, over which each thread's
// accumulators W are loaded and stored once. On two threads at 128 channels blocks of 32 (V
// and N of a block 864 and 576 KiB) measured 10-20% faster than 96 and a little faster than
// 48: the blocks' buffers matter more than the accumulators' traffic.
constexpr int64_t kGradBlockTiles = 32;
constexpr int64_t kMaxTilesPadded = 6;  // tile columns up to which the input is padded up front
constexpr size_t kKeptFloats = size_t(1) << 22;  // whole-problem buffers kept between calls: 16 MiB
// The transformed filter is kept up to 64 MiB: 4x the weights, so 512 -> 512 channels (36 MiB)
// would otherwise map and fault in its pages again on every call (8 images of 8x8: 2x slower).
constexpr size_t kKeptFilterFloats = size_t(1) << 24;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }


// p_j[t] = row[4t + j] for t < groups * VW: one input row split into its column phases.
template <int VW>
LR_INLINE void split_phases(const float* row, int64_t groups, float* p0, float* p1, float* p2, float* p3) {
  using V = typename Vec<VW>::V;
  const auto even = strided_mask<VW>(0), odd = strided_mask<VW>(1);
  for (int64_t q = 0; q < groups; ++q, row += 4 * VW) {
    const V r0 = vload<VW>(row), r1 = vload<VW>(row + VW), r2 = vload<VW>(row + 2 * VW), r3 = vload<VW>(row + 3 * VW);
    const V e01 = __builtin_shuffle(r0, r1, even), o01 = __builtin_shuffle(r0, r1, odd);
    const V e23 = __builtin_shuffle(r2, r3, even), o23 = __builtin_shuffle(r2, r3, odd);
    vstore<VW>(p0 + q * VW, __builtin_shuffle(e01, e23, even));
    vstore<VW>(p2 + q * VW, __builtin_shuffle(e01, e23, odd));
    vstore<VW>(p1 + q * VW, __builtin_shuffle(o01, o23, even));
    vstore<VW>(p3 + q * VW, __builtin_shuffle(o01, o23, odd));
  }
}

// row[4t + j] = y_j[t] for t < VW: the inverse of split_phases for one vector of tiles.
template <int VW>
LR_INLINE void merge_phases(typename Vec<VW>::V y0, typename Vec<VW>::V y1, typename Vec<VW>::V y2,
                            typename Vec<VW>::V y3, float* row) {
  using V = typename Vec<VW>::V;
  const auto lo = zip_mask<VW>(0), hi = zip_mask<VW>(1);
  const V lo02 = __builtin_shuffle(y0, y2, lo), hi02 = __builtin_shuffle(y0, y2, hi);
  const V lo13 = __builtin_shuffle(y1, y3, lo), hi13 = __builtin_shuffle(y1, y3, hi);
  vstore<VW>(row, __builtin_shuffle(lo02, lo13, lo));
  vstore<VW>(row + VW, __builtin_shuffle(lo02, lo13, hi));
  vstore<VW>(row + 2 * VW, __builtin_shuffle(hi02, hi13, lo));
  vstore<VW>(row + 3 * VW, __builtin_shuffle(hi02, hi13, hi));
}

// o = B^T d for one column (or row) of six values (points 0, 1, -1, 2, -1/2, infinity):
//   B^T = [1  3/2 -2   -3/2  1    0
//          0 -1   -5/2 -1/2  1    0
//          0  1    1/2 -5/2  1    0
//          0 -1/2 -1    1/2  1    0
//          0  2   -1   -2    1    0
//          0  1    3/2 -2   -3/2  1]
template <typename V>
LR_INLINE void input_transform6(V d0, V d1, V d2, V d3, V d4, V d5, V* o) {
  const V a = d4 - d2, b = d3 - d1;
  o[0] = d0 + d4 - d2 * 2.0f - b * 1.5f;
  o[1] = d4 - d1 - d2 * 2.5f - d3 * 0.5f;
  o[2] = d4 + d1 + d2 * 0.5f - d3 * 2.5f;
  o[3] = a + b * 0.5f;
  o[4] = a - b * 2.0f;
  o[5] = d5 + d1 - d3 * 2.0f - a * 1.5f;
}

// y = A^T m for six values: A^T = [1 1 1 1 1 0; 0 1 -1 2 -1/2 0; 0 1 1 4 1/4 0; 0 1 -1 8 -1/8 1]
template <typename V>
LR_INLINE void output_transform6(V m0, V m1, V m2, V m3, V m4, V m5, V* y) {
  const V s12 = m1 + m2, d12 = m1 - m2;
  y[0] = m0 + s12 + m3 + m4;
  y[1] = d12 + m3 * 2.0f - m4 * 0.5f;
  y[2] = s12 + m3 * 4.0f + m4 * 0.25f;
  y[3] = d12 + m3 * 8.0f - m4 * 0.125f + m5;
}

// o = B^T d for one column (or row) of eight values (points 0, 1, -1, 2, -2, 1/2, -1/2, infinity):
//   B^T = [1  0    -21/4  0     21/4  0    -1  0
//          0  1     1    -17/4 -17/4  1     1  0
//          0 -1     1     17/4 -17/4 -1     1  0
//          0  1/2   1/4  -5/2  -5/4   2     1  0
//          0 -1/2   1/4   5/2  -5/4  -2     1  0
//          0  2     4    -5/2  -5     1/2   1  0
//          0 -2     4     5/2  -5    -1/2   1  0
//          0 -1     0     21/4  0    -21/4  0  1]
// Row k of B^T holds the coefficients of M(x) / (x - a_k), M(x) = x (x^2-1) (x^2-4) (x^2-1/4)
// (row 0 negated, and G's row 0 with it), M itself for infinity. M is odd, so the rows of a
// and -a share their even-power part and negate the odd one: one sum and one difference.
template <typename V>
LR_INLINE void input_transform8(const V* d, V* o) {
  o[0] = d[0] - d[6] + (d[4] - d[2]) * 5.25f;
  o[7] = d[7] - d[1] + (d[3] - d[5]) * 5.25f;
  const V e1 = d[2] + d[6] - d[4] * 4.25f, o1 = d[1] + d[5] - d[3] * 4.25f;
  o[1] = e1 + o1;
  o[2] = e1 - o1;
  const V e2 = d[6] + d[2] * 0.25f - d[4] * 1.25f, o2 = d[1] * 0.5f - d[3] * 2.5f + d[5] * 2.0f;
  o[3] = e2 + o2;
  o[4] = e2 - o2;
  const V e3 = d[6] + d[2] * 4.0f - d[4] * 5.0f, o3 = d[1] * 2.0f - d[3] * 2.5f + d[5] * 0.5f;
  o[5] = e3 + o3;
  o[6] = e3 - o3;
}

// y = A^T m for eight values: A^T[i][k] = a_k^i, and A^T[3][7] = 1 for infinity:
//   A^T = [1 1  1 1  1 1    1    0
//          0 1 -1 2 -2 1/2 -1/2  0
//          0 1  1 4  4 1/4  1/4  0
//          0 1 -1 8 -8 1/8 -1/8  1]
template <typename V>
LR_INLINE void output_transform8(const V* m, V* y) {
  const V s1 = m[1] + m[2], d1 = m[1] - m[2], s2 = m[3] + m[4], d2 = m[3] - m[4];
  const V s3 = m[5] + m[6], d3 = m[5] - m[6];
  y[0] = m[0] + s1 + s2 + s3;
  y[1] = d1 + d2 * 2.0f + d3 * 0.5f;
  y[2] = s1 + s2 * 4.0f + s3 * 0.25f;
  y[3] = d1 + d2 * 8.0f + d3 * 0.125f + m[7];
}

// The transforms of F(4x4, KxK) on input tiles of S = K + 3, over arrays of S values.
template <int K, typename V>
LR_INLINE void input_transform(const V* d, V* o) {
  if constexpr (K == 3) input_transform6<V>(d[0], d[1], d[2], d[3], d[4], d[5], o);
  else input_transform8<V>(d, o);
}
template <int K, typename V>
LR_INLINE void output_transform(const V* m, V* y) {
  if constexpr (K == 3) output_transform6<V>(m[0], m[1], m[2], m[3], m[4], m[5], y);
  else output_transform8<V>(m, y);
}

struct Plan {
  const ConvGeometry* g;
  const float* x;
  // For narrow images, the input zero-padded to whole tiles (planes of (4 tiles_h + S - 4) x
  // (4 tiles_w + S - 4), x_pitch floats a row); otherwise null, and each run's rows are padded
  // as they are read.
  const float* padded;
  int64_t x_plane, x_pitch;
  const float* u;  // transformed filter, [S^2][o_strips][c][mr]
  const float* bias;
  float* out;
  bool relu;
  const float* residual;  // added to the output (shaped as it) before the ReLU, or null
  int64_t tiles_h, tiles_w, tiles_per_image, total_tiles;
  int64_t block;  // tiles per block
  int64_t pitch;  // row length of V and M: T plus one vector of slack for the last group's overrun
  int64_t v_plane, m_plane;  // floats from one tile element's matrix to the next, in V and M
  int64_t o_strips, o_pad;
  int64_t phase_len;  // floats per column phase of a block: T plus two vectors of slack
};

// Calls fn(n, th, tw0, len, col) for each run of tiles of block b that lie along one tile row:
// image n, tile row th, tile columns tw0..tw0+len-1, at column col of the block.
template <typename F>
LR_INLINE void for_each_run(const Plan& p, int64_t b, F&& fn) {
  const int64_t t0 = b * p.block, t1 = std::min(p.total_tiles, t0 + p.block);
  for (int64_t t = t0; t < t1;) {
    const int64_t n = t / p.tiles_per_image, rest = t % p.tiles_per_image;
    const int64_t th = rest / p.tiles_w, tw = rest % p.tiles_w;
    const int64_t len = std::min(t1 - t, p.tiles_w - tw);
    fn(n, th, tw, len, t - t0);
    t += len;
  }
}

// dst[0:len] = src[0:len], or zeros where src is null: whole vectors, then the rest one at a time.
template <int VW>
LR_INLINE void copy_floats(const float* src, float* dst, int64_t len) {
  using V = typename Vec<VW>::V;
  int64_t i = 0;
  for (; i + VW <= len; i += VW) vstore<VW>(dst + i, src ? vload<VW>(src + i) : V{});
  for (; i < len; ++i) dst[i] = src ? src[i] : 0.0f;
}

// V[e][c][t] for every tile t of block b and every channel c, for S x S input tiles (S = K + 3).
// Per channel, each run's S input rows are split into column phases at the run's columns of a
// block-wide buffer P[row][phase][t] = input(row, 4t + phase) of tile t, phases 4 to S-1 being
// the next tile's 0 to S-5; then the transform runs over the whole block, VW tiles per vector
// whatever the runs.
template <int VW, int K>
LR_INLINE void input_block(const Plan& p, int64_t b, float* v, float* work) {
  using V = typename Vec<VW>::V;
  constexpr int S = K + 3, halo = K - 1;
  const ConvGeometry& g = *p.g;
  const int64_t plen = p.phase_len, rstride = S * plen;
  float* phases = work;                      // [S rows][S phases][plen]
  float* row_buffer = work + S * S * plen;  // one zero-padded input row of a run
  const int64_t groups = ceil_div(std::min(p.block, p.total_tiles - b * p.block), VW);
  for (int64_t c = 0; c < g.c; ++c) {
    // Forced inline: a lambda does not inherit its caller's target instruction set, so a call to
    // it would run these vectors without AVX-512 or AVX2.
    for_each_run(p, b, [&](int64_t n, int64_t th, int64_t tw0, int64_t len, int64_t col) __attribute__((always_inline)) {
      const int64_t rg = ceil_div(len, VW);  // vectors of the run (the last one runs over)
      const int64_t row_len = 4 * rg * VW + halo;
      const int64_t x0 = 4 * tw0 - g.pl;  // image column of the row's first element
      const int64_t lo = std::clamp<int64_t>(-x0, 0, row_len), hi = std::clamp<int64_t>(g.w - x0, lo, row_len);
      // The padding columns of the row buffer are cleared once for the run's S rows, which
      // then write only the image's columns [lo, hi): two fills and a copy of a few dozen
      // floats for every row were as many library calls (a tenth of a small-plane network's time).
      if (!p.padded) {
        std::fill(row_buffer, row_buffer + lo, 0.0f);
        std::fill(row_buffer + hi, row_buffer + row_len, 0.0f);
      }
      for (int r = 0; r < S; ++r) {
        float* pr = phases + r * rstride + col;
        // The run's input row, row_len floats of it read (past the run only into lanes past the
        // run): in the padded input (running into the next row or the slack after the last
        // plane), or copied with its padding.
        const float* row;
        if (p.padded) {
          row = p.padded + (n * g.c + c) * p.x_plane + (4 * th + r) * p.x_pitch + 4 * tw0;
        } else {
          const int64_t ih = 4 * th + r - g.pt;
          if (ih < 0 || ih >= g.h)
            copy_floats<VW>(nullptr, row_buffer + lo, hi - lo);
          else
            copy_floats<VW>(p.x + ((n * g.c + c) * g.h + ih) * g.w + x0 + lo, row_buffer + lo, hi - lo);
          row = row_buffer;
        }
        split_phases<VW>(row, rg, pr, pr + plen, pr + 2 * plen, pr + 3 * plen);
        // Phases 4 to S-1 are phases 0 to S-5 one tile on; the run's last tile takes its from
        // the row, past the run (that element of phases 0 to S-5 is the next run's, rewritten later).
        for (int j = 0; j < halo; ++j) pr[j * plen + len] = row[4 * len + j];
        for (int j = 4; j < S; ++j)
          for (int64_t q = 0; q < rg; ++q)
            vstore<VW>(pr + j * plen + q * VW, vload<VW>(pr + (j - 4) * plen + 1 + q * VW));
      }
    });
    float* vc = v + c * p.pitch;
    for (int64_t q = 0; q < groups; ++q) {
      V cols[S][S];  // cols[k][j] = (B^T d)[k][j]
      for (int j = 0; j < S; ++j) {
        const float* s = phases + j * plen + q * VW;
        V d[S], o[S];
        for (int r = 0; r < S; ++r) d[r] = vload<VW>(s + r * rstride);
        input_transform<K, V>(d, o);
        for (int k = 0; k < S; ++k) cols[k][j] = o[k];
      }
      for (int k = 0; k < S; ++k) {
        V o[S];
        input_transform<K, V>(cols[k], o);
        for (int l = 0; l < S; ++l) vstore<VW>(vc + (k * S + l) * p.v_plane + q * VW, o[l]);
      }
    }
  }
}

// The output tiles of block b from M[e][o][t], every output channel, plus bias and ReLU: the
// transform over the whole block into Y[i][j][t] (output (4 th + i, 4 tw + j) of tile t), then
// per run the four output rows merged from their column phases.
template <int VW, int K>
LR_INLINE void output_block(const Plan& p, int64_t b, const float* m, float* work) {
  using V = typename Vec<VW>::V;
  constexpr int S = K + 3;
  const ConvGeometry& g = *p.g;
  const int64_t plen = p.phase_len;
  float* y = work;                // [4 rows][4 phases][plen]
  float* row = work + 16 * plen;  // one merged output row of a run
  const int64_t groups = ceil_div(std::min(p.block, p.total_tiles - b * p.block), VW);
  for (int64_t o = 0; o < g.o; ++o) {
    const float* mo = m + o * p.pitch;
    const V bias = (p.bias ? p.bias[o] : 0.0f) - V{};
    for (int64_t q = 0; q < groups; ++q) {
      V cols[4][S];  // cols[i][l] = (A^T M)[i][l]
      for (int l = 0; l < S; ++l) {
        const float* s = mo + l * p.m_plane + q * VW;
        const int64_t ks = S * p.m_plane;
        V mk[S], t[4];
        for (int k = 0; k < S; ++k) mk[k] = vload<VW>(s + k * ks);
        output_transform<K, V>(mk, t);
        for (int i = 0; i < 4; ++i) cols[i][l] = t[i];
      }
      for (int i = 0; i < 4; ++i) {
        V t[4];
        output_transform<K, V>(cols[i], t);
        for (int j = 0; j < 4; ++j) {
          t[j] += bias;
          if (p.relu && !p.residual) t[j] = t[j] > V{} ? t[j] : V{};  // NaN -> 0, as the relu op
          vstore<VW>(y + (i * 4 + j) * plen + q * VW, t[j]);
        }
      }
    }
    for_each_run(p, b, [&](int64_t n, int64_t th, int64_t tw0, int64_t len, int64_t col) {
      const int64_t ow0 = 4 * tw0, width = std::min(4 * len, g.out_w - ow0);
      const int64_t rows = std::min<int64_t>(4, g.out_h - 4 * th);
      const int64_t at = ((n * g.o + o) * g.out_h + 4 * th) * g.out_w + ow0;
      float* dst = p.out + at;
      for (int64_t i = 0; i < rows; ++i) {
        const float* yi = y + i * 4 * plen + col;
        for (int64_t q = 0; q * VW < len; ++q)
          merge_phases<VW>(vload<VW>(yi + q * VW), vload<VW>(yi + plen + q * VW), vload<VW>(yi + 2 * plen + q * VW),
                           vload<VW>(yi + 3 * plen + q * VW), row + q * 4 * VW);
        if (!p.residual) {
          std::memcpy(dst + i * g.out_w, row, sizeof(float) * width);
          continue;
        }
        // The residual joins as the row is written, then the ReLU (its rule: NaN -> 0).
        const float* r = p.residual + at + i * g.out_w;
        float* d = dst + i * g.out_w;
        if (p.relu)
          for (int64_t j = 0; j < width; ++j) {
            const float v = row[j] + r[j];
            d[j] = v > 0.0f ? v : 0.0f;
          }
        else
          for (int64_t j = 0; j < width; ++j) d[j] = row[j] + r[j];
      }
    });
  }
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 misreads arrays of vectors
// m[i][t] = sum_c u[c][i] * v[c][t] for MR rows and NV vectors of columns.
template <int VW, int MR, int NV>
LR_INLINE void product_tile(int64_t k, const float* __restrict u, const float* __restrict v, int64_t ldv,
                            float* __restrict m, int64_t ldm) {
  using V = typename Vec<VW>::V;
  V acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) acc[i][j] = V{};
  for (int64_t c = 0; c < k; ++c, u += MR, v += ldv) {
    V b[NV];
    for (int j = 0; j < NV; ++j) b[j] = vload<VW>(v + j * VW);
    for (int i = 0; i < MR; ++i) {
      const V a = u[i] - V{};  // s - 0 folds to a broadcast
      for (int j = 0; j < NV; ++j) acc[i][j] += a * b[j];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) vstore<VW>(m + i * ldm + j * VW, acc[i][j]);
}
#pragma GCC diagnostic pop

// One block: input transform, S^2 products, output transform.
template <int VW, int MR, int NV, int K>
LR_INLINE void run_block(const Plan& p, int64_t b, float* v, float* m, float* work) {
  constexpr int E = (K + 3) * (K + 3);
  const ConvGeometry& g = *p.g;
  constexpr int64_t NR = VW * NV;
  static_assert(kBlockTiles % NR == 0, "blocks must hold whole column strips");
  const int64_t ncols = std::min(p.block, p.total_tiles - b * p.block);
  input_block<VW, K>(p, b, v, work);
  static_assert(NV == 3, "the last strip is cut to 1, 2 or 3 vectors");
  // Whole strips, then a last one of just the vectors the block's tiles need (blocks smaller
  // than a strip, or not a multiple of it, compute no columns past their tiles).
  const int64_t strips = ncols / NR, tail = ceil_div(ncols - strips * NR, VW);
  for (int e = 0; e < E; ++e) {
    const float* ve = v + e * p.v_plane;
    const float* ue = p.u + e * p.o_strips * g.c * MR;
    float* me = m + e * p.m_plane;
    // A column strip of V (c x NR) stays in L1 while the strips of U_e stream past it.
    for (int64_t s = 0; s < strips; ++s)
      for (int64_t ob = 0; ob < p.o_strips; ++ob)
        product_tile<VW, MR, NV>(g.c, ue + ob * g.c * MR, ve + s * NR, p.pitch, me + ob * MR * p.pitch + s * NR, p.pitch);
    const int64_t s0 = strips * NR;
    for (int64_t ob = 0; tail > 0 && ob < p.o_strips; ++ob) {
      const float* uo = ue + ob * g.c * MR;
      float* mo = me + ob * MR * p.pitch + s0;
      if (tail == 3) product_tile<VW, MR, 3>(g.c, uo, ve + s0, p.pitch, mo, p.pitch);
      else if (tail == 2) product_tile<VW, MR, 2>(g.c, uo, ve + s0, p.pitch, mo, p.pitch);
      else product_tile<VW, MR, 1>(g.c, uo, ve + s0, p.pitch, mo, p.pitch);
    }
  }
  output_block<VW, K>(p, b, m, work);
}

// t = G g for three filter taps down a column (or across a row of G g):
//   G = [1 0 0; -1/3 -1/3 -1/3; 1/3 -1/3 1/3; 1/15 2/15 4/15; -16/15 8/15 -4/15; 0 0 1]
template <typename V>
LR_INLINE void filter_transform3(V g0, V g1, V g2, V* t) {
  const V s02 = g0 + g2;
  t[0] = g0;
  t[1] = (s02 + g1) * (-1.0f / 3);
  t[2] = (s02 - g1) * (1.0f / 3);
  t[3] = (g0 + g1 * 2.0f + g2 * 4.0f) * (1.0f / 15);
  t[4] = (g1 * 8.0f - g0 * 16.0f - g2 * 4.0f) * (1.0f / 15);
  t[5] = g2;
}

// t = G g for five filter taps (points 0, 1, -1, 2, -2, 1/2, -1/2, infinity; row 0 negated as
// B^T's): G[k][i] = a_k^i / prod_{j != k} (a_k - a_j), and the last tap for infinity:
//   G = [1      0      0     0      0
//        -2/9  -2/9   -2/9  -2/9   -2/9
//        -2/9   2/9   -2/9   2/9   -2/9
//        1/90   1/45   2/45  4/45   8/45
//        1/90  -1/45   2/45 -4/45   8/45
//        32/45  16/45  8/45  4/45   2/45
//        32/45 -16/45  8/45 -4/45   2/45
//        0      0      0     0      1]
// a and -a share the denominator: their rows are one sum and one difference.
template <typename V>
LR_INLINE void filter_transform5(const V* g, V* t) {
  t[0] = g[0];
  t[7] = g[4];
  const V e1 = g[0] + g[2] + g[4], o1 = g[1] + g[3];
  t[1] = (e1 + o1) * (-2.0f / 9);
  t[2] = (e1 - o1) * (-2.0f / 9);
  const V e2 = g[0] + g[2] * 4.0f + g[4] * 16.0f, o2 = g[1] * 2.0f + g[3] * 8.0f;
  t[3] = (e2 + o2) * (1.0f / 90);
  t[4] = (e2 - o2) * (1.0f / 90);
  const V e3 = g[0] + g[2] * 0.25f + g[4] * 0.0625f, o3 = g[1] * 0.5f + g[3] * 0.125f;
  t[5] = (e3 + o3) * (32.0f / 45);
  t[6] = (e3 - o3) * (32.0f / 45);
}

template <int K, typename V>
LR_INLINE void filter_transform(const V* g, V* t) {
  if constexpr (K == 3) filter_transform3<V>(g[0], g[1], g[2], t);
  else filter_transform5<V>(g, t);
}

// t = G^T u for six values u[0], u[stride], ..., u[5 stride]: the adjoint of filter_transform3.
LR_INLINE void filter_adjoint6(const double* u, int64_t stride, double* t) {
  const double u0 = u[0], u1 = u[stride], u2 = u[2 * stride], u3 = u[3 * stride], u4 = u[4 * stride], u5 = u[5 * stride];
  t[0] = u0 + (u2 - u1) / 3 + (u3 - 16 * u4) / 15;
  t[1] = -(u1 + u2) / 3 + (2 * u3 + 8 * u4) / 15;
  t[2] = (u2 - u1) / 3 + (4 * u3 - 4 * u4) / 15 + u5;
}

// U[e][o / mr][c][o % mr] = (G g G^T)[e] for K x K filter g = w[o, c] (zero for O <= o < o_pad),
// for the strips of output channels [ob0, ob1). Lane l of a vector holds output o = ob mr + l % mr
// of input channel c0 + l / mr (mr divides VW), so each element's vector is one contiguous store.
template <int VW, int K>
LR_INLINE void filter_strips(const ConvGeometry& g, const float* w, int64_t mr, int64_t o_strips, int64_t ob0,
                             int64_t ob1, float* u) {
  using V = typename Vec<VW>::V;
  constexpr int S = K + 3;
  const int64_t e_stride = o_strips * g.c * mr, per = VW / mr;
  for (int64_t ob = ob0; ob < ob1; ++ob)
    for (int64_t c0 = 0; c0 < g.c; c0 += per) {
      const int64_t nc = std::min(per, g.c - c0), lanes = nc * mr;
      float taps[K * K][VW] = {};
      for (int64_t l = 0; l < lanes; ++l) {
        const int64_t o = ob * mr + l % mr;
        if (o >= g.o) continue;
        const float* f = w + (o * g.c + c0 + l / mr) * K * K;
        for (int k = 0; k < K * K; ++k) taps[k][l] = f[k];
      }
      V gf[S][K];  // G g
      for (int j = 0; j < K; ++j) {
        V col[K], t[S];
        for (int i = 0; i < K; ++i) col[i] = vload<VW>(taps[i * K + j]);
        filter_transform<K, V>(col, t);
        for (int a = 0; a < S; ++a) gf[a][j] = t[a];
      }
      float* dst = u + (ob * g.c + c0) * mr;
      for (int a = 0; a < S; ++a) {
        V t[S];
        filter_transform<K, V>(gf[a], t);
        for (int b = 0; b < S; ++b) {
          float* d = dst + (a * S + b) * e_stride;
          // The last channels store part of a vector: the rest would run into the next strip.
          if (lanes == VW)
            vstore<VW>(d, t[b]);
          else
            vstore_partial<VW>(d, t[b], lanes);
        }
      }
    }
}

using FilterFn = void (*)(const ConvGeometry&, const float*, int64_t, int64_t, int64_t, int64_t, float*);
template <int K>
LR_AVX512 void filter_avx512(const ConvGeometry& g, const float* w, int64_t mr, int64_t s, int64_t b0, int64_t b1, float* u) { filter_strips<16, K>(g, w, mr, s, b0, b1, u); }
template <int K>
LR_AVX2 void filter_avx2(const ConvGeometry& g, const float* w, int64_t mr, int64_t s, int64_t b0, int64_t b1, float* u) { filter_strips<8, K>(g, w, mr, s, b0, b1, u); }
template <int K>
void filter_base(const ConvGeometry& g, const float* w, int64_t mr, int64_t s, int64_t b0, int64_t b1, float* u) { filter_strips<4, K>(g, w, mr, s, b0, b1, u); }

using BlockFn = void (*)(const Plan&, int64_t, float*, float*, float*);
// Per instruction set: vector width, product rows (MR) and vectors of columns (NV), sized to
// the register file: 8 x 3 zmm (24 of 32), 4 x 3 ymm or xmm (12 of 16) accumulators.
template <int K>
LR_AVX512 void block_avx512(const Plan& p, int64_t b, float* v, float* m, float* w) { run_block<16, 8, 3, K>(p, b, v, m, w); }
template <int K>
LR_AVX2 void block_avx2(const Plan& p, int64_t b, float* v, float* m, float* w) { run_block<8, 4, 3, K>(p, b, v, m, w); }
template <int K>
void block_base(const Plan& p, int64_t b, float* v, float* m, float* w) { run_block<4, 4, 3, K>(p, b, v, m, w); }

struct Kernel {
  int vw, mr;
  BlockFn fn;
  FilterFn filter;
};

// The kernels of F(4x4, KxK) at the GEMM's instruction set.
template <int K>
Kernel pick_kernel() {
  const char* isa = gemm_isa();
  if (std::strcmp(isa, "avx512") == 0) return {16, 8, block_avx512<K>, filter_avx512<K>};
  if (std::strcmp(isa, "avx2") == 0) return {8, 4, block_avx2<K>, filter_avx2<K>};
  return {4, 4, block_base<K>, filter_base<K>};
}


// ---- filter gradient --------------------------------------------------------------------
// The forward's adjoint: with S = (G g G^T) .* (B^T d B) and Y = A^T S A,
//   dL/dg = sum over tiles and images of G^T [ (A dY A^T) .* (B^T d B) ] G,
// so, summed over tiles, 36 matrix products accumulate into W[36][C][O]:
//   W_e [C x O] += V_e [C x tiles] @ N_e [tiles x O],  N = A dY A^T per tile,
// and the filter gradient is G^T W G per (output, input) channel pair. V comes from the
// forward's input transform (VW tiles a vector, [e][c][t]); the products broadcast it and
// want N with output channels along the vector lanes, [e][t][o], so the output gradient is
// transposed (VW channels by VW pixels, in registers) as its tiles are read, before the
// transform: 16 values a tile rather than N's 36.

// m = A y for one column (or row) of a 4x4 output-gradient tile: the adjoint of
// output_transform6, m_k = sum_i A^T[i][k] y_i.
template <typename V>
LR_INLINE void output_adjoint4(V y0, V y1, V y2, V y3, V* m) {
  const V s02 = y0 + y2, s13 = y1 + y3;
  m[0] = y0;
  m[1] = s02 + s13;
  m[2] = s02 - s13;
  m[3] = y0 + y1 * 2.0f + y2 * 4.0f + y3 * 8.0f;
  m[4] = y0 - y1 * 0.5f + y2 * 0.25f - y3 * 0.125f;
  m[5] = y3;
}

struct GradPlan {
  Plan p;             // tiling and V as in the forward (its output fields unused)
  const float* gy;    // [n][o][out_h][out_w]
  int64_t c_pad;      // rows of V and W: C rounded up to the product's MR (the extra rows zero)
  int64_t o_pad;      // columns of N and W: O rounded up to whole vectors (the extra columns zero)
  int64_t n_plane;    // floats from one tile element's N to the next
};

// N[e][t][o] = (A dY A^T)[e] for tile t of block b, every output channel: per run of tiles
// along a tile row, VW tiles at a time, each group of VW channels is transposed from the
// output gradient's rows into px[tile][pixel][channel], then transformed tile by tile.
// Pixels past the output's edge and channels past O read as zero.
template <int VW>
LR_INLINE void gy_block(const GradPlan& q, int64_t b, float* nbuf, float* px) {
  using V = typename Vec<VW>::V;
  const Plan& p = q.p;
  const ConvGeometry& g = *p.g;
  const int64_t plane = g.out_h * g.out_w;
  for_each_run(p, b, [&](int64_t n, int64_t th, int64_t tw0, int64_t len, int64_t col) {
    for (int64_t t0 = 0; t0 < len; t0 += VW) {
      const int64_t tiles = std::min<int64_t>(VW, len - t0), chunks = ceil_div(4 * tiles, VW);
      const int64_t ow0 = 4 * (tw0 + t0);
      for (int64_t ov = 0; ov < q.o_pad; ov += VW) {
        for (int r = 0; r < 4; ++r) {
          const int64_t oh = 4 * th + r;
          for (int64_t k = 0; k < chunks; ++k) {
            const int64_t ow = ow0 + k * VW;
            const int64_t valid = oh < g.out_h ? std::clamp<int64_t>(g.out_w - ow, 0, VW) : 0;
            V rows[VW];
            for (int i = 0; i < VW; ++i) {
              if (ov + i >= g.o || valid == 0) {
                rows[i] = V{};
                continue;
              }
              const float* src = q.gy + (n * g.o + ov + i) * plane + oh * g.out_w + ow;
              rows[i] = valid == VW ? vload<VW>(src) : vload_partial<VW>(src, valid);
            }
            transpose_square<VW>(rows);  // rows[j]: the channels of pixel ow + j
            for (int j = 0; j < VW; ++j) {
              const int64_t pixel = k * VW + j;  // of the group: tile pixel / 4, column pixel % 4
              vstore<VW>(px + ((pixel / 4) * 16 + r * 4 + pixel % 4) * VW, rows[j]);
            }
          }
        }
        for (int64_t t = 0; t < tiles; ++t) {
          const float* s = px + t * 16 * VW;
          V rowm[4][6];  // rowm[r][l] = (dY A^T)[r][l]
          for (int r = 0; r < 4; ++r)
            output_adjoint4<V>(vload<VW>(s + (4 * r) * VW), vload<VW>(s + (4 * r + 1) * VW),
                               vload<VW>(s + (4 * r + 2) * VW), vload<VW>(s + (4 * r + 3) * VW), rowm[r]);
          float* dst = nbuf + (col + t0 + t) * q.o_pad + ov;
          for (int l = 0; l < 6; ++l) {
            V m[6];
            output_adjoint4<V>(rowm[0][l], rowm[1][l], rowm[2][l], rowm[3][l], m);
            for (int k = 0; k < 6; ++k) vstore<VW>(dst + (k * 6 + l) * q.n_plane, m[k]);
          }
        }
      }
    }
  });
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 misreads arrays of vectors
// w[i][j] += sum over t < k of v[i][t] * n[t][j] for MR rows and NV vectors of columns. The
// block's sum starts from zero and is added at the end: a sum of block sums rounds far less
// than one running sum over every tile, which G^T W G's cancellation would magnify.
template <int VW, int MR, int NV>
LR_INLINE void grad_product_tile(int64_t k, const float* __restrict v, int64_t ldv, const float* __restrict n,
                                 int64_t ldn, float* __restrict w, int64_t ldw) {
  using V = typename Vec<VW>::V;
  V acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) acc[i][j] = V{};
  for (int64_t t = 0; t < k; ++t, n += ldn) {
    V bv[NV];
    for (int j = 0; j < NV; ++j) bv[j] = vload<VW>(n + j * VW);
    for (int i = 0; i < MR; ++i) {
      const V a = v[i * ldv + t] - V{};  // s - 0 folds to a broadcast
      for (int j = 0; j < NV; ++j) acc[i][j] += a * bv[j];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) vstore<VW>(w + i * ldw + j * VW, vload<VW>(w + i * ldw + j * VW) + acc[i][j]);
}
#pragma GCC diagnostic pop

// One block into this thread's accumulators w [36][c_pad][o_pad]: the input and output-gradient
// transforms, then the 36 products in strips of NV vectors of output channels (two strips of 2
// rather than 3 + 1), each strip of N_e staying in L1 while the rows of V_e stream past it.
template <int VW, int MR>
LR_INLINE void run_grad_block(const GradPlan& q, int64_t b, float* v, float* nbuf, float* work, float* w) {
  const Plan& p = q.p;
  const int64_t ncols = std::min(p.block, p.total_tiles - b * p.block), vectors = q.o_pad / VW;
  input_block<VW, 3>(p, b, v, work);
  gy_block<VW>(q, b, nbuf, work);
  for (int e = 0; e < 36; ++e) {
    const float* ve = v + e * p.v_plane;
    const float* ne = nbuf + e * q.n_plane;
    float* we = w + e * q.c_pad * q.o_pad;
    for (int64_t j = 0; j < vectors;) {
      const int64_t nv = vectors - j == 4 ? 2 : std::min<int64_t>(3, vectors - j);
      for (int64_t c = 0; c < q.c_pad; c += MR) {
        const float* vc = ve + c * p.pitch;
        float* wc = we + c * q.o_pad + j * VW;
        if (nv == 3) grad_product_tile<VW, MR, 3>(ncols, vc, p.pitch, ne + j * VW, q.o_pad, wc, q.o_pad);
        else if (nv == 2) grad_product_tile<VW, MR, 2>(ncols, vc, p.pitch, ne + j * VW, q.o_pad, wc, q.o_pad);
        else grad_product_tile<VW, MR, 1>(ncols, vc, p.pitch, ne + j * VW, q.o_pad, wc, q.o_pad);
      }
      j += nv;
    }
  }
}

using GradBlockFn = void (*)(const GradPlan&, int64_t, float*, float*, float*, float*);
// MR rows of V by up to 3 vectors of output channels: 8 x 3 zmm, 4 x 3 ymm or xmm accumulators.
LR_AVX512 void grad_block_avx512(const GradPlan& q, int64_t b, float* v, float* n, float* wk, float* w) { run_grad_block<16, 8>(q, b, v, n, wk, w); }
LR_AVX2 void grad_block_avx2(const GradPlan& q, int64_t b, float* v, float* n, float* wk, float* w) { run_grad_block<8, 4>(q, b, v, n, wk, w); }
void grad_block_base(const GradPlan& q, int64_t b, float* v, float* n, float* wk, float* w) { run_grad_block<4, 4>(q, b, v, n, wk, w); }

struct GradKernel {
  int vw, mr;
  GradBlockFn fn;
};

GradKernel pick_grad_kernel() {
  const char* isa = gemm_isa();
  if (std::strcmp(isa, "avx512") == 0) return {16, 8, grad_block_avx512};
  if (std::strcmp(isa, "avx2") == 0) return {8, 4, grad_block_avx2};
  return {4, 4, grad_block_base};
}

// The tiling shared by the forward and the filter gradient: 4x4 output tiles numbered over
// (image, tile row, tile column) in blocks of `block`, V's layout for `v_rows` channel rows, and
// for narrow images the input zero-padded up front into `padded`, to whole input tiles of
// 4 + halo (the kernel size less one).
Plan tile_plan(const ConvGeometry& g, const float* x, int64_t block, int vw, int64_t v_rows, int halo, Scratch& padded) {
  Plan p{};
  p.g = &g;
  p.x = x;
  p.tiles_h = ceil_div(g.out_h, 4);
  p.tiles_w = ceil_div(g.out_w, 4);
  p.tiles_per_image = p.tiles_h * p.tiles_w;
  p.total_tiles = g.n * p.tiles_per_image;
  p.block = block;
  p.pitch = block + vw;
  // One cache line more than the matrix: the transforms touch all S^2 matrices at once, and
  // strides of a multiple of 4 KiB would put them all in the same L1 set.
  p.v_plane = v_rows * p.pitch + 16;
  p.phase_len = block + 2 * vw;
  // Narrow images have short runs, whose per-row padding would cost more than one padded
  // copy of the whole input made up front; wider ones pad each row as the transform reads it,
  // in cache, instead of another pass over memory.
  if (p.tiles_w <= kMaxTilesPadded) {
    p.x_pitch = 4 * p.tiles_w + halo;
    p.x_plane = (4 * p.tiles_h + halo) * p.x_pitch;
    const int64_t slack = 4 * vw;
    float* buf = padded.get(g.n * g.c * p.x_plane + slack, false);
    std::fill(buf + g.n * g.c * p.x_plane, buf + g.n * g.c * p.x_plane + slack, 0.0f);
    parallel_for(g.n * g.c, 4, [&](int64_t lo, int64_t hi) {
      pad_planes(g, x + lo * g.h * g.w, hi - lo, 4 * p.tiles_h + halo, p.x_pitch, buf + lo * p.x_plane);
    });
    p.padded = buf;
  }
  return p;
}

// Tiles per block of the forward for `tiles` tiles on `threads` threads: kBlockTiles, or a smaller
// multiple of kBlockQuantum where that cuts the tiles of the busiest thread by over a tenth
// (128 tiles on two threads: three blocks of 48 leave one thread 96, four of 32 give each 64).
// Blocks go to threads whole, so few blocks share the work unevenly.
int64_t forward_block_tiles(int64_t tiles, int64_t threads) {
  const auto busiest = [&](int64_t block) { return ceil_div(ceil_div(tiles, block), threads) * block; };
  int64_t best = kBlockTiles;
  if (threads < 2) return best;
  for (int64_t block = kBlockTiles - kBlockQuantum; block >= kBlockQuantum; block -= kBlockQuantum)
    if (10 * busiest(block) < 9 * busiest(best)) best = block;
  return best;
}

// F(4x4, 5x5)'s V and M take 64 matrices of C and O rows: at 48 tiles a block and 32 channels
// each they already fill 1 MiB, L2's size. Tiles per block, a multiple of kBlockQuantum, such
// that both stay within kBlock5Bytes: on two threads blocks of 16 measured 10% faster than 32
// (and 35% than 48) at 128 -> 128 channels on 32x32, 32 about 3% faster than 48 at 32 -> 32
// on 128x128.
constexpr int64_t kBlock5Bytes = int64_t(3) << 18;  // 768 KiB
int64_t block5_cap(int64_t rows, int vw) {
  const int64_t pitch = kBlock5Bytes / (64 * rows * int64_t(sizeof(float)));
  return std::max(kBlockQuantum, (pitch - vw) / kBlockQuantum * kBlockQuantum);
}

}  // namespace

bool winograd_applies(const ConvGeometry& g) {
  return (g.kh == 3 || g.kh == 5) && g.kw == g.kh && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.groups == 1;
}

bool winograd_filter_applies(const ConvGeometry& g) { return g.kh == 3 && winograd_applies(g); }

int64_t winograd_forward_count() { return g_forward_count.load(std::memory_order_relaxed); }

void winograd_conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* out,
                             bool relu, const float* residual) {
  g_forward_count.fetch_add(1, std::memory_order_relaxed);
  if (g.n == 0 || g.o == 0 || g.out_h <= 0 || g.out_w <= 0) return;
  if (g.c == 0) {  // no input channels: the output is the bias alone (and the residual)
    const int64_t plane = g.out_h * g.out_w;
    for (int64_t i = 0; i < g.n * g.o; ++i) {
      const float b = bias ? bias[i % g.o] : 0.0f;
      for (int64_t j = i * plane; j < (i + 1) * plane; ++j) {
        const float v = residual ? b + residual[j] : b;
        out[j] = relu && !(v > 0.0f) ? 0.0f : v;
      }
    }
    return;
  }
  const int ksize = static_cast<int>(g.kh), tile = ksize + 3, elements = tile * tile;
  const Kernel k = ksize == 3 ? pick_kernel<3>() : pick_kernel<5>();
  // The input and filter buffers are kept for the next call (layers repeat their shapes).
  thread_local Scratch t_padded, t_filter;
  const int64_t tiles = g.n * ceil_div(g.out_h, 4) * ceil_div(g.out_w, 4);
  int64_t block = forward_block_tiles(tiles, num_threads());
  if (ksize == 5) block = std::min(block, block5_cap(g.c + g.o, k.vw));
  Plan p = tile_plan(g, x, block, k.vw, g.c, ksize - 1, t_padded);
  p.bias = bias;
  p.out = out;
  p.relu = relu;
  p.residual = residual;
  p.o_strips = ceil_div(g.o, k.mr);
  p.o_pad = p.o_strips * k.mr;
  p.m_plane = p.o_pad * p.pitch + 16;
  float* u = t_filter.get(elements * p.o_pad * g.c, false);
  parallel_for(p.o_strips, 1, [&](int64_t lo, int64_t hi) { k.filter(g, w, k.mr, p.o_strips, lo, hi, u); });
  p.u = u;

  const int64_t v_size = elements * p.v_plane, m_size = elements * p.m_plane;
  // Input: S x S phases and a row (output: 4 x 4 and a row).
  const int64_t work_size = (elements + 4) * p.phase_len;
  const int64_t blocks = ceil_div(p.total_tiles, p.block);
  const int64_t parts = std::min<int64_t>(num_threads(), blocks);
  // Blocks handed out one at a time: threads on a shared machine progress unevenly.
  std::atomic<int64_t> next{0};
  parallel_for(parts, 1, [&](int64_t, int64_t) {
    thread_local Scratch t_buffers;
    // Zeroed once: pad columns of V are multiplied (never read back) and must not be NaN or
    // subnormal.
    float* v = t_buffers.get(v_size + m_size + work_size, true);
    for (int64_t b; (b = next.fetch_add(1, std::memory_order_relaxed)) < blocks;)
      k.fn(p, b, v, v + v_size, v + v_size + m_size);
  });
  t_padded.trim(kKeptFloats);
  t_filter.trim(kKeptFilterFloats);
}

int64_t winograd_backward_filter_count() { return g_filter_count.load(std::memory_order_relaxed); }

void winograd_conv2d_backward_filter(const ConvGeometry& g, const float* x, const float* gy, float* gw) {
  g_filter_count.fetch_add(1, std::memory_order_relaxed);
  const int64_t weights = g.o * g.c * 9;
  if (weights == 0) return;
  if (g.n == 0 || g.out_h <= 0 || g.out_w <= 0) {
    std::fill(gw, gw + weights, 0.0f);
    return;
  }
  const GradKernel k = pick_grad_kernel();
  thread_local Scratch t_padded, t_acc;
  GradPlan q{};
  q.c_pad = ceil_div(g.c, k.mr) * k.mr;
  q.o_pad = ceil_div(g.o, k.vw) * k.vw;
  q.p = tile_plan(g, x, kGradBlockTiles, k.vw, q.c_pad, 2, t_padded);
  q.gy = gy;
  q.n_plane = q.p.block * q.o_pad + 16;  // a cache line over, as V's planes
  const Plan& p = q.p;

  const int64_t v_size = 36 * p.v_plane, n_size = 36 * q.n_plane;
  const int64_t work_size = std::max<int64_t>(40 * p.phase_len, 16 * k.vw * k.vw);
  const int64_t acc_size = 36 * q.c_pad * q.o_pad;
  const int64_t blocks = ceil_div(p.total_tiles, p.block);
  // The blocks in a fixed number of contiguous chunks, each summed in block order into its own
  // accumulator, the accumulators added in chunk order below: the same gradient on every run.
  // Chunks are handed out as threads free up (threads on a shared machine progress unevenly).
  const int64_t chunks = std::min<int64_t>(blocks, 2 * int64_t(num_threads()));
  const int parts = static_cast<int>(std::min<int64_t>(num_threads(), chunks));
  float* acc = t_acc.get(chunks * acc_size, false);
  std::atomic<int64_t> next{0};
  parallel_for(parts, 1, [&](int64_t lo, int64_t hi) {
    thread_local Scratch t_buffers;
    float* v = t_buffers.get(v_size + n_size + work_size, true);
    // V's rows past C are multiplied into W's unused rows: zero, so never NaN or subnormal
    // (this thread's buffer may hold another shape's data).
    for (int e = 0; e < 36; ++e) std::fill(v + e * p.v_plane + g.c * p.pitch, v + e * p.v_plane + q.c_pad * p.pitch, 0.0f);
    for (int64_t part = lo; part < hi; ++part)
      for (int64_t chunk; (chunk = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) {
        float* w = acc + chunk * acc_size;
        std::fill(w, w + acc_size, 0.0f);
        for (int64_t b = chunk * blocks / chunks; b < (chunk + 1) * blocks / chunks; ++b)
          k.fn(q, b, v, v + v_size, v + v_size + n_size, w);
      }
    t_buffers.trim(kKeptFloats);
  });
  // gw[o][c] = G^T W[.][c][o] G, W summed over the chunks' accumulators in double, a row of
  // output channels at a time (contiguous in W); on the calling thread when small, as a wake-up
  // of the pool can cost more.
  parallel_for(g.c, std::max<int64_t>(1, (int64_t(1) << 16) / (36 * g.o * chunks)), [&](int64_t lo, int64_t hi) {
    std::vector<double> u(36 * g.o);
    for (int64_t c = lo; c < hi; ++c) {
      std::fill(u.begin(), u.end(), 0.0);
      for (int64_t chunk = 0; chunk < chunks; ++chunk)
        for (int e = 0; e < 36; ++e) {
          const float* row = acc + chunk * acc_size + (e * q.c_pad + c) * q.o_pad;
          double* ue = u.data() + e * g.o;
          for (int64_t o = 0; o < g.o; ++o) ue[o] += row[o];
        }
      for (int64_t o = 0; o < g.o; ++o) {
        double rows[6][3];  // rows[a] = (W G)[a]
        for (int a = 0; a < 6; ++a) filter_adjoint6(u.data() + 6 * a * g.o + o, g.o, rows[a]);
        float* dst = gw + (o * g.c + c) * 9;
        for (int j = 0; j < 3; ++j) {
          double col[3];
          filter_adjoint6(&rows[0][j], 3, col);
          for (int i = 0; i < 3; ++i) dst[i * 3 + j] = static_cast<float>(col[i]);
        }
      }
    }
  });
  t_padded.trim(kKeptFloats);
  t_acc.trim(kKeptFloats);
}

}  // namespace lrface::cpu
