// `lrface verify <imageA> <imageB> (--model face-api | --weights FILE) [--box-a x,y,w,h] [--box-b x,y,w,h] [--threshold T | --max-distance D] [--json]`:
// whether two faces are the same person, by the similarity of a recognition network's features.
import { parseArgs } from 'node:util';
import { RECOGNITION_ARCHS, loadFaceApiRecognizer, loadRecognizer } from '@lrface/recognition';
import { UsageError, parseBoxOption } from './landmarks.mjs';

export const verifyUsage = `usage: lrface verify <imageA> <imageB> (--model face-api | --weights FILE) [options]
  --model face-api   dlib's ResNet29 with the trained weights of the installed @vladmandic/face-api
                     (an HR recogniser; install that package to use it)
  --weights FILE     a recognition network's weights (.safetensors written by @lrface/recognition,
                     or a PyTorch checkpoint with --arch)
  --arch NAME        ${RECOGNITION_ARCHS.join(', ')} (PyTorch checkpoints only)
  --box-a, --box-b   the face in each image, in pixels (default: the whole image, a face crop)
  --margin M         margin around the box as a fraction of its side (default 0)
  --threshold T      the same person when the cosine similarity is >= T (default 0.5 with --weights)
  --max-distance D   the same person when the feature distance is < D (default 0.6 with --model face-api,
                     face-api's rule)
  --json             print one JSON line {"model","similarity","distance","same","rule"}`;

/** Parses the command's arguments; throws a UsageError on anything unexpected. */
export function parseVerifyArgs(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        model: { type: 'string' },
        weights: { type: 'string' },
        arch: { type: 'string' },
        'box-a': { type: 'string' },
        'box-b': { type: 'string' },
        margin: { type: 'string', default: '0' },
        threshold: { type: 'string' },
        'max-distance': { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
  } catch (err) {
    throw new UsageError(err.message);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 2) throw new UsageError(`two images are needed, got ${positionals.length}`);
  if (values.model !== undefined && values.model !== 'face-api') throw new UsageError(`--model must be face-api, got '${values.model}'`);
  if (!values.weights === !values.model) throw new UsageError('give --model face-api or --weights FILE (one of them)');
  if (values.arch !== undefined && !RECOGNITION_ARCHS.includes(values.arch)) throw new UsageError(`--arch must be one of ${RECOGNITION_ARCHS.join(', ')}, got '${values.arch}'`);
  if (values.threshold !== undefined && values['max-distance'] !== undefined) throw new UsageError('give --threshold or --max-distance, not both');
  let rule;
  if (values.threshold !== undefined || (values['max-distance'] === undefined && values.weights)) {
    const threshold = Number(values.threshold ?? 0.5);
    if (!(threshold >= -1 && threshold <= 1)) throw new UsageError(`--threshold must be a number in [-1, 1], got '${values.threshold}'`);
    rule = { kind: 'similarity', threshold };
  } else {
    const maxDistance = Number(values['max-distance'] ?? 0.6);
    if (!(maxDistance > 0)) throw new UsageError(`--max-distance must be a number > 0, got '${values['max-distance']}'`);
    rule = { kind: 'distance', maxDistance };
  }
  const margin = Number(values.margin);
  if (!(margin >= 0)) throw new UsageError(`--margin must be a number >= 0, got '${values.margin}'`);
  return {
    images: positionals,
    model: values.model,
    weights: values.weights,
    arch: values.arch,
    boxA: values['box-a'] === undefined ? undefined : parseBoxOption('box-a', values['box-a']),
    boxB: values['box-b'] === undefined ? undefined : parseBoxOption('box-b', values['box-b']),
    margin,
    rule,
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
  const recognizer = opts.model
    ? await loadFaceApiRecognizer({ margin: opts.margin })
    : loadRecognizer(opts.weights, { ...(opts.arch ? { arch: opts.arch } : {}), margin: opts.margin });
  const boxes = { boxA: opts.boxA, boxB: opts.boxB };
  const similarity = await recognizer.compare(opts.images[0], opts.images[1], boxes);
  const distance = await recognizer.distance(opts.images[0], opts.images[1], boxes);
  const same = opts.rule.kind === 'similarity' ? similarity >= opts.rule.threshold : distance < opts.rule.maxDistance;
  const rule = opts.rule.kind === 'similarity' ? `similarity >= ${opts.rule.threshold}` : `distance < ${opts.rule.maxDistance}`;
  const round = (v) => Math.round(v * 1e4) / 1e4;
  const model = opts.model ?? recognizer.network.arch;
  if (opts.json) console.log(JSON.stringify({ model, similarity: round(similarity), distance: round(distance), same, rule }));
  else console.log(`${same ? 'same person' : 'different people'}: similarity ${round(similarity)}, distance ${round(distance)} (${rule}, ${model})`);
  return 0;
}
