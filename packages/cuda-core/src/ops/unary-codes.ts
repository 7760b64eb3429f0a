// The native unary and binary kernels' op codes (native/cpu/elementwise.h UnaryOp, BinaryOp),
// shared by the elementwise ops and by fused ops that reuse their kernels. Not part of the API.
export const UNARY_CODES = {
  neg: 0, exp: 1, log: 2, sqrt: 3, abs: 4, relu: 5, sigmoid: 6, tanh: 7, leaky_relu: 8, clamp: 9, affine: 10, pow_scalar: 11, square: 12,
} as const;
export const BINARY_CODES = { add: 0, sub: 1, mul: 2, div: 3, pow: 4, maximum: 5, minimum: 6 } as const;
