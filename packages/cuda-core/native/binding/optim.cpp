#include "../cpu/optim.h"

#include "binding.h"
#ifdef LRFACE_WITH_CUDA
#include "../cuda/kernels.h"
#endif

namespace lrface {

// adam_update([beta1, 1 - beta1, beta2, 1 - beta2, eps, l2, decay], sizes, stepSizes, denomScales,
//             p0, p0Off, g0, g0Off, m0, m0Off, v0, v0Off, p1, ...): every tensor on one device.
LRFACE_BINDING(adam_update) {
  const auto hyper = a.doubles(0);
  const auto sizes = a.ints(1);
  const auto step_sizes = a.doubles(2), denom_scales = a.doubles(3);
  LR_CHECK(hyper.size() == 7, Range, "adam_update: argument 0 must hold 7 settings, got ", hyper.size());
  LR_CHECK(step_sizes.size() == sizes.size() && denom_scales.size() == sizes.size(), Range,
           "adam_update: one step size and one denominator scale per tensor expected");
  LR_CHECK(a.size() == 4 + 8 * sizes.size(), Range, "adam_update: four (storage, offset) pairs per size expected");
  const auto f = [](double v) { return static_cast<float>(v); };
  const cpu::AdamHyper h{f(hyper[0]), f(hyper[1]), f(hyper[2]), f(hyper[3]), f(hyper[4]), f(hyper[5]), f(hyper[6])};
  std::vector<cpu::AdamSlot> slots(sizes.size());
  [[maybe_unused]] const int device = sizes.empty() ? Storage::kHost : a.device_of(4);
  for (size_t k = 0; k < sizes.size(); ++k) {
    const int64_t n = sizes[k];
    LR_CHECK(n >= 0, Range, "adam_update: bad size ", n);
    const size_t at = 4 + 8 * k;
    cpu::AdamSlot& s = slots[k];
#ifdef LRFACE_WITH_CUDA
    if (device != Storage::kHost) {
      s = {a.dev_f32(at, n, device), a.dev_f32(at + 2, n, device), a.dev_f32(at + 4, n, device),
           a.dev_f32(at + 6, n, device), n, f(step_sizes[k]), f(denom_scales[k])};
      continue;
    }
#endif
    s = {a.f32(at, n), a.f32(at + 2, n), a.f32(at + 4, n), a.f32(at + 6, n), n, f(step_sizes[k]), f(denom_scales[k])};
  }
#ifdef LRFACE_WITH_CUDA
  if (device != Storage::kHost) return cuda::adam_update(device, h, slots);
#endif
  cpu::adam_update(h, slots);
}

// sgd_update([lr, momentum, 1 - dampening, weight decay, nesterov], sizes, firsts,
//            p0, p0Off, g0, g0Off, [b0, b0Off,] p1, ...): momentum buffers (b) with momentum
//            > 0 only; every tensor on one device.
LRFACE_BINDING(sgd_update) {
  const auto hyper = a.doubles(0);
  const auto sizes = a.ints(1), firsts = a.ints(2);
  LR_CHECK(hyper.size() == 5, Range, "sgd_update: argument 0 must hold 5 settings, got ", hyper.size());
  LR_CHECK(firsts.size() == sizes.size(), Range, "sgd_update: one first-step flag per tensor expected");
  const auto f = [](double v) { return static_cast<float>(v); };
  const cpu::SgdHyper h{f(hyper[0]), f(hyper[1]), f(hyper[2]), f(hyper[3]), hyper[4] != 0.0};
  const bool with_buffers = h.momentum != 0.0f;
  const size_t per_slot = with_buffers ? 6 : 4;
  LR_CHECK(a.size() == 3 + per_slot * sizes.size(), Range, "sgd_update: ", per_slot / 2,
           " (storage, offset) pairs per size expected");
  std::vector<cpu::SgdSlot> slots(sizes.size());
  [[maybe_unused]] const int device = sizes.empty() ? Storage::kHost : a.device_of(3);
  for (size_t k = 0; k < sizes.size(); ++k) {
    const int64_t n = sizes[k];
    LR_CHECK(n >= 0, Range, "sgd_update: bad size ", n);
    const size_t at = 3 + per_slot * k;
    cpu::SgdSlot& s = slots[k];
#ifdef LRFACE_WITH_CUDA
    if (device != Storage::kHost) {
      s = {a.dev_f32(at, n, device), a.dev_f32(at + 2, n, device),
           with_buffers ? a.dev_f32(at + 4, n, device) : nullptr, n, firsts[k] != 0};
      continue;
    }
#endif
    s = {a.f32(at, n), a.f32(at + 2, n), with_buffers ? a.f32(at + 4, n) : nullptr, n, firsts[k] != 0};
  }
#ifdef LRFACE_WITH_CUDA
  if (device != Storage::kHost) return cuda::sgd_update(device, h, slots);
#endif
  cpu::sgd_update(h, slots);
}

}  // namespace lrface
