// `lrface verify <imageA> <imageB> --weights FILE [--box-a x,y,w,h] [--box-b x,y,w,h] [--threshold T] [--json]`:
// whether two faces are the same person, by the cosine similarity of a recognition network's features.
import { parseArgs } from 'node:util';
import { RECOGNITION_ARCHS, loadRecognizer } from '@lrface/recognition';
import { UsageError, parseBoxOption } from './landmarks.mjs';

export const verifyUsage = `usage: lrface verify <imageA> <imageB> --weights FILE [--arch NAME] [--box-a x,y,w,h] [--box-b x,y,w,h] [--margin M] [--threshold T] [--json]
  --weights FILE     a recognition network's weights (.safetensors written by @lrface/recognition,
                     or a PyTorch checkpoint with --arch)
  --arch NAME        ${RECOGNITION_ARCHS.join(', ')} (PyTorch checkpoints only)
  --box-a, --box-b   the face in each image, in pixels (default: the whole image, an aligned crop)
  --margin M         margin around the box as a fraction of its side (default 0)
  --threshold T      call the pair the same person when the similarity is >= T (default 0.5)
  --json             print one JSON line {"similarity","same","threshold"}`;

/** Parses the command's arguments; throws a UsageError on anything unexpected. */
export function parseVerifyArgs(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        weights: { type: 'string' },
        arch: { type: 'string' },
        'box-a': { type: 'string' },
        'box-b': { type: 'string' },
        margin: { type: 'string', default: '0' },
        threshold: { type: 'string', default: '0.5' },
        json: { type: 'boolean', default: false },
      },
    });
  } catch (err) {
    throw new UsageError(err.message);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 2) throw new UsageError(`two images are needed, got ${positionals.length}`);
  if (!values.weights) throw new UsageError('missing --weights FILE (no recognition weights ship with lrface)');
  if (values.arch !== undefined && !RECOGNITION_ARCHS.includes(values.arch)) throw new UsageError(`--arch must be one of ${RECOGNITION_ARCHS.join(', ')}, got '${values.arch}'`);
  const threshold = Number(values.threshold);
  if (!(threshold >= -1 && threshold <= 1)) throw new UsageError(`--threshold must be a number in [-1, 1], got '${values.threshold}'`);
  const margin = Number(values.margin);
  if (!(margin >= 0)) throw new UsageError(`--margin must be a number >= 0, got '${values.margin}'`);
  return {
    images: positionals,
    weights: values.weights,
    arch: values.arch,
    boxA: values['box-a'] === undefined ? undefined : parseBoxOption('box-a', values['box-a']),
    boxB: values['box-b'] === undefined ? undefined : parseBoxOption('box-b', values['box-b']),
    margin,
    threshold,
    json: values.json,
  };
}

export async function runVerify(argv) {
  let opts;
  try {
    opts = parseVerifyArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`lrface verify: ${err.message}\n\n${verifyUsage}`);
      return 2;
    }
    throw err;
  }
  const recognizer = loadRecognizer(opts.weights, { ...(opts.arch ? { arch: opts.arch } : {}), margin: opts.margin });
  const similarity = await recognizer.compare(opts.images[0], opts.images[1], { boxA: opts.boxA, boxB: opts.boxB });
  const same = similarity >= opts.threshold;
  const rounded = Math.round(similarity * 1e4) / 1e4;
  if (opts.json) console.log(JSON.stringify({ similarity: rounded, same, threshold: opts.threshold }));
  else console.log(`${same ? 'same person' : 'different people'}: similarity ${rounded} (threshold ${opts.threshold}, ${recognizer.network.arch})`);
  return 0;
}
