// LGCN's post-processing (Merget et al., CVPR 2018): a PCA 2-D shape model fitted to the
// network's heatmaps to filter outliers. All arithmetic is float64.
//
// Coordinates: 0-based pixel centres, as everywhere in this package (pixel (0, 0) covers
// [-0.5, 0.5)^2). The reference code is 1-based Matlab and rotates about the image centre
// (S + 1) / 2; the same physical point here is (S - 1) / 2 (47.5 on a 96x96 input).
//
// Shapes are interleaved [x0, y0, x1, y1, ...] arrays of 2P numbers; NaN marks an unlabelled point.
//
// The steps (numbered as in the design note):
// 1. negative heatmap values -> 0;
// 2. `PcaShapeModel.fit`: complete shapes only, rotated about the image centre onto the mean by
//    Kabsch, PCA by the eigen-decomposition of the scatter matrix (= SVD of the centred shape
//    matrix), basis U diag(S), ordering constraints = coordinate differences whose sign holds on
//    every training shape;
// 3. global fit: rotation from Kabsch between the confident arg-max points and the mean shape,
//    then heatmap-weighted least squares for the coefficients under the ordering constraints (a QP);
// 4. local refits with the heatmaps masked to a window about the current estimate;
// 5. snap each point to the nearest 3x3 regional maximum of its heatmap;
// 6. sub-pixel mean in a 5x5 window about it, blended with the model point by the peak value.
import { checkKeys, rangeError, typeError } from '@lrface/cuda-core';

// ---------------------------------------------------------------------------------------------
// Linear algebra

/** An eigen-decomposition: values in descending order, vectors as the columns of an n x n row-major matrix. */
export interface SymmetricEigen {
  values: Float64Array;
  /** vectors[i * n + k] is component i of the eigenvector of values[k]; the columns are orthonormal. */
  vectors: Float64Array;
}

const SYMMETRIC_EIGEN_OPTION_KEYS: Record<'maxSweeps', true> = { maxSweeps: true };
const SOLVE_QP_OPTION_KEYS: Record<'maxIterations', true> = { maxIterations: true };
const KABSCH_OPTION_KEYS: Record<'centre' | 'weights', true> = { centre: true, weights: true };
const FIT_COEFFICIENTS_OPTION_KEYS: Record<keyof FitCoefficientsOptions, true> = { thresh: true, minWeight: true, useOrderingConstraints: true, window: true };
const FIT_WINDOW_KEYS: Record<keyof FitWindow, true> = { centres: true, radius: true };

/**
 * Eigenvalues and eigenvectors of a symmetric n x n matrix (row-major) by cyclic Jacobi
 * rotations: accurate to working precision for the small matrices used here (the 136 x 136
 * scatter matrix of 68-point shapes).
 */
export function symmetricEigen(matrix: ArrayLike<number>, n: number, options: { maxSweeps?: number } = {}): SymmetricEigen {
  const fn = 'symmetricEigen';
  checkKeys(fn, options, SYMMETRIC_EIGEN_OPTION_KEYS);
  if (!Number.isInteger(n) || n < 1) throw rangeError(fn, 'n', 'an integer >= 1', n);
  if (!matrix || typeof matrix.length !== 'number') throw typeError(fn, 'matrix', `an array of ${n * n} numbers`, matrix);
  if (matrix.length !== n * n) throw rangeError(fn, 'matrix', `${n * n} values (n x n)`, `${matrix.length} values`, true);
  const a = Float64Array.from(matrix);
  let scale = 0;
  for (let i = 0; i < n * n; i++) {
    if (!Number.isFinite(a[i])) throw rangeError(fn, 'matrix', 'finite values', a[i]);
    scale = Math.max(scale, Math.abs(a[i]));
  }
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++)
      if (Math.abs(a[i * n + j] - a[j * n + i]) > 1e-9 * Math.max(scale, 1e-300))
        throw rangeError(fn, 'matrix', 'a symmetric matrix', `entry (${i}, ${j}) = ${a[i * n + j]} but (${j}, ${i}) = ${a[j * n + i]}`, true);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  const maxSweeps = options.maxSweeps ?? 60;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < n; i++) {
      diag += a[i * n + i] ** 2;
      for (let j = i + 1; j < n; j++) off += a[i * n + j] ** 2;
    }
    if (off <= 1e-30 * (diag + off) || off === 0) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        const app = a[p * n + p];
        const aqq = a[q * n + q];
        // Rotation J (c, s) that zeroes A'[p][q] of J^T A J.
        const theta = (aqq - app) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        a[p * n + q] = 0;
        a[q * n + p] = 0;
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => a[y * n + y] - a[x * n + x]);
  const values = Float64Array.from(order, (i) => a[i * n + i]);
  const vectors = new Float64Array(n * n);
  order.forEach((src, k) => {
    for (let i = 0; i < n; i++) vectors[i * n + k] = v[i * n + src];
  });
  return { values, vectors };
}

/** Cholesky factor L (lower, row-major) of a symmetric positive definite n x n matrix; null if it is not positive definite. */
function cholesky(a: Float64Array, n: number): Float64Array | null {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      if (i === j) {
        if (!(s > 0)) return null;
        l[i * n + i] = Math.sqrt(s);
      } else l[i * n + j] = s / l[j * n + j];
    }
  return l;
}

/** Solves L L^T x = b for a Cholesky factor L. */
function choleskySolve(l: Float64Array, n: number, b: ArrayLike<number>): Float64Array {
  const y = Float64Array.from(b);
  for (let i = 0; i < n; i++) {
    let s = y[i];
    for (let k = 0; k < i; k++) s -= l[i * n + k] * y[k];
    y[i] = s / l[i * n + i];
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < n; k++) s -= l[k * n + i] * y[k];
    y[i] = s / l[i * n + i];
  }
  return y;
}

