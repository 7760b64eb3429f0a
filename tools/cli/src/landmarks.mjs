// `lrface landmarks <image> --box x,y,w,h [--model lr68] [--weights FILE] [--out overlay.png] [--json]`:
// 68 landmarks on one face of an image, in image coordinates; optionally drawn on the image.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { decodeImage, writeImage } from '@lrface/datasets';
import { landmarkModels, loadLandmarkDetector, loadLgcnDetector } from '@lrface/landmarks';

/**
 * Writes an output image (format by its .png/.jpg extension, atomically: writeImage) into its
 * folder, made if it does not exist yet, as the other commands' --out.
 */
export async function writeOutputImage(file, image) {
  mkdirSync(dirname(resolve(file)), { recursive: true });
  await writeImage(file, image);
}

export const landmarksUsage = `usage: lrface landmarks <image> --box x,y,w,h [--model lr68|hr68|lgcn] [--weights FILE] [--no-flip] [--out overlay.png] [--json]
  --box x,y,w,h   the face box in image pixels (default: the whole image)
  --model NAME    lr68 (faces of 20-40 px, default), hr68 (large faces) or lgcn (weights from
                  lrface train landmarks, with its shape model; needs --weights)
  --weights FILE  a custom weights file for the model's architecture
  --no-flip       skip the mirrored second pass (half the compute, less steady points)
  --out FILE      write the image with the points drawn as small dots (.png or .jpg, by its extension;
                  its folder is made if missing; not the input image)
  --json          print one JSON line {"model","points":[[x,y],...],"confidence":[...]}`;

/** Parses the command's arguments; throws a usage error on anything unexpected. */
export function parseLandmarksArgs(argv) {
  const opts = { image: undefined, box: undefined, model: 'lr68', weights: undefined, out: undefined, json: false, flip: true };
  const valued = ['--box', '--model', '--weights', '--out'];
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    // `--opt=value`, as the commands parsed by util.parseArgs accept it.
    let inline;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 2) {
      const name = a.slice(0, eq);
      if (valued.includes(name)) [a, inline] = [name, a.slice(eq + 1)];
      else if (name === '--json' || name === '--no-flip') throw new UsageError(`option '${name}' takes no value, got '${a}'`);
    }
    const value = () => {
      const v = inline ?? argv[++i];
      // `--weights=` would otherwise pass as no weights at all, silently.
      if (v === undefined || inline === '' || (inline === undefined && v.startsWith('--'))) throw new UsageError(`option '${a}' needs a value`);
      return v;
    };
    if (a === '--box') opts.box = parseBoxOption('box', value());
    else if (a === '--model') {
      opts.model = value();
      if (!LANDMARK_CLI_MODELS().includes(opts.model)) throw new UsageError(`--model must be one of ${LANDMARK_CLI_MODELS().join(', ')}, got '${opts.model}'`);
    } else if (a === '--weights') opts.weights = value();
    else if (a === '--out') {
      opts.out = value();
      if (!/\.(png|jpe?g)$/i.test(opts.out)) throw new UsageError(`--out must name a .png, .jpg or .jpeg file, got '${opts.out}'`);
    }
    else if (a === '--json') opts.json = true;
    else if (a === '--no-flip') opts.flip = false;
    else if (a.startsWith('--')) throw new UsageError(`unknown option '${a}'`);
    else if (opts.image === undefined) opts.image = a;
    else throw new UsageError(`unexpected argument '${a}' (one image at a time)`);
  }
  if (opts.image === undefined) throw new UsageError('missing <image>');
  if (opts.out !== undefined && resolve(opts.out) === resolve(opts.image)) throw new UsageError(`--out '${opts.out}' is the input image, which the overlay would overwrite; give another file`);
  checkLandmarkModelOptions(opts.model, opts.weights, opts.flip);
  return opts;
}

export class UsageError extends Error {}

/** The models the landmark commands take: the shipped ones, and LGCN from a weights file. */
export const LANDMARK_CLI_MODELS = () => [...landmarkModels(), 'lgcn'];

/** LGCN has no shipped weights and no mirrored pass. */
export function checkLandmarkModelOptions(model, weights, flip) {
  if (model !== 'lgcn') return;
  if (weights === undefined) throw new UsageError('--model lgcn needs --weights FILE (from lrface train landmarks)');
  if (!flip) throw new UsageError('--no-flip does not apply to lgcn (it has no mirrored pass)');
}

