// `lrface sr` (super-resolve image files) and `lrface eval-sr` (the SR benchmark protocol on a
// folder of HR images: modcrop, MATLAB bicubic down, super-resolve, PSNR/SSIM on Y vs bicubic).
import { mkdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { evaluateImages, listModels, loadHrImages, loadSuperResolver } from '@lrface/sr';

export const srUsage = `  sr <inputs...> [--model face-x4] [--scale 4] [--out DIR] [--weights FILE]
                    super-resolve image files into DIR (default: current folder), as <name>_x<s>.png
  eval-sr --model <name> [--weights <.pth|.safetensors>] --input <folder of HR images> --scale <s> [--json]
                    PSNR/SSIM (Y, border = scale) after MATLAB bicubic x<s> down, against bicubic
  models: ${listModels().join(', ')}`;

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
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`'--${name}' must be an integer >= 1, got ${JSON.stringify(value)}`);
  return n;
}

/** lrface sr <inputs...> --model --scale --out */
export async function runSr(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { model: { type: 'string', default: 'face-x4' }, scale: { type: 'string' }, out: { type: 'string', default: '.' }, weights: { type: 'string' } },
  });
  if (positionals.length === 0) throw new RangeError(`sr: no input images\n\n${srUsage}`);
  const sr = await loadSuperResolver(values.model, values.weights ? { weights: values.weights } : {});
  const scale = values.scale === undefined ? sr.scales[0] : intOption('scale', values.scale);
  await mkdir(values.out, { recursive: true });
  const tick = progress(positionals.length, `sr ${values.model} x${scale}`);
  const written = [];
  tick(0);
  for (const [i, file] of positionals.entries()) {
    const out = await sr.upscale(file, { scale });
    const target = join(values.out, `${basename(file, extname(file))}_x${scale}.png`);
    await out.save(target);
    out.tensor.dispose();
    written.push(target);
    tick(i + 1, basename(file));
  }
  for (const f of written) console.log(f);
  return 0;
}

/** The eval-sr figures as an object (the --json line). */
export async function evalSr({ model, weights, input, scale, onStart, onImage }) {
  if (!model) throw new RangeError(`eval-sr: '--model' is required\n\n${srUsage}`);
  if (!input) throw new RangeError(`eval-sr: '--input' is required\n\n${srUsage}`);
  const s = intOption('scale', scale);
  const sr = await loadSuperResolver(model, weights ? { weights } : {});
  const images = await loadHrImages(input);
  onStart?.(images.length);
  try {
    return evaluateImages(model, sr.network, images, s, { onImage });
  } finally {
    sr.dispose();
  }
}

/** lrface eval-sr --model --weights --input --scale [--json] */
export async function runEvalSr(argv) {
  const { values } = parseArgs({
    args: argv,
    options: { model: { type: 'string' }, weights: { type: 'string' }, input: { type: 'string' }, scale: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  if (values.scale === undefined) throw new RangeError(`eval-sr: '--scale' is required\n\n${srUsage}`);
  const rows = [];
  let tick = null;
  const result = await evalSr({
    ...values,
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