/** Solves the small dense system M x = b (Gaussian elimination with partial pivoting); null if singular. */
function solveDense(m: Float64Array, k: number, b: Float64Array): Float64Array | null {
  const a = Float64Array.from(m);
  const x = Float64Array.from(b);
  for (let col = 0; col < k; col++) {
    let piv = col;
    for (let r = col + 1; r < k; r++) if (Math.abs(a[r * k + col]) > Math.abs(a[piv * k + col])) piv = r;
    if (Math.abs(a[piv * k + col]) < 1e-300) return null;
    if (piv !== col) {
      for (let c = 0; c < k; c++) [a[col * k + c], a[piv * k + c]] = [a[piv * k + c], a[col * k + c]];
      [x[col], x[piv]] = [x[piv], x[col]];
    }
    for (let r = col + 1; r < k; r++) {
      const f = a[r * k + col] / a[col * k + col];
      if (f === 0) continue;
      for (let c = col; c < k; c++) a[r * k + c] -= f * a[col * k + c];
      x[r] -= f * x[col];
    }
  }
  for (let r = k - 1; r >= 0; r--) {
    let s = x[r];
    for (let c = r + 1; c < k; c++) s -= a[r * k + c] * x[c];
    x[r] = s / a[r * k + r];
  }
  return x;
}

// ---------------------------------------------------------------------------------------------
// Quadratic programming

/** The solution of a QP: the minimiser, one Lagrange multiplier per inequality (0 where inactive) and the active set. */
export interface QpSolution {
  x: Float64Array;
  /** lambda_i >= 0 with Q x + q + G^T lambda = 0 and lambda_i (G x - h)_i = 0. */
  multipliers: Float64Array;
  /** Indices of the constraints held with equality at the solution. */
  active: number[];
  /** Constraints added or dropped on the way. */
  iterations: number;
}

/**
 * Minimises 1/2 x^T Q x + q^T x subject to G x <= h, for a symmetric positive definite Q
 * (n x n, row-major) and m inequalities (G: m x n, row-major), by the dual active-set method
 * of Goldfarb and Idnani (1983): start at the unconstrained minimum and add the most violated
 * constraint while keeping the dual feasible, dropping constraints whose multiplier would turn
 * negative. It needs no feasible starting point, and each step costs O(m n) to find the most
 * violated constraint plus O(n^3) for the active set, so thousands of constraints on a dozen
 * variables take milliseconds. Throws when the constraints are infeasible.
 */
export function solveQp(Q: ArrayLike<number>, q: ArrayLike<number>, G: ArrayLike<number>, h: ArrayLike<number>, options: { maxIterations?: number } = {}): QpSolution {
  const fn = 'solveQp';
  checkKeys(fn, options, SOLVE_QP_OPTION_KEYS);
  const n = q?.length;
  if (!q || typeof n !== 'number' || n < 1) throw typeError(fn, 'q', 'a non-empty array of numbers', q);
  if (!Q || Q.length !== n * n) throw rangeError(fn, 'Q', `${n * n} values (n x n for n = ${n})`, Q ? `${Q.length} values` : Q, true);
  const m = h?.length ?? -1;
  if (!h || typeof m !== 'number') throw typeError(fn, 'h', 'an array of numbers', h);
  if (!G || G.length !== m * n) throw rangeError(fn, 'G', `${m * n} values (m x n for m = ${m}, n = ${n})`, G ? `${G.length} values` : G, true);
  for (const [name, arr] of [['Q', Q], ['q', q], ['G', G], ['h', h]] as const)
    for (let i = 0; i < arr.length; i++) if (!Number.isFinite(arr[i])) throw rangeError(fn, name, 'finite values', arr[i]);
  const Qd = Float64Array.from(Q);
  const L = cholesky(Qd, n);
  if (!L) throw rangeError(fn, 'Q', 'a symmetric positive definite matrix', 'a matrix without a Cholesky factor', true);
  // Q^-1 as a dense matrix: n is small.
  const Qinv = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const e = new Float64Array(n);
    e[j] = 1;
    const col = choleskySolve(L, n, e);
    for (let i = 0; i < n; i++) Qinv[i * n + j] = col[i];
  }
  const Gd = Float64Array.from(G);
  const hd = Float64Array.from(h);
  const rowNorm = new Float64Array(m);
  for (let j = 0; j < m; j++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += Gd[j * n + i] ** 2;
    rowNorm[j] = Math.sqrt(s);
  }
  const x = choleskySolve(L, n, Array.from(q, (v) => -v));
  const slack = (j: number): number => {
    let s = hd[j];
    for (let i = 0; i < n; i++) s -= Gd[j * n + i] * x[i];
    return s;
  };
  const qinvTimes = (vec: Float64Array): Float64Array => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += Qinv[i * n + k] * vec[k];
      out[i] = s;
    }
    return out;
  };
  // Constraint j in Goldfarb-Idnani's form n_j^T x >= b_j: n_j = -G_j.
  const normal = (j: number): Float64Array => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = -Gd[j * n + i];
    return out;
  };
  const active: number[] = [];
  let u: number[] = [];
  const maxIterations = options.maxIterations ?? 10 * (m + n) + 100;
  let iterations = 0;
  const tolerance = (j: number): number => 1e-10 * (1 + Math.abs(hd[j]) + rowNorm[j] * Math.sqrt(x.reduce((s, v) => s + v * v, 0)));
  for (;;) {
    // Step 1: the most violated constraint (relative to its row norm).
    let p = -1;
    let worst = 0;
    const isActive = new Set(active);
    for (let j = 0; j < m; j++) {
      if (isActive.has(j) || rowNorm[j] === 0) continue;
      const s = slack(j);
      if (s < -tolerance(j) && s / rowNorm[j] < worst) {
        worst = s / rowNorm[j];
        p = j;
      }
    }
    if (p < 0) break;
    const nPlus = normal(p);
    const uPlus = [...u, 0];
    // Step 2: move toward satisfying constraint p, dropping active constraints as needed.
    for (;;) {
      if (++iterations > maxIterations) throw new Error(`${fn}: no convergence within ${maxIterations} active-set changes`);
      const k = active.length;
      const qinvN = qinvTimes(nPlus);
      let z: Float64Array = qinvN;
      let r: Float64Array = new Float64Array(0);
      if (k > 0) {
        const cols = active.map(normal);
        const qinvCols = cols.map(qinvTimes);
        const M = new Float64Array(k * k);
        const rhs = new Float64Array(k);
        for (let a = 0; a < k; a++) {
          for (let b = 0; b < k; b++) M[a * k + b] = cols[a].reduce((s, v, i) => s + v * qinvCols[b][i], 0);
          rhs[a] = cols[a].reduce((s, v, i) => s + v * qinvN[i], 0);
        }
        const solved = solveDense(M, k, rhs);
        if (!solved) throw new Error(`${fn}: the active constraints became linearly dependent`);
        r = solved;
        z = Float64Array.from(qinvN, (v, i) => v - qinvCols.reduce((s, c, a) => s + c[i] * r[a], 0));
      }
      let t1 = Infinity;
      let drop = -1;
      for (let a = 0; a < k; a++)
        if (r[a] > 0) {
          const ratio = uPlus[a] / r[a];
          if (ratio < t1) {
            t1 = ratio;
            drop = a;
          }
        }
      const zn = z.reduce((s, v, i) => s + v * nPlus[i], 0);
      const scaleN = qinvN.reduce((s, v, i) => s + v * nPlus[i], 0);
      const t2 = zn <= 1e-13 * scaleN ? Infinity : Math.max(0, -slack(p)) / zn;
      const t = Math.min(t1, t2);
      if (t === Infinity) throw new RangeError(`${fn}: the constraints G x <= h are infeasible (constraint ${p} cannot be met together with the active ones)`);
      for (let a = 0; a < k; a++) uPlus[a] -= t * r[a];
      uPlus[k] += t;
      if (t2 !== Infinity) for (let i = 0; i < n; i++) x[i] += t * z[i];
      if (t2 <= t1) {
        active.push(p);
        u = uPlus;
        break;
      }
      // Partial step: the multiplier of an active constraint reached 0; drop it and retry p.
      active.splice(drop, 1);
      uPlus.splice(drop, 1);
    }
  }
  const multipliers = new Float64Array(m);
  active.forEach((j, a) => (multipliers[j] = Math.max(0, u[a])));
  return { x, multipliers, active: [...active].sort((a, b) => a - b), iterations };
}

