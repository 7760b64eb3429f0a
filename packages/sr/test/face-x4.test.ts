// The shipped face model: its file matches the recorded sha256, and on the 53 held-out real face
// crops (test split of the face corpus, 128x128, MATLAB bicubic x4 down) it beats bicubic by at
// least 1 dB PSNR on Y.
import { describe, expect, it } from 'vitest';
import { MODEL_REGISTRY, WEIGHTS_DIR, evaluateNetwork, loadSuperResolver, readSrWeights } from '../src/index.js';
import { faceCrops, haveFaceData } from './helpers.js';

describe('face-x4 (shipped weights)', () => {
  it('loads the shipped file after checking its sha256', async () => {
    const entry = MODEL_REGISTRY['face-x4'];
    const { meta } = readSrWeights(WEIGHTS_DIR + entry.weights!.file, { sha256: entry.weights!.sha256 });
    expect(meta).toMatchObject({ arch: 'vdsr', scales: [4] });
    expect(meta.note).toMatch(/fine-tuned/);
    const sr = await loadSuperResolver('face-x4');
    expect(sr.scales).toEqual([4]);
  });

  it.skipIf(!haveFaceData)('beats bicubic by >= 1.0 dB PSNR on the 53 held-out real faces (x4, Y)', { timeout: 900_000 }, async () => {
    const faces = await faceCrops('test');
    expect(faces).toHaveLength(53);
    const sr = await loadSuperResolver('face-x4');
    const s = evaluateNetwork(sr.network, faces, 4);
    console.log(`face-x4 on ${faces.length} held-out faces: ${s.psnr.toFixed(2)} dB / ${s.ssim.toFixed(4)}; bicubic ${s.bicubicPsnr.toFixed(2)} dB / ${s.bicubicSsim.toFixed(4)}`);
    expect(s.psnr - s.bicubicPsnr).toBeGreaterThanOrEqual(1.0);
    expect(s.ssim).toBeGreaterThan(s.bicubicSsim);
  });
});
