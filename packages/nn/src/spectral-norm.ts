// Spectral normalisation (Miyato et al. 2018): the weight is divided by its largest singular
// value, estimated by power iteration with a persistent u. Two forms with the state names
// PyTorch users meet: torch.nn.utils.spectral_norm (in place: weight_orig, weight_u,
// weight_v) and the SpectralNorm wrapper module of the public SN-GAN code that the LR-landmark
// discriminators build on (module.weight_bar, module.weight_u, module.weight_v).
import * as ops from '@lrface/cuda-core';
import { checkKeys, noGrad, randn, Tensor, type DeviceSpec } from '@lrface/cuda-core';
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

const SPECTRAL_NORM_OPTION_KEYS: Record<keyof SpectralNormOptions, true> = { name: true, nPowerIterations: true, eps: true, dim: true };

function normalize(v: Tensor, eps: number): Tensor {
  return ops.l2Normalize(ops.reshape(v, [1, v.size]), { axis: 1, eps });
}

/**
 * Moves `module.<name>` to `<name><origSuffix>`, adds the u and v buffers, and returns a
 * function computing the normalised weight (running the power iteration when asked).
 */
function attach(op: string, module: Module, options: SpectralNormOptions, origSuffix: string): (update: boolean) => Tensor {
  const { name = 'weight', nPowerIterations = 1, eps = 1e-12 } = options;
  const record = module as unknown as Record<string, unknown>;
  const weight = record[name];
  if (!(weight instanceof Tensor)) throw new TypeError(`${op}: 'module' has no parameter '${name}'`);
  if (!Number.isInteger(nPowerIterations) || nPowerIterations < 1) throw new RangeError(`${op}: 'nPowerIterations' must be an integer >= 1, got ${nPowerIterations}`);
  if (!(eps > 0)) throw new RangeError(`${op}: 'eps' must be > 0, got ${eps}`);
  const dim = options.dim ?? (module instanceof ConvTranspose2d ? 1 : 0);
  if (!Number.isInteger(dim) || dim < 0 || dim >= weight.rank) throw new RangeError(`${op}: 'dim' must be an integer in [0, ${weight.rank}), got ${dim}`);
  const perm = [dim, ...weight.shape.map((_, k) => k).filter((k) => k !== dim)];
  const height = weight.shape[dim];
  const width = weight.size / height;
  const origName = `${name}${origSuffix}`;
  module._unregister(name);
  module._register('parameter', origName, weight);
  // `<name>` exists only during a forward (it is computed there); a second wrapping of the
  // same parameter therefore finds nothing to wrap and says so.
  record[name] = undefined;
  // On the weight's device, so wrapping a module already moved there keeps it there.
  const u0 = randn([height], { device: weight.deviceId as DeviceSpec });
  const v0 = randn([width], { device: weight.deviceId as DeviceSpec });
  const u = noGrad(() => ops.reshape(normalize(u0, eps), [height]));
  const v = noGrad(() => ops.reshape(normalize(v0, eps), [width]));
  u0.dispose();
  v0.dispose();
  module._register('buffer', `${name}_u`, u);
  module._register('buffer', `${name}_v`, v);

  const matrixOf = (w: Tensor) => (dim === 0 ? ops.reshape(w, [height, width]) : ops.reshape(ops.permute(w, perm), [height, width]));
  return (update: boolean) => {
    const worig = record[origName] as Tensor;
    const uBuf = record[`${name}_u`] as Tensor;
    const vBuf = record[`${name}_v`] as Tensor;
    return ops.scope(() => {
      const wm = matrixOf(worig);
      if (update)
        noGrad(() => {
          for (let i = 0; i < nPowerIterations; i++) {
            // v = normalize(W^T u), u = normalize(W v)
            vBuf.assign(ops.reshape(normalize(ops.matmul(uBuf, wm), eps), [width]));
            uBuf.assign(ops.reshape(normalize(ops.matmul(wm, vBuf), eps), [height]));
          }
        });
      // sigma = u^T W v with u and v held constant: the gradient reaches W through both the
      // numerator and sigma, never u or v.
      const sigma = ops.sum(ops.mul(uBuf, ops.matmul(wm, vBuf)));
      return ops.div(worig, sigma);
    });
  };
}

/** Runs `forward` with `module.<name>` set to `weight` for its duration. */
function withWeight<T>(module: Module, name: string, weight: Tensor, forward: () => T): T {
  const record = module as unknown as Record<string, unknown>;
  record[name] = weight;
  try {
    return forward();
  } finally {
    record[name] = undefined;
  }
}

/**
 * Applies spectral normalisation to `module.<name>` in place and returns the module, as
 * torch.nn.utils.spectral_norm: its state gains `<name>_orig`, `<name>_u` and `<name>_v`,
 * so weights trained there load here. u and v are updated on every forward in training mode.
 */
export function spectralNorm<M extends Module>(module: M, options: SpectralNormOptions = {}): M {
  checkKeys('spectralNorm', options, SPECTRAL_NORM_OPTION_KEYS);
  const name = options.name ?? 'weight';
  const compute = attach('spectralNorm', module, options, '_orig');
  const original = module.forward.bind(module);
  module.forward = (...inputs: unknown[]) => withWeight(module, name, compute(module.training), () => original(...inputs));
  return module;
}

/**
 * Spectral normalisation as a wrapper module, with the state names of the SpectralNorm class
 * in the public SN-GAN code (the form of the LR-landmark paper's D1): the wrapped module is
 * child 'module' and holds `<name>_bar`, `<name>_u` and `<name>_v`. u and v are updated on
 * every forward in training mode.
 */
export class SpectralNorm extends Module {
  declare module: Module;
  private readonly compute: (update: boolean) => Tensor;
  private readonly weightName: string;
  constructor(module: Module, options: SpectralNormOptions = {}) {
    super();
    if (!(module instanceof Module)) throw new TypeError(`SpectralNorm: 'module' must be a Module, got ${typeof module}`);
    checkKeys('SpectralNorm', options, SPECTRAL_NORM_OPTION_KEYS);
    this.weightName = options.name ?? 'weight';
    this.compute = attach('SpectralNorm', module, options, '_bar');
    this.registerModule('module', module);
  }
  forward(...inputs: unknown[]): unknown {
    return withWeight(this.module, this.weightName, this.compute(this.training), () => this.module.forward(...inputs));
  }
}
