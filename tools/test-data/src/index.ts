// Where the real test data lives (../shared/data beside the repository) and how to read it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export { decodePng, lumaOf } from './png.js';
export type { DecodedImage } from './png.js';

/** The shared data folder (with a trailing slash); LRFACE_DATA_DIR overrides it. */
export const sharedDataDir: string = process.env.LRFACE_DATA_DIR ?? fileURLToPath(new URL('../../../../shared/data/', import.meta.url));

/** Whether every given path (relative to the data folder) exists. */
export function haveSharedData(...paths: string[]): boolean {
  return paths.every((p) => existsSync(sharedDataDir + p));
}
