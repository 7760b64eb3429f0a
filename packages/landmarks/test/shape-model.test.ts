// LGCN's PCA shape model: the linear algebra (Jacobi eigen solver, Kabsch, the Goldfarb-Idnani
// QP) against independent references, then the model on real 300-W shapes.
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng, W300, gaussianHeatmaps } from '@lrface/datasets';
import { haveSharedData, sharedDataDir } from '@lrface/test-data';
import { PcaShapeModel, constrainedLeastSquares, kabschRotation, rotatePoints, solveQp, symmetricEigen } from '../src/index.js';

const S = 96;
const C: [number, number] = [(S - 1) / 2, (S - 1) / 2];

function randomSymmetric(n: number, rng: Rng): Float64Array {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = i; j < n; j++) {
      const v = rng.normal();
      a[i * n + j] = v;
      a[j * n + i] = v;
    }
  return a;
}

/** A random symmetric positive definite matrix B^T B + n I. */
function randomSpd(n: number, rng: Rng): Float64Array {
  const b = Float64Array.from({ length: n * n }, () => rng.normal());
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let s = i === j ? n : 0;
      for (let k = 0; k < n; k++) s += b[k * n + i] * b[k * n + j];
      q[i * n + j] = s;
    }
  return q;
}

const matVec = (a: ArrayLike<number>, x: ArrayLike<number>, rows: number, cols: number): Float64Array =>
  Float64Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => a[r * cols + c] * x[c]).reduce((s, v) => s + v, 0));

/** Checks the KKT conditions of min 1/2 x'Qx + q'x s.t. Gx <= h at a solution. */
function expectKkt(Q: Float64Array, q: Float64Array, G: Float64Array, h: Float64Array, x: Float64Array, lambda: Float64Array, tol = 1e-7): void {
  const n = q.length, m = h.length;
  const gx = matVec(G, x, m, n);
  for (let j = 0; j < m; j++) {
    expect(gx[j] - h[j]).toBeLessThanOrEqual(tol); // primal feasibility
    expect(lambda[j]).toBeGreaterThanOrEqual(0); // dual feasibility
    expect(Math.abs(lambda[j] * (gx[j] - h[j]))).toBeLessThanOrEqual(tol); // complementary slackness
  }
  const qx = matVec(Q, x, n, n);
  for (let i = 0; i < n; i++) {
    let g = qx[i] + q[i];
    for (let j = 0; j < m; j++) g += G[j * n + i] * lambda[j];
    expect(Math.abs(g)).toBeLessThanOrEqual(tol * 10); // stationarity
  }
}

