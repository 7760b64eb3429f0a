// `lrface sr` (super-resolve image files) and `lrface eval-sr` (the SR benchmark protocol on a
// folder of HR images: modcrop, MATLAB bicubic down, super-resolve, PSNR/SSIM on Y vs bicubic).
import { mkdir, readdir } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeImage } from '@lrface/datasets';
import { writeFileAtomic } from '@lrface/nn';
import { MODEL_REGISTRY, evaluateImages, listModels, loadDicWeights, loadHrImages, loadSuperResolver, superResolveFace } from '@lrface/sr';
import { writeOutputImage } from './landmarks.mjs';

/** The lines of the main `lrface help` for these two commands. */
export const srUsage = `  sr <inputs...> [--model face-x4] [--scale 4] [--out DIR] [--weights FILE]
                    super-resolve image files into DIR (default: current folder), as <name>_x<s>.png
  eval-sr --model <name> [--weights <.pth|.safetensors>] --input <folder of HR images> --scale <s> [--json]
                    PSNR/SSIM (Y, border = scale) after MATLAB bicubic x<s> down, against bicubic
  models: ${listModels().join(', ')}`;

/** `lrface sr --help`. */
export const srHelp = `usage: lrface sr <inputs...> [--model NAME] [--scale S] [--out DIR] [--weights FILE]
  super-resolves image files, writing DIR/<name>_x<S>.png for each input
  --model NAME    ${listModels().join(', ')} (default face-x4), or dic (weights from lrface train dic:
                  whole LR face crops, x8, with 68 landmarks written to DIR/<name>_x8.json)
  --scale S       integer factor (default: the model's first scale)
  --out DIR       output folder (default: the current folder); inputs with the same file name
                  (a/face.png, b/face.png) need separate runs or separate --out folders
  --weights FILE  a .safetensors or .pth file of the model's architecture instead of its shipped weights
                  (only bicubic and face-x4 run without it)
  -h, --help      this text`;

/** `lrface eval-sr --help`. */
export const evalSrHelp = `usage: lrface eval-sr --model NAME --input DIR --scale S [--weights FILE] [--json]
  the SR benchmark protocol on a folder of HR images: modcrop, MATLAB bicubic x<S> down,
  super-resolve, PSNR/SSIM on the Y channel (border = S), side by side with bicubic
  --model NAME    ${listModels().join(', ')}
  --input DIR     the folder of HR images
  --scale S       integer factor
  --weights FILE  weights of the model's architecture (.safetensors or .pth); bicubic takes none,
                  face-x4 has its shipped ones, the others need it
  --json          print one JSON line {"model","scale","images","psnr","ssim","bicubic_psnr","bicubic_ssim"}
  -h, --help      this text`;

/** A mistake on the command line: reported with the command's usage, exit code 2. */
export class UsageError extends RangeError {}

/** parseArgs with its complaints (unknown option, missing value) as usage errors. */
function parseCommandArgs(config) {
  try {
    return parseArgs(config);
  } catch (err) {
    if (typeof err?.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS_')) throw new UsageError(err.message);
    throw err;
  }
}

/** Runs a command, printing a usage error with the command's help and returning 2. */
async function withUsage(command, help, body) {
  try {
    return await body();
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`lrface ${command}: ${err.message}\n\n${help}`);
    return 2;
  }
}

function checkModel(model) {
  if (!listModels().includes(model)) throw new UsageError(`'--model' must be one of ${listModels().join(', ')}, got '${model}'`);
}

