// The addon's entry point: engine-wide functions plus every kernel registered with LRFACE_BINDING.
#include <napi.h>

#include <condition_variable>
#include <memory>
#include <mutex>

#include "../core/storage.h"
#include "../core/thread_pool.h"
#include "../cuda/device_memory.h"
#include "../cuda/device_query.h"
#include "binding.h"

namespace lrface {

namespace {

Napi::Value to_js_error(Napi::Env env, ErrorKind kind, const std::string& message) {
  switch (kind) {
    case ErrorKind::Type: return Napi::TypeError::New(env, message).Value();
    case ErrorKind::Range: return Napi::RangeError::New(env, message).Value();
    default: return Napi::Error::New(env, message).Value();
  }
}

// Kernels run one at a time: the JS thread's synchronous calls and the asynchronous runs'
// worker threads share the thread pool and the GEMM settings.
std::mutex& engine_mutex() {
  static std::mutex m;
  return m;
}

struct QueuedKernel {
  KernelFn fn;
  Args args;
};

// Kernel calls recorded between beginRecording() and endRecording(), with the storages
// they touch pinned and referenced so that neither free() nor the GC can release them.
struct Recording {
  std::vector<QueuedKernel> kernels;
  std::vector<Napi::ObjectReference> storages;
};

Recording* g_recording = nullptr;

void release_storages(Napi::Env env, std::vector<Napi::ObjectReference>& storages) {
  for (auto& ref : storages) StorageWrap::Unwrap(ref.Value())->unpin(env);
  storages.clear();
}

// Runs finish in the order they were queued: each waits for its ticket.
std::mutex g_ticket_mutex;
std::condition_variable g_ticket_cv;
uint64_t g_next_ticket = 0;
uint64_t g_serving = 0;

class AsyncRun : public Napi::AsyncWorker {
 public:
  AsyncRun(Napi::Env env, Recording&& recording)
      : Napi::AsyncWorker(env, "lrface.run"), deferred_(Napi::Promise::Deferred::New(env)),
        kernels_(std::move(recording.kernels)), storages_(std::move(recording.storages)) {
    std::lock_guard<std::mutex> lock(g_ticket_mutex);
    ticket_ = g_next_ticket++;
  }
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    {
      std::unique_lock<std::mutex> lock(g_ticket_mutex);
      g_ticket_cv.wait(lock, [this] { return g_serving == ticket_; });
    }
    try {
      for (const QueuedKernel& k : kernels_) {
        // Locked per kernel, so synchronous calls from the JS thread wait for one kernel at most.
        std::lock_guard<std::mutex> lock(engine_mutex());
        k.fn(k.args);
      }
    } catch (const EngineError& e) {
      failed_ = true;
      kind_ = e.kind();
      message_ = e.what();
    } catch (const std::bad_alloc&) {
      failed_ = true;
      kind_ = ErrorKind::State;
      message_ = "out of host memory";
    }
    {
      std::lock_guard<std::mutex> lock(g_ticket_mutex);
      ++g_serving;
    }
    g_ticket_cv.notify_all();
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    kernels_.clear();
    release_storages(env, storages_);
    if (failed_)
      deferred_.Reject(to_js_error(env, kind_, message_));
    else
      deferred_.Resolve(env.Undefined());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<QueuedKernel> kernels_;
  std::vector<Napi::ObjectReference> storages_;
  uint64_t ticket_ = 0;
  bool failed_ = false;
  ErrorKind kind_ = ErrorKind::State;
  std::string message_;
};

// Calls a registered kernel (or queues it while recording) and turns EngineError into the
// matching JS error class.
Napi::Value dispatch(const Napi::CallbackInfo& info) {
  const BindingEntry& entry = *static_cast<const BindingEntry*>(info.Data());
  Napi::Env env = info.Env();
  try {
    std::vector<Napi::Object> wrappers;
    Args args(capture_args(info, &wrappers), entry.name.c_str());
    if (entry.query) {
      std::lock_guard<std::mutex> lock(engine_mutex());
      return entry.query(info, args);
    }
    if (g_recording) {
      for (Napi::Object& w : wrappers) {
        StorageWrap::Unwrap(w)->pin();
        g_recording->storages.push_back(Napi::Persistent(w));
      }
      g_recording->kernels.push_back({entry.kernel, std::move(args)});
      return env.Undefined();
    }
    for (size_t i = 0; i < wrappers.size(); ++i)
      if (StorageWrap::Unwrap(wrappers[i])->pinned())
        throw Napi::Error::New(env, entry.name + ": a tensor argument belongs to an asynchronous run that has not "
                                                 "finished; await it first");
    std::lock_guard<std::mutex> lock(engine_mutex());
    entry.kernel(args);
    return env.Undefined();
  } catch (const EngineError& e) {
    throw Napi::Error(env, to_js_error(env, e.kind(), e.what()));
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, "out of host memory");
  }
}

Napi::Value BeginRecording(const Napi::CallbackInfo& info) {
  if (g_recording) throw Napi::Error::New(info.Env(), "runAsync: a recording is already open (runs cannot nest)");
  g_recording = new Recording();
  return info.Env().Undefined();
}

// Drops the recorded kernels without running them (the recorded function threw).
Napi::Value DiscardRecording(const Napi::CallbackInfo& info) {
  if (g_recording) {
    release_storages(info.Env(), g_recording->storages);
    delete g_recording;
    g_recording = nullptr;
  }
  return info.Env().Undefined();
}

// Closes the recording and runs its kernels on a worker thread; returns a Promise.
Napi::Value EndRecording(const Napi::CallbackInfo& info) {
  if (!g_recording) throw Napi::Error::New(info.Env(), "runAsync: no recording is open");
  std::unique_ptr<Recording> recording(g_recording);
  g_recording = nullptr;
  auto* run = new AsyncRun(info.Env(), std::move(*recording));
  Napi::Promise promise = run->promise();
  run->Queue();
  return promise;
}

Napi::Value LiveStorage(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("count", Napi::Number::New(info.Env(), static_cast<double>(Storage::live_count())));
  out.Set("bytes", Napi::Number::New(info.Env(), static_cast<double>(Storage::live_bytes())));
  out.Set("cached", Napi::Number::New(info.Env(), static_cast<double>(host_cache_bytes())));
  const cuda::DeviceMemoryStats device = cuda::device_memory_stats();
  out.Set("deviceBytes", Napi::Number::New(info.Env(), static_cast<double>(device.in_use_bytes)));
  out.Set("deviceCached", Napi::Number::New(info.Env(), static_cast<double>(device.cached_bytes)));
  out.Set("deviceBuffers", Napi::Number::New(info.Env(), static_cast<double>(device.blocks_in_use)));
  out.Set("deviceMallocs", Napi::Number::New(info.Env(), static_cast<double>(device.device_mallocs)));
  return out;
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), num_threads()); }

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "setNumThreads: argument 0 must be a number");
  std::lock_guard<std::mutex> lock(engine_mutex());
  set_num_threads(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

Napi::Object library_info(Napi::Env env, const cuda::GpuLibraryStatus& lib) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("loaded", lib.loaded);
  o.Set("path", lib.path);
  o.Set("version", lib.version);
  o.Set("reason", lib.reason);
  return o;
}

