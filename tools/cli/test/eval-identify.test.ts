// `lrface eval-identify`: TinyFace's identification protocol from the shell, on the official
// layout (the datasets fixture: real MAT-files, small stand-in images); its figures are
// evaluateIdentification's, whose ranking is checked in @lrface/recognition's tests.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { TinyFace } from '@lrface/datasets';
import { Frnet, evaluateIdentification, loadRecognizer, saveRecognitionWeights } from '@lrface/recognition';
import * as lr from '@lrface/cuda-core';

const bin = fileURLToPath(new URL('../bin/lrface.mjs', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, LRFACE_NUM_THREADS: process.env.LRFACE_NUM_THREADS ?? '2' } });
const tinyface = fileURLToPath(new URL('../../../packages/datasets/test/fixtures/tinyface', import.meta.url));
const weights = join(mkdtempSync(join(tmpdir(), 'lrface-cli-identify-')), 'frnet.safetensors');

beforeAll(() => {
  lr.manualSeed(3);
  const net = new Frnet({ inputSize: [56, 48], channels: [4, 6, 8, 8, 8], units: [0, 0, 0, 0], embeddingDim: 16 });
  saveRecognitionWeights(weights, net);
  net.dispose();
});

describe('lrface eval-identify', () => {
  it('prints ONE JSON line with the figures evaluateIdentification gives on the same faces', async () => {
    const r = run('eval-identify', '--tinyface', tinyface, '--weights', weights, '--json');
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const out = JSON.parse(lines[0]);
    expect(Object.keys(out)).toEqual(['model', 'probes', 'gallery', 'distractors', 'rank1', 'rank5', 'rank10', 'rank20', 'mAP', 'lowResolution', 'hallucinate', 'seconds']);
    expect(out).toMatchObject({ model: 'frnet', probes: 3, gallery: 3, distractors: 2, lowResolution: null, hallucinate: null });
    const { probe, gallery } = await TinyFace.identification({ root: tinyface });
    const direct = await evaluateIdentification(loadRecognizer(weights), probe, gallery);
    expect(out.rank1).toBeCloseTo(direct.cmc[1], 4);
    expect(out.rank5).toBeCloseTo(direct.cmc[5], 4);
    expect(out.mAP).toBeCloseTo(direct.meanAveragePrecision, 4);

    const matchedOnly = JSON.parse(run('eval-identify', '--tinyface', tinyface, '--weights', weights, '--no-distractors', '--json').stdout);
    expect(matchedOnly).toMatchObject({ gallery: 3, distractors: 0 });
    // Fewer entries to outrank the true matches: never a worse mean precision.
    expect(matchedOnly.mAP).toBeGreaterThanOrEqual(out.mAP);
    const low = JSON.parse(run('eval-identify', '--tinyface', tinyface, '--weights', weights, '--low-resolution', '8', '--json').stdout);
    expect(low.lowResolution).toBe(8);
  });

  it('refuses bad arguments (exit 2) and names a missing dataset (exit 1)', () => {
    const usage = (args: string[], message: RegExp) => {
      const r = run('eval-identify', ...args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toContain('usage: lrface eval-identify');
    };
    usage(['--weights', weights], /missing --tinyface/);
    usage(['--tinyface', tinyface], /give --model face-api or --weights FILE/);
    usage(['--tinyface', tinyface, '--weights', weights, '--hallucinate', 'face-x4'], /--hallucinate needs --low-resolution/);
    usage(['--tinyface', tinyface, '--weights', weights, '--low-resolution', '2'], /--low-resolution must be an integer >= 4/);
    usage(['--tinyface', tinyface, '--weights', weights, '--pairs', 'x'], /Unknown option '--pairs'/);
    const missing = run('eval-identify', '--tinyface', '/nonexistent/tinyface', '--weights', weights);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('/nonexistent/tinyface');
  });
});
