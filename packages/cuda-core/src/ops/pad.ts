// Padding of the last axis or the last two (PyTorch's F.pad).
import { attr, defineOp, ref } from './decl.js';
import { checkKeys, empty, formatShape, kernels, rangeError, record, registerGradient, shapeSize, Tensor, uninitialized } from './tensor-ref.js';

const F32 = ['float32'] as const;
const MODES: readonly PadMode[] = ['constant', 'reflect', 'replicate'];
/** How pad fills: zeros (or a value), a mirror without the edge, or the repeated edge. */
export type PadMode = 'constant' | 'reflect' | 'replicate';

const padDecl = defineOp('pad', { x: { dtypes: F32, rank: [1, 8] } }, {
  pad: attr.intList(),
  mode: attr.oneOf(MODES, { default: 'constant' }),
  value: attr.number({ default: 0 }),
});

export interface PadOptions {
  /** 'constant' (default), 'reflect' (mirror without repeating the edge) or 'replicate' (repeat the edge). */
  mode?: PadMode;
  /** Fill value for 'constant'. Default 0. */
  value?: number;
}

// 'pad' is the padding argument, not an option: spread over it, it would replace the argument.
const PAD_OPTION_KEYS: Record<keyof PadOptions, true> = { mode: true, value: true };

/**
 * Pads the last axis by [left, right], or the last two by [left, right, top, bottom]
 * (F.pad's order). 'constant' also takes negative pads, which crop (as F.pad); 'reflect'
 * needs each pad smaller than its axis, and 'reflect' and 'replicate' non-empty axes.
 */
export function pad(x: Tensor, padding: number[], options?: PadOptions): Tensor {
  const op = 'pad';
  if (options !== undefined) checkKeys(op, options, PAD_OPTION_KEYS);
  const { t, a } = padDecl.parse({ x }, { pad: padding, ...options });
  const p = a.pad!;
  const shown = `[${p.join(',')}]`;
  if (p.length !== 2 && p.length !== 4) throw rangeError(op, 'pad', '[left, right] or [left, right, top, bottom]', shown, true);
  const rank = t.x.rank;
  if (p.length === 4 && rank < 2) throw rangeError(op, 'pad', `2 entries for a 1-D input ${formatShape(t.x.shape)}`, shown, true);
  const [pl, pr, pt, pb] = [p[0], p[1], p[2] ?? 0, p[3] ?? 0];
  const h = p.length === 4 ? t.x.shape[rank - 2] : 1;
  const w = t.x.shape[rank - 1];
  const axes = p.length === 4 ? `${h}x${w}` : `${w}`;
  if (a.mode !== 'constant') {
    if (p.some((v) => v < 0)) throw rangeError(op, 'pad', `non-negative for '${a.mode}' (only 'constant' crops)`, shown, true);
    if (h === 0 || w === 0) throw rangeError(op, 'x', `non-empty padded axes for '${a.mode}'`, `shape ${formatShape(t.x.shape)}`, true);
    if (a.mode === 'reflect' && (pl >= w || pr >= w || pt >= h || pb >= h))
      throw rangeError(op, 'pad', `smaller than the padded axes (${axes}) for 'reflect'`, shown, true);
  }
  const outH = h + pt + pb;
  const outW = w + pl + pr;
  if (outH < 0 || outW < 0) throw rangeError(op, 'pad', `a crop no larger than the padded axes (${axes})`, shown, true);
  const planes = shapeSize(t.x.shape.slice(0, p.length === 4 ? rank - 2 : rank - 1));
  const outShape = [...t.x.shape];
  outShape[rank - 1] = outW;
  if (p.length === 4) outShape[rank - 2] = outH;
  const mode = MODES.indexOf(a.mode as PadMode);
  const dims = [planes, h, w, pt, pb, pl, pr];
  const out = uninitialized(outShape, 'float32', t.x._deviceIndex); // every row: copied or the fill
  if (out.size > 0) kernels.pad2d(...ref(out), ...ref(t.x), dims, mode, a.value);
  record(op, [t.x], out, {}, { dims, mode });
  return out;
}

registerGradient('pad', (ctx, g) => {
  const gx = empty(ctx.inputShapes[0], 'float32', g._deviceIndex);
  if (gx.size > 0) kernels.pad2d_backward(...ref(gx), ...ref(g), ctx.attrs.dims as number[], ctx.attrs.mode as number);
  return [gx];
});
