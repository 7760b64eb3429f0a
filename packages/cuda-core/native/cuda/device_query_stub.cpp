#include "../core/error.h"
#include "device_memory.h"
#include "device_query.h"

namespace lrface {

namespace {
constexpr const char* kNoCuda =
    "the addon was built without CUDA (nvcc was not found at build time, or LRFACE_CPU_ONLY was set)";
}

CudaStatus cuda_status() { return {false, kNoCuda, {}, 0, 0}; }

bool cuda_compiled() { return false; }

// Without CUDA no device storage can exist: allocating one fails with the build reason, and
// the rest is never reached.
namespace cuda {
void* device_malloc(int, size_t, size_t*) { fail(ErrorKind::State, "cuda: ", kNoCuda); }
void device_free(int, void*, size_t) {}
void device_zero(int, void*, size_t) { fail(ErrorKind::State, "cuda: ", kNoCuda); }
void host_to_device(int, void*, const void*, size_t) { fail(ErrorKind::State, "cuda: ", kNoCuda); }
void device_to_host(int, void*, const void*, size_t) { fail(ErrorKind::State, "cuda: ", kNoCuda); }
void device_to_device(int, void*, const void*, size_t) { fail(ErrorKind::State, "cuda: ", kNoCuda); }
void synchronize(int) {}
DeviceMemoryStats device_memory_stats() { return {0, 0, 0, 0}; }
void device_cache_clear() {}
}  // namespace cuda

}  // namespace lrface
