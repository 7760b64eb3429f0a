// `lrface train sr`: trains a super-resolution model of @lrface/sr on a folder of HR images (its
// paper's recipe unless options say otherwise), with a resumable checkpoint, and writes weights
// that `lrface sr --weights` and `lrface eval-sr --weights` load.
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { MODEL_REGISTRY, listModels, loadHrImages, loadSuperResolver, saveSrWeights, trainSuperResolution } from '@lrface/sr';
import { UsageError, parseCommand } from './landmarks.mjs';

const trainable = () => listModels().filter((m) => MODEL_REGISTRY[m].arch !== 'bicubic');

export const trainUsage = `usage: lrface train sr --model NAME --images DIR --steps N --out FILE.safetensors [options]
  trains a super-resolution network on the HR images of DIR (degraded on the fly: MATLAB bicubic
  down, then up where the network takes the interpolated image) and writes its weights to FILE
  --model NAME        the architecture and config of a registered model: ${trainable().join(', ')}
                      (face-x4 starts from its shipped weights, the others from scratch)
  --images DIR        folder of HR training images (png, jpg, bmp, tif, webp)
  --steps N           optimisation steps in all (a resumed run continues up to N)
  --out FILE          the weights to write (.safetensors), atomically, when training ends
  --init FILE         start from these weights (.safetensors or .pth of the same architecture)
  --scale S[,S...]    training scales (default: the model's scales)
  --patch-size P      square patch side (default: the paper's)
  --batch-size B      patches per step (default: the paper's)
  --optimizer NAME    sgd or adam (default: the paper's)
  --lr LR             learning rate (default: the paper's)
  --clip-norm C       clip the gradients' global norm to C (instead of the paper's clipping)
  --eval DIR          HR images evaluated every --eval-every steps (PSNR/SSIM on Y against bicubic)
  --eval-every K      default 100 when --eval is given
  --checkpoint FILE   a checkpoint written atomically every --checkpoint-every steps (default 50)
                      and at the end; an existing one is resumed (model, optimiser and step)
  --checkpoint-every K
  --minutes M         stop after M minutes (the weights are still written)
  --log FILE          append every step and evaluation as JSON lines
  --device ID         cpu (default) or a CUDA device from \`lrface devices\`
  --seed S            patch sampling seed (default 1)
  --json              print one JSON line at the end:
                      {"model","arch","steps","seconds","first_loss","last_loss","eval","weights","sha256","resumed"}
  -h, --help          this text`;

function positiveNumber(name, text, { integer = false } = {}) {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n)))
    throw new UsageError(`--${name} must be ${integer ? 'an integer >= 1' : 'a number > 0'}, got '${text}'`);
  return n;
}

