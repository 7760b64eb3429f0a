// Spectral normalisation (Miyato et al. 2018) as torch.nn.utils.spectral_norm: the weight is
// divided by its largest singular value, estimated by power iteration with a persistent u.
import * as ops from '@lrface/cuda-core';
import { noGrad, randn, type Tensor } from '@lrface/cuda-core';
import { Module } from './module.js';
import { ConvTranspose2d } from './layers.js';

export interface SpectralNormOptions {
  /** Parameter to normalise. Default 'weight'. */
  name?: string;
  /** Power iterations per training forward. Default 1. */
  nPowerIterations?: number;
  eps?: number;
  /** The axis holding output features. Default 1 for ConvTranspose2d (its weight is [in, out, kh, kw]), else 0, as in PyTorch. */
  dim?: number;
}

function normalize(v: Tensor, eps: number): Tensor {
  return ops.l2Normalize(ops.reshape(v, [1, v.size]), { axis: 1, eps });
}

/**
 * Applies spectral normalisation to `module.<name>` in place and returns the module. Its
 * state gains `<name>_orig`, `<name>_u` and `<name>_v` as in PyTorch, so weights trained
 * there load here. u and v are updated on every forward in training mode.
 */
export function spectralNorm<M extends Module>(module: M, options: SpectralNormOptions = {}): M {
  const { name = 'weight', nPowerIterations = 1, eps = 1e-12 } = options;
  const dim = options.dim ?? (module instanceof ConvTranspose2d ? 1 : 0);
  const record = module as unknown as Record<string, unknown>;
  const weight = record[name] as Tensor | undefined;
  if (!weight || typeof weight !== 'object' || !('shape' in weight)) throw new TypeError(`spectralNorm: 'module' has no parameter '${name}'`);
  if (!Number.isInteger(nPowerIterations) || nPowerIterations < 1) throw new RangeError(`spectralNorm: 'nPowerIterations' must be an integer >= 1, got ${nPowerIterations}`);
  if (!Number.isInteger(dim) || dim < 0 || dim >= weight.rank) throw new RangeError(`spectralNorm: 'dim' must be an integer in [0, ${weight.rank}), got ${dim}`);
  const perm = [dim, ...weight.shape.map((_, k) => k).filter((k) => k !== dim)];
  const height = weight.shape[dim];
  const width = weight.size / height;
  module._unregister(name);
  module._register('parameter', `${name}_orig`, weight);
  // `<name>` exists only during a forward (it is computed there); a second spectralNorm on the
  // same parameter therefore finds nothing to wrap and says so.
  record[name] = undefined;
  const u0 = randn([height]);
  const v0 = randn([width]);
  const u = noGrad(() => ops.reshape(normalize(u0, eps), [height]));
  const v = noGrad(() => ops.reshape(normalize(v0, eps), [width]));
  u0.dispose();
  v0.dispose();
  module._register('buffer', `${name}_u`, u);
  module._register('buffer', `${name}_v`, v);

  const matrixOf = (w: Tensor) => (dim === 0 ? ops.reshape(w, [height, width]) : ops.reshape(ops.permute(w, perm), [height, width]));
  const original = module.forward.bind(module);
  module.forward = (...inputs: unknown[]) => {
    const worig = record[`${name}_orig`] as Tensor;
    const uBuf = record[`${name}_u`] as Tensor;
    const vBuf = record[`${name}_v`] as Tensor;
    const normalized = ops.scope(() => {
      const wm = matrixOf(worig);
      if (module.training)
        noGrad(() => {
          for (let i = 0; i < nPowerIterations; i++) {
            // v = normalize(W^T u), u = normalize(W v)
            vBuf.assign(ops.reshape(normalize(ops.matmul(uBuf, wm), eps), [width]));
            uBuf.assign(ops.reshape(normalize(ops.matmul(wm, vBuf), eps), [height]));
          }
        });
      // sigma = u^T W v with u, v constants: the gradient flows through W only.
      const sigma = ops.sum(ops.mul(uBuf, ops.matmul(wm, vBuf)));
      return ops.div(worig, sigma);
    });
    record[name] = normalized;
    try {
      return original(...inputs);
    } finally {
      record[name] = undefined;
    }
  };
  return module;
}