/**
 * min ||A x - y||^2 subject to G x <= h (as Matlab's lsqlin), A with `rows` rows and n columns
 * (row-major) of full column rank; solved through {@link solveQp}.
 */
export function constrainedLeastSquares(A: ArrayLike<number>, y: ArrayLike<number>, G: ArrayLike<number>, h: ArrayLike<number>): QpSolution {
  const fn = 'constrainedLeastSquares';
  const rows = y?.length;
  if (!y || typeof rows !== 'number' || rows < 1) throw typeError(fn, 'y', 'a non-empty array of numbers', y);
  if (!A || A.length % rows !== 0 || A.length === 0) throw rangeError(fn, 'A', `a multiple of ${rows} values (one row per entry of y)`, A ? `${A.length} values` : A, true);
  const n = A.length / rows;
  const Q = new Float64Array(n * n);
  const q = new Float64Array(n);
  for (let r = 0; r < rows; r++)
    for (let i = 0; i < n; i++) {
      const ai = A[r * n + i];
      if (ai === 0) continue;
      q[i] -= 2 * ai * y[r];
      for (let j = 0; j < n; j++) Q[i * n + j] += 2 * ai * A[r * n + j];
    }
  return solveQp(Q, q, G, h);
}

// ---------------------------------------------------------------------------------------------
// Rotations

/**
 * The rotation angle theta (radians) about `centre` that best maps `from` onto `to` in the
 * least-squares sense (the 2-D Kabsch solution without reflection or translation):
 * argmin sum_k w_k |R(theta)(from_k - c) - (to_k - c)|^2. Points are interleaved x, y; pairs
 * with a NaN coordinate are skipped.
 */
export function kabschRotation(from: ArrayLike<number>, to: ArrayLike<number>, options: { centre?: readonly [number, number]; weights?: ArrayLike<number> } = {}): number {
  const fn = 'kabschRotation';
  checkKeys(fn, options, KABSCH_OPTION_KEYS);
  if (!from || typeof from.length !== 'number' || from.length % 2) throw rangeError(fn, 'from', 'interleaved x, y pairs (an even length)', from);
  if (!to || to.length !== from.length) throw rangeError(fn, 'to', `${from.length} values (as 'from')`, to ? `${to.length} values` : to, true);
  const [cx, cy] = options.centre ?? [0, 0];
  const w = options.weights;
  if (w && w.length !== from.length / 2) throw rangeError(fn, 'weights', `one weight per point (${from.length / 2})`, `${w.length} values`, true);
  let dot = 0;
  let cross = 0;
  for (let k = 0; k < from.length / 2; k++) {
    const fx = from[2 * k] - cx, fy = from[2 * k + 1] - cy;
    const tx = to[2 * k] - cx, ty = to[2 * k + 1] - cy;
    if (![fx, fy, tx, ty].every(Number.isFinite)) continue;
    const wk = w ? w[k] : 1;
    dot += wk * (fx * tx + fy * ty);
    cross += wk * (fx * ty - fy * tx);
  }
  return dot === 0 && cross === 0 ? 0 : Math.atan2(cross, dot);
}

