// Finds and opens cuDNN and cuBLAS on first use (see gpu_libs.h).
#include "gpu_libs.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <sstream>
#include <vector>

#ifdef LRFACE_CUDA_EMULATION
#include <cuda_runtime.h>  // the host emulation (test/emulation), for its device work queue
#endif

namespace lrface::cuda {

namespace {

// Folders CMake found the libraries in (the pip wheels' lib/ folders included), ':'-separated.
#ifndef LRFACE_CUDNN_HINT_DIRS
#define LRFACE_CUDNN_HINT_DIRS ""
#endif
#ifndef LRFACE_CUBLAS_HINT_DIRS
#define LRFACE_CUBLAS_HINT_DIRS ""
#endif

std::vector<std::string> split_dirs(const std::string& text) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, ':'))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

struct LibrarySpec {
  const char* name;                     // "cuDNN"
  const char* path_variable;            // a full path that overrides the search
  std::vector<std::string> root_vars;   // folders whose lib/ and lib64/ are searched
  std::string hint_dirs;                // from the build
  std::vector<std::string> sonames;     // newest first
  std::vector<std::string> companions;  // opened first from the same folder, so the main
                                        // library's own lookups by soname find them loaded
  const char* probe_symbol;             // any entry point, to learn where the linker found it
};

#ifdef LRFACE_CUDA_EMULATION
// Runs a stand-in library's device work in stream order, with the emulated device memory open,
// as a kernel of that library would run on a GPU.
void submit_to_emulated_device(void (*work)(void*), void* context) {
  emu::enqueue([work, context]() {
    emu::DeviceAccess access;
    work(context);
  });
}

// Gives a stand-in the emulated device's queue; false if the library is not a stand-in.
bool hand_device_queue(void* handle) {
  using SetQueue = void (*)(void (*)(void (*)(void*), void*));
  auto set_queue = reinterpret_cast<SetQueue>(dlsym(handle, "lrfaceEmulationSetDeviceQueue"));
  if (!set_queue) return false;
  set_queue(&submit_to_emulated_device);
  return true;
}
#endif

struct Opened {
  void* handle = nullptr;
  std::string path;
  std::string reason;
};

void open_companions(const std::string& dir, const std::vector<std::string>& companions) {
  for (const auto& c : companions) dlopen((dir + "/" + c).c_str(), RTLD_NOW | RTLD_GLOBAL);
}

