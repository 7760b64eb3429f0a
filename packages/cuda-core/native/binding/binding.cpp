#include "binding.h"

#include <cstring>

#include "../cuda/device_memory.h"

namespace lrface {

Napi::FunctionReference* StorageWrap::constructor = nullptr;

std::vector<BindingEntry>& binding_registry() {
  static std::vector<BindingEntry> registry;
  return registry;
}

BindingRegistrar::BindingRegistrar(const char* name, KernelFn fn) { binding_registry().push_back({name, fn, nullptr}); }
BindingRegistrar::BindingRegistrar(const char* name, QueryFn fn) { binding_registry().push_back({name, nullptr, fn}); }

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Napi::Function StorageWrap::Define(Napi::Env env) {
  Napi::Function fn = DefineClass(env, "Storage",
                                  {InstanceMethod("free", &StorageWrap::Free), InstanceMethod("read", &StorageWrap::Read),
                                   InstanceMethod("write", &StorageWrap::Write),
                                   InstanceAccessor("numel", &StorageWrap::GetNumel, nullptr),
                                   InstanceAccessor("dtype", &StorageWrap::GetDtype, nullptr),
                                   InstanceAccessor("freed", &StorageWrap::GetFreed, nullptr),
                                   InstanceAccessor("device", &StorageWrap::GetDevice, nullptr)});
  constructor = new Napi::FunctionReference(Napi::Persistent(fn));
  return fn;
}

// new Storage(dtype, numel, device = -1): device -1 is host memory, k >= 0 CUDA device k
StorageWrap::StorageWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StorageWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber() || (info.Length() > 2 && !info[2].IsNumber()) ||
      (info.Length() > 3 && !info[3].IsBoolean()))
    throw Napi::TypeError::New(env, "Storage: expected (dtype: number, numel: number, device?: number, zeroed?: boolean)");
  int dtype = info[0].As<Napi::Number>().Int32Value();
  double numel = info[1].As<Napi::Number>().DoubleValue();
  double device = info.Length() > 2 ? info[2].As<Napi::Number>().DoubleValue() : Storage::kHost;
  if (dtype < 0 || dtype > 2) throw Napi::RangeError::New(env, "Storage: 'dtype' must be 0, 1 or 2");
  if (!(numel >= 0) || numel > 9.0e15) throw Napi::RangeError::New(env, "Storage: 'numel' out of range");
  if (!(device >= -1 && device < 1024) || device != static_cast<int>(device))
    throw Napi::RangeError::New(env, "Storage: 'device' must be -1 (host) or a CUDA device index");
  try {
    const bool zeroed = info.Length() > 3 ? info[3].As<Napi::Boolean>().Value() : true;
    storage_ = new Storage(static_cast<DType>(dtype), static_cast<int64_t>(numel), static_cast<int>(device), zeroed);
  } catch (const EngineError& e) {
    throw Napi::Error::New(env, e.what());
  }
  // Only host bytes count towards V8's external memory; device memory has its own accounting.
  if (storage_->on_host()) {
    reported_bytes_ = static_cast<int64_t>(storage_->bytes());
    Napi::MemoryManagement::AdjustExternalMemory(env, reported_bytes_);
  }
}

StorageWrap::~StorageWrap() {
  // Reached from the GC finaliser when nobody called free(): give the bytes back to V8's count too.
  if (reported_bytes_ > 0) {
    try {
      Napi::MemoryManagement::AdjustExternalMemory(Env(), -reported_bytes_);
    } catch (...) {
    }
  }
  delete storage_;
}

void StorageWrap::FreeNow(Napi::Env env) {
  if (storage_ == nullptr || storage_->data() == nullptr) return;
  storage_->release();
  if (reported_bytes_ != 0) Napi::MemoryManagement::AdjustExternalMemory(env, -reported_bytes_);
  reported_bytes_ = 0;
}