/** Rotates interleaved x, y points by `theta` radians about `centre` (image axes: x right, y down). */
export function rotatePoints(points: ArrayLike<number>, theta: number, centre: readonly [number, number] = [0, 0]): Float64Array {
  const c = Math.cos(theta), s = Math.sin(theta);
  const out = new Float64Array(points.length);
  for (let k = 0; k < points.length / 2; k++) {
    const x = points[2 * k] - centre[0], y = points[2 * k + 1] - centre[1];
    out[2 * k] = c * x - s * y + centre[0];
    out[2 * k + 1] = s * x + c * y + centre[1];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The PCA shape model

/** How {@link PcaShapeModel.fit} builds the model. */
export interface PcaShapeModelOptions {
  /** PCA components kept (the paper: 12). */
  components?: number;
  /** Side of the square frame the shapes are in (the network input; default 96). */
  imageSize?: number;
  /**
   * Rounds of rotating every shape onto the current mean and recomputing the mean (default 1:
   * the reference code aligns once against the mean of the unaligned shapes).
   */
  alignIterations?: number;
}

/** How {@link PcaShapeModel.fitHeatmaps} fits the model (the paper's values are the defaults). */
export interface ShapeFitOptions {
  /** Half-widths of the local refit windows, in order (the paper: [20, 7]; [] for the global fit only). */
  windowSizes?: number[];
  /** Heatmap peak value for a point to count in the rotation estimate (default 0.1). */
  thresh?: number;
  /** Pixels with a heatmap value at or below this are left out of the least squares (default 0.01). */
  minWeight?: number;
  /** Enforce the ordering constraints (the paper: true). */
  useOrderingConstraints?: boolean;
  /** Steps 5-6: snap to the nearest regional maximum and blend with the sub-pixel peak (default true). */
  snapToMaxima?: boolean;
  /** Half-width of the sub-pixel window of step 6 (the paper: 2, a 5x5 window). */
  refineRadius?: number;
}

/** One face's fit. All coordinates in the model frame (0-based pixels of the imageSize x imageSize input). */
export interface ShapeFitResult {
  /** The final points (after steps 5-6 when enabled), interleaved x, y. */
  points: Float64Array;
  /** The shape model's points of the last fit. */
  modelPoints: Float64Array;
  /** The plain arg-max of each heatmap (first maximum in raster order). */
  argmaxPoints: Float64Array;
  /** PCA coefficients b of the last fit. */
  coefficients: Float64Array;
  /** The rotation (radians) about the image centre of the last fit. */
  rotation: number;
  /** Per point, the blend weight w (the heatmap value at its snapped maximum, clipped to [0, 1]; 0 without a maximum). */
  confidence: Float64Array;
}

/** The serialised form of a {@link PcaShapeModel} (JSON-safe; numbers round-trip exactly). */
export interface PcaShapeModelJson {
  format: 'lrface-pca-shape-model-1';
  points: number;
  imageSize: number;
  components: number;
  mean: number[];
  /** 2P x components, row-major. */
  basis: number[];
  singularValues: number[];
  /** Pairs [i, j] of coordinate indices (2k = x of point k, 2k + 1 = y) meaning s_i - s_j <= 0. */
  constraints: [number, number][];
  trainingShapes: number;
}

/** The square about each point that {@link PcaShapeModel.fitCoefficients} counts a heatmap in (a local refit). */
export interface FitWindow {
  /** Interleaved [x0, y0, x1, y1, ...] window centres, one per point (rounded to pixels). */
  centres: ArrayLike<number>;
  /** Half-width: each window is (2 radius + 1)^2 pixels. */
  radius: number;
}

/** Options of {@link PcaShapeModel.fitCoefficients} (defaults as in {@link ShapeFitOptions}). */
export interface FitCoefficientsOptions {
  thresh?: number;
  minWeight?: number;
  useOrderingConstraints?: boolean;
  /** Count each heatmap only within its window (default: the whole map, the global fit). */
  window?: FitWindow;
}

const DEFAULT_FIT: Required<ShapeFitOptions> = { windowSizes: [20, 7], thresh: 0.1, minWeight: 0.01, useOrderingConstraints: true, snapToMaxima: true, refineRadius: 2 };

function checkFitOptions(fn: string, options: unknown): Required<ShapeFitOptions> {
  checkKeys(fn, options, DEFAULT_FIT);
  const o = { ...DEFAULT_FIT, ...(options as ShapeFitOptions) };
  if (!Array.isArray(o.windowSizes) || !o.windowSizes.every((v) => Number.isInteger(v) && v >= 0))
    throw rangeError(fn, 'windowSizes', 'an array of integers >= 0', o.windowSizes);
  for (const k of ['thresh', 'minWeight'] as const) {
    if (typeof o[k] !== 'number') throw typeError(fn, k, 'a number', o[k]);
    if (!Number.isFinite(o[k]) || o[k] < 0) throw rangeError(fn, k, 'a finite number >= 0', o[k]);
  }
  for (const k of ['useOrderingConstraints', 'snapToMaxima'] as const) if (typeof o[k] !== 'boolean') throw typeError(fn, k, 'a boolean', o[k]);
  if (!Number.isInteger(o.refineRadius) || o.refineRadius < 0) throw rangeError(fn, 'refineRadius', 'an integer >= 0', o.refineRadius);
  return o;
}

/**
 * A PCA 2-D shape model with ordering constraints, fitted to heatmaps as LGCN's
 * post-processing. Build it with {@link PcaShapeModel.fit}; save it with toJSON / fromJSON.
 */
export class PcaShapeModel {
  /** Constraint matrix in coefficient space (rows x components) and its bound: G b <= h is C (mean + basis b) <= 0. */
  private readonly G: Float64Array;
  private readonly h: Float64Array;

  private constructor(
    /** Points per shape. */
    readonly points: number,
    /** Side of the square model frame. */
    readonly imageSize: number,
    /** Mean aligned shape (2P). */
    readonly mean: Float64Array,
    /** Basis U diag(S): 2P x components, row-major. */
    readonly basis: Float64Array,
    /** The singular values S of the centred shape matrix. */
    readonly singularValues: Float64Array,
    /** Ordering constraints as coordinate index pairs: s[i] - s[j] <= 0 (flattened [i0, j0, i1, j1, ...]). */
    readonly constraintPairs: Int32Array,
    /** Complete shapes the model was built from. */
    readonly trainingShapes: number,
  ) {
    const n = this.components;
    const rows = constraintPairs.length / 2;
    this.G = new Float64Array(rows * n);
    this.h = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      const i = constraintPairs[2 * r], j = constraintPairs[2 * r + 1];
      for (let c = 0; c < n; c++) this.G[r * n + c] = basis[i * n + c] - basis[j * n + c];
      this.h[r] = mean[j] - mean[i];
    }
  }

  /** PCA components. */
  get components(): number {
    return this.singularValues.length;
  }

  /** The image centre the rotations are about: (S - 1) / 2 in 0-based pixels (Matlab's (S + 1) / 2). */
  get centre(): [number, number] {
    const c = (this.imageSize - 1) / 2;
    return [c, c];
  }

  /** Number of ordering constraints. */
  get constraintCount(): number {
    return this.constraintPairs.length / 2;
  }

  /**
   * Builds the model from training shapes in the imageSize x imageSize frame (interleaved x, y;
   * shapes with any NaN are dropped): each rotated about the image centre onto the mean
   * (Kabsch), PCA of the aligned shapes, and the ordering constraints that hold on all of them.
   */
  static fit(shapes: ArrayLike<number>[], options: PcaShapeModelOptions = {}): PcaShapeModel {
    const fn = 'PcaShapeModel.fit';
    if (!Array.isArray(shapes) || shapes.length === 0) throw typeError(fn, 'shapes', 'a non-empty array of shapes (interleaved x, y arrays)', shapes);
    checkKeys(fn, options, ['components', 'imageSize', 'alignIterations']);
    const len = shapes[0]?.length;
    if (typeof len !== 'number' || len < 4 || len % 2) throw rangeError(fn, 'shapes[0]', 'an interleaved x, y array of at least 2 points', shapes[0]);
    shapes.forEach((s, i) => {
      if (!s || s.length !== len) throw rangeError(fn, `shapes[${i}]`, `${len} values (as shapes[0])`, s ? `${s.length} values` : s, true);
      // [x, y] pairs instead of interleaved numbers would otherwise all count as incomplete shapes.
      const bad = Array.prototype.findIndex.call(s, (v: unknown) => typeof v !== 'number');
      if (bad >= 0) throw typeError(fn, `shapes[${i}]`, 'an interleaved array of numbers x0, y0, x1, y1, ... (NaN = unlabelled)', `${describeValue(s[bad])} at index ${bad}`, true);
    });
    const imageSize = options.imageSize ?? 96;
    if (typeof imageSize !== 'number' || !Number.isInteger(imageSize) || imageSize < 2) throw rangeError(fn, 'imageSize', 'an integer >= 2', imageSize);
    const components = options.components ?? 12;
    if (typeof components !== 'number' || !Number.isInteger(components) || components < 1 || components > len)
      throw rangeError(fn, 'components', `an integer in [1, ${len}]`, components);
    const alignIterations = options.alignIterations ?? 1;
    if (!Number.isInteger(alignIterations) || alignIterations < 0) throw rangeError(fn, 'alignIterations', 'an integer >= 0', alignIterations);
    // Step 2: complete shapes only.
    let aligned: Float64Array[] = shapes.filter((s) => Array.prototype.every.call(s, Number.isFinite as (v: unknown) => boolean)).map((s) => Float64Array.from(s));
    const M = aligned.length;
    if (M <= components) throw rangeError(fn, 'shapes', `more than ${components} complete shapes (one per component plus one)`, `${M} complete of ${shapes.length}`, true);
    const c = (imageSize - 1) / 2;
    const meanOf = (list: Float64Array[]): Float64Array => {
      const m = new Float64Array(len);
      for (const s of list) for (let i = 0; i < len; i++) m[i] += s[i];
      return m.map((v) => v / list.length);
    };
    let mean = meanOf(aligned);
    for (let it = 0; it < alignIterations; it++) {
      aligned = aligned.map((s) => rotatePoints(s, kabschRotation(s, mean, { centre: [c, c] }), [c, c]));
      mean = meanOf(aligned);
    }
    // PCA: the scatter matrix X^T X of the centred shapes (X: M x 2P) has eigenvalues S^2 and
    // eigenvectors U, the left singular vectors of X^T.
    const scatter = new Float64Array(len * len);
    const d = new Float64Array(len);
    for (const s of aligned) {
      for (let i = 0; i < len; i++) d[i] = s[i] - mean[i];
      for (let i = 0; i < len; i++) {
        const di = d[i];
        if (di === 0) continue;
        for (let j = i; j < len; j++) scatter[i * len + j] += di * d[j];
      }
    }
    for (let i = 0; i < len; i++) for (let j = 0; j < i; j++) scatter[i * len + j] = scatter[j * len + i];
    const { values, vectors } = symmetricEigen(scatter, len);
    const singularValues = Float64Array.from({ length: components }, (_, k) => Math.sqrt(Math.max(0, values[k])));
    const basis = new Float64Array(len * components);
    for (let i = 0; i < len; i++) for (let k = 0; k < components; k++) basis[i * components + k] = vectors[i * len + k] * singularValues[k];
    // Ordering constraints: s_i - s_j < 0 on every training shape, per coordinate axis.
    const pairs: number[] = [];
    const P = len / 2;
    for (let axis = 0; axis < 2; axis++)
      for (let a = 0; a < P; a++)
        for (let b = a + 1; b < P; b++) {
          const i = 2 * a + axis, j = 2 * b + axis;
          let below = true, above = true;
          for (const s of aligned) {
            const diff = s[i] - s[j];
            if (!(diff < 0)) below = false;
            if (!(diff > 0)) above = false;
            if (!below && !above) break;
          }
          if (below) pairs.push(i, j);
          else if (above) pairs.push(j, i);
        }
    return new PcaShapeModel(P, imageSize, mean, basis, singularValues, Int32Array.from(pairs), M);
  }

  /** The shape mean + basis b (in the aligned frame, before any rotation). */
  shape(coefficients: ArrayLike<number>): Float64Array {
    const n = this.components;
    if (!coefficients || coefficients.length !== n) throw rangeError('PcaShapeModel.shape', 'coefficients', `${n} values`, coefficients ? `${coefficients.length} values` : coefficients, true);
    const out = Float64Array.from(this.mean);
    for (let i = 0; i < out.length; i++) for (let k = 0; k < n; k++) out[i] += this.basis[i * n + k] * coefficients[k];
    return out;
  }

  /** The least-squares coefficients of a complete shape (the basis columns are orthogonal). */
  project(shape: ArrayLike<number>): Float64Array {
    const n = this.components;
    if (!shape || shape.length !== 2 * this.points) throw rangeError('PcaShapeModel.project', 'shape', `${2 * this.points} values`, shape ? `${shape.length} values` : shape, true);
    const b = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      let num = 0, den = 0;
      for (let i = 0; i < shape.length; i++) {
        num += this.basis[i * n + k] * (shape[i] - this.mean[i]);
        den += this.basis[i * n + k] ** 2;
      }
      b[k] = den > 0 ? num / den : 0;
    }
    return b;
  }

  /** Whether coefficients b satisfy every ordering constraint (within `tolerance` pixels). */
  satisfiesConstraints(coefficients: ArrayLike<number>, tolerance = 1e-9): boolean {
    const s = this.shape(coefficients);
    for (let r = 0; r < this.constraintPairs.length; r += 2) if (s[this.constraintPairs[r]] - s[this.constraintPairs[r + 1]] > tolerance) return false;
    return true;
  }

  private checkHeatmaps(fn: string, heatmaps: unknown): Float64Array {
    const S = this.imageSize;
    const want = this.points * S * S;
    if (!(heatmaps instanceof Float32Array || heatmaps instanceof Float64Array)) throw typeError(fn, 'heatmaps', `a Float32Array or Float64Array of ${this.points} x ${S} x ${S} values`, heatmaps);
    if (heatmaps.length !== want) throw rangeError(fn, 'heatmaps', `${this.points} maps of ${S}x${S} (${want} values)`, `${heatmaps.length} values`, true);
    // Step 1: negative values -> 0. Non-finite values (a diverged network) are refused: NaN
    // would otherwise be read as 0 and the fit return the mean shape as if it were an answer.
    const out = new Float64Array(want);
    for (let i = 0; i < want; i++) {
      const v = heatmaps[i];
      if (!Number.isFinite(v)) throw rangeError(fn, 'heatmaps', 'finite values', `${v} at index ${i}`, true);
      out[i] = v > 0 ? v : 0;
    }
    return out;
  }

  /** Per map, the first maximum in raster order: positions (interleaved) and values. */
  private argmax(maps: Float64Array): { points: Float64Array; values: Float64Array } {
    const S = this.imageSize, plane = S * S;
    const points = new Float64Array(2 * this.points);
    const values = new Float64Array(this.points);
    for (let k = 0; k < this.points; k++) {
      let best = 0, peak = -Infinity;
      for (let q = 0; q < plane; q++) {
        const v = maps[k * plane + q];
        if (v > peak) {
          peak = v;
          best = q;
        }
      }
      points[2 * k] = best % S;
      points[2 * k + 1] = Math.floor(best / S);
      values[k] = peak;
    }
    return { points, values };
  }

  /**
   * Steps 3 (and each refit of 4): the rotation from the confident arg-max points and the
   * constrained heatmap-weighted least-squares coefficients, on cleaned heatmaps [P, S, S]
   * (non-negative). With `window`, each map counts only within the (2 radius + 1)^2 square about
   * its centre point (rounded to a pixel).
   */
  fitCoefficients(heatmaps: Float32Array | Float64Array, options: FitCoefficientsOptions = {}): { coefficients: Float64Array; rotation: number; points: Float64Array } {
    const fn = 'PcaShapeModel.fitCoefficients';
    checkKeys(fn, options, FIT_COEFFICIENTS_OPTION_KEYS);
    if (options.window !== undefined) checkKeys(fn, options.window, FIT_WINDOW_KEYS, 'options.window');
    const maps = this.checkHeatmaps(fn, heatmaps);
    const thresh = options.thresh ?? DEFAULT_FIT.thresh;
    const minWeight = options.minWeight ?? DEFAULT_FIT.minWeight;
    const constrained = options.useOrderingConstraints ?? DEFAULT_FIT.useOrderingConstraints;
    const S = this.imageSize, plane = S * S, P = this.points, n = this.components;
    if (options.window !== undefined) {
      const { centres, radius } = options.window;
      if (!centres || centres.length !== 2 * P) throw rangeError(fn, 'window.centres', `${2 * P} values`, centres ? `${centres.length} values` : centres, true);
      if (!Number.isInteger(radius) || radius < 0) throw rangeError(fn, 'window.radius', 'an integer >= 0', radius);
      for (let k = 0; k < P; k++) {
        const cx = Math.round(centres[2 * k]), cy = Math.round(centres[2 * k + 1]);
        for (let y = 0; y < S; y++)
          for (let x = 0; x < S; x++)
            if (Math.abs(x - cx) > radius || Math.abs(y - cy) > radius || !Number.isFinite(cx + cy)) maps[k * plane + y * S + x] = 0;
      }
    }
    const [c] = this.centre;
    // Rotation: Kabsch between the confident arg-max points and the mean (at least two points).
    const { points: peaks, values } = this.argmax(maps);
    const order = Array.from({ length: P }, (_, k) => k).sort((a, b) => values[b] - values[a]);
    let used = order.filter((k) => values[k] >= thresh && values[k] > 0);
    if (used.length < 2) used = order.slice(0, 2).filter((k) => values[k] > 0);
    let rotation = 0;
    if (used.length >= 2) {
      const from = new Float64Array(2 * used.length), to = new Float64Array(2 * used.length);
      used.forEach((k, i) => {
        from[2 * i] = this.mean[2 * k];
        from[2 * i + 1] = this.mean[2 * k + 1];
        to[2 * i] = peaks[2 * k];
        to[2 * i + 1] = peaks[2 * k + 1];
      });
      rotation = kabschRotation(from, to, { centre: [c, c] });
    }
    // Every pixel with weight w contributes w (R(mean_k - c + basis_k b) + c - p) = 0; R is a
    // rotation, so its squared residual is w^2 |mean_k + basis_k b - R^T (p - c) - c|^2 and the
    // normal equations need per map only W_k = sum w^2 and the W-weighted mean target.
    const cos = Math.cos(rotation), sin = Math.sin(rotation);
    const Q = new Float64Array(n * n);
    const q = new Float64Array(n);
    for (let k = 0; k < P; k++) {
      let W = 0, tx = 0, ty = 0;
      for (let y = 0; y < S; y++)
        for (let x = 0; x < S; x++) {
          const w = maps[k * plane + y * S + x];
          if (!(w > minWeight)) continue;
          const w2 = w * w;
          const dx = x - c, dy = y - c;
          W += w2;
          tx += w2 * (cos * dx + sin * dy + c);
          ty += w2 * (-sin * dx + cos * dy + c);
        }
      if (W === 0) continue;
      const rx = tx / W - this.mean[2 * k], ry = ty / W - this.mean[2 * k + 1];
      for (let a = 0; a < n; a++) {
        const ex = this.basis[2 * k * n + a], ey = this.basis[(2 * k + 1) * n + a];
        q[a] -= 2 * W * (ex * rx + ey * ry);
        for (let b = 0; b < n; b++) Q[a * n + b] += 2 * W * (ex * this.basis[2 * k * n + b] + ey * this.basis[(2 * k + 1) * n + b]);
      }
    }
    // A tiny ridge keeps Q positive definite when few maps carry weight (a blank face gives the mean shape).
    let trace = 0;
    for (let a = 0; a < n; a++) trace += Q[a * n + a];
    const ridge = 1e-10 * Math.max(trace / n, 1);
    for (let a = 0; a < n; a++) Q[a * n + a] += ridge;
    const G = constrained ? this.G : new Float64Array(0);
    const h = constrained ? this.h : new Float64Array(0);
    const { x: coefficients } = solveQp(Q, q, G, h);
    const points = rotatePoints(this.shape(coefficients), rotation, [c, c]);
    return { coefficients, rotation, points };
  }

  /**
   * Steps 1-6 on one face's heatmaps [P, S, S] (row-major, S = imageSize): global fit, local
   * refits in windows, then (unless snapToMaxima is false) the snap to the nearest regional
   * maximum and the blend (1 - w) p_model + w p_local with w the heatmap value there.
   */
  fitHeatmaps(heatmaps: Float32Array | Float64Array, options: ShapeFitOptions = {}): ShapeFitResult {
    const fn = 'PcaShapeModel.fitHeatmaps';
    const o = checkFitOptions(fn, options);
    const maps = this.checkHeatmaps(fn, heatmaps);
    const S = this.imageSize, plane = S * S, P = this.points;
    const common = { thresh: o.thresh, minWeight: o.minWeight, useOrderingConstraints: o.useOrderingConstraints };
    let fit = this.fitCoefficients(maps, common);
    for (const radius of o.windowSizes) fit = this.fitCoefficients(maps, { ...common, window: { centres: fit.points, radius } });
    const argmaxPoints = this.argmax(maps).points;
    const points = Float64Array.from(fit.points);
    const confidence = new Float64Array(P);
    if (o.snapToMaxima) {
      for (let k = 0; k < P; k++) {
        const base = k * plane;
        const at = (x: number, y: number): number => maps[base + y * S + x];
        const mx = fit.points[2 * k], my = fit.points[2 * k + 1];
        // Step 5: the nearest 3x3 (8-connected) regional maximum with a positive value.
        let bx = -1, by = -1, bestD = Infinity;
        for (let y = 0; y < S; y++)
          for (let x = 0; x < S; x++) {
            const v = at(x, y);
            if (!(v > 0)) continue;
            let isMax = true;
            for (let dy = -1; dy <= 1 && isMax; dy++)
              for (let dx = -1; dx <= 1; dx++) {
                const xx = x + dx, yy = y + dy;
                if ((dx || dy) && xx >= 0 && xx < S && yy >= 0 && yy < S && at(xx, yy) > v) {
                  isMax = false;
                  break;
                }
              }
            if (!isMax) continue;
            const d2 = (x - mx) ** 2 + (y - my) ** 2;
            if (d2 < bestD) {
              bestD = d2;
              bx = x;
              by = y;
            }
          }
        if (bx < 0) continue;
        // Step 6: min-max then sum normalised values in the window give the sub-pixel position.
        const r = o.refineRadius;
        let lo = Infinity, hi = -Infinity;
        for (let y = Math.max(0, by - r); y <= Math.min(S - 1, by + r); y++)
          for (let x = Math.max(0, bx - r); x <= Math.min(S - 1, bx + r); x++) {
            lo = Math.min(lo, at(x, y));
            hi = Math.max(hi, at(x, y));
          }
        let lx = bx, ly = by;
        if (hi > lo) {
          let sw = 0, sx = 0, sy = 0;
          for (let y = Math.max(0, by - r); y <= Math.min(S - 1, by + r); y++)
            for (let x = Math.max(0, bx - r); x <= Math.min(S - 1, bx + r); x++) {
              const w = (at(x, y) - lo) / (hi - lo);
              sw += w;
              sx += w * x;
              sy += w * y;
            }
          lx = sx / sw;
          ly = sy / sw;
        }
        const w = Math.min(1, at(bx, by));
        confidence[k] = w;
        points[2 * k] = (1 - w) * mx + w * lx;
        points[2 * k + 1] = (1 - w) * my + w * ly;
      }
    }
    return { points, modelPoints: fit.points, argmaxPoints, coefficients: fit.coefficients, rotation: fit.rotation, confidence };
  }

  /** The model as a JSON-safe object (see {@link PcaShapeModel.fromJSON}). */
  toJSON(): PcaShapeModelJson {
    const pairs: [number, number][] = [];
    for (let r = 0; r < this.constraintPairs.length; r += 2) pairs.push([this.constraintPairs[r], this.constraintPairs[r + 1]]);
    return {
      format: 'lrface-pca-shape-model-1',
      points: this.points,
      imageSize: this.imageSize,
      components: this.components,
      mean: Array.from(this.mean),
      basis: Array.from(this.basis),
      singularValues: Array.from(this.singularValues),
      constraints: pairs,
      trainingShapes: this.trainingShapes,
    };
  }

  /** Restores a model written by toJSON (an object or its JSON text); a malformed one is a RangeError saying what is wrong. */
  static fromJSON(json: PcaShapeModelJson | string): PcaShapeModel {
    const fn = 'PcaShapeModel.fromJSON';
    let j: PcaShapeModelJson;
    if (typeof json === 'string') {
      try {
        j = JSON.parse(json);
      } catch {
        throw rangeError(fn, 'json', 'valid JSON text', 'text that does not parse', true);
      }
    } else j = json;
    if (j === null || typeof j !== 'object') throw typeError(fn, 'json', 'a serialised shape model', j);
    if (j.format !== 'lrface-pca-shape-model-1') throw rangeError(fn, 'json.format', "'lrface-pca-shape-model-1'", j.format);
    const { points: P, imageSize, components: n } = j;
    if (!Number.isInteger(P) || P < 2) throw rangeError(fn, 'json.points', 'an integer >= 2', P);
    if (!Number.isInteger(imageSize) || imageSize < 2) throw rangeError(fn, 'json.imageSize', 'an integer >= 2', imageSize);
    if (!Number.isInteger(n) || n < 1 || n > 2 * P) throw rangeError(fn, 'json.components', `an integer in [1, ${2 * P}]`, n);
    const numbers = (name: string, v: unknown, len: number): Float64Array => {
      if (!Array.isArray(v) || v.length !== len || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) throw rangeError(fn, `json.${name}`, `${len} finite numbers`, Array.isArray(v) ? `${v.length} entries` : v, true);
      return Float64Array.from(v);
    };
    const mean = numbers('mean', j.mean, 2 * P);
    const basis = numbers('basis', j.basis, 2 * P * n);
    const sv = numbers('singularValues', j.singularValues, n);
    if (!Array.isArray(j.constraints)) throw rangeError(fn, 'json.constraints', 'an array of coordinate index pairs', j.constraints);
    const pairs = new Int32Array(2 * j.constraints.length);
    j.constraints.forEach((pair, r) => {
      if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((v) => Number.isInteger(v) && v >= 0 && v < 2 * P) || pair[0] === pair[1])
        throw rangeError(fn, `json.constraints[${r}]`, `a pair of distinct coordinate indices in [0, ${2 * P - 1}]`, JSON.stringify(pair), true);
      pairs[2 * r] = pair[0];
      pairs[2 * r + 1] = pair[1];
    });
    const trainingShapes = Number.isInteger(j.trainingShapes) ? j.trainingShapes : 0;
    return new PcaShapeModel(P, imageSize, mean, basis, sv, pairs, trainingShapes);
  }
}

/** A value for an error message. */
function describeValue(v: unknown): string {
  return Array.isArray(v) ? `an array [${v.join(', ')}]` : typeof v === 'string' ? JSON.stringify(v) : String(v);
}
