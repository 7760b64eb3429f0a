export type DType = 'float32' | 'int32' | 'uint8';
export const DTYPES: readonly DType[] = ['float32', 'int32', 'uint8'];
export type TypedArrayFor<D extends DType> = D extends 'float32' ? Float32Array : D extends 'int32' ? Int32Array : Uint8Array;

// Same numbering as native/core/dtype.h.
export const DTYPE_CODE: Record<DType, number> = { float32: 0, int32: 1, uint8: 2 };
export const DTYPE_BYTES: Record<DType, number> = { float32: 4, int32: 4, uint8: 1 };

export function typedArrayFor(dtype: DType, length: number): Float32Array | Int32Array | Uint8Array {
  if (dtype === 'float32') return new Float32Array(length);
  if (dtype === 'int32') return new Int32Array(length);
  return new Uint8Array(length);
}

export function dtypeOfTypedArray(a: unknown): DType | null {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Uint8Array || a instanceof Uint8ClampedArray) return 'uint8';
  return null;
}
