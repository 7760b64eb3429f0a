// Kernel launches, written LRFACE_LAUNCH(kernel, grid, block, shared_bytes, stream)(args...)
// instead of the triple-chevron syntax, so the same sources also compile with a plain C++
// compiler against the host emulation of the runtime in test/emulation/cuda_runtime.h, which
// provides emu::launch. `kernel` is one name or function pointer (a template instance with
// commas goes through a local pointer first).
#pragma once

#ifdef __CUDACC__
#define LRFACE_LAUNCH(kernel, grid, block, shared_bytes, stream) kernel<<<grid, block, shared_bytes, stream>>>
#else
#define LRFACE_LAUNCH(kernel, grid, block, shared_bytes, stream) \
  ::emu::launch(kernel, grid, block, shared_bytes, stream)
#endif
