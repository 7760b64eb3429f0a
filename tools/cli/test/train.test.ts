// `lrface train sr`: trains on real HR images (Set5), writes weights that `lrface sr` and
// `lrface eval-sr` load, resumes from its checkpoint, and refuses bad arguments before training.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { haveSharedData, sharedDataDir } from '@lrface/test-data';

const bin = fileURLToPath(new URL('../bin/lrface.mjs', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, LRFACE_NUM_THREADS: process.env.LRFACE_NUM_THREADS ?? '2' } });
const set5 = `${sharedDataDir}set5`;
const tmp = mkdtempSync(join(tmpdir(), 'lrface-cli-train-'));
// SRCNN 9-1-5 from scratch on 33x33 Y patches of Set5 at x3: a fast, real training run.
const quick = ['--model', 'srcnn', '--images', set5, '--patch-size', '33', '--batch-size', '16', '--optimizer', 'adam', '--lr', '1e-3', '--scale', '3'];

describe.skipIf(!haveSharedData('set5'))('lrface train sr', () => {
  const out = join(tmp, 'srcnn.safetensors');
  const checkpoint = join(tmp, 'srcnn.ckpt.safetensors');
  const log = join(tmp, 'log', 'train.jsonl');

  it('trains on real images (the loss falls), logs every step and writes weights that lrface sr and eval-sr load', () => {
    const r = run('train', 'sr', ...quick, '--steps', '40', '--out', out, '--checkpoint', checkpoint, '--checkpoint-every', '20', '--log', log, '--eval', set5, '--eval-every', '40', '--json');
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0]);
    expect(Object.keys(summary)).toEqual(['model', 'arch', 'steps', 'seconds', 'first_loss', 'last_loss', 'eval', 'weights', 'sha256', 'resumed']);
    expect(summary).toMatchObject({ model: 'srcnn', arch: 'srcnn', steps: 40, weights: out, resumed: false });
    console.log(`train sr srcnn, 40 steps: loss ${summary.first_loss.toExponential(3)} -> ${summary.last_loss.toExponential(3)} in ${summary.seconds} s`);
    // From a random start the first loss is about 0.28 and 40 Adam steps bring it near 0.015.
    expect(summary.last_loss).toBeLessThan(summary.first_loss / 5);
    expect(summary.eval).toMatchObject({ scale: 3 });
    expect(summary.eval.bicubic_psnr).toBeCloseTo(30.39, 1);
    expect(summary.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(existsSync(out) && existsSync(checkpoint)).toBe(true);

    const entries = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(entries.filter((e) => e.loss !== undefined).map((e) => e.step)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(entries.filter((e) => e.eval).map((e) => e.step)).toEqual([40]);

    // The held-out figure is the one eval-sr measures with the written weights.
    const ev = run('eval-sr', '--model', 'srcnn', '--weights', out, '--input', set5, '--scale', '3', '--json');
    expect(ev.status, ev.stderr).toBe(0);
    expect(JSON.parse(ev.stdout).psnr).toBeCloseTo(summary.eval.psnr, 6);

    const srDir = join(tmp, 'sr');
    const sr = run('sr', `${set5}/baby_GT.png`, '--model', 'srcnn', '--weights', out, '--scale', '3', '--out', srDir);
    expect(sr.status, sr.stderr).toBe(0);
    expect(existsSync(join(srDir, 'baby_GT_x3.png'))).toBe(true);
  });

  it('resumes from the checkpoint up to the new step count', () => {
    const r = run('train', 'sr', ...quick, '--steps', '50', '--out', out, '--checkpoint', checkpoint, '--json');
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ steps: 50, resumed: true });
    // It continues from the trained state: its first loss is far below the untrained 0.28.
    expect(summary.first_loss).toBeLessThan(0.05);
  });

  it('a diverging run names the options that fix it on the command line, and writes no weights', () => {
    const out = join(tmp, 'diverged.safetensors');
    const r = run('train', 'sr', '--model', 'srcnn', '--images', set5, '--steps', '20', '--batch-size', '4', '--optimizer', 'sgd', '--lr', '1e9', '--out', out);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/the loss became (NaN|-?Infinity) at step \d+ \(lower --lr, or bound the gradient with --clip-norm C\)/);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses bad arguments with a usage error (exit 2) before training', () => {
    const usage = (args: string[], message: RegExp) => {
      const r = run('train', ...args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toContain('usage: lrface train sr');
    };
    const base = ['--images', set5, '--steps', '5', '--out', join(tmp, 'x.safetensors')];
    usage([], /missing the task \(sr, recognition, landmarks, dic\)/);
    usage(['detect'], /unknown task 'detect'/);
    usage(['sr', ...base], /missing --model/);
    usage(['sr', '--model', 'bicubic', ...base], /--model must be one of srcnn.*got 'bicubic'/);
    usage(['sr', '--model', 'srcnn', '--steps', '5', '--out', join(tmp, 'x.safetensors')], /missing --images/);
    usage(['sr', '--model', 'srcnn', '--images', set5, '--steps', '0', '--out', join(tmp, 'x.safetensors')], /--steps must be an integer >= 1, got '0'/);
    usage(['sr', '--model', 'srcnn', '--images', set5, '--steps', '5', '--out', join(tmp, 'x.pth')], /--out must name a .safetensors file/);
    usage(['sr', '--model', 'srcnn', ...base, '--checkpoint', join(tmp, 'x.safetensors')], /--out and --checkpoint name the same file/);
    usage(['sr', '--model', 'srcnn', ...base, '--scale', '1'], /--scale must be integers in \[2, 8\]/);
    usage(['sr', '--model', 'srcnn', ...base, '--optimizer', 'rmsprop'], /--optimizer must be sgd or adam/);
    usage(['sr', '--model', 'srcnn', ...base, '--lr', '0'], /--lr must be a number > 0, got '0'/);
    usage(['sr', '--model', 'srcnn', ...base, '--eval-every', '5'], /--eval-every needs --eval/);
    usage(['sr', '--model', 'srcnn', ...base, '--lr='], /'--lr' needs a value/);
    usage(['sr', '--model', 'srcnn', ...base, '--epochs', '3'], /Unknown option '--epochs'/);
    const empty = join(tmp, 'empty');
    mkdirSync(empty, { recursive: true });
    const none = run('train', 'sr', '--model', 'srcnn', '--images', empty, '--steps', '5', '--out', join(tmp, 'y.safetensors'));
    expect(none.status).toBe(1);
    expect(none.stderr).toContain(`the folder '${empty}' holds no images`);
    expect(existsSync(join(tmp, 'x.safetensors')) || existsSync(join(tmp, 'y.safetensors'))).toBe(false);
    const help = run('train', '--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('usage: lrface train sr');
  });

  it('fine-tunes from --init weights', () => {
    const r = run('train', 'sr', ...quick, '--steps', '5', '--out', join(tmp, 'tuned.safetensors'), '--init', out, '--json');
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).first_loss).toBeLessThan(0.05);
  });

  it('names the file when --init holds weights of another architecture, and a device that is not here', () => {
    const vdsr = `${sharedDataDir}weights/vdsr-pytorch/model_epoch_50.pth`;
    // `out` holds SRCNN weights; loading them as VDSR names the file and both architectures.
    const asVdsr = run('train', 'sr', '--model', 'vdsr', '--images', set5, '--steps', '5', '--out', join(tmp, 'z.safetensors'), '--init', out);
    expect(asVdsr.status).toBe(1);
    expect(asVdsr.stderr).toContain(out);
    expect(asVdsr.stderr).toMatch(/'srcnn' weights.*'vdsr' model/);
    if (existsSync(vdsr)) {
      const pth = run('train', 'sr', ...quick, '--steps', '5', '--out', join(tmp, 'z.safetensors'), '--init', vdsr);
      expect(pth.status).toBe(1);
      expect(pth.stderr).toContain('model_epoch_50.pth');
    }
    // A device that is not here is a usage error, as in the other train tasks.
    const device = run('train', 'sr', ...quick, '--steps', '5', '--out', join(tmp, 'w.safetensors'), '--device', 'tpu:0');
    expect(device.status).toBe(2);
    expect(device.stderr).toMatch(/--device must be one of the devices here \(.*\), got 'tpu:0'/);
    expect(existsSync(join(tmp, 'w.safetensors'))).toBe(false);
  });
});

