// Real face data for the tests: the HR crops of the face corpus, rebuilt (without landmarks,
// a few seconds) into a temporary folder from the shared data when the repository has none.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeImage, type RawImage } from '@lrface/datasets';
import { haveSharedData, sharedDataDir } from '@lrface/test-data';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const haveFaceData = haveSharedData('widerface', 'dlib-faces');

/** The face corpus folder: <repo>/.cache/face-corpus, or one built once into the temp folder. */
export async function faceCorpusDir(): Promise<string> {
  const own = join(repoRoot, '.cache/face-corpus');
  if (existsSync(join(own, 'index.json'))) return own;
  const tmp = join(tmpdir(), 'lrface-sr-test-face-corpus');
  if (!existsSync(join(tmp, 'index.json'))) {
    const { buildFaceCorpus } = await import('@lrface/face-corpus');
    await buildFaceCorpus({ outDir: tmp, dataDir: sharedDataDir, tiny: false });
  }
  return tmp;
}

/** HR face crops (8-bit RGB) of one split. */
export async function faceCrops(split: 'train' | 'test', limit = Infinity): Promise<RawImage<Uint8Array>[]> {
  const { openFaceCorpus } = await import('@lrface/face-corpus');
  const corpus = await openFaceCorpus(await faceCorpusDir());
  const items = corpus.hr.filter((it) => it.split === split).slice(0, limit);
  return Promise.all(items.map((it) => decodeImage(corpus.path(it))));
}
