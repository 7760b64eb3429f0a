// Weight initialisation as torch.nn.init defines it, drawing from the engine's seeded generator.
import { checkKeys, noGrad, rand, randn, type DeviceSpec, type Tensor } from '@lrface/cuda-core';

export type Nonlinearity = 'linear' | 'conv2d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu';

/** torch.nn.init.calculate_gain. */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear':
    case 'conv2d':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    default:
      throw new RangeError(`calculateGain: 'nonlinearity' must be one of linear, conv2d, sigmoid, tanh, relu, leaky_relu, got '${String(nonlinearity)}'`);
  }
}

/** [fanIn, fanOut] of a weight [out, in, ...kernel]. */
export function fans(t: Tensor): [number, number] {
  if (t.rank < 2) throw new RangeError(`fans: 'tensor' must have rank >= 2, got rank ${t.rank}`);
  const receptive = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return [t.shape[1] * receptive, t.shape[0] * receptive];
}

// Draws on t's device (the generator gives the same values on every device), so no copy crosses.
function fill(t: Tensor, make: () => Tensor): Tensor {
  noGrad(() => {
    const v = make();
    t.assign(v);
    v.dispose();
  });
  return t;
}

export function uniform_(t: Tensor, low = 0, high = 1): Tensor {
  return fill(t, () => rand(t.shape, { low, high, device: t.deviceId as DeviceSpec }));
}

export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  return fill(t, () => randn(t.shape, { mean, std, device: t.deviceId as DeviceSpec }));
}

export function constant_(t: Tensor, value: number): Tensor {
  t.assign(new Float32Array(t.size).fill(value));
  return t;
}

export interface KaimingOptions {
  /** Negative slope of the following leaky ReLU (0 for ReLU). */
  a?: number;
  mode?: 'fan_in' | 'fan_out';
  nonlinearity?: Nonlinearity;
}

const KAIMING_OPTION_KEYS: Record<keyof KaimingOptions, true> = { a: true, mode: true, nonlinearity: true };

export function kaimingUniform_(t: Tensor, options: KaimingOptions = {}): Tensor {
  checkKeys('kaimingUniform_', options, KAIMING_OPTION_KEYS);
  const { a = 0, mode = 'fan_in', nonlinearity = 'leaky_relu' } = options;
  const fan = fans(t)[mode === 'fan_in' ? 0 : 1];
  const bound = calculateGain(nonlinearity, a) * Math.sqrt(3 / fan);
  return uniform_(t, -bound, bound);
}

export function kaimingNormal_(t: Tensor, options: KaimingOptions = {}): Tensor {
  checkKeys('kaimingNormal_', options, KAIMING_OPTION_KEYS);
  const { a = 0, mode = 'fan_in', nonlinearity = 'leaky_relu' } = options;
  const fan = fans(t)[mode === 'fan_in' ? 0 : 1];
  return normal_(t, 0, calculateGain(nonlinearity, a) / Math.sqrt(fan));
}

export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const [fi, fo] = fans(t);
  const bound = gain * Math.sqrt(6 / (fi + fo));
  return uniform_(t, -bound, bound);
}

export function xavierNormal_(t: Tensor, gain = 1): Tensor {
  const [fi, fo] = fans(t);
  return normal_(t, 0, gain * Math.sqrt(2 / (fi + fo)));
}