describe('symmetricEigen', () => {
  it('gives A v = lambda v with orthonormal vectors, descending values and the trace', () => {
    const rng = new Rng(1);
    const n = 24;
    const a = randomSymmetric(n, rng);
    const { values, vectors } = symmetricEigen(a, n);
    for (let k = 0; k < n; k++) {
      const v = Float64Array.from({ length: n }, (_, i) => vectors[i * n + k]);
      const av = matVec(a, v, n, n);
      for (let i = 0; i < n; i++) expect(av[i]).toBeCloseTo(values[k] * v[i], 10);
      for (let l = 0; l < n; l++) {
        const dot = Array.from({ length: n }, (_, i) => vectors[i * n + k] * vectors[i * n + l]).reduce((s, x) => s + x, 0);
        expect(dot).toBeCloseTo(k === l ? 1 : 0, 12);
      }
      if (k > 0) expect(values[k]).toBeLessThanOrEqual(values[k - 1]);
    }
    let trace = 0;
    for (let i = 0; i < n; i++) trace += a[i * n + i];
    expect(values.reduce((s, v) => s + v, 0)).toBeCloseTo(trace, 10);
  });

  it('matches a hand-computed 2x2 case and power iteration on an SPD matrix', () => {
    // [[2, 1], [1, 2]]: eigenvalues 3 and 1, vectors (1, 1) / sqrt 2 and (1, -1) / sqrt 2.
    const { values, vectors } = symmetricEigen([2, 1, 1, 2], 2);
    expect(values[0]).toBeCloseTo(3, 14);
    expect(values[1]).toBeCloseTo(1, 14);
    expect(Math.abs(vectors[0])).toBeCloseTo(Math.SQRT1_2, 14);
    expect(vectors[0] * vectors[2]).toBeCloseTo(0.5, 14);
    const n = 10;
    const spd = randomSpd(n, new Rng(2));
    let v: Float64Array = Float64Array.from({ length: n }, () => 1);
    let lambda = 0;
    for (let it = 0; it < 2000; it++) {
      const w = matVec(spd, v, n, n);
      lambda = Math.hypot(...w);
      v = w.map((x) => x / lambda);
    }
    expect(symmetricEigen(spd, n).values[0]).toBeCloseTo(lambda, 8);
  });

  it('rejects bad input', () => {
    expect(() => symmetricEigen([1, 2, 3], 2)).toThrow(RangeError);
    expect(() => symmetricEigen([1, 2, 3, 4], 2)).toThrow(/symmetric/);
    expect(() => symmetricEigen([1, NaN, NaN, 1], 2)).toThrow(/finite/);
    expect(() => symmetricEigen([1], 0)).toThrow(/'n'/);
    expect(() => symmetricEigen(null as never, 2)).toThrow(TypeError);
  });
});

describe('kabschRotation / rotatePoints', () => {
  it('recovers a known rotation about the image centre, also with noise and weights', () => {
    const rng = new Rng(3);
    const shape = Float64Array.from({ length: 40 }, () => 20 + 56 * rng.next());
    for (const theta of [0.3, -1.2, 2.9]) {
      const rotated = rotatePoints(shape, theta, C);
      expect(kabschRotation(shape, rotated, { centre: C })).toBeCloseTo(theta, 12);
      const noisy = rotated.map((v) => v + 0.3 * rng.normal());
      expect(Math.abs(kabschRotation(shape, noisy, { centre: C }) - theta)).toBeLessThan(0.02);
      // Rotating back gives the shape again.
      const back = rotatePoints(rotated, -theta, C);
      for (let i = 0; i < shape.length; i++) expect(back[i]).toBeCloseTo(shape[i], 10);
    }
    // A point with zero weight may be anywhere; NaN pairs are skipped.
    const rotated = rotatePoints(shape, 0.5, C);
    rotated[0] = 500;
    const w = Float64Array.from({ length: 20 }, (_, k) => (k === 0 ? 0 : 1));
    expect(kabschRotation(shape, rotated, { centre: C, weights: w })).toBeCloseTo(0.5, 12);
    rotated[0] = NaN;
    expect(kabschRotation(shape, rotated, { centre: C })).toBeCloseTo(0.5, 12);
    // By hand: (1, 0) -> (0, 1) about the origin is +90 degrees (y down: clockwise on screen).
    expect(kabschRotation([1, 0], [0, 1])).toBeCloseTo(Math.PI / 2, 14);
    expect(() => kabschRotation([1, 2, 3], [1, 2, 3])).toThrow(/'from'/);
    expect(() => kabschRotation([1, 2], [1, 2, 3, 4])).toThrow(/'to'/);
  });
});