/** Identity folders of real faces: five people of facenet-pytorch's aligned crops, and LFW's two Anthony Hopkins photos. */
function identityFolders(): string {
  const dir = join(tmp, 'identities');
  const aligned = `${sharedDataDir}misc-faces/facenet-pytorch-aligned`;
  for (const file of readdirSync(aligned)) {
    mkdirSync(join(dir, basename(file, '.png')), { recursive: true });
    copyFileSync(join(aligned, file), join(dir, basename(file, '.png'), file));
  }
  mkdirSync(join(dir, 'anthony_hopkins'), { recursive: true });
  for (const file of readdirSync(`${sharedDataDir}lfw/images`)) copyFileSync(`${sharedDataDir}lfw/images/${file}`, join(dir, 'anthony_hopkins', file));
  return dir;
}

describe.skipIf(!haveSharedData('misc-faces') || !haveSharedData('lfw'))('lrface train recognition', () => {
  const small = ['--arch', 'frnet', '--config', '{"inputSize":48,"channels":[8,8,16,16,16],"units":[1,0,0,0],"embeddingDim":32}', '--batch-size', '7', '--optimizer', 'adam', '--lr', '1e-3'];
  const out = join(tmp, 'frnet.safetensors');
  const checkpoint = join(tmp, 'frnet.ckpt.safetensors');
  let images = '';

  it('learns six real identities (loss falls, training accuracy rises) and writes weights lrface verify loads', () => {
    images = identityFolders();
    const log = join(tmp, 'frnet.jsonl');
    const r = run('train', 'recognition', ...small, '--images', images, '--steps', '60', '--out', out, '--checkpoint', checkpoint, '--log', log, '--json');
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim());
    expect(Object.keys(summary)).toEqual(['arch', 'identities', 'images', 'steps', 'seconds', 'first_loss', 'last_loss', 'train_accuracy', 'weights', 'resumed']);
    expect(summary).toMatchObject({ arch: 'frnet', identities: 6, images: 7, steps: 60, resumed: false });
    console.log(`train recognition frnet, 60 steps: loss ${summary.first_loss.toFixed(3)} -> ${summary.last_loss.toFixed(3)}, accuracy ${summary.train_accuracy.toFixed(2)}`);
    // Softmax over 6 identities starts near ln 6 = 1.79.
    expect(summary.first_loss).toBeGreaterThan(1.5);
    expect(summary.last_loss).toBeLessThan(summary.first_loss / 2);
    expect(summary.train_accuracy).toBeGreaterThan(0.5);
    const entries = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(entries.map((e) => e.step)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(entries.every((e) => e.samples === 7 && Number.isFinite(e.center))).toBe(true);

    const v = run('verify', join(images, 'anthony_hopkins', 'Anthony_Hopkins_0001.jpg'), join(images, 'anthony_hopkins', 'Anthony_Hopkins_0002.jpg'), '--weights', out, '--json');
    expect(v.status, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ model: 'frnet' });
  });

  it('resumes from its checkpoint, and trains on low-resolution faces with --downscale', () => {
    const r = run('train', 'recognition', ...small, '--images', images, '--steps', '70', '--out', out, '--checkpoint', checkpoint, '--json');
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ steps: 70, resumed: true });
    expect(summary.first_loss).toBeLessThan(1.2);
    const lr = run('train', 'recognition', ...small, '--images', images, '--steps', '3', '--downscale', '4', '--out', join(tmp, 'frnet-lr.safetensors'), '--json');
    expect(lr.status, lr.stderr).toBe(0);
    expect(JSON.parse(lr.stdout).steps).toBe(3);
  });

  it('refuses bad arguments (exit 2) and names bad data (exit 1)', () => {
    const usage = (args: string[], message: RegExp) => {
      const r = run('train', 'recognition', ...args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toContain('usage: lrface train recognition');
    };
    const base = ['--images', images || tmp, '--steps', '5', '--out', join(tmp, 'r.safetensors')];
    usage(base, /missing --arch/);
    usage(['--arch', 'resnet29', ...base], /--arch must be one of frnet, lightcnn9, lightcnn29, got 'resnet29'/);
    usage(['--arch', 'frnet', ...base, '--config', '{inputSize:48}'], /--config must be a JSON object/);
    usage(['--arch', 'frnet', ...base, '--config', '[1]'], /--config must be a JSON object/);
    usage(['--arch', 'frnet', ...base, '--config', '{"numClasses":3}'], /numClasses is the number of identity folders/);
    usage(['--arch', 'frnet', ...base, '--center-loss=-1'], /--center-loss must be a number >= 0, got '-1'/);
    usage(['--arch', 'frnet', ...base, '--downscale', '1'], /--downscale must be an integer >= 2/);
    usage(['--arch', 'frnet', ...base, '--margin', '2'], /--margin must be a number in \[0, 1\]/);
    usage(['--arch', 'frnet', ...base, '--device', 'tpu'], /--device must be one of the devices here/);
    usage(['--arch', 'frnet', ...base, '--scale', '2'], /Unknown option '--scale'/);

    const one = join(tmp, 'one-identity');
    mkdirSync(join(one, 'a'), { recursive: true });
    copyFileSync(`${sharedDataDir}lfw/images/Anthony_Hopkins_0001.jpg`, join(one, 'a', 'x.jpg'));
    const few = run('train', 'recognition', ...small, '--images', one, '--steps', '5', '--out', join(tmp, 'r.safetensors'));
    expect(few.status).toBe(1);
    expect(few.stderr).toMatch(/needs at least 2 identity sub-folders .* found 1/);
    mkdirSync(join(one, 'b'), { recursive: true });
    copyFileSync(`${sharedDataDir}lfw/images/Anthony_Hopkins_0002.jpg`, join(one, 'b', 'y.jpg'));
    // A misspelt config field is refused naming it, not trained with the default.
    const misspelt = run('train', 'recognition', '--arch', 'lightcnn9', '--config', '{"embedingDim":64}', '--images', one, '--steps', '5', '--out', join(tmp, 'r.safetensors'));
    expect(misspelt.status).toBe(2);
    expect(misspelt.stderr).toMatch(/--config: LightCnn9: 'embedingDim' must be one of the known config fields/);
    writeFileSync(join(one, 'b', 'broken.jpg'), 'not a jpeg');
    const broken = run('train', 'recognition', ...small, '--images', one, '--steps', '5', '--out', join(tmp, 'r.safetensors'));
    expect(broken.status).toBe(1);
    expect(broken.stderr).toContain('broken.jpg');
    expect(existsSync(join(tmp, 'r.safetensors'))).toBe(false);
  });
});

