#include "elementwise.h"

#include <algorithm>
#include <cmath>

#include "../core/thread_pool.h"
#include "kernel_util.h"

namespace lrface::cpu {

namespace {

using kernel::pick;

// The output's axes with neighbours that both operands read the same way (each whole along
// both, or broadcast along both) merged, and axes of size 1 dropped: [N, C, H, W] + [1, C, 1, 1]
// is [N, C, H*W] + [1, C, 1], so the inner loop runs over planes rather than rows, and a conv
// weight scaled per output channel ([O, C, 3, 3] x [O, 1, 1, 1]) is [O, C*9] x [O, 1], not
// rows of 3.
void coalesce(const std::vector<int64_t>& shape, const std::vector<int64_t>& a_shape, const std::vector<int64_t>& b_shape,
              std::vector<int64_t>& s, std::vector<int64_t>& as, std::vector<int64_t>& bs) {
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] == 1) continue;
    const bool a_whole = a_shape[k] != 1, b_whole = b_shape[k] != 1;
    if (!s.empty() && a_whole == (as.back() != 1) && b_whole == (bs.back() != 1)) {
      s.back() *= shape[k];
      if (a_whole) as.back() *= shape[k];
      if (b_whole) bs.back() *= shape[k];
      continue;
    }
    s.push_back(shape[k]);
    as.push_back(a_shape[k]);
    bs.push_back(b_shape[k]);
  }
}

template <typename F>
void binary_loop(F f, float* out, const float* a, const float* b, const std::vector<int64_t>& full_shape,
                 const std::vector<int64_t>& full_a_shape, const std::vector<int64_t>& full_b_shape) {
  int64_t total = 1;
  for (int64_t d : full_shape) total *= d;
  if (total == 0) return;
  if (full_a_shape == full_shape && full_b_shape == full_shape) {
    parallel_for(total, 1 << 15, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) out[i] = f(a[i], b[i]);
    });
    return;
  }
  std::vector<int64_t> shape, a_shape, b_shape;
  coalesce(full_shape, full_a_shape, full_b_shape, shape, a_shape, b_shape);
  const size_t rank = shape.size();
  if (rank == 0) {  // one element (every axis of size 1)
    out[0] = f(a[0], b[0]);
    return;
  }
  // Strides of a and b in out's index space; 0 along broadcast axes.
  std::vector<int64_t> sa(rank, 0), sb(rank, 0);
  int64_t ra = 1, rb = 1;
  for (size_t k = rank; k-- > 0;) {
    sa[k] = a_shape[k] == 1 ? 0 : ra;
    sb[k] = b_shape[k] == 1 ? 0 : rb;
    ra *= a_shape[k];
    rb *= b_shape[k];
  }
  const int64_t inner = rank == 0 ? 1 : shape[rank - 1];
  const int64_t rows = total / inner;
  const int64_t ia = rank == 0 ? 0 : sa[rank - 1];
  const int64_t ib = rank == 0 ? 0 : sb[rank - 1];
  parallel_for(rows, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(inner, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      int64_t rem = row, oa = 0, ob = 0;
      for (size_t k = rank - 1; k-- > 0;) {
        int64_t idx = rem % shape[k];
        rem /= shape[k];
        oa += idx * sa[k];
        ob += idx * sb[k];
      }
      float* o = out + row * inner;
      const float* pa = a + oa;
      const float* pb = b + ob;
      if (ia == 1 && ib == 1)
        for (int64_t j = 0; j < inner; ++j) o[j] = f(pa[j], pb[j]);
      else if (ia == 1 && ib == 0) {
        const float vb = pb[0];
        for (int64_t j = 0; j < inner; ++j) o[j] = f(pa[j], vb);
      } else if (ia == 0 && ib == 1) {
        const float va = pa[0];
        for (int64_t j = 0; j < inner; ++j) o[j] = f(va, pb[j]);
      } else
        for (int64_t j = 0; j < inner; ++j) o[j] = f(pa[j * ia], pb[j * ib]);
    }
  });
}

template <typename F>
void map(float* out, const float* x, int64_t n, F f) {
  parallel_for(n, 1 << 14, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = f(x[i]);
  });
}

// gx[i] = gy[i] * d(t[i]), t the op's saved input or output (whichever its derivative reads). The
// derivatives choose with kernel::pick, not ?: (on ReLU's random signs a branch mispredicted every
// other element, 12x slower than an add, and kept the loop from vectorising).
template <typename D>
void map_backward(float* gx, const float* gy, const float* t, int64_t n, D d) {
  parallel_for(n, 1 << 14, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) gx[i] = gy[i] * d(t[i]);
  });
}

inline float sigmoid(float v) { return v >= 0 ? 1.0f / (1.0f + std::exp(-v)) : std::exp(v) / (1.0f + std::exp(v)); }

}  // namespace