Napi::Value StorageWrap::Free(const Napi::CallbackInfo& info) {
  if (pins_ > 0)
    free_requested_ = true;  // queued kernels still use it: freed when the last of them is done
  else
    FreeNow(info.Env());
  return info.Env().Undefined();
}

void StorageWrap::unpin(Napi::Env env) {
  if (--pins_ == 0 && free_requested_) {
    free_requested_ = false;
    FreeNow(env);
  }
}

void StorageWrap::CheckNotPinned(Napi::Env env, const char* what) const {
  if (pins_ > 0)
    throw Napi::Error::New(env, std::string(what) +
                                    ": the tensor belongs to an asynchronous run that has not finished; await it first");
}

// read(): a fresh copy as the matching TypedArray
Napi::Value StorageWrap::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (storage_->data() == nullptr && storage_->numel() > 0) throw Napi::Error::New(env, "read: storage was disposed");
  CheckNotPinned(env, "read");
  int64_t offset = info.Length() > 0 ? info[0].As<Napi::Number>().Int64Value() : 0;
  int64_t count = info.Length() > 1 ? info[1].As<Napi::Number>().Int64Value() : storage_->numel() - offset;
  if (offset < 0 || count < 0 || offset + count > storage_->numel())
    throw Napi::RangeError::New(env, "read: range exceeds the storage");
  size_t esize = dtype_size(storage_->dtype());
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, static_cast<size_t>(count) * esize);
  if (count > 0) {
    const char* src = static_cast<char*>(storage_->data()) + offset * esize;
    try {
      if (storage_->on_host())
        std::memcpy(buf.Data(), src, count * esize);
      else
        cuda::device_to_host(storage_->device(), buf.Data(), src, count * esize);
    } catch (const EngineError& e) {
      throw Napi::Error::New(env, std::string("read: ") + e.what());
    }
  }
  switch (storage_->dtype()) {
    case DType::Float32: return Napi::Float32Array::New(env, count, buf, 0);
    case DType::Int32: return Napi::Int32Array::New(env, count, buf, 0);
    case DType::Uint8: return Napi::Uint8Array::New(env, count, buf, 0);
  }
  return env.Undefined();
}

// write(typedArray, offset): copies the array's bytes in at `offset` elements
Napi::Value StorageWrap::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (storage_->data() == nullptr && storage_->numel() > 0) throw Napi::Error::New(env, "write: storage was disposed");
  CheckNotPinned(env, "write");
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "write: expected a TypedArray");
  Napi::TypedArray arr = info[0].As<Napi::TypedArray>();
  int64_t offset = info.Length() > 1 ? info[1].As<Napi::Number>().Int64Value() : 0;
  size_t esize = dtype_size(storage_->dtype());
  if (arr.ElementSize() != esize) throw Napi::TypeError::New(env, "write: element size does not match the dtype");
  int64_t count = static_cast<int64_t>(arr.ElementLength());
  if (offset < 0 || offset + count > storage_->numel()) throw Napi::RangeError::New(env, "write: range exceeds the storage");
  Napi::ArrayBuffer buf = arr.ArrayBuffer();
  if (count > 0) {
    char* dst = static_cast<char*>(storage_->data()) + offset * esize;
    const char* src = static_cast<const char*>(buf.Data()) + arr.ByteOffset();
    try {
      if (storage_->on_host())
        std::memcpy(dst, src, count * esize);
      else
        cuda::host_to_device(storage_->device(), dst, src, count * esize);
    } catch (const EngineError& e) {
      throw Napi::Error::New(env, std::string("write: ") + e.what());
    }
  }
  return env.Undefined();
}

Napi::Value StorageWrap::GetNumel(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(storage_->numel()));
}
Napi::Value StorageWrap::GetDtype(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<int>(storage_->dtype()));
}
Napi::Value StorageWrap::GetFreed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), free_requested_ || (storage_->data() == nullptr && storage_->numel() > 0));
}

Napi::Value StorageWrap::GetDevice(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), storage_->device());
}

