// What the commands write: atomically (a temp file renamed over the target, so a file another
// name links to is never changed in place), into folders made as needed, and never over an input.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { haveSharedData, sharedDataDir } from '@lrface/test-data';

const bin = fileURLToPath(new URL('../bin/lrface.mjs', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, LRFACE_NUM_THREADS: process.env.LRFACE_NUM_THREADS ?? '2' } });
const tmp = mkdtempSync(join(tmpdir(), 'lrface cli outputs '));
// A real 160x160 aligned face.
const face = `${sharedDataDir}misc-faces/facenet-pytorch-aligned/paul_rudd.png`;

describe.skipIf(!haveSharedData('misc-faces'))('lrface outputs', () => {
  it('landmarks --out: refused when it is the input image, made in a missing folder otherwise', () => {
    const input = join(tmp, 'input face.png');
    copyFileSync(face, input);
    const before = readFileSync(input);
    const same = run('landmarks', input, '--out', input);
    expect(same.status, same.stderr).toBe(2);
    expect(same.stderr).toContain(`--out '${input}' is the input image`);
    expect(same.stderr).toContain('usage: lrface landmarks');
    expect(readFileSync(input).equals(before)).toBe(true);

    const overlay = join(tmp, 'new folder', 'deeper', 'overlay.png');
    const r = run('landmarks', input, '--out', overlay, '--json');
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(overlay).subarray(1, 4).toString()).toBe('PNG');
  });

  it('sr and landmarks replace an existing output whole: a file linked to it keeps its bytes', () => {
    const input = join(tmp, 'face.png');
    copyFileSync(face, input);
    const outDir = join(tmp, 'sr out');
    const srOut = run('sr', input, '--model', 'bicubic', '--scale', '2', '--out', outDir);
    expect(srOut.status, srOut.stderr).toBe(0);
    // A backup hard-linked to the output (one file under two names): writing the output in
    // place would change the backup too; an atomic replacement gives the output a new file.
    const target = join(outDir, 'face_x2.png');
    const backup = join(tmp, 'backup.png');
    linkSync(target, backup);
    const saved = readFileSync(backup);
    // Another face of the same name writes other bytes to the same output.
    mkdirSync(join(tmp, 'other'));
    const other = join(tmp, 'other', 'face.png');
    copyFileSync(`${sharedDataDir}misc-faces/facenet-pytorch-aligned/kate_siegel.png`, other);
    const again = run('sr', other, '--model', 'bicubic', '--scale', '2', '--out', outDir);
    expect(again.status, again.stderr).toBe(0);
    expect(readFileSync(target).equals(saved)).toBe(false);
    expect(readFileSync(backup).equals(saved)).toBe(true);

    const overlay = join(tmp, 'overlay.jpg');
    const first = run('landmarks', input, '--out', overlay);
    expect(first.status, first.stderr).toBe(0);
    const overlayBackup = join(tmp, 'overlay-backup.jpg');
    linkSync(overlay, overlayBackup);
    // Another box draws other dots: the new overlay differs, the linked copy must not.
    const old = readFileSync(overlayBackup);
    const second = run('landmarks', input, '--box', '10,10,80,80', '--out', overlay);
    expect(second.status, second.stderr).toBe(0);
    expect(readFileSync(overlay).equals(old)).toBe(false);
    expect(readFileSync(overlayBackup).equals(old)).toBe(true);
    expect(existsSync(overlay)).toBe(true);
  });
});

describe.skipIf(!haveSharedData('dlib-faces'))('lrface train outputs', () => {
  it('refuses a --log or --out that is the --dlib-xml annotation file', () => {
    const xml = join(tmp, 'faces.xml');
    copyFileSync(`${sharedDataDir}dlib-faces/training_with_face_landmarks.xml`, xml);
    const before = readFileSync(xml);
    const r = run('train', 'landmarks', '--arch', 'lgcn', '--dlib-xml', xml, '--steps', '1', '--out', join(tmp, 'lgcn.safetensors'), '--log', xml);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/--log and --dlib-xml name the same file/);
    expect(readFileSync(xml).equals(before)).toBe(true);
  });
});
