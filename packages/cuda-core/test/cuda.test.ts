// The CUDA backend. Where no CUDA device is usable, the device suite is reported as skipped
// (describe.skipIf), never as passed; what can be checked without a GPU runs everywhere.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { addon, kernels } from '../src/native.js';
import { ref } from '../src/ops/decl.js';
import { expectClose, expectError } from './helpers/check.js';
import { input, parity, positive, type Input } from './helpers/parity.js';
import { awayFromZero, uniform } from './helpers/random.js';

const info = lr.buildInfo();
const hasCuda = lr.devices().some((d) => d.type === 'cuda');
// The device the suite runs on, in its name: a run on the host emulation never reads as a GPU's.
const cudaDevice = lr.devices().find((d) => d.type === 'cuda');
const onDevice = cudaDevice ? `on ${cudaDevice.id}, ${cudaDevice.name}` : 'no CUDA device here';
const emulated = cudaDevice?.name === 'lrface host emulation of CUDA';
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Whether the local build compiled CUDA in, from CMake's cache (undefined when the loaded addon is not the local build). */
function cmakeFindsCuda(): boolean | undefined {
  const cachePath = join(packageRoot, 'build', 'CMakeCache.txt');
  if (!lr.nativeAddonOrigin().startsWith('local build') || !existsSync(cachePath)) return undefined;
  const cache = readFileSync(cachePath, 'utf8');
  const value = (key: string): string => new RegExp(`^${key}:[A-Z]+=(.*)$`, 'm').exec(cache)?.[1] ?? '';
  const found = (key: string): boolean => value(key) !== '' && !value(key).endsWith('NOTFOUND');
  return value('LRFACE_CUDA') !== 'OFF' && found('CMAKE_CUDA_COMPILER');
}

/** cudaInfo() of the loaded addon file in a fresh process with `env` added (the libraries are opened once per process). */
function cudaInfoWith(env: Record<string, string>): ReturnType<typeof addon.cudaInfo> {
  const path = /\((.*)\)$/.exec(lr.nativeAddonOrigin())?.[1];
  if (!path) throw new Error(`no addon path in '${lr.nativeAddonOrigin()}'`);
  const script = `process.stdout.write(JSON.stringify(require(${JSON.stringify(path)}).cudaInfo()))`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, ...env }, encoding: 'utf8' }));
}

