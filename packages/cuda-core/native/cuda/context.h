// Per-device state for CUDA sources: the stream all of a device's work is queued on, and a
// guard that makes a device current for the duration of a call.
#pragma once
#include <cuda_runtime.h>

namespace lrface::cuda {

// The device's stream (non-blocking, created on first use). Work on one device is ordered
// on this one stream, which is what lets freed blocks be reused without waiting.
cudaStream_t device_stream(int device);

class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

}  // namespace lrface::cuda