/** A one-line progress bar on stderr (only where stderr is a terminal, else one line per step). */
function progress(total, label) {
  const tty = process.stderr.isTTY;
  return (done, note = '') => {
    const width = 24;
    const filled = Math.round((done / total) * width);
    const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${note}`;
    if (tty) process.stderr.write(`\r${line}${done === total ? '\n' : ''}`);
    else process.stderr.write(`${line}\n`);
  };
}

function intOption(name, value) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`'--${name}' must be an integer >= 1, got ${JSON.stringify(value)}`);
  return n;
}

/** A model without shipped weights (all but bicubic and face-x4) runs only with --weights. */
export function checkWeightsGiven(model, weights, option = '--model') {
  if (weights === undefined && MODEL_REGISTRY[model].arch !== 'bicubic' && !MODEL_REGISTRY[model].weights)
    throw new UsageError(`${option} ${model} has no shipped weights: give --weights FILE (e.g. from lrface train sr)`);
}

/** SSIM's 11x11 window must fit what is left of an image after modcrop and the border of `scale`. */
const SSIM_WINDOW = 11;

/**
 * The HR images of an evaluation folder, each checked to be large enough for the protocol at
 * `scale` (a small one would fail in SSIM after the others were done, without its name).
 */
export async function loadEvalImages(dir, scale, option = '--input') {
  let names;
  try {
    names = (await readdir(dir)).filter((f) => HR_IMAGE_EXT.has(extname(f).toLowerCase())).sort();
  } catch (err) {
    throw new Error(`${option}: cannot read the folder '${dir}' (${err.code ?? err.message})`, { cause: err });
  }
  if (names.length === 0) throw new Error(`${option}: the folder '${dir}' holds no images`);
  const files = names.map((n) => join(dir, n));
  const images = await loadHrImages(files);
  const need = SSIM_WINDOW + 2 * scale;
  images.forEach((img, i) => {
    const usable = (side) => Math.floor(side / scale) * scale;
    if (usable(img.width) < need || usable(img.height) < need)
      throw new Error(`${option}: '${files[i]}' is ${img.width}x${img.height}; evaluating at x${scale} needs images of at least ${need}x${need} px (SSIM's ${SSIM_WINDOW}x${SSIM_WINDOW} window inside a border of ${scale})`);
  });
  return images;
}

/** The image files loadHrImages reads from a folder. */
const HR_IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp']);

/**
 * The output file of each input (DIR/<name>_x<scale>.png). Two inputs with the same name would
 * write the same file, the second silently replacing the first, and an output may be one of the
 * inputs: both are usage errors, raised before anything is written.
 */
export function srTargets(inputs, outDir, scale) {
  const targets = inputs.map((file) => join(outDir, `${basename(file, extname(file))}_x${scale}.png`));
  const byTarget = new Map();
  inputs.forEach((file, i) => {
    const key = resolve(targets[i]);
    const first = byTarget.get(key);
    if (first === undefined) return byTarget.set(key, file);
    if (resolve(first) === resolve(file)) throw new UsageError(`'${file}' is given twice`);
    throw new UsageError(`'${first}' and '${file}' would both be written to '${targets[i]}' (the second would replace the first); run them separately or give each its own --out folder`);
  });
  const given = new Set(inputs.map((file) => resolve(file)));
  targets.forEach((target, i) => {
    if (given.has(resolve(target))) throw new UsageError(`the output of '${inputs[i]}', '${target}', is also an input and would be overwritten; give another --out folder`);
  });
  return targets;
}

