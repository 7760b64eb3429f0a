// Node-API glue shared by every binding file. Kernels register themselves by name with
// LRFACE_BINDING; module.cpp exports them all, converting EngineError to JS errors.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.h"
#include "../core/storage.h"

namespace lrface {

class StorageWrap : public Napi::ObjectWrap<StorageWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::FunctionReference* constructor;
  explicit StorageWrap(const Napi::CallbackInfo& info);
  ~StorageWrap() override;
  Storage* storage() { return storage_; }

  // Queued asynchronous work holds a pin on every storage it touches: until the last pin
  // goes, reads and writes from JavaScript are refused and free() is carried out later.
  void pin() { ++pins_; }
  void unpin(Napi::Env env);
  bool pinned() const { return pins_ > 0; }

 private:
  Napi::Value Free(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value GetNumel(const Napi::CallbackInfo& info);
  Napi::Value GetDtype(const Napi::CallbackInfo& info);
  Napi::Value GetFreed(const Napi::CallbackInfo& info);
  Napi::Value GetDevice(const Napi::CallbackInfo& info);
  void FreeNow(Napi::Env env);
  void CheckNotPinned(Napi::Env env, const char* what) const;

  Storage* storage_ = nullptr;
  int64_t reported_bytes_ = 0;
  int pins_ = 0;
  bool free_requested_ = false;
};

// One argument of a kernel call, copied out of its JS value on the JS thread, so that the
// kernel itself can run later on another thread (asynchronous runs).
struct ArgValue {
  enum class Kind { Missing, Null, Number, Boolean, String, Storage, Array, Other };
  Kind kind = Kind::Missing;
  double number = 0;
  bool boolean = false;
  bool numeric_array = true;
  std::string text;
  Storage* storage = nullptr;
  std::vector<double> array;
};

// Copies every argument of a call; storage wrappers met are appended to `wrappers`.
std::vector<ArgValue> capture_args(const Napi::CallbackInfo& info, std::vector<Napi::Object>* wrappers);

// Positional argument reader for kernel bindings. A tensor argument is two JS values:
// the Storage object and the element offset of the view.
class Args {
 public:
  Args(std::vector<ArgValue> values, const char* op) : values_(std::move(values)), op_(op) {}
  const char* op() const { return op_; }
  size_t size() const { return values_.size(); }

  Storage* storage(size_t i) const;
  // Pointer to `numel` elements of dtype T at (storage at i, offset at i+1), bounds-checked.
  template <typename T>
  T* tensor(size_t i, int64_t numel, DType expected) const {
    Storage* s = storage(i);
    // A kernel without a CUDA branch reaches here with device memory: refuse, never dereference.
    if (!s->on_host()) fail_not_on_host(i, s);
    int64_t offset = i64(i + 1);
    LR_CHECK(s->dtype() == expected, Type, op_, ": argument ", i, " must be ", dtype_name(expected), ", got ",
             dtype_name(s->dtype()));
    LR_CHECK(offset >= 0 && numel >= 0 && offset + numel <= s->numel(), Range, op_, ": argument ", i,
             " view [", offset, ", ", offset + numel, ") exceeds its storage of ", s->numel(), " elements");
    return static_cast<T*>(s->data()) + offset;
  }
  float* f32(size_t i, int64_t numel) const { return tensor<float>(i, numel, DType::Float32); }
  int32_t* i32(size_t i, int64_t numel) const { return tensor<int32_t>(i, numel, DType::Int32); }
  uint8_t* u8(size_t i, int64_t numel) const { return tensor<uint8_t>(i, numel, DType::Uint8); }

