// `lrface train ... --checkpoint FILE` resumed by a run that differs from the one that wrote it:
// refused before anything is loaded or written, naming the checkpoint and the option; a resumed
// run draws new samples rather than those of its first steps.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { haveSharedData, sharedDataDir } from '@lrface/test-data';

const bin = fileURLToPath(new URL('../bin/lrface.mjs', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, LRFACE_NUM_THREADS: process.env.LRFACE_NUM_THREADS ?? '2' } });
const tmp = mkdtempSync(join(tmpdir(), 'lrface cli resume '));

/** Runs `lrface train <args>` expecting a usage error that names the checkpoint, and leaves it as it was. */
function refused(checkpoint: string, args: string[], message: RegExp, task: string): void {
  const before = readFileSync(checkpoint);
  const r = run('train', ...args);
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
  expect(r.stderr).toContain(`the checkpoint '${checkpoint}' was written by another run`);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).toContain(`usage: lrface train ${task}`);
  expect(r.stderr).not.toMatch(/loadStateDict|\n\s+at /);
  expect(readFileSync(checkpoint).equals(before)).toBe(true);
}

describe.skipIf(!haveSharedData('set5'))('lrface train sr resumed', () => {
  const set5 = `${sharedDataDir}set5`;
  const checkpoint = join(tmp, 'sr ckpt.safetensors');
  const log = join(tmp, 'sr.jsonl');
  const common = ['--images', set5, '--batch-size', '2', '--out', join(tmp, 'sr.safetensors'), '--checkpoint', checkpoint];

  it('refuses another model, optimiser or learning rate, and a device that is not here, as usage errors', () => {
    const first = run('train', 'sr', '--model', 'srcnn', ...common, '--steps', '3', '--log', log);
    expect(first.status, first.stderr).toBe(0);
    // srcnn-955 has srcnn's architecture with other kernels; vdsr another architecture.
    refused(checkpoint, ['sr', '--model', 'srcnn-955', ...common, '--steps', '4'], /--model config kernels: \[9,1,5\] there, \[9,5,5\] here/, 'sr');
    refused(checkpoint, ['sr', '--model', 'vdsr', ...common, '--steps', '4'], /--model architecture: "srcnn" there, "vdsr" here/, 'sr');
    refused(checkpoint, ['sr', '--model', 'srcnn', ...common, '--steps', '4', '--optimizer', 'adam'], /--optimizer: "sgd" there, "adam" here/, 'sr');
    refused(checkpoint, ['sr', '--model', 'srcnn', ...common, '--steps', '4', '--lr', '0.1'], /--lr: 0.0001 there, 0.1 here/, 'sr');
    const device = run('train', 'sr', '--model', 'srcnn', ...common, '--steps', '4', '--device', 'cuda:99');
    expect(device.status, device.stderr).toBe(2);
    expect(device.stderr).toMatch(/--device must be one of the devices here \(.*\), got 'cuda:99'/);
    expect(device.stderr).toContain('usage: lrface train sr');
  });

  it('resumes with the same options (the recipe default repeated or not) on new patches', () => {
    const r = run('train', 'sr', '--model', 'srcnn', ...common, '--steps', '4', '--optimizer', 'sgd', '--lr', '1e-4', '--log', log, '--json');
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ steps: 4, resumed: true });
    const loss = Object.fromEntries(readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).map((e) => [e.step, e.loss]));
    // At lr 1e-4 three SGD steps barely move SRCNN: drawing step 1's patches again would give
    // step 1's loss again (to 1e-4); other patches give another.
    expect(Math.abs(loss[4] - loss[1])).toBeGreaterThan(1e-3 * loss[1]);
  });

  it('refuses a negative --seed as a usage error', () => {
    const r = run('train', 'sr', '--model', 'srcnn', '--images', set5, '--steps', '1', '--out', join(tmp, 'seed.safetensors'), '--seed=-1');
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/--seed must be an integer >= 0, got '-1'/);
  });
});

