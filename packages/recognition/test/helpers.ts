// Real identity-labelled faces from the shared data folder: five aligned crops of five people
// (facenet-pytorch's test images) and two LFW photographs of a sixth.
import { createRequire } from 'node:module';
import { decodeImage } from '@lrface/datasets';
import { haveSharedData, sharedDataDir } from '@lrface/test-data';
import type { IdentityFace } from '../src/index.js';

const ALIGNED = ['angelina_jolie', 'bradley_cooper', 'kate_siegel', 'paul_rudd', 'shea_whigham'].map((n) => `misc-faces/facenet-pytorch-aligned/${n}.png`);
const LFW = ['lfw/images/Anthony_Hopkins_0001.jpg', 'lfw/images/Anthony_Hopkins_0002.jpg'];

export const haveFaces = haveSharedData(...ALIGNED, ...LFW);
export const FACE_FILES = [...ALIGNED, ...LFW].map((f) => sharedDataDir + f);
/** LFW's 250x250 images are centred on the face; this box holds it. */
export const LFW_FACE_BOX = { x: 68, y: 68, width: 114, height: 114 };

/** Seven faces of six identities (0-4 one each, 5 twice). */
export async function identityFaces(): Promise<IdentityFace[]> {
  const faces: IdentityFace[] = [];
  for (let i = 0; i < ALIGNED.length; i++) faces.push({ image: await decodeImage(sharedDataDir + ALIGNED[i]), identity: i });
  for (const f of LFW) faces.push({ image: await decodeImage(sharedDataDir + f), identity: ALIGNED.length, box: LFW_FACE_BOX });
  return faces;
}

export function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** Whether @vladmandic/face-api (the trained ResNet29 weights) is installed. */
export const haveFaceApi = (() => {
  try {
    createRequire(import.meta.url).resolve('@vladmandic/face-api/package.json');
    return true;
  } catch {
    return false;
  }
})();