  // Device pointers for a CUDA kernel running on `device`: the storage at i must be there.
  template <typename T>
  T* device_tensor(size_t i, int64_t numel, DType expected, int device) const {
    Storage* s = storage(i);
    LR_CHECK(s->device() == device, State, op_, ": argument ", i, " is on ", device_name(s->device()),
             " but the kernel runs on ", device_name(device), "; move every tensor of one op to one device");
    LR_CHECK(s->dtype() == expected, Type, op_, ": argument ", i, " must be ", dtype_name(expected), ", got ",
             dtype_name(s->dtype()));
    int64_t offset = i64(i + 1);
    LR_CHECK(offset >= 0 && numel >= 0 && offset + numel <= s->numel(), Range, op_, ": argument ", i,
             " view [", offset, ", ", offset + numel, ") exceeds its storage of ", s->numel(), " elements");
    return static_cast<T*>(s->data()) + offset;
  }
  float* dev_f32(size_t i, int64_t numel, int device) const { return device_tensor<float>(i, numel, DType::Float32, device); }
  int32_t* dev_i32(size_t i, int64_t numel, int device) const { return device_tensor<int32_t>(i, numel, DType::Int32, device); }
  // The device of the storage at i: Storage::kHost or a CUDA device index.
  int device_of(size_t i) const { return storage(i)->device(); }
  static std::string device_name(int device);

  bool is_null(size_t i) const { return i < values_.size() && values_[i].kind == ArgValue::Kind::Null; }
  int64_t i64(size_t i) const;
  double f64(size_t i) const;
  bool boolean(size_t i) const;
  std::string str(size_t i) const;
  std::vector<int64_t> ints(size_t i) const;
  std::vector<double> doubles(size_t i) const;

 private:
  const ArgValue& at(size_t i, ArgValue::Kind kind, const char* what) const;
  [[noreturn]] void fail_not_on_host(size_t i, const Storage* s) const;
  std::vector<ArgValue> values_;
  const char* op_;
};

int64_t numel_of(const std::vector<int64_t>& shape);

// A kernel: reads its arguments and writes into output storages; it may run on any thread.
using KernelFn = void (*)(const Args&);
// A query: answers at once on the JS thread (instruction set in use, ...), never queued.
using QueryFn = Napi::Value (*)(const Napi::CallbackInfo&, const Args&);

struct BindingEntry {
  std::string name;
  KernelFn kernel = nullptr;
  QueryFn query = nullptr;
};

struct BindingRegistrar {
  BindingRegistrar(const char* name, KernelFn fn);
  BindingRegistrar(const char* name, QueryFn fn);
};

std::vector<BindingEntry>& binding_registry();

}  // namespace lrface

#define LRFACE_CONCAT_INNER(a, b) a##b
#define LRFACE_CONCAT(a, b) LRFACE_CONCAT_INNER(a, b)
// Defines and registers a kernel: LRFACE_BINDING(add) { float* out = a.f32(0, n); ... }
#define LRFACE_BINDING(name)                                                                  \
  static void LRFACE_CONCAT(binding_, name)(const ::lrface::Args& a);                         \
  static ::lrface::BindingRegistrar LRFACE_CONCAT(registrar_, name)(#name, &LRFACE_CONCAT(binding_, name)); \
  static void LRFACE_CONCAT(binding_, name)(const ::lrface::Args& a)
// Defines and registers a query, which returns a JS value: LRFACE_QUERY(gemm_isa) { return ...; }
#define LRFACE_QUERY(name)                                                                    \
  static Napi::Value LRFACE_CONCAT(query_, name)(const Napi::CallbackInfo& info, const ::lrface::Args& a); \
  static ::lrface::BindingRegistrar LRFACE_CONCAT(registrar_, name)(#name, &LRFACE_CONCAT(query_, name)); \
  static Napi::Value LRFACE_CONCAT(query_, name)(const Napi::CallbackInfo& info, [[maybe_unused]] const ::lrface::Args& a)
// A query returning the kernel-path counter cpu::name() (how often a path ran; tests use it).
#define LRFACE_COUNTER_QUERY(name) \
  LRFACE_QUERY(name) { return Napi::Number::New(info.Env(), static_cast<double>(::lrface::cpu::name())); }
