// The engine's own CUDA kernels, for the ops cuDNN/cuBLAS do not cover. Plain C++ signatures
// (device pointers as void*/float*), so the bindings call them without CUDA headers. Each
// queues its work on the device's stream and returns; argument conventions follow the CPU
// kernels of the same name in ../cpu/.
#pragma once
#include <cstdint>
#include <vector>

#include "../cpu/optim.h"
#include "../cpu/pool.h"

namespace lrface::cuda {

// Broadcast shapes have at most this many axes on the device (the bindings check).
constexpr int kMaxRank = 8;

void binary(int device, int code, float* out, const float* a, const float* b, const std::vector<int64_t>& shape,
            const std::vector<int64_t>& a_shape, const std::vector<int64_t>& b_shape);
void unary(int device, int code, float* out, const float* x, int64_t n, float p0, float p1);
void unary_backward(int device, int code, float* gx, const float* gy, const float* x, const float* y, int64_t n, float p0,
                    float p1);
void reduce_axis(int device, int code, float* out, int32_t* index, const float* x, int64_t outer, int64_t n, int64_t inner);
// Index entries outside [0, n) are skipped (their gradient row stays zero).
void scatter_axis(int device, float* gx, const float* gy, const int32_t* index, int64_t outer, int64_t n, int64_t inner);
void permute(int device, void* out, const void* x, const std::vector<int64_t>& shape, const std::vector<int64_t>& perm,
             int64_t elem_size);
// dtype codes as DType: 0 float32, 1 int32, 2 uint8.
void cast(int device, int out_dtype, void* out, int in_dtype, const void* x, int64_t n);
// The tables are host arrays; they are copied to the device with the call.
void resample2d(int device, int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, const int32_t* h_index,
                const float* h_weight, int64_t h_taps, const int32_t* w_index, const float* w_weight, int64_t w_taps,
                const float* x, float* out);
void pixel_shuffle(int device, int64_t n, int64_t c, int64_t h, int64_t w, int64_t r, bool inverse, const float* in,
                   float* out);
// mode: 0 constant, 1 reflect, 2 replicate (as cpu::PadMode).
void pad2d(int device, int64_t planes, int64_t h, int64_t w, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int mode,
           float value, const float* x, float* out);
void pad2d_backward(int device, int64_t planes, int64_t h, int64_t w, int64_t pt, int64_t pb, int64_t pl, int64_t pr,
                    int mode, const float* gy, float* gx);

// Joining and cutting along the middle axis of [outer, n, inner] views, elements of 1 or 4 bytes.
void concat_axis(int device, void* out, const std::vector<const void*>& inputs, const std::vector<int64_t>& sizes,
                 int64_t outer, int64_t inner, int64_t elem_size);
void slice_axis(int device, const void* x, void* out, int64_t outer, int64_t n, int64_t m, int64_t inner, int64_t start,
                int64_t step, int64_t elem_size);
void slice_axis_backward(int device, const float* gy, float* gx, int64_t outer, int64_t n, int64_t m, int64_t inner,
                         int64_t start, int64_t step);

// Axis ops over [outer, n, inner] views, as ../cpu/activation.h.
void softmax(int device, const float* x, float* y, int64_t outer, int64_t n, int64_t inner, bool log);
void softmax_backward(int device, const float* y, const float* gy, float* gx, int64_t outer, int64_t n, int64_t inner,
                      bool log);
void l2_normalize(int device, const float* x, float* y, int64_t outer, int64_t n, int64_t inner, float eps);
void l2_normalize_backward(int device, const float* x, const float* gy, float* gx, int64_t outer, int64_t n, int64_t inner,
                           float eps);
void prelu(int device, const float* x, const float* w, float* y, int64_t outer, int64_t c, int64_t inner, bool shared);
// Either gradient may be null. gw sums in double in a fixed order (same result on every run).
void prelu_backward(int device, const float* x, const float* w, const float* gy, float* gx, float* gw, int64_t outer,
                    int64_t c, int64_t inner, bool shared);
void mfm(int device, const float* x, float* y, int64_t outer, int64_t half, int64_t inner);
void mfm_backward(int device, const float* x, const float* gy, float* gx, int64_t outer, int64_t half, int64_t inner);
// The same mask as the CPU for the same (seed, stream, offset): one Philox generator for both.
void dropout(int device, const float* x, float* y, int64_t n, double p, float scale, uint64_t seed, uint32_t stream,
             uint64_t offset);

// The generator kernels of ../cpu/random.h on the device: the same values for the same
// (seed, offset) (uniform and int bit for bit; normal up to the device's double log/cos/sin).
void random_uniform(int device, float* out, int64_t n, uint64_t seed, uint64_t offset, double low, double high);
void random_normal(int device, float* out, int64_t n, uint64_t seed, uint64_t offset, double mean, double std);
void random_int(int device, int32_t* out, int64_t n, uint64_t seed, uint64_t offset, int64_t low, int64_t high);

// Pooling with the CPU kernels' rules (first maximum wins, NaN wins; PyTorch's divisors and
// adaptive windows). The backward passes zero gx and add with atomics.
void max_pool2d(int device, const cpu::PoolGeometry& g, const float* x, float* out, int32_t* index);
void max_pool2d_backward(int device, const cpu::PoolGeometry& g, const float* gy, const int32_t* index, float* gx);
void avg_pool2d(int device, const cpu::PoolGeometry& g, bool count_include_pad, int64_t pb, int64_t pr, const float* x,
                float* out);
void avg_pool2d_backward(int device, const cpu::PoolGeometry& g, bool count_include_pad, int64_t pb, int64_t pr,
                         const float* gy, float* gx);
void adaptive_avg_pool2d(int device, int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, const float* x,
                         float* out);
void adaptive_avg_pool2d_backward(int device, int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow,
                                  const float* gy, float* gx);

// out[ch] = the sum of x [n, c, hw] over images and positions (../cpu/reduce.h), one block per
// channel.
void channel_sum(int device, float* out, const float* x, int64_t n, int64_t c, int64_t hw);

// Batch norm as ../cpu/norm.h: statistics per channel in double, two passes; weight, bias and
// the running statistics may be null (the running ones are updated in place in training).
void batch_norm_forward(int device, int64_t n, int64_t c, int64_t hw, const float* x, const float* weight,
                        const float* bias, float* running_mean, float* running_var, bool training, float momentum,
                        float eps, float* mean, float* invstd, float* y);
void batch_norm_backward(int device, int64_t n, int64_t c, int64_t hw, const float* x, const float* gy,
                         const float* weight, const float* mean, const float* invstd, bool training, float* gx, float* gw,
                         float* gb);

// Adam over many tensors in place (../cpu/optim.h's rule), a few launches for the lot.
void adam_update(int device, const cpu::AdamHyper& h, const std::vector<cpu::AdamSlot>& slots);
void sgd_update(int device, const cpu::SgdHyper& h, const std::vector<cpu::SgdSlot>& slots);

}  // namespace lrface::cuda