/** Parses `lrface train sr`'s arguments; throws a UsageError on anything unexpected. */
export function parseTrainSrArgs(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        model: { type: 'string' },
        images: { type: 'string' },
        steps: { type: 'string' },
        out: { type: 'string' },
        init: { type: 'string' },
        scale: { type: 'string' },
        'patch-size': { type: 'string' },
        'batch-size': { type: 'string' },
        optimizer: { type: 'string' },
        lr: { type: 'string' },
        'clip-norm': { type: 'string' },
        eval: { type: 'string' },
        'eval-every': { type: 'string' },
        checkpoint: { type: 'string' },
        'checkpoint-every': { type: 'string' },
        minutes: { type: 'string' },
        log: { type: 'string' },
        device: { type: 'string', default: 'cpu' },
        seed: { type: 'string', default: '1' },
        json: { type: 'boolean', default: false },
      },
    });
  } catch (err) {
    if (typeof err?.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS_')) throw new UsageError(err.message);
    throw err;
  }
  const v = parsed.values;
  for (const [name, value] of Object.entries(v))
    if (value === '') throw new UsageError(`option '--${name}' needs a value`);
  if (!v.model) throw new UsageError('missing --model NAME');
  if (!trainable().includes(v.model)) throw new UsageError(`--model must be one of ${trainable().join(', ')}, got '${v.model}'`);
  if (!v.images) throw new UsageError('missing --images DIR');
  if (!v.steps) throw new UsageError('missing --steps N');
  if (!v.out) throw new UsageError('missing --out FILE.safetensors');
  if (!/\.safetensors$/i.test(v.out)) throw new UsageError(`--out must name a .safetensors file, got '${v.out}'`);
  const files = { '--out': v.out, '--init': v.init, '--checkpoint': v.checkpoint, '--log': v.log };
  const named = Object.entries(files).filter(([, f]) => f !== undefined);
  for (let i = 0; i < named.length; i++)
    for (let j = i + 1; j < named.length; j++)
      if (resolve(named[i][1]) === resolve(named[j][1])) throw new UsageError(`${named[i][0]} and ${named[j][0]} name the same file '${named[i][1]}'; one would overwrite the other`);
  const opts = {
    model: v.model,
    images: v.images,
    steps: positiveNumber('steps', v.steps, { integer: true }),
    out: v.out,
    init: v.init,
    evalDir: v.eval,
    checkpoint: v.checkpoint,
    log: v.log,
    device: v.device,
    seed: Number(v.seed),
    json: v.json,
    recipe: {},
  };
  if (!Number.isInteger(opts.seed)) throw new UsageError(`--seed must be an integer, got '${v.seed}'`);
  if (v.scale !== undefined) {
    const scales = v.scale.split(',').map((s) => Number(s.trim()));
    if (!scales.every((s) => Number.isInteger(s) && s >= 2 && s <= 8)) throw new UsageError(`--scale must be integers in [2, 8] separated by commas, got '${v.scale}'`);
    opts.recipe.scales = scales;
  }
  if (v['patch-size'] !== undefined) opts.recipe.patchSize = positiveNumber('patch-size', v['patch-size'], { integer: true });
  if (v['batch-size'] !== undefined) opts.recipe.batchSize = positiveNumber('batch-size', v['batch-size'], { integer: true });
  if (v.optimizer !== undefined) {
    if (v.optimizer !== 'sgd' && v.optimizer !== 'adam') throw new UsageError(`--optimizer must be sgd or adam, got '${v.optimizer}'`);
    opts.recipe.optimizer = v.optimizer;
  }
  if (v.lr !== undefined) opts.recipe.lr = positiveNumber('lr', v.lr);
  if (v['clip-norm'] !== undefined) opts.recipe.clip = { kind: 'norm', maxNorm: positiveNumber('clip-norm', v['clip-norm']) };
  if (v['eval-every'] !== undefined && v.eval === undefined) throw new UsageError('--eval-every needs --eval DIR');
  opts.evalEvery = v.eval === undefined ? 0 : v['eval-every'] === undefined ? 100 : positiveNumber('eval-every', v['eval-every'], { integer: true });
  if (v['checkpoint-every'] !== undefined && v.checkpoint === undefined) throw new UsageError('--checkpoint-every needs --checkpoint FILE');
  opts.checkpointEvery = v['checkpoint-every'] === undefined ? 50 : positiveNumber('checkpoint-every', v['checkpoint-every'], { integer: true });
  if (v.minutes !== undefined) opts.minutes = positiveNumber('minutes', v.minutes);
  return opts;
}