/** A landmark detector of either kind behind one detect(image, { box, flip }) and dispose(). */
export async function openLandmarkDetector(model, weights) {
  if (model === 'lgcn') {
    const lgcn = await loadLgcnDetector(weights);
    return { detect: (image, { box }) => lgcn.detect(image, box ? { box } : {}), dispose: () => lgcn.network.dispose() };
  }
  const detector = await loadLandmarkDetector(model, weights !== undefined ? { weights } : {});
  return { detect: (image, options) => detector.detect(image, options), dispose: () => detector.network.dispose() };
}

/**
 * A command's argument handling: --help/-h prints `usage` (exit 0); a UsageError from `parse`
 * prints the message and the usage (exit 2). Returns { opts } to run with, or { exit }.
 */
export function parseCommand(command, argv, parse, usage) {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage);
    return { exit: 0 };
  }
  try {
    return { opts: parse(argv) };
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`lrface ${command}: ${err.message}\n\n${usage}`);
    return { exit: 2 };
  }
}

/** A `--device` value: an id from devices(), or 'cuda' for the first GPU (the packages' loaders' rule). */
export function deviceOption(value, devices) {
  const known = devices.map((d) => d.id);
  if (!known.includes(value) && !(value === 'cuda' && known.some((d) => d.startsWith('cuda'))))
    throw new UsageError(`--device must be one of the devices here (${known.join(', ')}), got '${value}'`);
  return value;
}

/** A face box given on the command line as x,y,w,h (option `--name`). */
export function parseBoxOption(name, text) {
  const parts = text.split(',').map((s) => Number(s.trim()));
  if (parts.length !== 4 || !parts.every(Number.isFinite) || parts[2] <= 0 || parts[3] <= 0)
    throw new UsageError(`--${name} must be x,y,w,h with a positive width and height, got '${text}'`);
  return { x: parts[0], y: parts[1], width: parts[2], height: parts[3] };
}

/** Paints filled dots of `radius` pixels (red) at the points, in place. */
export function drawDots(img, points, radius) {
  const { width, height, channels, data } = img;
  const color = [255, 32, 32];
  for (const [px, py] of points) {
    if (!Number.isFinite(px) || !Number.isFinite(py)) continue;
    const cx = Math.round(px);
    const cy = Math.round(py);
    for (let y = cy - radius; y <= cy + radius; y++)
      for (let x = cx - radius; x <= cx + radius; x++) {
        if (x < 0 || y < 0 || x >= width || y >= height || (x - px) ** 2 + (y - py) ** 2 > (radius + 0.5) ** 2) continue;
        const o = (y * width + x) * channels;
        for (let c = 0; c < channels; c++) data[o + c] = channels === 3 ? color[c] : 255;
      }
  }
  return img;
}

export async function runLandmarks(argv) {
  const { opts, exit } = parseCommand('landmarks', argv, parseLandmarksArgs, landmarksUsage);
  if (!opts) return exit;
  const detector = await openLandmarkDetector(opts.model, opts.weights);
  const image = await decodeImage(opts.image, { orientation: 'exif' });
  const result = await detector.detect(image, { box: opts.box, flip: opts.flip });
  detector.dispose();
  const round = (v) => Math.round(v * 100) / 100;
  if (opts.out) {
    // Dots scale gently with the face: 1 px on tiny faces, a little larger on big ones.
    const side = Math.max(result.box.width, result.box.height);
    // The format follows --out's extension (.png, .jpg; parseLandmarksArgs refuses any other).
    await writeOutputImage(opts.out, drawDots(image, result.points, Math.max(0, Math.min(3, Math.round(side / 80)))));
  }
  if (opts.json) {
    console.log(JSON.stringify({ model: opts.model, points: result.points.map(([x, y]) => [round(x), round(y)]), confidence: result.confidence.map((c) => Math.round(c * 1000) / 1000) }));
  } else {
    console.log(`${opts.model}: 68 points on the face at ${JSON.stringify(result.box)} in ${opts.image}; mean confidence ${(result.confidence.reduce((s, c) => s + c, 0) / result.confidence.length).toFixed(3)}`);
    for (let k = 0; k < result.points.length; k++) console.log(`${k}\t${round(result.points[k][0])}\t${round(result.points[k][1])}\t${result.confidence[k].toFixed(3)}`);
    if (opts.out) console.log(`overlay written to ${opts.out}`);
  }
  return 0;
}