describe('CUDA build and discovery (runs everywhere)', () => {
  it('buildInfo reports what CMake compiled in', () => {
    const cuda = cmakeFindsCuda();
    if (cuda !== undefined) expect(info.cuda).toBe(cuda);
    // cuDNN and cuBLAS are opened at run time: in use exactly when loaded, else a reason.
    for (const [inUse, lib] of [
      [info.cudnn, info.cudnnLibrary],
      [info.cublas, info.cublasLibrary],
    ] as const) {
      expect(inUse).toBe(lib.loaded);
      if (lib.loaded) expect([lib.reason, lib.path.length > 0, lib.version]).toEqual(['', true, expect.stringMatching(/^\d+\.\d+\.\d+$/)]);
      else expect(lib.reason.length).toBeGreaterThan(10);
      if (!info.cuda) expect(lib.reason).toMatch(/built without CUDA/);
    }
  });

  // The emulated build opens only the libraries the variables name (its stand-ins); it never searches.
  it.skipIf(!info.cuda)('a library that is missing or not a library is named in the reason, and the addon still loads', () => {
    const notALibrary = join(packageRoot, 'package.json');
    const got = cudaInfoWith({ LRFACE_CUDNN_LIBRARY: '/nonexistent/libcudnn.so.9', LRFACE_CUBLAS_LIBRARY: notALibrary });
    expect(got.cudnnLibrary.loaded).toBe(false);
    expect(got.cudnnLibrary.reason).toMatch(/LRFACE_CUDNN_LIBRARY=\/nonexistent\/libcudnn\.so\.9 could not be opened: .*No such file/);
    expect(got.cublasLibrary.loaded).toBe(false);
    expect(got.cublasLibrary.reason).toContain(`LRFACE_CUBLAS_LIBRARY=${notALibrary} could not be opened`);
    // Searched and not found: every candidate name and the variables that help are listed.
    const searched = cudaInfoWith({ CUDNN_ROOT: '/nonexistent', LD_LIBRARY_PATH: '', LRFACE_CUDNN_LIBRARY: '' });
    if (emulated) {
      expect(searched.cudnnLibrary.loaded).toBe(false);
      expect(searched.cudnnLibrary.reason).toMatch(/not searched for under the host emulation .*set LRFACE_CUDNN_LIBRARY/);
    } else if (!searched.cudnnLibrary.loaded) {
      expect(searched.cudnnLibrary.reason).toMatch(/cuDNN not found: none of libcudnn\.so\.9, libcudnn\.so\.8/);
      expect(searched.cudnnLibrary.reason).toContain('/nonexistent/lib');
      expect(searched.cudnnLibrary.reason).toMatch(/LRFACE_CUDNN_LIBRARY .* CUDNN_ROOT/);
    }
  });

  // The stand-ins hold the emulated device's work queue; any other library would compute on
  // host code's view of device memory, so it is refused, and a stand-in for the other library
  // lacks the entry points.
  it.skipIf(!emulated || !info.cudnn)('under the emulation a library that is not a stand-in is refused', () => {
    const addonFile = /\((.*)\)$/.exec(lr.nativeAddonOrigin())![1]!;
    const got = cudaInfoWith({ LRFACE_CUDNN_LIBRARY: addonFile, LRFACE_CUBLAS_LIBRARY: info.cudnnLibrary.path });
    expect(got.cudnnLibrary.loaded).toBe(false);
    expect(got.cudnnLibrary.reason).toBe(
      `LRFACE_CUDNN_LIBRARY=${addonFile} is not a stand-in for the host emulation (it lacks lrfaceEmulationSetDeviceQueue)`,
    );
    expect(got.cublasLibrary).toMatchObject({ loaded: false, reason: `${info.cudnnLibrary.path} lacks cublasCreate_v2` });
  });

  it('setAllowTF32 and setCudnnBenchmark return the previous setting and check their argument', () => {
    expect(lr.setAllowTF32(true)).toBe(false);
    expect(lr.setAllowTF32(false)).toBe(true);
    expect(lr.setCudnnBenchmark(true)).toBe(false);
    expect(lr.setCudnnBenchmark(false)).toBe(true);
    expectError(() => lr.setAllowTF32(1 as unknown as boolean), TypeError, 'setAllowTF32', "'allow'", 'a boolean');
    expectError(() => lr.setCudnnBenchmark('yes' as unknown as boolean), TypeError, 'setCudnnBenchmark', "'on'", 'a boolean');
    expect(kernels.cuda_use_libraries('none')).toBe('auto');
    expect(kernels.cuda_use_libraries('auto')).toBe('none');
    expectError(() => kernels.cuda_use_libraries('cudnn'), RangeError, "cuda_use_libraries: mode must be 'auto' or 'none'");
  });

  it('devices() and buildInfo() agree, with a reason whenever CUDA is unusable', () => {
    const cudaDevices = lr.devices().filter((d) => d.type === 'cuda');
    expect(info.cudaAvailable).toBe(cudaDevices.length > 0);
    if (!info.cudaAvailable) expect(info.cudaReason.length).toBeGreaterThan(5);
    else expect(info.cudaReason).toBe('');
    for (const d of cudaDevices) {
      expect(d.id).toMatch(/^cuda:\d+$/);
      expect(d.totalMemory).toBeGreaterThan(0);
      expect(d.computeCapability).toMatch(/^\d+\.\d+$/);
    }
  });

  it('memory() reports device bytes in use and cached', () => {
    const m = lr.memory();
    expect(m.deviceBytes).toBeGreaterThanOrEqual(0);
    expect(m.deviceCached).toBeGreaterThanOrEqual(0);
    expect(m.deviceBuffers).toBeGreaterThanOrEqual(0);
    if (!hasCuda) expect([m.deviceBytes, m.deviceCached, m.deviceBuffers]).toEqual([0, 0, 0]);
  });

  it('checks the device argument of to(), full() and tensor()', () => {
    const x = lr.tensor([1, 2, 3]);
    expectError(() => x.to(3 as never), TypeError, 'to', "'device'");
    expectError(() => x.to('gpu' as never), RangeError, 'to', "'device'", 'gpu');
    expectError(() => x.to('cuda:x' as never), RangeError, 'to', "'device'");
    expectError(() => lr.full([2], 1, 'float32', 'tpu' as never), RangeError, 'full', "'device'");
    expectError(() => lr.tensor([1], [1], 'float32', {} as never), TypeError, 'tensor', "'device'");
    x.dispose();
  });

  it('to("cpu") on a CPU tensor is a view that carries the gradient', () => {
    const x = lr.tensor([1, -2, 3]).requiresGrad_();
    const y = x.to('cpu');
    expect(y.device).toBe('cpu');
    expect(y.deviceId).toBe('cpu');
    expect(Array.from(y.data())).toEqual([1, -2, 3]);
    lr.sum(lr.mul(y, y)).backward();
    expect(Array.from(x.grad!.data())).toEqual([2, -4, 6]);
  });

  it.skipIf(!info.cuda)('the status check\'s message: out of memory names the bytes asked for and the free memory', () => {
    const text = kernels.cuda_status_message(2, 3 << 20) as string; // 2: cudaErrorMemoryAllocation
    expect(text).toContain('CUDA error in cudaMalloc(&p, size) at allocator.cu:1: cudaErrorMemoryAllocation');
    expect(text).toContain('out of device memory asking for 3145728 bytes (3 MiB)');
    expect(text).toMatch(/free/);
    const other = kernels.cuda_status_message(1, 0) as string; // 1: cudaErrorInvalidValue
    expect(other).toContain('cudaErrorInvalidValue');
    expect(other).not.toContain('out of device memory');
  });

  it('mixing devices in one op is an Error naming the op and both arguments', () => {
    // No GPU is needed for the check itself: it reads the tensors' device tags before any
    // kernel runs, so a CPU tensor tagged as cuda:0 stands in for a device tensor here.
    const a = lr.tensor([1, 2]);
    const b = lr.tensor([3, 4]);
    Object.defineProperty(b, '_deviceIndex', { value: 0 });
    Object.defineProperty(b, 'deviceId', { value: 'cuda:0' });
    expectError(() => lr.add(a, b), Error, 'add:', "'b' is on cuda:0", "'a' is on cpu");
    expectError(() => lr.concat([a, b], 0), Error, 'concat:', "'tensors[1]' is on cuda:0");
    const loss = lr.sum(lr.mul(lr.tensor([1, 2]).requiresGrad_(), 2));
    const g = lr.tensor(1);
    Object.defineProperty(g, '_deviceIndex', { value: 0 });
    Object.defineProperty(g, 'deviceId', { value: 'cuda:0' });
    expectError(() => loss.backward(g), Error, 'backward:', "'gradient' is on cuda:0");
    [a, b, g, loss].forEach((t) => t.dispose());
  });
});