describe('solveQp (Goldfarb-Idnani)', () => {
  it('returns the unconstrained minimum when it is feasible', () => {
    const rng = new Rng(4);
    const n = 6;
    const Q = randomSpd(n, rng);
    const q = Float64Array.from({ length: n }, () => rng.normal());
    const free = solveQp(Q, q, [], []).x;
    // Q x = -q, checked directly.
    const qx = matVec(Q, free, n, n);
    for (let i = 0; i < n; i++) expect(qx[i]).toBeCloseTo(-q[i], 10);
    // Constraints with slack at the free minimum change nothing.
    const G = Float64Array.from({ length: 3 * n }, () => rng.normal());
    const h = matVec(G, free, 3, n).map((v) => v + 1);
    const r = solveQp(Q, q, G, h);
    for (let i = 0; i < n; i++) expect(r.x[i]).toBeCloseTo(free[i], 12);
    expect(r.active).toEqual([]);
    expect(Array.from(r.multipliers)).toEqual([0, 0, 0]);
  });

  it('meets the KKT conditions with active constraints, also for thousands of constraints on 12 variables', () => {
    const rng = new Rng(5);
    for (const [n, m] of [[5, 12], [12, 3000]]) {
      const Q = randomSpd(n, rng);
      const q = Float64Array.from({ length: n }, () => 5 * rng.normal());
      const G = Float64Array.from({ length: m * n }, () => rng.normal());
      // x = 0 is strictly feasible; the free minimum is not.
      const h = Float64Array.from({ length: m }, () => 0.1 + rng.next());
      const r = solveQp(Q, q, G, h);
      expect(r.active.length).toBeGreaterThan(0);
      expectKkt(Q, q, G, h, r.x, r.multipliers);
      for (const j of r.active) expect(r.multipliers[j]).toBeGreaterThan(0);
    }
  });

  it('matches a brute-force enumeration of active sets and a grid search on a 2-variable problem', () => {
    const Q = Float64Array.from([2, 0.5, 0.5, 1]);
    const q = Float64Array.from([-4, -6]);
    // x + y <= 2, x - y <= 1, -x <= 0.5, y <= 1.5
    const G = Float64Array.from([1, 1, 1, -1, -1, 0, 0, 1]);
    const h = Float64Array.from([2, 1, 0.5, 1.5]);
    const obj = (x: number, y: number) => 0.5 * (Q[0] * x * x + 2 * Q[1] * x * y + Q[3] * y * y) + q[0] * x + q[1] * y;
    const feasible = (x: number, y: number, tol = 1e-9) => [0, 1, 2, 3].every((j) => G[2 * j] * x + G[2 * j + 1] * y <= h[j] + tol);
    // Every active set of up to 2 constraints: solve the equality-constrained KKT system by Cramer's rule.
    let best: [number, number] | null = null;
    const sets: number[][] = [[]];
    for (let a = 0; a < 4; a++) {
      sets.push([a]);
      for (let b = a + 1; b < 4; b++) sets.push([a, b]);
    }
    for (const set of sets) {
      const k = set.length;
      const dim = 2 + k;
      const M = Array.from({ length: dim }, () => new Array(dim).fill(0));
      const rhs = new Array(dim).fill(0);
      M[0][0] = Q[0]; M[0][1] = Q[1]; M[1][0] = Q[2]; M[1][1] = Q[3];
      rhs[0] = -q[0]; rhs[1] = -q[1];
      set.forEach((j, i) => {
        M[0][2 + i] = G[2 * j]; M[1][2 + i] = G[2 * j + 1];
        M[2 + i][0] = G[2 * j]; M[2 + i][1] = G[2 * j + 1];
        rhs[2 + i] = h[j];
      });
      const sol = gaussSolve(M, rhs);
      if (!sol || !feasible(sol[0], sol[1]) || sol.slice(2).some((l) => l < -1e-12)) continue;
      best = [sol[0], sol[1]];
    }
    expect(best).not.toBeNull();
    const r = solveQp(Q, q, G, h);
    expect(r.x[0]).toBeCloseTo(best![0], 10);
    expect(r.x[1]).toBeCloseTo(best![1], 10);
    expectKkt(Q, q, G, h, r.x, r.multipliers);
    // No feasible grid point does better.
    for (let x = -0.5; x <= 2; x += 0.01)
      for (let y = -2; y <= 1.5; y += 0.01) if (feasible(x, y)) expect(obj(x, y)).toBeGreaterThanOrEqual(obj(r.x[0], r.x[1]) - 1e-9);
  });

  it('solves constrained least squares (a projection onto a half-plane) and reports infeasible or bad problems', () => {
    // min |x - (3, 1)|^2 s.t. x0 <= 1: (1, 1).
    const r = constrainedLeastSquares([1, 0, 0, 1], [3, 1], [1, 0], [1]);
    expect(r.x[0]).toBeCloseTo(1, 12);
    expect(r.x[1]).toBeCloseTo(1, 12);
    expect(r.multipliers[0]).toBeCloseTo(4, 10); // 2 (3 - 1)
    expect(() => solveQp([1, 0, 0, 1], [0, 0], [1, 0, -1, 0], [-1, -1])).toThrow(/infeasible/);
    expect(() => solveQp([1, 0, 0, -1], [0, 0], [], [])).toThrow(/positive definite/);
    expect(() => solveQp([1, 0, 0], [0, 0], [], [])).toThrow(/'Q'/);
    expect(() => solveQp([1, 0, 0, 1], [0, 0], [1, 0, 0], [1])).toThrow(/'G'/);
    expect(() => solveQp([1, 0, 0, 1], [0, NaN], [], [])).toThrow(/finite/);
    expect(() => solveQp([1], null as never, [], [])).toThrow(TypeError);
    expect(() => constrainedLeastSquares([1, 2, 3], [1, 2], [], [])).toThrow(/'A'/);
  });
});