describe.skipIf(!haveSharedData('misc-faces'))('lrface train recognition resumed', () => {
  /** Identity folders of real faces under the given names, in that order. */
  const folders = (dir: string, names: string[]) => {
    const aligned = `${sharedDataDir}misc-faces/facenet-pytorch-aligned`;
    ['angelina_jolie', 'bradley_cooper', 'kate_siegel'].forEach((person, i) => {
      mkdirSync(join(dir, names[i]), { recursive: true });
      copyFileSync(join(aligned, `${person}.png`), join(dir, names[i], 'face.png'));
    });
    return dir;
  };
  const config = ['--config', '{"inputSize":48,"channels":[4,4,8,8,8],"units":[1,0,0,0],"embeddingDim":8}'];
  const checkpoint = join(tmp, 'rec ckpt.safetensors');
  const images = folders(join(tmp, 'people'), ['a', 'b', 'c']);
  const common = ['--batch-size', '3', '--out', join(tmp, 'rec.safetensors'), '--checkpoint', checkpoint, '--steps', '3'];

  it('refuses another architecture, config, identity folders, optimiser or learning rate', () => {
    const first = run('train', 'recognition', '--arch', 'frnet', ...config, '--images', images, ...common, '--steps', '2');
    expect(first.status, first.stderr).toBe(0);
    // A config that changes no tensor's shape would load silently.
    refused(checkpoint, ['recognition', '--arch', 'lightcnn9', '--images', images, ...common], /--arch: "frnet" there, "lightcnn9" here/, 'recognition');
    refused(checkpoint, ['recognition', '--arch', 'frnet', '--config', '{"inputSize":48,"channels":[4,4,8,8,8],"units":[1,0,0,0],"embeddingDim":8,"mean":100}', '--images', images, ...common], /--config mean: 127.5 there, 100 here/, 'recognition');
    // As many folders, one renamed: the labels (folders in name order) would now train other people.
    const renamed = folders(join(tmp, 'people renamed'), ['x', 'b', 'c']);
    refused(checkpoint, ['recognition', '--arch', 'frnet', ...config, '--images', renamed, ...common], /identity folders of --images: "3 folders, number 1 'a'" there, "3 folders, number 1 'b'" here/, 'recognition');
    refused(checkpoint, ['recognition', '--arch', 'frnet', ...config, '--images', images, ...common, '--optimizer', 'adam'], /--optimizer: "sgd" there, "adam" here/, 'recognition');
    refused(checkpoint, ['recognition', '--arch', 'frnet', ...config, '--images', images, ...common, '--lr', '0.5'], /--lr: 0.01 there, 0.5 here/, 'recognition');
    const same = run('train', 'recognition', '--arch', 'frnet', ...config, '--images', images, ...common, '--lr', '0.01', '--json');
    expect(same.status, same.stderr).toBe(0);
    expect(JSON.parse(same.stdout)).toMatchObject({ steps: 3, resumed: true });
  });
});

describe.skipIf(!haveSharedData('dlib-faces'))('lrface train landmarks and dic resumed', () => {
  const xml = `${sharedDataDir}dlib-faces/training_with_face_landmarks.xml`;

  it('landmarks: refuses another optimiser or learning rate', () => {
    const checkpoint = join(tmp, 'lgcn ckpt.safetensors');
    const common = ['landmarks', '--arch', 'lgcn', '--dlib-xml', xml, '--config', '{"inputSize":32,"localLayers":2,"localWidth":8,"globalWidth":8}', '--batch-size', '2', '--out', join(tmp, 'lgcn.safetensors'), '--checkpoint', checkpoint];
    const first = run('train', ...common, '--steps', '1');
    expect(first.status, first.stderr).toBe(0);
    refused(checkpoint, [...common, '--steps', '2', '--optimizer', 'adam'], /--optimizer: "sgd" there, "adam" here/, 'landmarks');
    refused(checkpoint, [...common, '--steps', '2', '--lr', '0.1'], /--lr: 0.00001 there, 0.1 here|--lr: 1e-5 there, 0.1 here/, 'landmarks');
  });

  it('dic: refuses another learning rate', () => {
    const checkpoint = join(tmp, 'dic ckpt.safetensors');
    const common = ['dic', '--dlib-xml', xml, '--config', '{"numFeatures":4,"numGroups":1,"numSteps":1,"hgNumFeature":8,"hgDepth":1,"numFusionBlocks":1}', '--hr-size', '64', '--batch-size', '1', '--out', join(tmp, 'dic.safetensors'), '--checkpoint', checkpoint];
    const first = run('train', ...common, '--steps', '1');
    expect(first.status, first.stderr).toBe(0);
    refused(checkpoint, [...common, '--steps', '2', '--lr', '0.5'], /--lr: 0.0001 there, 0.5 here/, 'dic');
  });
});