describe.skipIf(hasCuda)('CUDA unavailable here', () => {
  it('to("cuda") throws an Error carrying devices()\'s reason', () => {
    const x = lr.tensor([1, 2, 3]);
    expectError(() => x.to('cuda'), Error, 'to:', "'cuda'", 'CUDA is not available', info.cudaReason);
    expectError(() => x.to('cuda:1'), Error, 'to:', 'CUDA is not available');
    expectError(() => lr.zeros([2], 'float32', 'cuda'), Error, 'full:', info.cudaReason);
    expectError(() => lr.tensor([1, 2], [2], 'float32', 'cuda'), Error, 'tensor:', info.cudaReason);
    expectError(() => lr.rand([2], { device: 'cuda' }), Error, 'rand:', info.cudaReason);
    expectError(() => lr.randperm(3, { device: 'cuda' }), Error, 'randperm:', info.cudaReason);
    x.dispose();
  });

  it.skipIf(!info.cuda)('a device allocation fails through the one status check: call, reason, file:line', () => {
    let message = '';
    try {
      new addon.Storage(0, 16, 0);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/CUDA error in cudaGetDeviceCount\(&count\) at native\/cuda\/allocator\.cu:\d+: cudaError\w+ \(.+\)/);
    expect(lr.memory().deviceBuffers).toBe(0);
  });


  it('emptyCache() works without a device', () => {
    expect(() => lr.emptyCache()).not.toThrow();
  });
});

// ---- the op suite on the device, each op compared with the CPU ---------------------------