function gaussSolve(M: number[][], b: number[]): number[] | null {
  const n = b.length;
  const a = M.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r][c]) > Math.abs(a[p][c])) p = r;
    if (Math.abs(a[p][c]) < 1e-12) return null;
    [a[c], a[p]] = [a[p], a[c]];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = a[r][c] / a[c][c];
      for (let k = c; k <= n; k++) a[r][k] -= f * a[c][k];
    }
  }
  return a.map((row, i) => row[n] / row[i]);
}

describe('PcaShapeModel on synthetic shapes', () => {
  // Mean + 3 known orthogonal-ish modes + small noise, 10 points.
  const P = 10;
  const rng = new Rng(6);
  const mean = Float64Array.from({ length: 2 * P }, (_, i) => (i % 2 ? 30 + 4 * (i >> 1) : 20 + 6 * ((i >> 1) % 5)));
  const modes = Array.from({ length: 3 }, () => Float64Array.from({ length: 2 * P }, () => rng.normal()));
  const draw = (noise: number) => {
    const b = [3 * rng.normal(), 2 * rng.normal(), 1 * rng.normal()];
    return Float64Array.from(mean, (m, i) => m + modes.reduce((s, mode, k) => s + b[k] * mode[i], 0) + noise * rng.normal());
  };

  it('reconstructs held-out shapes from 3 components, and its basis is U diag(S) of the centred data', () => {
    const train = Array.from({ length: 200 }, () => draw(0.01));
    const model = PcaShapeModel.fit(train, { components: 3, imageSize: S, alignIterations: 0 });
    expect(model.components).toBe(3);
    expect(model.trainingShapes).toBe(200);
    for (let t = 0; t < 10; t++) {
      const held = draw(0.01);
      const rec = model.shape(model.project(held));
      for (let i = 0; i < held.length; i++) expect(Math.abs(rec[i] - held[i])).toBeLessThan(0.08);
    }
    // Naive check: the squared singular values sum to the scatter captured; here (rank 3 + noise)
    // they carry almost all of the total squared deviation from the mean.
    let total = 0;
    for (const s of train) for (let i = 0; i < s.length; i++) total += (s[i] - model.mean[i]) ** 2;
    const captured = model.singularValues.reduce((a, s) => a + s * s, 0);
    expect(captured / total).toBeGreaterThan(0.999);
    expect(captured / total).toBeLessThanOrEqual(1 + 1e-12);
    // Basis columns orthogonal with norms S_k.
    for (let a = 0; a < 3; a++)
      for (let b = 0; b < 3; b++) {
        let dot = 0;
        for (let i = 0; i < 2 * P; i++) dot += model.basis[i * 3 + a] * model.basis[i * 3 + b];
        expect(dot / (model.singularValues[a] * model.singularValues[b])).toBeCloseTo(a === b ? 1 : 0, 9);
      }
    // The mean is the data mean.
    for (let i = 0; i < 2 * P; i++) expect(model.mean[i]).toBeCloseTo(train.reduce((s, x) => s + x[i], 0) / train.length, 10);
  });

  it('removes rotations about the image centre before the PCA', () => {
    const base = draw(0);
    const rotated = Array.from({ length: 50 }, () => rotatePoints(base, 0.4 * rng.normal(), C).map((v) => v + 0.001 * rng.normal()));
    const plain = PcaShapeModel.fit(rotated, { components: 2, alignIterations: 0 });
    const aligned = PcaShapeModel.fit(rotated, { components: 2, alignIterations: 2 });
    expect(plain.singularValues[0]).toBeGreaterThan(10);
    expect(aligned.singularValues[0]).toBeLessThan(0.1);
  });

  it('keeps exactly the coordinate orderings that hold on every training shape, as constraints', () => {
    const train = Array.from({ length: 100 }, () => draw(0.05));
    const model = PcaShapeModel.fit(train, { components: 3, alignIterations: 0 });
    const expected = new Set<string>();
    for (let axis = 0; axis < 2; axis++)
      for (let a = 0; a < P; a++)
        for (let b = 0; b < P; b++) {
          if (a === b) continue;
          const i = 2 * a + axis, j = 2 * b + axis;
          if (train.every((s) => s[i] < s[j])) expected.add(`${i},${j}`);
        }
    const found = new Set(model.toJSON().constraints.map(([i, j]) => `${i},${j}`));
    expect(found).toEqual(expected);
    // Some pairs do swap in this data, so not every pair is a constraint.
    expect(found.size).toBeGreaterThan(0);
    expect(found.size).toBeLessThan(2 * (P * (P - 1)) / 2);
    // The mean shape (b = 0) meets them all.
    expect(model.satisfiesConstraints([0, 0, 0])).toBe(true);
  });

  it('drops partially labelled shapes and rejects bad input', () => {
    const train = Array.from({ length: 20 }, () => draw(0.01));
    const partial = Float64Array.from(train[0]);
    partial[3] = NaN;
    expect(PcaShapeModel.fit([...train, partial], { components: 3 }).trainingShapes).toBe(20);
    expect(() => PcaShapeModel.fit([], {})).toThrow(TypeError);
    expect(() => PcaShapeModel.fit(train, { components: 0 })).toThrow(/components/);
    expect(() => PcaShapeModel.fit(train.slice(0, 3), { components: 3 })).toThrow(/more than 3 complete shapes/);
    expect(() => PcaShapeModel.fit([train[0], train[1].subarray(2)], { components: 1 })).toThrow(/shapes\[1\]/);
    expect(() => PcaShapeModel.fit(train, { imageSize: 1.5 })).toThrow(/imageSize/);
    // Shapes as [x, y] pairs used to be counted as incomplete ("0 complete of 20").
    const pairs = train.map((s) => Array.from({ length: s.length / 2 }, (_, k) => [s[2 * k], s[2 * k + 1]]));
    expect(() => PcaShapeModel.fit(pairs as never, { components: 3 })).toThrow(TypeError);
    expect(() => PcaShapeModel.fit(pairs as never, { components: 3 })).toThrow(/PcaShapeModel.fit: 'shapes\[0\]' must be an interleaved array of numbers .*got an array \[/);
    expect(() => PcaShapeModel.fit(train, { bogus: 1 } as never)).toThrow(new TypeError("PcaShapeModel.fit: 'bogus' must be one of the known options (components, imageSize, alignIterations), got an unknown option"));
  });
});

const csv = 'face_landmarks_300w_valid.csv.gz';
const have300w = haveSharedData(`300w/${csv}`);

/** 300-W shapes in a 96x96 frame: each face's box (centre, 200 * scale) mapped onto the frame. */
async function shapes300w(): Promise<Float64Array[]> {
  const ds = await W300.fromCsv({ file: `${sharedDataDir}300w/${csv}` });
  return ds.toArray().map((s) => {
    const box = s.boxes[0];
    const k = S / box.width;
    // The CSV's points are 1-based; this package's pixel centres are 0-based.
    return Float64Array.from(s.landmarks[0], (v, i) => (v - 1 - (i % 2 ? box.y : box.x) + 0.5) * k - 0.5);
  });
}

describe.skipIf(!have300w)('PcaShapeModel on real 300-W shapes, fitted to heatmaps', () => {
  let model: PcaShapeModel;
  let heldOut: Float64Array[];
  const sigma = 2;
  const maps = (shape: ArrayLike<number>) => gaussianHeatmaps(shape, { size: [S, S], sigma, background: false });
  const dist = (a: ArrayLike<number>, b: ArrayLike<number>, k: number) => Math.hypot(a[2 * k] - b[2 * k], a[2 * k + 1] - b[2 * k + 1]);
  const meanDist = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from({ length: 68 }, (_, k) => dist(a, b, k)).reduce((s, v) => s + v, 0) / 68;
  beforeAll(async () => {
    const all = await shapes300w();
    model = PcaShapeModel.fit(all.slice(0, 600), { components: 12, imageSize: S });
    heldOut = all.slice(600);
  });

  it('builds 12 components and thousands of ordering constraints that the training mean meets', () => {
    expect(model.components).toBe(12);
    expect(model.points).toBe(68);
    expect(model.trainingShapes).toBe(600);
    expect(model.constraintCount).toBeGreaterThan(1000);
    expect(model.satisfiesConstraints(new Float64Array(12))).toBe(true);
    for (let k = 1; k < 12; k++) expect(model.singularValues[k]).toBeLessThanOrEqual(model.singularValues[k - 1]);
  });

  it('recovers a shape in the model span drawn as Gaussian heatmaps (rotated), and real held-out shapes to sub-pixel accuracy', () => {
    const b = Float64Array.from({ length: 12 }, (_, k) => (k < 3 ? 0.03 * (k + 1) * (k % 2 ? -1 : 1) : 0));
    const truth = rotatePoints(model.shape(b), 0.12, model.centre);
    const fit = model.fitHeatmaps(maps(truth));
    expect(meanDist(fit.modelPoints, truth)).toBeLessThan(0.3);
    expect(fit.rotation).toBeCloseTo(0.12, 1);
    expect(meanDist(fit.points, truth)).toBeLessThan(0.3);
    for (const shape of heldOut.slice(0, 5)) {
      const r = model.fitHeatmaps(maps(shape));
      expect(meanDist(r.points, shape)).toBeLessThan(0.5);
      // The 5x5 min-max-normalised mean and the model's share (1 - w) leave some bias per point.
      for (let k = 0; k < 68; k++) expect(dist(r.points, shape, k)).toBeLessThan(1.5);
      // Confident peaks: the blend weight is the peak value, near 1.
      expect(Math.min(...r.confidence)).toBeGreaterThan(0.8);
    }
  });

  it('pulls an outlier back: a blank map or a peak moved far away, where plain argmax fails', () => {
    const shape = heldOut[7];
    const chin = 8;
    // (a) The chin's map is blank: argmax says pixel (0, 0); the model puts the chin near its place.
    const blank = maps(shape);
    blank.fill(0, chin * S * S, (chin + 1) * S * S);
    const a = model.fitHeatmaps(blank);
    expect(dist(a.argmaxPoints, shape, chin)).toBeGreaterThan(40);
    expect(dist(a.points, shape, chin)).toBeLessThan(4);
    expect(a.confidence[chin]).toBe(0);
    // (b) A strong wrong peak 35 px above the chin, the true one weak: argmax follows the wrong
    // peak, the model and the local refits stay with the face.
    const moved = Float64Array.from(shape);
    moved[2 * chin + 1] -= 35;
    const wrong = maps(moved);
    const weak = maps(shape);
    const plane = S * S;
    for (let q = 0; q < plane; q++) wrong[chin * plane + q] = Math.max(wrong[chin * plane + q], 0.3 * weak[chin * plane + q]);
    const r = model.fitHeatmaps(wrong);
    expect(dist(r.argmaxPoints, shape, chin)).toBeGreaterThan(30);
    expect(dist(r.modelPoints, shape, chin)).toBeLessThan(4);
    expect(dist(r.points, shape, chin)).toBeLessThan(4);
    expect(r.confidence[chin]).toBeCloseTo(0.3, 1);
    // Negative heatmap values are cleaned to 0 (step 1): adding negative noise changes nothing.
    const negative = maps(shape).map((v, i) => (i % 7 === 0 ? -0.5 : v));
    const clean = maps(shape).map((v, i) => (i % 7 === 0 ? 0 : v));
    expect(Array.from(model.fitHeatmaps(negative).points)).toEqual(Array.from(model.fitHeatmaps(clean).points));
  });

  it('masks each heatmap to its window in the local refits: a distractor outside the window is ignored', () => {
    const shape = heldOut[3];
    const clean = maps(shape);
    const distracted = Float32Array.from(clean);
    // A second, stronger peak 15 px right of point 30 (nose tip).
    const nose = 30;
    const extra = maps(Float64Array.from(shape, (v, i) => (i === 2 * nose ? v + 15 : v)));
    const plane = S * S;
    for (let q = 0; q < plane; q++) distracted[nose * plane + q] = Math.max(distracted[nose * plane + q], 1.5 * extra[nose * plane + q]);
    const window = { centres: shape, radius: 7 };
    const inWindowClean = model.fitCoefficients(clean, { window });
    const inWindowDistracted = model.fitCoefficients(distracted, { window });
    expect(Array.from(inWindowDistracted.coefficients)).toEqual(Array.from(inWindowClean.coefficients));
    const globalClean = model.fitCoefficients(clean);
    const globalDistracted = model.fitCoefficients(distracted);
    expect(Math.abs(globalDistracted.points[2 * nose] - globalClean.points[2 * nose])).toBeGreaterThan(0.5);
    // The full fit with the paper's windows ends nearer the true nose than the global fit alone.
    const withWindows = model.fitHeatmaps(distracted, { snapToMaxima: false });
    const globalOnly = model.fitHeatmaps(distracted, { snapToMaxima: false, windowSizes: [] });
    expect(dist(withWindows.points, shape, nose)).toBeLessThan(dist(globalOnly.points, shape, nose));
    // ... and where the fit to the clean maps ends (the model's own error on this face aside).
    const cleanFit = model.fitHeatmaps(clean, { snapToMaxima: false });
    expect(dist(withWindows.points, cleanFit.points, nose)).toBeLessThan(0.25);
    expect(dist(globalOnly.points, cleanFit.points, nose)).toBeGreaterThan(0.5);
  });

  it("refuses unknown keys of fitCoefficients' window, naming the function and the key, and accepts the documented ones", () => {
    const shape = heldOut[2];
    const h = maps(shape);
    expect(() => model.fitCoefficients(h, { window: { centres: shape, radius: 7, radious: 3 } as never })).toThrow(
      new TypeError("PcaShapeModel.fitCoefficients: 'radious' must be one of the known options.window fields (centres, radius), got an unknown options.window field"),
    );
    // A misspelt radius is named as such, not reported as a missing 'window.radius'.
    expect(() => model.fitCoefficients(h, { window: { centres: shape, radus: 7 } as never })).toThrow(/^PcaShapeModel\.fitCoefficients: 'radus' must be one of the known options\.window fields/);
    expect(() => model.fitCoefficients(h, { window: 7 as never })).toThrow(new TypeError("PcaShapeModel.fitCoefficients: 'options.window' must be an object, got 7"));
    expect(() => model.fitCoefficients(h, { window: null as never })).toThrow(TypeError);
    // Both documented keys: a window covering every map whole is the global fit exactly.
    const global = model.fitCoefficients(h);
    const whole = model.fitCoefficients(h, { window: { centres: shape, radius: S } });
    expect(Array.from(whole.coefficients)).toEqual(Array.from(global.coefficients));
    expect(whole.rotation).toBe(global.rotation);
  });

  it('keeps the ordering constraints in the fit, and fits without them on request', () => {
    const shape = heldOut[11];
    const fit = model.fitHeatmaps(maps(shape));
    expect(model.satisfiesConstraints(fit.coefficients, 1e-6)).toBe(true);
    const free = model.fitHeatmaps(maps(shape), { useOrderingConstraints: false });
    expect(meanDist(free.points, shape)).toBeLessThan(0.5);
  });

  it('round-trips through JSON exactly and rejects malformed models and heatmaps', () => {
    const restored = PcaShapeModel.fromJSON(JSON.stringify(model.toJSON()));
    const h = maps(heldOut[1]);
    expect(Array.from(restored.fitHeatmaps(h).points)).toEqual(Array.from(model.fitHeatmaps(h).points));
    expect(Array.from(restored.mean)).toEqual(Array.from(model.mean));
    const json = model.toJSON();
    expect(() => PcaShapeModel.fromJSON('{')).toThrow(/valid JSON/);
    expect(() => PcaShapeModel.fromJSON({ ...json, format: 'x' as never })).toThrow(/format/);
    expect(() => PcaShapeModel.fromJSON({ ...json, mean: json.mean.slice(1) })).toThrow(/json.mean/);
    expect(() => PcaShapeModel.fromJSON({ ...json, basis: [...json.basis.slice(1), NaN] })).toThrow(/json.basis/);
    expect(() => PcaShapeModel.fromJSON({ ...json, constraints: [[0, 0]] })).toThrow(/constraints\[0\]/);
    expect(() => PcaShapeModel.fromJSON({ ...json, constraints: [[0, 500]] })).toThrow(/constraints\[0\]/);
    expect(() => model.fitHeatmaps(new Float32Array(10))).toThrow(/68 maps of 96x96/);
    expect(() => model.fitHeatmaps([1, 2] as never)).toThrow(TypeError);
    // NaN maps (a diverged network) used to give the mean shape as an answer, Infinity an error inside solveQp.
    const nanMaps = Float32Array.from(h);
    nanMaps[5] = NaN;
    expect(() => model.fitHeatmaps(nanMaps)).toThrow("PcaShapeModel.fitHeatmaps: 'heatmaps' must be finite values, got NaN at index 5");
    nanMaps[5] = Infinity;
    expect(() => model.fitHeatmaps(nanMaps)).toThrow(/PcaShapeModel.fitHeatmaps: 'heatmaps' must be finite values, got Infinity/);
    expect(() => model.fitHeatmaps(h, { windowSizes: [-1] })).toThrow(/windowSizes/);
    expect(() => model.fitHeatmaps(h, { thresh: 'a' as never })).toThrow(TypeError);
    expect(() => model.fitHeatmaps(h, { snap: true } as never)).toThrow(TypeError);
    expect(() => model.fitHeatmaps(h, { snap: true } as never)).toThrow(/'snap' must be one of the known options \(windowSizes, thresh, /);
    expect(() => model.fitCoefficients(h, { window: { centres: [1, 2], radius: 3 } })).toThrow(/window.centres/);
  });
});