describe.skipIf(!haveSharedData('dlib-faces'))('lrface train landmarks (LGCN)', () => {
  const xml = (name: string) => `${sharedDataDir}dlib-faces/${name}_with_face_landmarks.xml`;
  const small = ['--arch', 'lgcn', '--config', '{"inputSize":48,"localLayers":4,"localWidth":16,"globalWidth":16}', '--optimizer', 'adam', '--lr', '1e-3', '--batch-size', '4'];
  const out = join(tmp, 'lgcn.safetensors');
  const checkpoint = join(tmp, 'lgcn.ckpt.safetensors');

  it('trains on real annotated faces (the loss falls), fits the shape model, and its weights run in landmarks and eval-landmarks', () => {
    const log = join(tmp, 'lgcn.jsonl');
    const r = run('train', 'landmarks', ...small, '--dlib-xml', xml('training'), '--steps', '40', '--out', out, '--checkpoint', checkpoint, '--log', log, '--json');
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim());
    expect(Object.keys(summary)).toEqual(['arch', 'faces', 'steps', 'seconds', 'first_loss', 'last_loss', 'components', 'weights', 'resumed']);
    expect(summary).toMatchObject({ arch: 'lgcn', faces: 18, steps: 40, components: 12, resumed: false });
    const losses = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l).loss);
    expect(losses).toHaveLength(40);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    console.log(`train landmarks lgcn, 40 steps: loss ${mean(losses.slice(0, 5)).toFixed(3)} -> ${mean(losses.slice(-5)).toFixed(3)} (means of 5 steps)`);
    expect(mean(losses.slice(-5))).toBeLessThan(0.95 * mean(losses.slice(0, 5)));

    const one = run('landmarks', `${sharedDataDir}dlib-faces/2008_002470.jpg`, '--box', '100,60,80,80', '--model', 'lgcn', '--weights', out, '--json');
    expect(one.status, one.stderr).toBe(0);
    const { points } = JSON.parse(one.stdout);
    expect(points).toHaveLength(68);
    // The shape model keeps every point on a face shape around the box.
    expect(points.every(([x, y]: number[]) => x > 70 && x < 210 && y > 30 && y < 170)).toBe(true);
    const ev = run('eval-landmarks', '--dlib-xml', xml('testing'), '--model', 'lgcn', '--weights', out, '--json');
    expect(ev.status, ev.stderr).toBe(0);
    const figures = JSON.parse(ev.stdout);
    expect(figures.faces).toBeGreaterThan(10);
    expect(figures.nme).toBeLessThan(0.35);
  });

  it('resumes from its checkpoint', () => {
    const r = run('train', 'landmarks', ...small, '--dlib-xml', xml('training'), '--steps', '45', '--out', out, '--checkpoint', checkpoint, '--json');
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ steps: 45, resumed: true });
  });

  it('refuses bad arguments and a bad network config (exit 2, naming the key)', () => {
    const usage = (args: string[], message: RegExp, command = 'landmarks') => {
      const r = run('train', command, ...args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
    };
    const base = ['--steps', '5', '--out', join(tmp, 'l.safetensors')];
    usage(['--dlib-xml', xml('training'), ...base], /missing --arch lgcn/);
    usage(['--arch', 'hrnet', '--dlib-xml', xml('training'), ...base], /--arch must be lgcn, got 'hrnet'/);
    usage(['--arch', 'lgcn', ...base], /give --w300 DIR or --dlib-xml FILE/);
    usage(['--arch', 'lgcn', '--dlib-xml', xml('training'), '--subset', 'train', ...base], /--subset goes with --w300/);
    usage(['--arch', 'lgcn', '--dlib-xml', xml('training'), '--margin', '3', ...base], /--margin must be a number in \[0, 2\)/);
    usage(['--arch', 'lgcn', '--dlib-xml', xml('training'), '--config', '[]', ...base], /--config must be a JSON object/);
    const landmarksUsage = run('landmarks', `${sharedDataDir}dlib-faces/2008_002470.jpg`, '--model', 'lgcn');
    expect(landmarksUsage.status).toBe(2);
    expect(landmarksUsage.stderr).toMatch(/--model lgcn needs --weights FILE/);
    const flip = run('eval-landmarks', '--dlib-xml', xml('testing'), '--model', 'lgcn', '--weights', out, '--no-flip');
    expect(flip.status).toBe(2);
    expect(flip.stderr).toMatch(/--no-flip does not apply to lgcn/);
    const config = run('train', 'landmarks', '--arch', 'lgcn', '--dlib-xml', xml('training'), '--config', '{"width":8}', ...base);
    expect(config.status).toBe(2);
    expect(config.stderr).toMatch(/lrface train landmarks: --config: Lgcn: 'width' must be one of the known config fields/);
    const small = run('train', 'recognition', '--arch', 'frnet', '--images', identityFolders(), '--config', '{"inputSize":32}', ...base);
    expect(small.status).toBe(2);
    expect(small.stderr).toMatch(/lrface train recognition: --config: Frnet: 'inputSize'/);
    const noPoints = run('train', 'landmarks', '--arch', 'lgcn', '--dlib-xml', `${sharedDataDir}dlib-faces/training.xml`, ...base);
    expect(noPoints.status).toBe(1);
    expect(noPoints.stderr).toMatch(/training\.xml' has 0 parts per face/);
    expect(existsSync(join(tmp, 'l.safetensors'))).toBe(false);
  });
});