describe.skipIf(!hasCuda)(`CUDA device suite (${onDevice})`, () => {
  it('moves tensors to the device and back, every dtype', () => {
    for (const [dtype, values] of [
      ['float32', new Float32Array([1.5, -2, 3e5, 0])],
      ['int32', new Int32Array([1, -2, 1 << 30, 0])],
      ['uint8', new Uint8Array([0, 1, 128, 255])],
    ] as const) {
      const x = lr.tensor(values);
      const d = x.to('cuda');
      expect(d.device).toBe('cuda');
      expect(d.deviceId).toBe('cuda:0');
      expect(d.dtype).toBe(dtype);
      expect(Array.from(d.data())).toEqual(Array.from(values));
      const back = d.to('cpu');
      expect(back.device).toBe('cpu');
      expect(Array.from(back.data())).toEqual(Array.from(values));
      [x, d, back].forEach((t) => t.dispose());
    }
    // Large enough to take several staging chunks each way.
    const big = uniform(5_000_000, 3);
    const d = lr.tensor(big, [big.length], 'float32', 'cuda');
    // The first differing index (-1: none); toEqual's deep walk of 5M elements takes ~20 s.
    const back = d.data();
    expect(back.length).toBe(big.length);
    expect(back.findIndex((v, i) => !Object.is(v, big[i]))).toBe(-1);
    d.dispose();
  });

  it('caches device blocks: memory() in use and cached, emptyCache() frees them', () => {
    lr.emptyCache();
    const before = lr.memory();
    const mallocs = addon.liveStorage().deviceMallocs;
    const x = lr.zeros([1024, 1024], 'float32', 'cuda');
    expect(Array.from(x.data().subarray(0, 4))).toEqual([0, 0, 0, 0]);
    const during = lr.memory();
    expect(during.deviceBytes - before.deviceBytes).toBeGreaterThanOrEqual(4 << 20);
    expect(during.deviceBuffers - before.deviceBuffers).toBe(1);
    x.dispose();
    const after = lr.memory();
    expect(after.deviceBytes).toBe(before.deviceBytes);
    expect(after.deviceCached).toBeGreaterThanOrEqual(4 << 20);
    // The same size again comes from the cache: no new cudaMalloc.
    const y = lr.zeros([1024, 1024], 'float32', 'cuda');
    expect(addon.liveStorage().deviceMallocs).toBe(mallocs + 1);
    y.dispose();
    lr.emptyCache();
    expect(lr.memory().deviceCached).toBe(0);
  });

  it('out of device memory is an Error naming the bytes asked for and the free memory; the allocator recovers', () => {
    const total = lr.devices().find((d) => d.type === 'cuda')!.totalMemory!;
    const numel = Math.ceil((total * 2) / 4); // twice the device's memory, in float32
    expectError(() => lr.zeros([numel], 'float32', 'cuda'), Error, 'cudaMalloc', 'out of device memory asking for', 'free of');
    const x = lr.ones([4], 'float32', 'cuda');
    expect(Array.from(x.data())).toEqual([1, 1, 1, 1]);
    x.dispose();
  });

  it('to() is differentiable across devices', () => {
    const x = lr.tensor([1, 2, 3]).requiresGrad_();
    const d = x.to('cuda');
    const loss = lr.sum(lr.square(d)).to('cpu');
    loss.backward();
    expect(x.grad!.device).toBe('cpu');
    expectClose(x.grad!.data(), [2, 4, 6]);
  });

  it('mixing real device and host tensors is an Error naming the op and the argument', () => {
    const a = lr.tensor([1, 2], [2], 'float32', 'cuda');
    const b = lr.tensor([1, 2]);
    expectError(() => lr.mul(a, b), Error, 'mul:', "'b' is on cpu", "'a' is on cuda:0");
    [a, b].forEach((t) => t.dispose());
  });

  it('a CPU-only kernel given device memory fails clearly instead of reading it', () => {
    // randperm draws on the CPU and copies; its kernel must refuse a device output.
    const out = lr.zeros([8], 'int32', 'cuda');
    expectError(() => kernels.random_permutation(...ref(out), 8, 1, 0), Error, 'cuda:0', 'CPU only');
    out.dispose();
  });

  describe('elementwise with broadcasting', () => {
    const cases: [string, (a: lr.Tensor, b: lr.Tensor) => lr.Tensor][] = [
      ['add', lr.add],
      ['sub', lr.sub],
      ['mul', lr.mul],
      ['div', lr.div],
      ['maximum', lr.maximum],
      ['minimum', lr.minimum],
    ];
    for (const [name, f] of cases) {
      it(name, () => {
        parity(f, [input([2, 3, 4], 1), input([3, 1], 2)]);
        parity(f, [input([4], 3), input([2, 1, 4], 4)]);
        parity(f, [input([2, 3], 5), input([2, 3], 6)]);
      });
    }
    it('pow', () => parity(lr.pow, [positive([3, 4], 7), input([4], 8)], { atol: 1e-4, rtol: 1e-4 }));
    it('number operands stay on the device', () => {
      parity((a) => lr.sub(2, lr.mul(a, 3)), [input([5], 9)]);
    });
  });

  describe('unary activations', () => {
    const x = { shape: [3, 7], data: awayFromZero(21, 11) };
    const cases: [string, (t: lr.Tensor) => lr.Tensor, Input][] = [
      ['neg', lr.neg, x],
      ['exp', lr.exp, x],
      ['log', lr.log, positive([3, 7], 12)],
      ['sqrt', lr.sqrt, positive([3, 7], 13)],
      ['abs', lr.abs, x],
      ['relu', lr.relu, x],
      ['sigmoid', lr.sigmoid, x],
      ['tanh', lr.tanh, x],
      ['square', lr.square, x],
      ['leakyRelu', (t) => lr.leakyRelu(t, 0.2), x],
      ['clamp', (t) => lr.clamp(t, -0.5, 0.5), x],
      ['affine', (t) => lr.affine(t, 1.5, -0.25), x],
      ['powScalar', (t) => lr.powScalar(t, 2.5), positive([3, 7], 14)],
    ];
    for (const [name, f, inp] of cases) it(name, () => parity(f, [inp]));
  });

  describe('axis activations, PReLU, MFM, dropout', () => {
    const x = input([2, 5, 3], 71);
    it('softmax and logSoftmax', () => {
      parity((t) => lr.softmax(t, 1), [x]);
      parity((t) => lr.logSoftmax(t, -1), [x]);
    });
    it('l2Normalize', () => parity((t) => lr.l2Normalize(t, { axis: 1 }), [x]));
    it('prelu, per channel and shared', () => {
      parity((t, w) => lr.prelu(t, w), [input([2, 4, 3, 3], 72), input([4], 73)]);
      parity((t, w) => lr.prelu(t, w), [input([2, 4, 3, 3], 74), input([1], 75)]);
    });
    it('mfm', () => parity((t) => lr.mfm(t), [input([2, 6, 3, 2], 76)]));
    it('dropout draws the same mask as the CPU', () => {
      parity((t) => lr.dropout(t, { p: 0.3, seed: 1234 }), [input([3, 333], 77)]);
      lr.manualSeed(5);
      const c = lr.dropout(lr.tensor(uniform(1000, 78)), { p: 0.5 });
      lr.manualSeed(5);
      const d = lr.dropout(lr.tensor(uniform(1000, 78), [1000], 'float32', 'cuda'), { p: 0.5 });
      expect(d.to('cpu').data()).toEqual(c.data());
    });
  });

  it('the random constructors draw the same values on the device as on the CPU', () => {
    const draws: [string, (device: 'cpu' | 'cuda') => lr.Tensor, number][] = [
      ['rand', (device) => lr.rand([3, 101], { low: -2, high: 3, device }), 0],
      ['randn', (device) => lr.randn([257], { mean: 1, std: 2, device }), 1e-6],
      ['randint', (device) => lr.randint(-5, 1000, [99], { device }), 0],
      ['randperm', (device) => lr.randperm(50, { device }), 0],
    ];
    for (const [name, draw, atol] of draws) {
      lr.manualSeed(42);
      const c = draw('cpu');
      const after = lr.getRngState();
      lr.manualSeed(42);
      const d = draw('cuda');
      expect(d.device, name).toBe('cuda');
      expect(lr.getRngState(), name).toEqual(after);
      expectClose(d.to('cpu').data(), c.data(), atol, atol);
      [c, d].forEach((t) => t.dispose());
    }
  });

  describe('reductions', () => {
    const x = input([3, 4, 5], 21);
    it('sum', () => {
      parity((t) => lr.sum(t), [x]);
      parity((t) => lr.sum(t, { axis: [0, 2] }), [x]);
      parity((t) => lr.sum(t, { axis: 1, keepDims: true }), [x]);
    });
    it('mean', () => {
      parity((t) => lr.mean(t), [x]);
      parity((t) => lr.mean(t, { axis: -1 }), [x]);
    });
    it('max and min', () => {
      parity((t) => lr.max(t, { axis: 1 }), [x]);
      parity((t) => lr.min(t, { axis: [0, 2] }), [x]);
      parity((t) => lr.max(t), [x]);
    });
    it('argmax', () => {
      const c = lr.tensor(x.data, x.shape);
      const d = c.to('cuda');
      const ic = lr.argmax(c, 1);
      const id = lr.argmax(d, 1);
      expect(id.device).toBe('cuda');
      expect(Array.from(id.to('cpu').data())).toEqual(Array.from(ic.data()));
      [c, d, ic, id].forEach((t) => t.dispose());
    });
  });

  describe('layout', () => {
    it('permute and transpose', () => {
      parity((t) => lr.permute(t, [2, 0, 1]), [input([2, 3, 4], 31)]);
      parity((t) => lr.transpose(t), [input([5, 6], 32)]);
    });
    it('cast between dtypes', () => {
      const values = new Float32Array([-3.7, -0.4, 0.5, 1.49, 254.6, 300, NaN]);
      const c = lr.tensor(values);
      const d = c.to('cuda');
      for (const dtype of ['int32', 'uint8', 'float32'] as const) {
        const rc = lr.cast(c, dtype);
        const rd = lr.cast(d, dtype);
        expect(rd.device).toBe('cuda');
        expect(Array.from(rd.to('cpu').data())).toEqual(Array.from(rc.data()));
        [rc, rd].forEach((t) => t.dispose());
      }
      [c, d].forEach((t) => t.dispose());
    });
  });

  describe('joining and cutting', () => {
    it('concat and stack (float32 and uint8)', () => {
      parity((a, b) => lr.concat([a, b], 1), [input([2, 3, 4], 61), input([2, 5, 4], 62)]);
      parity((a, b) => lr.concat([a, b], -1), [input([3, 2], 63), input([3, 1], 64)]);
      parity((a, b) => lr.stack([a, b], 1), [input([3, 4], 65), input([3, 4], 66)]);
      const u = lr.tensor(new Uint8Array([1, 2, 3, 4]), [2, 2]);
      const v = lr.tensor(new Uint8Array([5, 6]), [2, 1]);
      const joined = lr.concat([u.to('cuda'), v.to('cuda')], 1);
      expect(joined.device).toBe('cuda');
      expect(Array.from(joined.to('cpu').data())).toEqual([1, 2, 5, 3, 4, 6]);
    });
    it('slice with a step, narrow, split', () => {
      parity((t) => lr.slice(t, { axis: 1, start: 1, end: 6, step: 2 }), [input([2, 7, 3], 67)]);
      parity((t) => lr.narrow(t, 2, 1, 2), [input([2, 3, 4], 68)]);
      parity((t) => lr.split(t, [1, 3], 1)[1], [input([2, 4, 3], 69)]);
    });
  });

  it('assign() copies across devices, converting the dtype where needed', () => {
    const d = lr.zeros([3], 'float32', 'cuda');
    d.assign(lr.tensor([1.5, 2, -3]));
    expect(Array.from(d.data())).toEqual([1.5, 2, -3]);
    d.assign(lr.tensor(new Int32Array([4, 5, 6])));
    expect(Array.from(d.data())).toEqual([4, 5, 6]);
    const h = lr.zeros([3]);
    h.assign(d);
    expect(Array.from(h.data())).toEqual([4, 5, 6]);
    d.assign(new Float32Array([7, 8, 9]));
    expect(Array.from(d.to('cpu').data())).toEqual([7, 8, 9]);
  });

  it('adamUpdate: 70 tensors (three launches of up to 32) as on the CPU; mixing devices is refused', () => {
    const shapes = Array.from({ length: 70 }, (_, k) => (k % 7 === 3 ? [0] : k % 5 === 0 ? [64, 3, 3, 3] : [k + 1]));
    const settings = { lr: 0.01, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.05 };
    const run = (device: 'cpu' | 'cuda', decoupled: boolean) => {
      const make = (seed: number) => shapes.map((s, k) => lr.tensor(uniform(s.reduce((a, b) => a * b, 1), seed + k, -1, 1), s, 'float32', device));
      const [params, expAvgs, expAvgSqs] = [make(1000), make(2000).map((t) => lr.mul(t, 0.1)), make(3000).map((t) => lr.square(t))];
      for (let t = 1; t <= 3; t++) {
        const grads = make(4000 + 100 * t);
        lr.adamUpdate(params, grads, expAvgs, expAvgSqs, { ...settings, decoupled, step: shapes.map((_, k) => t + (k % 3)) });
      }
      return [...params, ...expAvgs, ...expAvgSqs].map((x) => x.to('cpu').data());
    };
    for (const decoupled of [false, true]) {
      const cpu = run('cpu', decoupled);
      run('cuda', decoupled).forEach((got, k) => expectClose(got, cpu[k], 1e-6, 1e-5));
    }
    const onDevice = lr.zeros([2], 'float32', 'cuda');
    const onHost = () => lr.zeros([2]);
    expectError(() => lr.adamUpdate([onDevice], [onHost()], [onHost()], [onHost()], { ...settings, step: 1 }), Error, 'adam_update:', "'grads[0]' is on cpu", "'params[0]' is on cuda:0");
  });

  it('sgdUpdate: 70 tensors, with and without momentum buffers, first steps per tensor, as on the CPU', () => {
    const shapes = Array.from({ length: 70 }, (_, k) => (k % 7 === 3 ? [0] : k % 5 === 0 ? [64, 3, 3, 3] : [k + 1]));
    const run = (device: 'cpu' | 'cuda', settings: { lr: number; momentum?: number; dampening?: number; weightDecay?: number; nesterov?: boolean }) => {
      const make = (seed: number) => shapes.map((s, k) => lr.tensor(uniform(s.reduce((a, b) => a * b, 1), seed + k, -1, 1), s, 'float32', device));
      const params = make(1000);
      const buffers = settings.momentum ? make(2000) : null;
      for (let t = 1; t <= 3; t++) lr.sgdUpdate(params, make(4000 + 100 * t), buffers, { ...settings, first: shapes.map((_, k) => t === 1 + (k % 2)) });
      return [...params, ...(buffers ?? [])].map((x) => x.to('cpu').data());
    };
    for (const settings of [
      { lr: 0.1, weightDecay: 0.01 },
      { lr: 0.01, momentum: 0.9, dampening: 0.2, weightDecay: 1e-3 },
      { lr: 0.01, momentum: 0.9, nesterov: true },
    ]) {
      const cpu = run('cpu', settings);
      run('cuda', settings).forEach((got, k) => expectClose(got, cpu[k], 1e-6, 1e-5));
    }
    const onDevice = lr.zeros([2], 'float32', 'cuda');
    expectError(() => lr.sgdUpdate([onDevice], [lr.zeros([2])], null, { lr: 0.1 }), Error, 'sgd_update:', "'grads[0]' is on cpu", "'params[0]' is on cuda:0");
  });

  describe('batchNorm2d', () => {
    const x = { shape: [3, 4, 5, 5], data: uniform(300, 91, 2, 6) }; // a large mean, as the CPU test
    it('training: output, gradients of x, weight and bias, running statistics', () => {
      const runs = (['cpu', 'cuda'] as const).map((device) => {
        const rm = lr.tensor(uniform(4, 92), [4], 'float32', device);
        const rv = lr.tensor(uniform(4, 93, 0.5, 2), [4], 'float32', device);
        const w = lr.tensor(uniform(4, 94), [4], 'float32', device).requiresGrad_();
        const b = lr.tensor(uniform(4, 95), [4], 'float32', device).requiresGrad_();
        const xt = lr.tensor(x.data, x.shape, 'float32', device).requiresGrad_();
        const y = lr.batchNorm2d(xt, rm, rv, w, b, { training: true, momentum: 0.2 });
        const r = lr.tensor(uniform(300, 96), x.shape, 'float32', device);
        lr.sum(lr.mul(y, r)).backward();
        return [y, xt.grad!, w.grad!, b.grad!, rm, rv].map((t) => t.to('cpu').data());
      });
      runs[0].forEach((expected, i) => expectClose(runs[1][i], expected, 1e-4, 1e-4));
    });
    it('eval mode', () => {
      const rm = input([4], 97);
      const rv = positive([4], 98);
      parity((t, m, v, w, b) => lr.batchNorm2d(t, m, v, w, b, { training: false }), [
        x,
        { ...rm, grad: false },
        { ...rv, grad: false },
        input([4], 99),
        input([4], 100),
      ]);
    });
  });

  describe('pooling', () => {
    const img = input([2, 3, 9, 8], 81);
    it('maxPool2d: 2x2, padded, dilated, ceil mode', () => {
      parity((t) => lr.maxPool2d(t, { kernelSize: 2 }), [img]);
      parity((t) => lr.maxPool2d(t, { kernelSize: 3, stride: 2, padding: 1 }), [img]);
      parity((t) => lr.maxPool2d(t, { kernelSize: 2, dilation: 2, ceilMode: true }), [img]);
    });
    it('avgPool2d', () => {
      parity((t) => lr.avgPool2d(t, { kernelSize: 2 }), [img]);
      parity((t) => lr.avgPool2d(t, { kernelSize: 3, stride: 2, padding: 1 }), [img]);
      parity((t) => lr.avgPool2d(t, { kernelSize: 3, stride: 2, padding: 1, countIncludePad: false, ceilMode: true }), [img]);
    });
    it('adaptiveAvgPool2d and globalAvgPool2d', () => {
      parity((t) => lr.adaptiveAvgPool2d(t, [4, 3]), [img]);
      parity((t) => lr.globalAvgPool2d(t), [img]);
    });
  });

  describe('resize, pad, pixel shuffle', () => {
    const img = input([2, 3, 7, 9], 41);
    it('upsample nearest', () => parity((t) => lr.upsample(t, { mode: 'nearest', scaleFactor: 2 }), [img]));
    it('upsample bilinear', () => {
      parity((t) => lr.upsample(t, { mode: 'bilinear', size: [11, 5] }), [img]);
      parity((t) => lr.upsample(t, { mode: 'bilinear', scaleFactor: 2, alignCorners: true }), [img]);
    });
    it('MATLAB bicubic, up and down', () => {
      parity((t) => lr.upsample(t, { mode: 'bicubic', scaleFactor: 3 }), [img], { atol: 1e-4, rtol: 1e-4 });
      parity((t) => lr.upsample(t, { mode: 'bicubic', scaleFactor: 0.5 }), [input([1, 2, 16, 12], 42)], { atol: 1e-4, rtol: 1e-4 });
    });
    it('gaussianBlur', () => parity((t) => lr.gaussianBlur(t, { sigma: 1.2 }), [img]));
    it('pad: constant (and crop), reflect, replicate', () => {
      parity((t) => lr.pad(t, [1, 2, 3, 0], { mode: 'constant', value: 0.5 }), [img]);
      parity((t) => lr.pad(t, [-1, 2, 0, -2]), [img]);
      parity((t) => lr.pad(t, [2, 1, 3, 2], { mode: 'reflect' }), [img]);
      parity((t) => lr.pad(t, [3, 3, 1, 4], { mode: 'replicate' }), [img]);
    });
    it('pixelShuffle and pixelUnshuffle', () => {
      parity((t) => lr.pixelShuffle(t, 2), [input([2, 12, 3, 4], 43)]);
      parity((t) => lr.pixelUnshuffle(t, 3), [input([1, 2, 9, 6], 44)]);
    });
  });

  it('work queued by many ops is ordered on one stream and synchronised on the read', () => {
    const x = lr.tensor(uniform(4096, 51), [4096], 'float32', 'cuda');
    let y = x;
    for (let i = 0; i < 200; i++) {
      const next = lr.affine(y, 1.001, 0.001);
      if (y !== x) y.dispose();
      y = next;
    }
    const ref = lr.tensor(uniform(4096, 51));
    let r = ref;
    for (let i = 0; i < 200; i++) {
      const next = lr.affine(r, 1.001, 0.001);
      if (r !== ref) r.dispose();
      r = next;
    }
    expectClose(y.data(), r.data(), 1e-5, 1e-5);
    [x, y, ref, r].forEach((t) => t.dispose());
  });
});