Opened open_library(const LibrarySpec& spec) {
  Opened result;
  const std::string forced = env(spec.path_variable);
#ifdef LRFACE_CUDA_EMULATION
  // The emulated device's memory is host memory, which the real libraries cannot use: only
  // the stand-ins built for the emulation (test/emulation/stand-ins), named by the variable,
  // are opened; without them the engine's own kernels run every convolution and product.
  if (forced.empty()) {
    result.reason = std::string(spec.name) + " is not searched for under the host emulation of CUDA (the real one " +
                    "needs a GPU); set " + spec.path_variable + " to the emulation's stand-in";
    return result;
  }
#endif
  if (!forced.empty()) {
    const size_t slash = forced.rfind('/');
    if (slash != std::string::npos) open_companions(forced.substr(0, slash), spec.companions);
    result.handle = dlopen(forced.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (result.handle) {
      result.path = forced;
#ifdef LRFACE_CUDA_EMULATION
      if (!hand_device_queue(result.handle)) {
        dlclose(result.handle);
        result.handle = nullptr;
        result.reason = std::string(spec.path_variable) + "=" + forced +
                        " is not a stand-in for the host emulation (it lacks lrfaceEmulationSetDeviceQueue)";
      }
#endif
    } else {
      const char* err = dlerror();
      result.reason = std::string(spec.path_variable) + "=" + forced + " could not be opened: " + (err ? err : "unknown error");
    }
    return result;
  }
  std::vector<std::string> dirs;
  for (const auto& var : spec.root_vars) {
    const std::string root = env(var.c_str());
    if (root.empty()) continue;
    dirs.push_back(root + "/lib");
    dirs.push_back(root + "/lib64");
  }
  for (const auto& d : split_dirs(spec.hint_dirs)) dirs.push_back(d);
  std::string last_error;
  std::string unopenable;  // files that exist but failed to open, with the linker's reason
  for (const auto& dir : dirs) {
    for (const auto& so : spec.sonames) {
      const std::string path = dir + "/" + so;
      if (access(path.c_str(), F_OK) != 0) continue;
      open_companions(dir, spec.companions);
      if (void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
        result.handle = h;
        result.path = path;
        return result;
      }
      const char* err = dlerror();
      unopenable += "; " + path + " exists but could not be opened: " + (err ? err : "unknown error");
    }
  }
  // The dynamic linker's own search: LD_LIBRARY_PATH, the ld.so cache, the system folders.
  for (const auto& so : spec.sonames) {
    if (void* h = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      result.handle = h;
      Dl_info info{};
      result.path = so;
      if (void* sym = dlsym(h, spec.probe_symbol); sym && dladdr(sym, &info) && info.dli_fname)
        result.path = info.dli_fname;
      return result;
    }
    const char* err = dlerror();
    if (err) last_error = err;
  }
  std::ostringstream os;
  os << spec.name << " not found: none of ";
  for (size_t i = 0; i < spec.sonames.size(); ++i) os << (i ? ", " : "") << spec.sonames[i];
  os << " in ";
  for (const auto& d : dirs) os << d << ", ";
  os << "LD_LIBRARY_PATH or the system folders (set " << spec.path_variable << " to the library file";
  if (!spec.root_vars.empty()) os << " or " << spec.root_vars.front() << " to its folder";
  os << ")";
  os << unopenable;
  if (!last_error.empty()) os << "; last error: " << last_error;
  result.reason = os.str();
  return result;
}

// Resolves `name` into `slot`; records the first missing entry point.
template <typename Fn>
void resolve(void* handle, const char* name, Fn& slot, std::string& missing) {
  slot = reinterpret_cast<Fn>(dlsym(handle, name));
  if (!slot && missing.empty()) missing = name;
}

struct CudnnState {
  CudnnApi api{};
  CudnnOpsApi ops{};
  bool has_ops = false;
  GpuLibraryStatus status;
};

struct CublasState {
  CublasApi api{};
  GpuLibraryStatus status;
};

std::string cudnn_version_text(size_t v) {
  // cuDNN 9 encodes major * 10000 + minor * 100 + patch; cuDNN 8 major * 1000 + minor * 100 + patch.
  std::ostringstream os;
  if (v >= 90000) os << v / 10000 << '.' << (v % 10000) / 100 << '.' << v % 100;
  else os << v / 1000 << '.' << (v % 1000) / 100 << '.' << v % 100;
  return os.str();
}

CudnnState& cudnn_state() {
  static CudnnState* state = [] {
    auto* s = new CudnnState();  // never destroyed: handles may be in use at exit
    LibrarySpec spec{"cuDNN",
                     "LRFACE_CUDNN_LIBRARY",
                     {"CUDNN_ROOT", "CUDNN_PATH"},
                     LRFACE_CUDNN_HINT_DIRS,
                     {"libcudnn.so.9", "libcudnn.so.8", "libcudnn.so"},
                     {"libcudnn_graph.so.9", "libcudnn_ops.so.9", "libcudnn_cnn.so.9", "libcudnn_heuristic.so.9",
                      "libcudnn_engines_precompiled.so.9", "libcudnn_engines_runtime_compiled.so.9",
                      "libcudnn_ops_infer.so.8", "libcudnn_ops_train.so.8", "libcudnn_cnn_infer.so.8",
                      "libcudnn_cnn_train.so.8"},
                     "cudnnGetVersion"};
    Opened lib = open_library(spec);
    if (!lib.handle) {
      s->status.reason = lib.reason;
      return s;
    }
    s->status.path = lib.path;
    CudnnApi& api = s->api;
    std::string missing;
#define LRFACE_CUDNN_RESOLVE(fn) resolve(lib.handle, "cudnn" #fn, api.fn, missing)
    LRFACE_CUDNN_RESOLVE(GetVersion);
    LRFACE_CUDNN_RESOLVE(GetErrorString);
    LRFACE_CUDNN_RESOLVE(Create);
    LRFACE_CUDNN_RESOLVE(SetStream);
    LRFACE_CUDNN_RESOLVE(CreateTensorDescriptor);
    LRFACE_CUDNN_RESOLVE(SetTensor4dDescriptor);
    LRFACE_CUDNN_RESOLVE(DestroyTensorDescriptor);
    LRFACE_CUDNN_RESOLVE(CreateFilterDescriptor);
    LRFACE_CUDNN_RESOLVE(SetFilter4dDescriptor);
    LRFACE_CUDNN_RESOLVE(DestroyFilterDescriptor);
    LRFACE_CUDNN_RESOLVE(CreateConvolutionDescriptor);
    LRFACE_CUDNN_RESOLVE(SetConvolution2dDescriptor);
    LRFACE_CUDNN_RESOLVE(SetConvolutionGroupCount);
    LRFACE_CUDNN_RESOLVE(SetConvolutionMathType);
    LRFACE_CUDNN_RESOLVE(DestroyConvolutionDescriptor);
    LRFACE_CUDNN_RESOLVE(GetConvolution2dForwardOutputDim);
    LRFACE_CUDNN_RESOLVE(GetConvolutionForwardAlgorithm_v7);
    LRFACE_CUDNN_RESOLVE(FindConvolutionForwardAlgorithmEx);
    LRFACE_CUDNN_RESOLVE(GetConvolutionForwardWorkspaceSize);
    LRFACE_CUDNN_RESOLVE(ConvolutionForward);
    LRFACE_CUDNN_RESOLVE(GetConvolutionBackwardDataAlgorithm_v7);
    LRFACE_CUDNN_RESOLVE(FindConvolutionBackwardDataAlgorithmEx);
    LRFACE_CUDNN_RESOLVE(GetConvolutionBackwardDataWorkspaceSize);
    LRFACE_CUDNN_RESOLVE(ConvolutionBackwardData);
    LRFACE_CUDNN_RESOLVE(GetConvolutionBackwardFilterAlgorithm_v7);
    LRFACE_CUDNN_RESOLVE(FindConvolutionBackwardFilterAlgorithmEx);
    LRFACE_CUDNN_RESOLVE(GetConvolutionBackwardFilterWorkspaceSize);
    LRFACE_CUDNN_RESOLVE(ConvolutionBackwardFilter);
    if (!missing.empty()) {
      s->status.reason = lib.path + " lacks " + missing;
      return s;
    }
    std::string missing_op;
    CudnnOpsApi& ops = s->ops;
#define LRFACE_CUDNN_RESOLVE_OP(fn) resolve(lib.handle, "cudnn" #fn, ops.fn, missing_op)
    LRFACE_CUDNN_RESOLVE_OP(CreatePoolingDescriptor);
    LRFACE_CUDNN_RESOLVE_OP(SetPooling2dDescriptor);
    LRFACE_CUDNN_RESOLVE_OP(DestroyPoolingDescriptor);
    LRFACE_CUDNN_RESOLVE_OP(PoolingForward);
    LRFACE_CUDNN_RESOLVE_OP(PoolingBackward);
    LRFACE_CUDNN_RESOLVE_OP(CreateActivationDescriptor);
    LRFACE_CUDNN_RESOLVE_OP(SetActivationDescriptor);
    LRFACE_CUDNN_RESOLVE_OP(DestroyActivationDescriptor);
    LRFACE_CUDNN_RESOLVE_OP(ActivationForward);
    LRFACE_CUDNN_RESOLVE_OP(ActivationBackward);
    LRFACE_CUDNN_RESOLVE_OP(SoftmaxForward);
    LRFACE_CUDNN_RESOLVE_OP(SoftmaxBackward);
    LRFACE_CUDNN_RESOLVE_OP(BatchNormalizationForwardTraining);
    LRFACE_CUDNN_RESOLVE_OP(BatchNormalizationBackward);
#undef LRFACE_CUDNN_RESOLVE_OP
#undef LRFACE_CUDNN_RESOLVE
    s->has_ops = missing_op.empty();
    const size_t version = api.GetVersion();
    s->status.version = cudnn_version_text(version);
    const size_t major = version >= 90000 ? version / 10000 : version / 1000;
    if (major != 8 && major != 9) {
      s->status.reason = lib.path + " is cuDNN " + s->status.version + "; cuDNN 8 or 9 is needed";
      return s;
    }
    s->status.loaded = true;
    if (!s->has_ops)
      s->status.reason = lib.path + " lacks " + missing_op +
                         ": pooling, activations, softmax and batch norm run on the engine's own kernels";
    return s;
  }();
  return *state;
}

CublasState& cublas_state() {
  static CublasState* state = [] {
    auto* s = new CublasState();
    LibrarySpec spec{"cuBLAS",
                     "LRFACE_CUBLAS_LIBRARY",
                     {"CUBLAS_ROOT", "CUDA_PATH", "CUDA_HOME"},
                     LRFACE_CUBLAS_HINT_DIRS,
                     {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"},
                     {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11"},
                     "cublasCreate_v2"};
    Opened lib = open_library(spec);
    if (!lib.handle) {
      s->status.reason = lib.reason;
      return s;
    }
    s->status.path = lib.path;
    CublasApi& api = s->api;
    std::string missing;
    resolve(lib.handle, "cublasCreate_v2", api.Create, missing);
    resolve(lib.handle, "cublasSetStream_v2", api.SetStream, missing);
    resolve(lib.handle, "cublasSetMathMode", api.SetMathMode, missing);
    resolve(lib.handle, "cublasGetProperty", api.GetProperty, missing);
    resolve(lib.handle, "cublasSgemm_v2", api.Sgemm, missing);
    resolve(lib.handle, "cublasSgemmStridedBatched", api.SgemmStridedBatched, missing);
    if (!missing.empty()) {
      s->status.reason = lib.path + " lacks " + missing;
      return s;
    }
    api.GetStatusString = reinterpret_cast<decltype(api.GetStatusString)>(dlsym(lib.handle, "cublasGetStatusString"));
    int major = 0, minor = 0, patch = 0;
    api.GetProperty(cublas::kMajorVersion, &major);
    api.GetProperty(cublas::kMinorVersion, &minor);
    api.GetProperty(cublas::kPatchLevel, &patch);
    s->status.version = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
    if (major < 11) {
      s->status.reason = lib.path + " is cuBLAS " + s->status.version + "; cuBLAS 11 or newer is needed";
      return s;
    }
    s->status.loaded = true;
    return s;
  }();
  return *state;
}

}  // namespace

const CudnnApi* cudnn_api() {
  if (!gpu_libraries_in_use()) return nullptr;
  CudnnState& s = cudnn_state();
  return s.status.loaded ? &s.api : nullptr;
}

const CudnnOpsApi* cudnn_ops_api() {
  if (!cudnn_api()) return nullptr;
  CudnnState& s = cudnn_state();
  return s.has_ops ? &s.ops : nullptr;
}

const CublasApi* cublas_api() {
  if (!gpu_libraries_in_use()) return nullptr;
  CublasState& s = cublas_state();
  return s.status.loaded ? &s.api : nullptr;
}

GpuLibraryStatus cudnn_library_status() { return cudnn_state().status; }
GpuLibraryStatus cublas_library_status() { return cublas_state().status; }

}  // namespace lrface::cuda
