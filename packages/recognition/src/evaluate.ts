// The verification protocol run end to end on image pairs (LFW's pairs file, YTF-style lists):
// each image's face cut out, optionally shrunk to a low resolution (the LR protocol: the face
// as a tiny camera would capture it) and enhanced (e.g. super-resolved), described by the
// recogniser, and the pairs scored and put through the 10-fold accuracy.
import { typeError, rangeError } from '@lrface/cuda-core';
import { cropAffine, decodeImage, warpAffine, type Box, type LazyImage, type RawImage } from '@lrface/datasets';
import { equalErrorRate, matchFeatures, rocAuc, verificationAccuracy, type VerificationResult } from './metrics.js';
import type { FaceRecognizer } from './recognizer.js';

/** One pair: two images (files or lazily decoded images), whether they show one person, and its fold. */
export interface VerificationPair {
  images: [LazyImage | string, LazyImage | string];
  same: boolean;
  fold: number;
}

export interface PairEvaluationOptions {
  /** The face in every image (LFW's 250x250 images are centred on the face). Default: the whole image. */
  box?: Box;
  /**
   * Shrink each face to this side in pixels first (area-averaged, as a low-resolution camera
   * sees it); the recogniser then enlarges it to its input. Default: the face as it is.
   */
  lowResolution?: number;
  /** Applied to each (low-resolution) face before recognition, e.g. super-resolution. */
  enhance?: (face: RawImage) => RawImage | Promise<RawImage>;
  /** 'similarity' (cosine of unit features, default) or 'distance' (Euclidean between raw features; the score is its negative). */
  score?: 'similarity' | 'distance';
  /** Called after each pair with the pairs done and the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface PairEvaluationResult extends VerificationResult {
  /** One per pair, higher = more alike (negated distances with score 'distance'). */
  scores: Float32Array;
  /** Area under the ROC curve and equal error rate of the scores. */
  auc: number;
  eer: number;
  pairs: number;
}

function sourceOf(image: LazyImage | string): string | Uint8Array {
  return typeof image === 'string' ? image : image.source;
}

/** Scores every pair with the recogniser and runs the k-fold verification protocol on the scores. */
export async function evaluatePairs(recognizer: FaceRecognizer, pairs: Iterable<VerificationPair> | AsyncIterable<VerificationPair>, options: PairEvaluationOptions = {}): Promise<PairEvaluationResult> {
  const fn = 'evaluatePairs';
  if (!recognizer || typeof recognizer.embed !== 'function') throw typeError(fn, 'recognizer', 'a FaceRecognizer', recognizer);
  const { box, lowResolution, enhance, onProgress } = options;
  const score = options.score ?? 'similarity';
  if (score !== 'similarity' && score !== 'distance') throw typeError(fn, 'score', "'similarity' or 'distance'", score);
  if (lowResolution !== undefined && !(Number.isInteger(lowResolution) && lowResolution >= 4)) throw rangeError(fn, 'lowResolution', 'an integer >= 4', lowResolution);
  if (enhance !== undefined && typeof enhance !== 'function') throw typeError(fn, 'enhance', 'a function (face) => face', enhance);
  const list: VerificationPair[] = [];
  for await (const p of pairs as AsyncIterable<VerificationPair>) list.push(p);
  if (list.length === 0) throw rangeError(fn, 'pairs', 'at least one pair', 0);
  // Images recur across pairs (LFW: 7701 images in 6000 pairs); each is described once.
  const cache = new Map<string | Uint8Array, Float32Array>();
  const featureOf = async (image: LazyImage | string): Promise<Float32Array> => {
    const key = sourceOf(image);
    const known = cache.get(key);
    if (known) return known;
    let feature: Float32Array;
    if (lowResolution === undefined && !enhance) {
      feature = await recognizer.embed(key, { box, normalize: false });
    } else {
      const full = await decodeImage(key, { orientation: 'exif' });
      const region = box ?? { x: 0, y: 0, width: full.width, height: full.height };
      let face: RawImage = lowResolution === undefined ? full : warpAffine(full, cropAffine(region, [lowResolution, lowResolution]), lowResolution, lowResolution, { fill: 'replicate' });
      if (enhance) face = await enhance(face);
      feature = await recognizer.embed(face, { box: lowResolution === undefined ? box : undefined, normalize: false });
    }
    cache.set(key, feature);
    return feature;
  };
  const scores = new Float32Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const p = list[i];
    if (!p || !Array.isArray(p.images) || p.images.length !== 2) throw typeError(fn, `pairs[${i}]`, '{ images: [a, b], same, fold }', p);
    const [fa, fb] = [await featureOf(p.images[0]), await featureOf(p.images[1])];
    const { similarity, distance } = matchFeatures(fa, fb);
    const s = score === 'similarity' ? similarity : -distance;
    scores[i] = s;
    onProgress?.(i + 1, list.length);
  }
  const same = list.map((p) => p.same);
  const result = verificationAccuracy(scores, same, list.map((p) => p.fold));
  return { ...result, scores, auc: rocAuc(scores, same), eer: equalErrorRate(scores, same), pairs: list.length };
}