void binary(BinaryOp op, float* out, const float* a, const float* b, const std::vector<int64_t>& s,
            const std::vector<int64_t>& as, const std::vector<int64_t>& bs) {
  switch (op) {
    case BinaryOp::Add: return binary_loop([](float x, float y) { return x + y; }, out, a, b, s, as, bs);
    case BinaryOp::Sub: return binary_loop([](float x, float y) { return x - y; }, out, a, b, s, as, bs);
    case BinaryOp::Mul: return binary_loop([](float x, float y) { return x * y; }, out, a, b, s, as, bs);
    case BinaryOp::Div: return binary_loop([](float x, float y) { return x / y; }, out, a, b, s, as, bs);
    case BinaryOp::Pow: return binary_loop([](float x, float y) { return std::pow(x, y); }, out, a, b, s, as, bs);
    case BinaryOp::Maximum: return binary_loop([](float x, float y) { return x >= y ? x : y; }, out, a, b, s, as, bs);
    case BinaryOp::Minimum: return binary_loop([](float x, float y) { return x <= y ? x : y; }, out, a, b, s, as, bs);
    case BinaryOp::GreaterEqual: return binary_loop([](float x, float y) { return x >= y ? 1.0f : 0.0f; }, out, a, b, s, as, bs);
    case BinaryOp::LessEqual: return binary_loop([](float x, float y) { return x <= y ? 1.0f : 0.0f; }, out, a, b, s, as, bs);
  }
}

void unary(UnaryOp op, float* out, const float* x, int64_t n, float p0, float p1) {
  switch (op) {
    case UnaryOp::Neg: return map(out, x, n, [](float v) { return -v; });
    case UnaryOp::Exp: return map(out, x, n, [](float v) { return std::exp(v); });
    case UnaryOp::Log: return map(out, x, n, [](float v) { return std::log(v); });
    case UnaryOp::Sqrt: return map(out, x, n, [](float v) { return std::sqrt(v); });
    case UnaryOp::Abs: return map(out, x, n, [](float v) { return std::fabs(v); });
    case UnaryOp::Relu: return map(out, x, n, [](float v) { return v > 0 ? v : 0.0f; });
    case UnaryOp::Sigmoid: return map(out, x, n, [](float v) { return sigmoid(v); });
    case UnaryOp::Tanh: return map(out, x, n, [](float v) { return std::tanh(v); });
    case UnaryOp::LeakyRelu: return map(out, x, n, [p0](float v) { return v > 0 ? v : v * p0; });
    case UnaryOp::Clamp: return map(out, x, n, [p0, p1](float v) { return std::min(std::max(v, p0), p1); });
    case UnaryOp::Affine: return map(out, x, n, [p0, p1](float v) { return v * p0 + p1; });
    case UnaryOp::PowScalar: return map(out, x, n, [p0](float v) { return std::pow(v, p0); });
    case UnaryOp::Square: return map(out, x, n, [](float v) { return v * v; });
  }
}

void unary_backward(UnaryOp op, float* gx, const float* gy, const float* x, const float* y, int64_t n, float p0,
                    float p1) {
  switch (op) {
    case UnaryOp::Neg: return map_backward(gx, gy, gy, n, [](float) { return -1.0f; });
    case UnaryOp::Exp: return map_backward(gx, gy, y, n, [](float v) { return v; });
    case UnaryOp::Log: return map_backward(gx, gy, x, n, [](float v) { return 1.0f / v; });
    case UnaryOp::Sqrt: return map_backward(gx, gy, y, n, [](float v) { return 0.5f / v; });
    case UnaryOp::Abs: return map_backward(gx, gy, x, n, [](float v) { return pick(v > 0, 1.0f, pick(v < 0, -1.0f, 0.0f)); });
    case UnaryOp::Relu: return map_backward(gx, gy, x, n, [](float v) { return pick(v > 0, 1.0f, 0.0f); });
    case UnaryOp::Sigmoid: return map_backward(gx, gy, y, n, [](float v) { return v * (1.0f - v); });
    case UnaryOp::Tanh: return map_backward(gx, gy, y, n, [](float v) { return 1.0f - v * v; });
    case UnaryOp::LeakyRelu: return map_backward(gx, gy, x, n, [p0](float v) { return pick(v > 0, 1.0f, p0); });
    case UnaryOp::Clamp:
      return map_backward(gx, gy, x, n, [p0, p1](float v) { return pick(v >= p0 && v <= p1, 1.0f, 0.0f); });
    case UnaryOp::Affine: return map_backward(gx, gy, gy, n, [p0](float) { return p0; });
    case UnaryOp::PowScalar:
      return map_backward(gx, gy, x, n, [p0](float v) { return p0 * std::pow(v, p0 - 1.0f); });
    case UnaryOp::Square: return map_backward(gx, gy, x, n, [](float v) { return 2.0f * v; });
  }
}

}  // namespace lrface::cpu