std::vector<ArgValue> capture_args(const Napi::CallbackInfo& info, std::vector<Napi::Object>* wrappers) {
  std::vector<ArgValue> out(info.Length());
  for (size_t i = 0; i < info.Length(); ++i) {
    Napi::Value v = info[i];
    ArgValue& a = out[i];
    if (v.IsNull()) {
      a.kind = ArgValue::Kind::Null;
    } else if (v.IsNumber()) {
      a.kind = ArgValue::Kind::Number;
      a.number = v.As<Napi::Number>().DoubleValue();
    } else if (v.IsBoolean()) {
      a.kind = ArgValue::Kind::Boolean;
      a.boolean = v.As<Napi::Boolean>().Value();
    } else if (v.IsString()) {
      a.kind = ArgValue::Kind::String;
      a.text = v.As<Napi::String>().Utf8Value();
    } else if (v.IsArray()) {
      a.kind = ArgValue::Kind::Array;
      Napi::Array arr = v.As<Napi::Array>();
      a.array.resize(arr.Length());
      for (uint32_t k = 0; k < arr.Length(); ++k) {
        Napi::Value e = arr.Get(k);
        if (e.IsNumber())
          a.array[k] = e.As<Napi::Number>().DoubleValue();
        else
          a.numeric_array = false;
      }
    } else if (v.IsObject() && v.As<Napi::Object>().InstanceOf(StorageWrap::constructor->Value())) {
      a.kind = ArgValue::Kind::Storage;
      a.storage = StorageWrap::Unwrap(v.As<Napi::Object>())->storage();
      if (wrappers) wrappers->push_back(v.As<Napi::Object>());
    } else {
      a.kind = ArgValue::Kind::Other;
    }
  }
  return out;
}

const ArgValue& Args::at(size_t i, ArgValue::Kind kind, const char* what) const {
  if (i >= values_.size() || values_[i].kind != kind) fail(ErrorKind::Type, op_, ": argument ", i, " must be ", what);
  return values_[i];
}

std::string Args::device_name(int device) {
  return device == Storage::kHost ? std::string("the CPU") : "cuda:" + std::to_string(device);
}

void Args::fail_not_on_host(size_t i, const Storage* s) const {
  fail(ErrorKind::State, op_, ": argument ", i, " is on ", device_name(s->device()),
       " but this kernel runs on the CPU only (no CUDA kernel for this op yet, or its output is on the CPU)");
}

Storage* Args::storage(size_t i) const {
  Storage* s = at(i, ArgValue::Kind::Storage, "a Storage").storage;
  if (s->data() == nullptr && s->numel() > 0) fail(ErrorKind::State, op_, ": argument ", i, " was disposed");
  return s;
}

int64_t Args::i64(size_t i) const {
  double d = at(i, ArgValue::Kind::Number, "a number").number;
  if (!(d >= -9.0e18 && d <= 9.0e18)) fail(ErrorKind::Range, op_, ": argument ", i, " is not a finite integer");
  return static_cast<int64_t>(d);
}

double Args::f64(size_t i) const { return at(i, ArgValue::Kind::Number, "a number").number; }

bool Args::boolean(size_t i) const { return at(i, ArgValue::Kind::Boolean, "a boolean").boolean; }

std::string Args::str(size_t i) const { return at(i, ArgValue::Kind::String, "a string").text; }

std::vector<double> Args::doubles(size_t i) const {
  const ArgValue& v = at(i, ArgValue::Kind::Array, "an array");
  if (!v.numeric_array) fail(ErrorKind::Type, op_, ": argument ", i, " must hold numbers");
  return v.array;
}

std::vector<int64_t> Args::ints(size_t i) const {
  std::vector<double> d = doubles(i);
  for (double e : d)
    if (!(e >= -9.0e18 && e <= 9.0e18)) fail(ErrorKind::Range, op_, ": argument ", i, " holds a non-finite number");
  return std::vector<int64_t>(d.begin(), d.end());
}

}  // namespace lrface