/** A real face (facenet-pytorch's Paul Rudd crop) shrunk to size x size, MATLAB bicubic, as a PNG. */
function shrunkFace(size: number): string {
  const face = join(tmp, `face${size}.png`);
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `
    import { decodeImage, writeImage, bicubicResize, imageToTensor, tensorToImage } from '@lrface/datasets';
    import * as core from '@lrface/cuda-core';
    const img = await decodeImage(${JSON.stringify(`${sharedDataDir}misc-faces/facenet-pytorch-aligned/paul_rudd.png`)});
    await writeImage(${JSON.stringify(face)}, core.scope(() => tensorToImage(core.clamp(bicubicResize(imageToTensor(img), { size: [${size}, ${size}] }), 0, 1))));`], { encoding: 'utf8', cwd: fileURLToPath(new URL('..', import.meta.url)) });
  if (r.status !== 0) throw new Error(r.stderr);
  return face;
}

describe.skipIf(!haveSharedData('dlib-faces', 'misc-faces'))('lrface train dic and lrface sr --model dic', () => {
  const xml = `${sharedDataDir}dlib-faces/training_with_face_landmarks.xml`;
  const small = ['--config', '{"numFeatures":8,"numGroups":2,"numSteps":2,"hgNumFeature":16,"hgDepth":2,"numFusionBlocks":1}', '--hr-size', '64', '--batch-size', '4', '--lr', '1e-3', '--release-hg-step', '0'];
  const out = join(tmp, 'dic.safetensors');

  it('trains on real annotated faces (the loss falls) and its weights super-resolve a tiny face x8 with landmarks', () => {
    const log = join(tmp, 'dic.jsonl');
    const r = run('train', 'dic', ...small, '--dlib-xml', xml, '--steps', '30', '--eval-every', '30', '--out', out, '--checkpoint', join(tmp, 'dic.ckpt.safetensors'), '--log', log, '--json');
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim());
    expect(Object.keys(summary)).toEqual(['arch', 'faces', 'steps', 'seconds', 'first_loss', 'last_loss', 'psnr', 'nme', 'weights', 'resumed']);
    expect(summary).toMatchObject({ arch: 'dic', faces: 18, steps: 30, resumed: false });
    const losses = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l).total);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    console.log(`train dic, 30 steps: loss ${mean(losses.slice(0, 5)).toFixed(4)} -> ${mean(losses.slice(-5)).toFixed(4)} (means of 5 steps), PSNR ${summary.psnr.toFixed(2)} dB`);
    expect(mean(losses.slice(-5))).toBeLessThan(0.9 * mean(losses.slice(0, 5)));
    expect(summary.psnr).toBeGreaterThan(15);

    // A real face at 8x8 (this network's LR side for 64 px HR crops) to 64x64.
    const face = shrunkFace(8);
    const srDir = join(tmp, 'dic-out');
    const sr = run('sr', face, '--model', 'dic', '--weights', out, '--out', srDir);
    expect(sr.status, sr.stderr).toBe(0);
    expect(existsSync(join(srDir, 'face8_x8.png'))).toBe(true);
    const { landmarks } = JSON.parse(readFileSync(join(srDir, 'face8_x8.json'), 'utf8'));
    expect(landmarks).toHaveLength(68);
    expect(landmarks.every(([x, y]: number[]) => x >= 0 && x < 64 && y >= 0 && y < 64)).toBe(true);
  });

  it('refuses bad arguments (exit 2) and weights of another model (exit 1, naming the file)', () => {
    const usage = (command: string[], message: RegExp) => {
      const r = run(...command);
      expect(r.status, `${command.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
    };
    const base = ['--steps', '5', '--out', join(tmp, 'd.safetensors')];
    usage(['train', 'dic', ...base], /give --w300 DIR or --dlib-xml FILE/);
    usage(['train', 'dic', '--dlib-xml', xml, '--optimizer', 'sgd', ...base], /DIC trains with adam/);
    usage(['train', 'dic', '--dlib-xml', xml, '--release-hg-step=-1', ...base], /--release-hg-step must be an integer >= 0/);
    usage(['train', 'dic', '--dlib-xml', xml, '--hr-size', '100', ...base], /--hr-size must be a multiple of 64 for this network \(scale 8\), got 100/);
    usage(['sr', `${sharedDataDir}set5/baby_GT.png`, '--model', 'dic'], /--model dic needs --weights FILE/);
    usage(['sr', `${sharedDataDir}misc-faces/facenet-pytorch-aligned/paul_rudd.png`, '--model', 'dic', '--weights', out, '--scale', '4', '--out', tmp], /'--scale' must be 8 for this DIC/);
    usage(['sr', shrunkFace(9), '--model', 'dic', '--weights', out, '--out', tmp], /face9\.png' is 9x9: DIC takes whole face crops whose sides are multiples of 2/);
    // The public VDSR checkpoint is not a DIC weights file.
    const wrong = run('sr', shrunkFace(8), '--model', 'dic', '--weights', `${sharedDataDir}weights/vdsr-pytorch/model_epoch_50.pth`, '--out', tmp);
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(/model_epoch_50\.pth/);
    expect(existsSync(join(tmp, 'd.safetensors'))).toBe(false);
  });
});
