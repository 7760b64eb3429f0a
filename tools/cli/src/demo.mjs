// The demo until the super-resolution package provides the real one: an SRCNN-shaped
// 3-layer net learns to undo a 2x blur-and-downsample on a synthetic face-sized patch,
// forward and backward on the CPU, with timings.
import * as lr from '@lrface/cuda-core';

function kaimingUniform(shape, fanIn, seedOffset) {
  const bound = Math.sqrt(6 / fanIn);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = 12345 + seedOffset;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = ((s / 4294967296) * 2 - 1) * bound * 0.5;
  }
  return lr.tensor(data, shape).requiresGrad_();
}

// A smooth test pattern: a face-like blob with features, 32x32, values in [0, 1].
function pattern(size) {
  const data = new Float32Array(size * size);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const u = (x - size / 2) / size;
      const v = (y - size / 2) / size;
      const face = Math.exp(-(u * u * 6 + v * v * 4));
      const eyes = Math.exp(-(((Math.abs(u) - 0.15) ** 2) + (v + 0.1) ** 2) * 300);
      const mouth = Math.exp(-((u * u) * 40 + (v - 0.18) ** 2 * 800));
      data[y * size + x] = 0.2 + 0.6 * face - 0.3 * eyes - 0.2 * mouth + 0.05 * Math.sin(x * 0.9) * Math.cos(y * 0.7);
    }
  return data;
}

export async function runDemo({ json = false } = {}) {
  const size = 32;
  const target = lr.tensor(pattern(size), [1, 1, size, size]);
  // Degrade: 2x2 average then nearest-neighbour back up (blocky input the net must sharpen).
  const td = target.data();
  const degraded = new Float32Array(size * size);
  for (let y = 0; y < size; y += 2)
    for (let x = 0; x < size; x += 2) {
      const m = (td[y * size + x] + td[y * size + x + 1] + td[(y + 1) * size + x] + td[(y + 1) * size + x + 1]) / 4;
      degraded[y * size + x] = degraded[y * size + x + 1] = degraded[(y + 1) * size + x] = degraded[(y + 1) * size + x + 1] = m;
    }
  const input = lr.tensor(degraded, [1, 1, size, size]);

  const w1 = kaimingUniform([32, 1, 9, 9], 81, 1);
  const b1 = lr.zeros([32]).requiresGrad_();
  const w2 = kaimingUniform([16, 32, 1, 1], 32, 2);
  const b2 = lr.zeros([16]).requiresGrad_();
  const w3 = kaimingUniform([1, 16, 5, 5], 400, 3);
  const b3 = lr.zeros([1]).requiresGrad_();
  const params = [w1, b1, w2, b2, w3, b3];
  const m = params.map((p) => lr.zeros(p.shape));
  const v = params.map((p) => lr.zeros(p.shape));

  const forward = (x) => {
    const h1 = lr.relu(lr.conv2d(x, w1, b1, { padding: 4 }));
    const h2 = lr.relu(lr.conv2d(h1, w2, b2));
    return lr.add(x, lr.conv2d(h2, w3, b3, { padding: 2 }));
  };

  const steps = 60;
  const lrate = 2e-3;
  const losses = [];
  const t0 = performance.now();
  for (let step = 1; step <= steps; step++) {
    const loss = lr.scope(() => {
      const out = forward(input);
      const l = lr.mean(lr.square(lr.sub(out, target)));
      l.backward();
      return l.item();
    });
    losses.push(loss);
    // Adam, written out: this demo shows the engine, not the optimiser package.
    lr.noGrad(() =>
      lr.scope(() => {
        params.forEach((p, i) => {
          const g = p.grad;
          const mNew = lr.add(lr.mul(m[i], 0.9), lr.mul(g, 0.1));
          const vNew = lr.add(lr.mul(v[i], 0.999), lr.mul(lr.square(g), 0.001));
          const mHat = lr.div(mNew, 1 - 0.9 ** step);
          const vHat = lr.div(vNew, 1 - 0.999 ** step);
          const update = lr.div(lr.mul(mHat, lrate), lr.add(lr.sqrt(vHat), 1e-8));
          const next = lr.sub(p, update);
          p.assign(next);
          m[i].dispose();
          v[i].dispose();
          m[i] = lr.keep(mNew);
          v[i] = lr.keep(vNew);
          p.zeroGrad();
        });
      }),
    );
  }
  const ms = performance.now() - t0;
  const psnr = (mse) => 10 * Math.log10(1 / mse);
  const baseline = lr.scope(() => lr.mean(lr.square(lr.sub(input, target))).item());
  const result = {
    task: 'SRCNN-shaped 9-1-5 net, 32x32 patch, 2x degradation, Adam',
    threads: lr.numThreads(),
    steps,
    lossFirst: losses[0],
    lossLast: losses[losses.length - 1],
    psnrDegradedDb: psnr(baseline),
    psnrNetDb: psnr(losses[losses.length - 1]),
    msPerStep: ms / steps,
  };
  if (json) console.log(JSON.stringify(result));
  else {
    console.log(`lrface demo: ${result.task} on ${result.threads} CPU thread(s)`);
    console.log(`  loss ${result.lossFirst.toExponential(3)} -> ${result.lossLast.toExponential(3)} over ${steps} forward+backward steps`);
    console.log(`  PSNR: degraded input ${result.psnrDegradedDb.toFixed(2)} dB, network output ${result.psnrNetDb.toFixed(2)} dB`);
    console.log(`  ${result.msPerStep.toFixed(2)} ms per step (forward, backward, update)`);
  }
  return result.lossLast < result.lossFirst ? 0 : 1;
}