Napi::Value CudaInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CudaStatus st = cuda_status();
  Napi::Object out = Napi::Object::New(env);
  out.Set("compiled", cuda_compiled());
  out.Set("cudnnLibrary", library_info(env, cuda::cudnn_library_status()));
  out.Set("cublasLibrary", library_info(env, cuda::cublas_library_status()));
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
  configure_host_allocator();
  exports.Set("Storage", StorageWrap::Define(env));
  exports.Set("liveStorage", Napi::Function::New(env, LiveStorage, "liveStorage"));
  exports.Set("numThreads", Napi::Function::New(env, GetNumThreads, "numThreads"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("beginRecording", Napi::Function::New(env, BeginRecording, "beginRecording"));
  exports.Set("endRecording", Napi::Function::New(env, EndRecording, "endRecording"));
  exports.Set("discardRecording", Napi::Function::New(env, DiscardRecording, "discardRecording"));
  exports.Set("cudaInfo", Napi::Function::New(env, CudaInfo, "cudaInfo"));
  exports.Set("emptyCache", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                host_cache_clear();
                try {
                  cuda::device_cache_clear();
                } catch (const EngineError& e) {
                  throw Napi::Error::New(info.Env(), std::string("emptyCache: ") + e.what());
                }
                return info.Env().Undefined();
              }, "emptyCache"));
  Napi::Object kernels = Napi::Object::New(env);
  for (BindingEntry& entry : binding_registry())
    kernels.Set(entry.name, Napi::Function::New(env, dispatch, entry.name, &entry));
  exports.Set("kernels", kernels);
  return exports;
}

}  // namespace lrface

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return lrface::Init(env, exports); }
NODE_API_MODULE(lrface_core, InitAddon)
