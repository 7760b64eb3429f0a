// Where the real test data lives (../shared/data beside the repository) and how to read it.
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export { decodePng, lumaOf } from './png.js';
export type { DecodedImage } from './png.js';

/**
 * The first `shared/data` beside the repository or beside one of its parent folders (a git
 * worktree under wt/ finds the same folder as the main checkout), with a trailing slash;
 * LRFACE_DATA_DIR overrides it. When none exists, the path beside the repository.
 */
function findSharedData(): string {
  if (process.env.LRFACE_DATA_DIR) return process.env.LRFACE_DATA_DIR.replace(/\/?$/, '/');
  const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
  let dir = dirname(repoRoot.replace(/\/$/, ''));
  for (;;) {
    const candidate = join(dir, 'shared', 'data');
    if (existsSync(candidate)) return candidate + '/';
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return join(dirname(repoRoot.replace(/\/$/, '')), 'shared', 'data') + '/';
}

/** The shared data folder (with a trailing slash). */
export const sharedDataDir: string = findSharedData();

/** Whether every given path (relative to the data folder) exists. */
export function haveSharedData(...paths: string[]): boolean {
  return paths.every((p) => existsSync(sharedDataDir + p));
}

/** The largest absolute difference between two equally long arrays (the lengths must match). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`maxAbsDiff: lengths differ (${a.length} vs ${b.length})`);
  return Array.prototype.reduce.call(a, (m: number, v: number, i: number) => Math.max(m, Math.abs(v - b[i])), 0) as number;
}

/** A face "video" of a YouTube Faces layout: `frames` copies of one image, the box jittered per frame. */
export interface YtfTestVideo {
  name: string;
  video: string;
  /** The image file every frame copies (.jpg or .png). */
  file: string;
  box: { x: number; y: number; width: number; height: number };
  frames?: number;
}

/**
 * Writes a YouTube Faces layout under `root`: frame_images_DB/<Name>/<video>/<video>.<n>.<ext>,
 * frame_images_DB/<Name>.labeled_faces.txt (face centre and size, the box moving 2 px right and
 * 1 px up and shrinking by 2 px per frame) and splits.txt with the given pair lines
 * ("split, pair, Name/video, Name/video, same"). Returns `root`.
 */
export function writeYtfLayout(root: string, videos: readonly YtfTestVideo[], pairLines: readonly string[]): string {
  const db = join(root, 'frame_images_DB');
  const lines = new Map<string, string[]>();
  for (const { name, video, file, box, frames = 3 } of videos) {
    mkdirSync(join(db, name, video), { recursive: true });
    for (let k = 0; k < frames; k++) {
      const frame = `${video}.${100 + k}${extname(file)}`;
      copyFileSync(file, join(db, name, video, frame));
      const [cx, cy] = [box.x + box.width / 2 + 2 * k, box.y + box.height / 2 - k];
      lines.set(name, [...(lines.get(name) ?? []), `${name}\\${video}\\${frame},0,${cx},${cy},${box.width - 2 * k},${box.height - 2 * k},0.0,1`]);
    }
  }
  for (const [name, l] of lines) writeFileSync(join(db, `${name}.labeled_faces.txt`), l.join('\n') + '\n');
  writeFileSync(join(root, 'splits.txt'), ['split number, pair number, first name, second name, is same', ...pairLines].join('\n') + '\n');
  return root;
}

/** The real faces `writeFaceYtfLayout` uses, relative to the data folder. */
export const YTF_TEST_FACES = ['misc-faces/facenet-pytorch-aligned/angelina_jolie.png', 'misc-faces/facenet-pytorch-aligned/bradley_cooper.png', 'misc-faces/facenet-pytorch-aligned/kate_siegel.png', 'lfw/images/Anthony_Hopkins_0001.jpg', 'lfw/images/Anthony_Hopkins_0002.jpg'];

/**
 * A YouTube Faces layout of real faces under `root`: 3-frame "videos" of Anthony Hopkins' two LFW
 * photos (face box 68,68,114,114) and of three facenet-pytorch aligned crops; 2 splits of one
 * matched and two mismatched pairs each.
 */
export function writeFaceYtfLayout(root: string): string {
  const [jolie, cooper, siegel, hopkins1, hopkins2] = YTF_TEST_FACES.map((f) => sharedDataDir + f);
  const lfwBox = { x: 68, y: 68, width: 114, height: 114 };
  const aligned = { x: 10, y: 10, width: 140, height: 140 };
  return writeYtfLayout(
    root,
    [
      { name: 'Anthony_Hopkins', video: '0', file: hopkins1, box: lfwBox },
      { name: 'Anthony_Hopkins', video: '1', file: hopkins2, box: lfwBox },
      { name: 'Angelina_Jolie', video: '0', file: jolie, box: aligned },
      { name: 'Bradley_Cooper', video: '0', file: cooper, box: aligned },
      { name: 'Kate_Siegel', video: '0', file: siegel, box: aligned },
    ],
    ['1, 1, Anthony_Hopkins/0, Anthony_Hopkins/1, 1', '1, 2, Angelina_Jolie/0, Bradley_Cooper/0, 0', '1, 3, Kate_Siegel/0, Anthony_Hopkins/0, 0',
      '2, 1, Anthony_Hopkins/1, Anthony_Hopkins/0, 1', '2, 2, Bradley_Cooper/0, Kate_Siegel/0, 0', '2, 3, Anthony_Hopkins/1, Angelina_Jolie/0, 0'],
  );
}
