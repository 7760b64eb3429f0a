// The addon's entry point: engine-wide functions plus every kernel registered with LRFACE_BINDING.
#include <napi.h>

#include "../core/storage.h"
#include "../core/thread_pool.h"
#include "../cuda/device_query.h"
#include "binding.h"

namespace lrface {

namespace {

// Calls a registered kernel and turns EngineError into the matching JS error class.
Napi::Value dispatch(const Napi::CallbackInfo& info) {
  auto fn = reinterpret_cast<BindingFn>(info.Data());
  try {
    return fn(info);
  } catch (const EngineError& e) {
    switch (e.kind()) {
      case ErrorKind::Type: throw Napi::TypeError::New(info.Env(), e.what());
      case ErrorKind::Range: throw Napi::RangeError::New(info.Env(), e.what());
      default: throw Napi::Error::New(info.Env(), e.what());
    }
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(info.Env(), "out of host memory");
  }
}

Napi::Value LiveStorage(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("count", Napi::Number::New(info.Env(), static_cast<double>(Storage::live_count())));
  out.Set("bytes", Napi::Number::New(info.Env(), static_cast<double>(Storage::live_bytes())));
  out.Set("cached", Napi::Number::New(info.Env(), static_cast<double>(host_cache_bytes())));
  return out;
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), num_threads()); }

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Args a(info, "setNumThreads");
  set_num_threads(static_cast<int>(a.i64(0)));
  return info.Env().Undefined();
}

Napi::Value CudaInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CudaStatus st = cuda_status();
  Napi::Object out = Napi::Object::New(env);
  out.Set("compiled", cuda_compiled());
  out.Set("cudnn", cudnn_compiled());
  out.Set("cublas", cublas_compiled());
  out.Set("available", st.available);
  out.Set("reason", st.reason);
  out.Set("runtimeVersion", st.runtime_version);
  out.Set("driverVersion", st.driver_version);
  Napi::Array devs = Napi::Array::New(env, st.devices.size());
  for (size_t i = 0; i < st.devices.size(); ++i) {
    const CudaDeviceInfo& d = st.devices[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", d.index);
    o.Set("name", d.name);
    o.Set("totalMemory", static_cast<double>(d.total_memory));
    o.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    devs.Set(static_cast<uint32_t>(i), o);
  }
  out.Set("devices", devs);
  return out;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Storage", StorageWrap::Define(env));
  exports.Set("liveStorage", Napi::Function::New(env, LiveStorage, "liveStorage"));
  exports.Set("numThreads", Napi::Function::New(env, GetNumThreads, "numThreads"));
  exports.Set("setNumThreads", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                return dispatch(info);
              }, "setNumThreads", reinterpret_cast<void*>(&SetNumThreads)));
  exports.Set("cudaInfo", Napi::Function::New(env, CudaInfo, "cudaInfo"));
  exports.Set("emptyCache", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                host_cache_clear();
                return info.Env().Undefined();
              }, "emptyCache"));
  Napi::Object kernels = Napi::Object::New(env);
  for (auto& entry : binding_registry())
    kernels.Set(entry.first, Napi::Function::New(env, dispatch, entry.first, reinterpret_cast<void*>(entry.second)));
  exports.Set("kernels", kernels);
  return exports;
}

}  // namespace lrface

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return lrface::Init(env, exports); }
NODE_API_MODULE(lrface_core, InitAddon)
