#include "optim.h"

#include <algorithm>

#include "../core/thread_pool.h"
#include "gemm.h"
#include "kernel_util.h"

namespace lrface::cpu {

namespace {

// Elements [lo, hi) of one slot; the restrict pointers let the compiler vectorise the rule
// (sqrt and division included), compiled per instruction set.
LR_INLINE void adam_span(const AdamHyper& h, const AdamSlot& s, int64_t lo, int64_t hi) {
  float* __restrict p = s.param;
  const float* __restrict g = s.grad;
  float* __restrict m = s.exp_avg;
  float* __restrict v = s.exp_avg_sq;
  for (int64_t i = lo; i < hi; ++i) adam_element(h, s.step_size, s.denom_scale, p, g, m, v, i);
}

LR_INLINE void sgd_span(const SgdHyper& h, const SgdSlot& s, int64_t lo, int64_t hi) {
  float* __restrict p = s.param;
  const float* __restrict g = s.grad;
  float* __restrict b = s.momentum_buffer;
  for (int64_t i = lo; i < hi; ++i) sgd_element(h, s.first, p, g, b, i);
}

// NAME compiled per instruction set, as the table update_slots picks from.
#define LR_SPANS(NAME, HYPER, SLOT)                                                                      \
  LR_AVX512 void NAME##_avx512(const HYPER& h, const SLOT& s, int64_t lo, int64_t hi) { NAME(h, s, lo, hi); } \
  LR_AVX2 void NAME##_avx2(const HYPER& h, const SLOT& s, int64_t lo, int64_t hi) { NAME(h, s, lo, hi); }     \
  void NAME##_base(const HYPER& h, const SLOT& s, int64_t lo, int64_t hi) { NAME(h, s, lo, hi); }             \
  void (*const NAME##s[3])(const HYPER&, const SLOT&, int64_t, int64_t) = {NAME##_base, NAME##_avx2, NAME##_avx512};
LR_SPANS(adam_span, AdamHyper, AdamSlot)
LR_SPANS(sgd_span, SgdHyper, SgdSlot)
#undef LR_SPANS

// Applies span, compiled for the kernels' instruction set (spans by gemm_isa_level), to the
// slots' elements as one range, so a model's many small tensors share the threads.
template <class Hyper, class Slot>
void update_slots(const Hyper& h, const std::vector<Slot>& slots,
                  void (*const spans[3])(const Hyper&, const Slot&, int64_t, int64_t)) {
  const auto span = spans[gemm_isa_level()];
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

void adam_update(const AdamHyper& h, const std::vector<AdamSlot>& slots) { update_slots(h, slots, adam_spans); }

void sgd_update(const SgdHyper& h, const std::vector<SgdSlot>& slots) { update_slots(h, slots, sgd_spans); }

}  // namespace lrface::cpu