/** Trains and writes the weights; returns the summary the --json line prints. */
export async function trainSr(opts, { onLog } = {}) {
  const entry = MODEL_REGISTRY[opts.model];
  // A model with shipped weights (face-x4) starts from them, others from their initialisation,
  // unless --init names weights; loadSuperResolver also checks the device id.
  const sr = await loadSuperResolver(opts.model, { ...(opts.init !== undefined ? { weights: opts.init } : { untrained: true }), device: opts.device });
  const net = sr.network;
  try {
    const scales = opts.recipe.scales ?? entry.scales;
    const images = await loadHrImages(opts.images);
    const evalImages = opts.evalDir !== undefined ? await loadHrImages(opts.evalDir) : undefined;
    for (const f of [opts.out, opts.checkpoint, opts.log]) if (f !== undefined) mkdirSync(dirname(resolve(f)), { recursive: true });
    const resumed = opts.checkpoint !== undefined && existsSync(opts.checkpoint);
    const result = await trainSuperResolution(net, {
      ...opts.recipe,
      scales,
      images,
      steps: opts.steps,
      evalImages,
      evalEvery: opts.evalEvery,
      evalScale: scales[0],
      checkpoint: opts.checkpoint,
      checkpointEvery: opts.checkpointEvery,
      resume: true,
      timeLimit: opts.minutes === undefined ? undefined : opts.minutes * 60,
      seed: opts.seed,
      onLog: (e) => {
        if (opts.log !== undefined) appendFileSync(opts.log, JSON.stringify(e) + '\n');
        onLog?.(e);
      },
    });
    const note = `${entry.arch} trained by lrface train sr for ${result.steps} steps on ${images.length} HR images of ${opts.images}${opts.init ? `, initialised from ${opts.init}` : ''}`;
    const digest = saveSrWeights(opts.out, net, { scales, note });
    const lastEval = result.evals.at(-1)?.eval;
    return {
      model: opts.model,
      arch: entry.arch,
      steps: result.steps,
      seconds: Math.round(result.seconds * 10) / 10,
      first_loss: result.losses[0] ?? null,
      last_loss: result.losses.at(-1) ?? null,
      eval: lastEval ? { scale: scales[0], psnr: lastEval.psnr, ssim: lastEval.ssim, bicubic_psnr: lastEval.bicubicPsnr, bicubic_ssim: lastEval.bicubicSsim } : null,
      weights: opts.out,
      sha256: digest,
      resumed,
    };
  } finally {
    sr.dispose();
  }
}

/** lrface train <task> ... (the task is sr). */
export async function runTrain(argv) {
  const [task, ...rest] = argv;
  if (task === undefined) {
    console.error(`lrface train: missing the task (sr)\n\n${trainUsage}`);
    return 2;
  }
  if (task === '--help' || task === '-h' || task === 'help') {
    console.log(trainUsage);
    return 0;
  }
  if (task !== 'sr') {
    console.error(`lrface train: unknown task '${task}' (tasks: sr)\n\n${trainUsage}`);
    return 2;
  }
  const { opts, exit } = parseCommand('train sr', rest, parseTrainSrArgs, trainUsage);
  if (!opts) return exit;
  const summary = await trainSr(opts, {
    onLog: (e) => {
      if (e.eval) process.stderr.write(`step ${e.step}: PSNR ${e.eval.psnr.toFixed(2)} dB (bicubic ${e.eval.bicubicPsnr.toFixed(2)}), SSIM ${e.eval.ssim.toFixed(4)}\n`);
      else if (e.step === 1 || e.step % 10 === 0 || e.step === opts.steps) process.stderr.write(`step ${e.step}/${opts.steps} loss ${e.loss.toExponential(3)} lr ${e.lr.toExponential(2)} ${e.seconds.toFixed(1)} s\n`);
    },
  });
  if (opts.json) console.log(JSON.stringify(summary));
  else {
    console.log(`${summary.model} (${summary.arch}): ${summary.steps} steps in ${summary.seconds} s${summary.resumed ? ' (resumed)' : ''}; loss ${summary.first_loss?.toExponential(3)} -> ${summary.last_loss?.toExponential(3)}`);
    if (summary.eval) console.log(`eval x${summary.eval.scale}: PSNR ${summary.eval.psnr.toFixed(2)} dB / SSIM ${summary.eval.ssim.toFixed(4)} (bicubic ${summary.eval.bicubic_psnr.toFixed(2)} / ${summary.eval.bicubic_ssim.toFixed(4)})`);
    console.log(`weights written to ${summary.weights} (sha256 ${summary.sha256}); use them with: lrface sr --model ${summary.model} --weights ${summary.weights} <images>`);
  }
  return 0;
}
