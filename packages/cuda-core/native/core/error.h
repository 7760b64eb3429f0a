// Errors raised by native code. The binding layer turns them into JS TypeError /
// RangeError / Error, so bad input never crashes the process.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace lrface {

enum class ErrorKind { Type, Range, State };

class EngineError : public std::runtime_error {
 public:
  EngineError(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  append(os, rest...);
}
}  // namespace detail

template <typename... Parts>
[[noreturn]] void fail(ErrorKind kind, const Parts&... parts) {
  std::ostringstream os;
  detail::append(os, parts...);
  throw EngineError(kind, os.str());
}

}  // namespace lrface

// Cheap re-check of a precondition the TypeScript front-end already validated.
#define LR_CHECK(cond, kind, ...)                                   \
  do {                                                              \
    if (!(cond)) ::lrface::fail(::lrface::ErrorKind::kind, __VA_ARGS__); \
  } while (0)
