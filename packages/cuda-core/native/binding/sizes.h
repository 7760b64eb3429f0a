// Overflow-checked element counts for bindings that receive sizes as plain numbers: a
// product that wrapped around could slip past the storage bounds check.
#pragma once
#include <cstdint>
#include <initializer_list>

#include "../core/error.h"

namespace lrface {

inline int64_t checked_product(const char* op, std::initializer_list<int64_t> dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    LR_CHECK(d >= 0, Range, op, ": negative size ", d);
    LR_CHECK(!__builtin_mul_overflow(n, d, &n), Range, op, ": size overflows");
  }
  return n;
}

}  // namespace lrface
