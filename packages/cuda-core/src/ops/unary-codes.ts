// The native unary kernels' op codes (native/cpu/elementwise.h UnaryOp), shared by the
// elementwise ops and by fused ops that reuse a unary backward kernel. Not part of the API.
export const UNARY_CODES = {
  neg: 0, exp: 1, log: 2, sqrt: 3, abs: 4, relu: 5, sigmoid: 6, tanh: 7, leaky_relu: 8, clamp: 9, affine: 10, pow_scalar: 11, square: 12,
} as const;
