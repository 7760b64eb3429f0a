#pragma once
#include <cstdint>

namespace lrface::cpu {

// Separable resampling of planes [planes, h, w] -> [planes, oh, ow], rows (the height axis)
// first, then columns:
//   tmp[i, :]  = sum_t h_weight[i*h_taps + t] * x[h_index[i*h_taps + t], :]
//   out[i, j]  = sum_t w_weight[j*w_taps + t] * tmp[i, w_index[j*w_taps + t]]
// Zero weights are skipped: their element is never read (an Inf there does not become NaN).
// The same kernel applies the transpose (the gradient) when given the transposed tables.
void resample2d(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, const int32_t* h_index,
                const float* h_weight, int64_t h_taps, const int32_t* w_index, const float* w_weight, int64_t w_taps,
                const float* x, float* out);

// Sub-pixel rearrangement between s = [n, c, h*r, w*r] and u = [n, c*r*r, h, w]:
// s[b, ch, y*r + i, x*r + j] = u[b, (ch*r + i)*r + j, y, x]. inverse = false writes s from u
// (pixel shuffle), true writes u from s (pixel unshuffle).
void pixel_shuffle(int64_t n, int64_t c, int64_t h, int64_t w, int64_t r, bool inverse, const float* in, float* out);

}  // namespace lrface::cpu
