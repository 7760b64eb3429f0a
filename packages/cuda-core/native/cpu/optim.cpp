#include "optim.h"

#include <algorithm>

#include "../core/thread_pool.h"
#include "gemm.h"

namespace lrface::cpu {

namespace {

using AdamSpan = void (*)(const AdamHyper&, const AdamSlot&, int64_t, int64_t);

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

}  // namespace

void adam_update(const AdamHyper& h, const std::vector<AdamSlot>& slots) {
  const char* isa = gemm_isa();  // the kernels' instruction set (and its test override)
  const AdamSpan span = isa[0] != 'a' ? adam_span_base : isa[3] == '5' ? adam_span_avx512 : adam_span_avx2;
  // The slots' elements as one range, so a model's many small tensors share the threads.
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

}  // namespace lrface::cpu
