#pragma once
#include <cstddef>
#include <cstdint>

namespace lrface {

// The numbering is shared with src/dtype.ts.
enum class DType : int { Float32 = 0, Int32 = 1, Uint8 = 2 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float32: return 4;
    case DType::Int32: return 4;
    case DType::Uint8: return 1;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Int32: return "int32";
    case DType::Uint8: return "uint8";
  }
  return "unknown";
}

}  // namespace lrface
