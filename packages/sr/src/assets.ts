// The shipped demo face: a 160x160 crop of the public-domain astronaut portrait (Eileen
// Collins, NASA, via scikit-image's sample data), checked by sha256 before use.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeImage, type RawImage } from '@lrface/datasets';
import { WeightsFileError, sha256 } from './weights.js';

export const DEMO_FACE = Object.freeze({
  file: fileURLToPath(new URL('../assets/astronaut-face-160.png', import.meta.url)),
  sha256: '755c0f4a47c5d47f5def1bc9affa988c1e0df4d8278a32bf8303a86064808e9f',
  licence: 'public domain (NASA, photograph of Eileen Collins; via scikit-image sample data)',
});

/** The demo face as 8-bit RGB, after checking its sha256. */
export async function readDemoFace(): Promise<RawImage<Uint8Array>> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(DEMO_FACE.file);
  } catch (err) {
    throw new WeightsFileError(DEMO_FACE.file, `cannot read the demo face (${(err as NodeJS.ErrnoException).code ?? err})`, { cause: err });
  }
  const got = sha256(bytes);
  if (got !== DEMO_FACE.sha256) throw new WeightsFileError(DEMO_FACE.file, `sha256 mismatch (expected ${DEMO_FACE.sha256}, got ${got}): the asset is corrupt`);
  return decodeImage(bytes);
}
