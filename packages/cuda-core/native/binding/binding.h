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

 private:
  Napi::Value Free(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value GetNumel(const Napi::CallbackInfo& info);
  Napi::Value GetDtype(const Napi::CallbackInfo& info);
  Napi::Value GetFreed(const Napi::CallbackInfo& info);
  void FreeNow(Napi::Env env);

  Storage* storage_ = nullptr;
  int64_t reported_bytes_ = 0;
};

// Positional argument reader for kernel bindings. A tensor argument is two JS values:
// the Storage object and the element offset of the view.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* op) : info_(info), op_(op) {}
  const char* op() const { return op_; }
  size_t size() const { return info_.Length(); }

  Storage* storage(size_t i) const;
  // Pointer to `numel` elements of dtype T at (storage at i, offset at i+1), bounds-checked.
  template <typename T>
  T* tensor(size_t i, int64_t numel, DType expected) const {
    Storage* s = storage(i);
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

  int64_t i64(size_t i) const;
  double f64(size_t i) const;
  bool boolean(size_t i) const;
  std::string str(size_t i) const;
  std::vector<int64_t> ints(size_t i) const;
  std::vector<double> doubles(size_t i) const;

 private:
  const Napi::CallbackInfo& info_;
  const char* op_;
};

int64_t numel_of(const std::vector<int64_t>& shape);

using BindingFn = Napi::Value (*)(const Napi::CallbackInfo&);

struct BindingRegistrar {
  BindingRegistrar(const char* name, BindingFn fn);
};

std::vector<std::pair<std::string, BindingFn>>& binding_registry();

}  // namespace lrface

#define LRFACE_CONCAT_INNER(a, b) a##b
#define LRFACE_CONCAT(a, b) LRFACE_CONCAT_INNER(a, b)
// Defines and registers a binding: LRFACE_BINDING(add) { Args a(info, "add"); ... return env.Undefined(); }
#define LRFACE_BINDING(name)                                                                 \
  static Napi::Value LRFACE_CONCAT(binding_, name)(const Napi::CallbackInfo& info);         \
  static ::lrface::BindingRegistrar LRFACE_CONCAT(registrar_, name)(#name, &LRFACE_CONCAT(binding_, name)); \
  static Napi::Value LRFACE_CONCAT(binding_, name)(const Napi::CallbackInfo& info)
