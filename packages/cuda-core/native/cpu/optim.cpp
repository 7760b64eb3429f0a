#include "optim.h"

#include <algorithm>

#include "../core/thread_pool.h"
#include "gemm.h"

namespace lrface::cpu {

namespace {

// Elements [lo, hi) of one slot; the restrict pointers let the compiler vectorise the rule
// (sqrt and division included), compiled per instruction set.
inline __attribute__((always_inline)) void adam_span(const AdamHyper& h, const AdamSlot& s, int64_t lo, int64_t hi) {
  float* __restrict p = s.param;
  const float* __restrict g = s.grad;
  float* __restrict m = s.exp_avg;
  float* __restrict v = s.exp_avg_sq;
  for (int64_t i = lo; i < hi; ++i) adam_element(h, s.step_size, s.denom_scale, p, g, m, v, i);
}
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma"))) void adam_span_avx512(const AdamHyper& h,
                                                                                        const AdamSlot& s, int64_t lo,
                                                                                        int64_t hi) {
  adam_span(h, s, lo, hi);
}
__attribute__((target("avx2,fma"))) void adam_span_avx2(const AdamHyper& h, const AdamSlot& s, int64_t lo, int64_t hi) {
  adam_span(h, s, lo, hi);
}
void adam_span_base(const AdamHyper& h, const AdamSlot& s, int64_t lo, int64_t hi) { adam_span(h, s, lo, hi); }

inline __attribute__((always_inline)) void sgd_span(const SgdHyper& h, const SgdSlot& s, int64_t lo, int64_t hi) {
  float* __restrict p = s.param;
  const float* __restrict g = s.grad;
  float* __restrict b = s.momentum_buffer;
  for (int64_t i = lo; i < hi; ++i) sgd_element(h, s.first, p, g, b, i);
}
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma"))) void sgd_span_avx512(const SgdHyper& h,
                                                                                       const SgdSlot& s, int64_t lo,
                                                                                       int64_t hi) {
  sgd_span(h, s, lo, hi);
}
__attribute__((target("avx2,fma"))) void sgd_span_avx2(const SgdHyper& h, const SgdSlot& s, int64_t lo, int64_t hi) {
  sgd_span(h, s, lo, hi);
}
void sgd_span_base(const SgdHyper& h, const SgdSlot& s, int64_t lo, int64_t hi) { sgd_span(h, s, lo, hi); }

// Applies span, compiled for the kernels' instruction set (and its test override), to the
// slots' elements as one range, so a model's many small tensors share the threads.
template <class Hyper, class Slot>
void update_slots(const Hyper& h, const std::vector<Slot>& slots,
                  void (*const spans[3])(const Hyper&, const Slot&, int64_t, int64_t)) {
  const char* isa = gemm_isa();
  const auto span = isa[0] != 'a' ? spans[2] : isa[3] == '5' ? spans[0] : spans[1];
  std::vector<int64_t> start(slots.size() + 1, 0);
  for (size_t k = 0; k < slots.size(); ++k) start[k + 1] = start[k] + slots[k].n;
  parallel_for(start.back(), 1 << 15, [&](int64_t lo, int64_t hi) {
    size_t k = static_cast<size_t>(std::upper_bound(start.begin(), start.end(), lo) - start.begin()) - 1;
    for (; lo < hi; ++k) {
      const int64_t end = std::min(hi, start[k + 1]);
      if (end > lo) span(h, slots[k], lo - start[k], end - start[k]);
      lo = std::max(lo, end);
    }
  });
}

}  // namespace

void adam_update(const AdamHyper& h, const std::vector<AdamSlot>& slots) {
  static void (*const spans[3])(const AdamHyper&, const AdamSlot&, int64_t, int64_t) = {
      adam_span_avx512, adam_span_avx2, adam_span_base};
  update_slots(h, slots, spans);
}

void sgd_update(const SgdHyper& h, const std::vector<SgdSlot>& slots) {
  static void (*const spans[3])(const SgdHyper&, const SgdSlot&, int64_t, int64_t) = {
      sgd_span_avx512, sgd_span_avx2, sgd_span_base};
  update_slots(h, slots, spans);
}

}  // namespace lrface::cpu
