// What the stand-in libraries share: the emulated device's work queue, handed to them by the
// emulated addon when it opens them (lrfaceEmulationSetDeviceQueue). Device memory is
// inaccessible to host code under the emulation, so a library call that computes on the
// device queues its work, which then runs in stream order with the memory opened, as the
// real libraries queue kernels on the handle's stream. Plain C++, no emulation headers: the
// stand-ins know only the vendors' C API and this one hook.
#pragma once
#include <functional>
#include <utility>

namespace stand_in {

using SubmitFn = void (*)(void (*work)(void*), void* context);

inline SubmitFn& submit_hook() {
  static SubmitFn hook = nullptr;
  return hook;
}

// Queues `work` on the emulated device; without a queue (opened by something other than the
// emulated addon) it runs at once, on memory the caller can reach.
inline void on_device(std::function<void()> work) {
  auto* boxed = new std::function<void()>(std::move(work));
  auto run = [](void* context) {
    auto* f = static_cast<std::function<void()>*>(context);
    (*f)();
    delete f;
  };
  if (SubmitFn submit = submit_hook()) submit(run, boxed);
  else run(boxed);
}

}  // namespace stand_in

#define LRFACE_STAND_IN_EXPORT extern "C" __attribute__((visibility("default")))

// The emulated addon calls this right after opening the library.
LRFACE_STAND_IN_EXPORT void lrfaceEmulationSetDeviceQueue(stand_in::SubmitFn submit) { stand_in::submit_hook() = submit; }
