#pragma once
#include <cstdint>
#include <vector>

namespace lrface::cpu {

// Codes shared with src/ops/elementwise.ts.
enum class BinaryOp : int { Add = 0, Sub = 1, Mul = 2, Div = 3, Pow = 4, Maximum = 5, Minimum = 6, GreaterEqual = 7, LessEqual = 8 };
enum class UnaryOp : int {
  Neg = 0, Exp = 1, Log = 2, Sqrt = 3, Abs = 4, Relu = 5, Sigmoid = 6, Tanh = 7, LeakyRelu = 8, Clamp = 9,
  Affine = 10, PowScalar = 11, Square = 12
};

// out[i] = a[ia] op b[ib] where a and b are broadcast to out_shape (a_shape, b_shape have out's rank).
void binary(BinaryOp op, float* out, const float* a, const float* b, const std::vector<int64_t>& out_shape,
            const std::vector<int64_t>& a_shape, const std::vector<int64_t>& b_shape);
void unary(UnaryOp op, float* out, const float* x, int64_t n, float p0, float p1);
// gx = dL/dx from gy; x is the input, y the output of the forward op (either may be unused).
void unary_backward(UnaryOp op, float* gx, const float* gy, const float* x, const float* y, int64_t n, float p0, float p1);

}  // namespace lrface::cpu