/** lrface sr <inputs...> --model --scale --out */
export async function runSr(argv) {
  return withUsage('sr', srHelp, async () => {
    const { values, positionals } = parseCommandArgs({
      args: argv,
      allowPositionals: true,
      options: {
        model: { type: 'string', default: 'face-x4' },
        scale: { type: 'string' },
        out: { type: 'string', default: '.' },
        weights: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      console.log(srHelp);
      return 0;
    }
    if (positionals.length === 0) throw new UsageError('no input images');
    if (values.model === 'dic') return runDicSr(positionals, values);
    checkModel(values.model);
    checkWeightsGiven(values.model, values.weights);
    const given = values.scale === undefined ? undefined : intOption('scale', values.scale);
    // The outputs are checked before the model loads wherever the scale is known by then (a
    // weights file may record other scales than the registry's).
    const early = given ?? (values.weights === undefined ? MODEL_REGISTRY[values.model].scales[0] : undefined);
    if (early !== undefined) srTargets(positionals, values.out, early);
    const sr = await loadSuperResolver(values.model, values.weights !== undefined ? { weights: values.weights } : {});
    try {
      const scale = given ?? sr.scales[0];
      const targets = srTargets(positionals, values.out, scale);
      await mkdir(values.out, { recursive: true });
      const tick = progress(positionals.length, `sr ${values.model} x${scale}`);
      tick(0);
      for (const [i, file] of positionals.entries()) {
        const out = await sr.upscale(file, { scale });
        await out.save(targets[i]);
        out.tensor.dispose();
        tick(i + 1, basename(file));
      }
      for (const f of targets) console.log(f);
      return 0;
    } finally {
      sr.dispose();
    }
  });
}

/**
 * `lrface sr --model dic --weights FILE`: each input is a whole LR face crop (sides multiples of
 * the network's size multiple: 16x16 as trained by default), super-resolved x8 with its 68
 * landmarks, written to <name>_x8.png and <name>_x8.json ({"landmarks":[[x,y],...]} in output pixels).
 */
async function runDicSr(inputs, values) {
  if (values.weights === undefined) throw new UsageError('--model dic needs --weights FILE (from lrface train dic)');
  const net = loadDicWeights(values.weights);
  try {
    const scale = net.config.scale;
    if (values.scale !== undefined && intOption('scale', values.scale) !== scale) throw new UsageError(`'--scale' must be ${scale} for this DIC (it upscales x${scale} only), got ${values.scale}`);
    const targets = srTargets(inputs, values.out, scale);
    const images = [];
    for (const file of inputs) {
      const image = await decodeImage(file, { orientation: 'exif' });
      const m = net.sizeMultiple;
      if (image.width % m !== 0 || image.height % m !== 0)
        throw new UsageError(`'${file}' is ${image.width}x${image.height}: DIC takes whole face crops whose sides are multiples of ${m} (${net.config.scale === 8 ? '16x16 as trained' : 'as trained'})`);
      images.push(image);
    }
    await mkdir(values.out, { recursive: true });
    const tick = progress(inputs.length, `sr dic x${scale}`);
    tick(0);
    for (const [i, file] of inputs.entries()) {
      // decodeImage gives RGB, grey files included.
      const { image, landmarks } = superResolveFace(net, images[i]);
      await writeOutputImage(targets[i], image);
      const points = Array.from({ length: landmarks.length / 2 }, (_, k) => [Math.round(landmarks[2 * k] * 100) / 100, Math.round(landmarks[2 * k + 1] * 100) / 100]);
      writeFileAtomic(targets[i].replace(/\.png$/, '.json'), JSON.stringify({ landmarks: points }) + '\n', 'sr');
      tick(i + 1, basename(file));
    }
    for (const f of targets) console.log(f);
    return 0;
  } finally {
    net.dispose();
  }
}

/** The eval-sr figures as an object (the --json line). */
export async function evalSr({ model, weights, input, scale, onStart, onImage }) {
  if (!model) throw new UsageError("'--model' is required");
  checkModel(model);
  if (!input) throw new UsageError("'--input' is required");
  if (scale === undefined) throw new UsageError("'--scale' is required");
  const s = intOption('scale', scale);
  checkWeightsGiven(model, weights);
  const sr = await loadSuperResolver(model, weights !== undefined ? { weights } : {});
  try {
    const images = await loadEvalImages(input, s);
    onStart?.(images.length);
    return evaluateImages(model, sr.network, images, s, { onImage });
  } finally {
    sr.dispose();
  }
}

/** lrface eval-sr --model --weights --input --scale [--json] */
export async function runEvalSr(argv) {
  return withUsage('eval-sr', evalSrHelp, () => evalSrCommand(argv));
}

async function evalSrCommand(argv) {
  const { values } = parseCommandArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      weights: { type: 'string' },
      input: { type: 'string' },
      scale: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(evalSrHelp);
    return 0;
  }
  const { help: _help, ...options } = values;
  const rows = [];
  let tick = null;
  const result = await evalSr({
    ...options,
    onStart: (n) => {
      tick = progress(n, `eval-sr ${values.model} x${values.scale}`);
      tick(0);
    },
    onImage: (i, s) => {
      rows.push(s);
      tick?.(i + 1);
    },
  });
  if (values.json) {
    console.log(JSON.stringify(result));
    return 0;
  }
  console.log(`${result.model} x${result.scale} on ${values.input} (${result.images} images; Y channel, border ${result.scale})`);
  console.log('image   PSNR(dB)  SSIM    | bicubic PSNR  SSIM');
  rows.forEach((r, i) => console.log(`${String(i + 1).padStart(5)}   ${r.psnr.toFixed(2).padStart(8)}  ${r.ssim.toFixed(4)}  | ${r.bicubicPsnr.toFixed(2).padStart(12)}  ${r.bicubicSsim.toFixed(4)}`));
  console.log(` mean   ${result.psnr.toFixed(2).padStart(8)}  ${result.ssim.toFixed(4)}  | ${result.bicubic_psnr.toFixed(2).padStart(12)}  ${result.bicubic_ssim.toFixed(4)}`);
  return 0;
}
