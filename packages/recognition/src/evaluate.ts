// The protocols run end to end on images: verification of pairs (LFW's pairs file, YTF-style
// lists; scored and put through the 10-fold accuracy) and closed-set identification of probes
// against a gallery with distractors (TinyFace). Each face is cut out, optionally shrunk to a
// low resolution (the LR protocol: the face as a tiny camera would capture it) and enhanced
// (e.g. super-resolved), then described by the recogniser.
import * as ops from '@lrface/cuda-core';
import { checkKeys, typeError, rangeError } from '@lrface/cuda-core';
import { Ytf, cropAffine, decodeImage, warpAffine, type Box, type LazyImage, type RawImage, type YtfVideo } from '@lrface/datasets';
import { equalErrorRate, matchFeatures, rocAuc, verificationAccuracy, type IdentificationResult, type VerificationResult } from './metrics.js';
import type { FaceRecognizer } from './recognizer.js';

/** One pair: two images (files or lazily decoded images), whether they show one person, and its fold. */
export interface VerificationPair {
  images: [LazyImage | string, LazyImage | string];
  same: boolean;
  /** 0-based fold index (LFW's reader: fold k of pairs.txt is k - 1). */
  fold: number;
}

export interface PairEvaluationOptions extends FacePreparation {
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

/** How each face is prepared before the recogniser describes it. */
export interface FacePreparation {
  /** The face in every image. Default: the whole image (or the face's own box where it has one). */
  box?: Box;
  /**
   * Shrink each face to this side in pixels first (area-averaged, as a low-resolution camera
   * sees it); the recogniser then enlarges it to its input. Default: the face as it is.
   */
  lowResolution?: number;
  /** Applied to each (low-resolution) face before recognition, e.g. super-resolution. */
  enhance?: (face: RawImage) => RawImage | Promise<RawImage>;
}

const PAIR_EVALUATION_OPTION_KEYS: Record<keyof PairEvaluationOptions, true> = { box: true, lowResolution: true, enhance: true, score: true, onProgress: true };
const IDENTIFICATION_EVALUATION_OPTION_KEYS: Record<keyof IdentificationEvaluationOptions, true> = {
  box: true, lowResolution: true, enhance: true, ranks: true, chunk: true, onProgress: true,
};
// No 'box': each frame is cut out by its own box.
const VIDEO_PAIR_EVALUATION_OPTION_KEYS: Record<keyof VideoPairEvaluationOptions, true> = { lowResolution: true, enhance: true, framesPerVideo: true, onProgress: true };

function checkPreparation(fn: string, options: FacePreparation): void {
  const { lowResolution, enhance } = options;
  if (lowResolution !== undefined && !(Number.isInteger(lowResolution) && lowResolution >= 4)) throw rangeError(fn, 'lowResolution', 'an integer >= 4', lowResolution);
  if (enhance !== undefined && typeof enhance !== 'function') throw typeError(fn, 'enhance', 'a function (face) => face', enhance);
}

/** The recogniser's feature of the face in `image` (as the network gives it, or unit length). */
async function faceFeature(recognizer: FaceRecognizer, image: string | Uint8Array, preparation: FacePreparation, normalize: boolean): Promise<Float32Array> {
  const { box, lowResolution, enhance } = preparation;
  if (lowResolution === undefined && !enhance) return recognizer.embed(image, { box, normalize });
  const full = await decodeImage(image, { orientation: 'exif' });
  const region = box ?? { x: 0, y: 0, width: full.width, height: full.height };
  let face: RawImage = lowResolution === undefined ? full : warpAffine(full, cropAffine(region, [lowResolution, lowResolution]), lowResolution, lowResolution, { fill: 'replicate' });
  if (enhance) face = await enhance(face);
  return recognizer.embed(face, { box: lowResolution === undefined ? box : undefined, normalize });
}

/**
 * The k-fold protocol picks each fold's threshold on the other folds, so each fold's complement
 * needs matched and mismatched pairs. Checked before any face is described: a subset of a
 * protocol's folds (a few YTF splits) can miss that, and would fail only after all the work.
 *
 * A pair's `fold` is a 0-based index (the readers' LFW `fold` and YTF `split`), while LFW's
 * pairs.txt and YTF's splits.txt count folds from 1; messages give both, e.g. "fold index 3
 * (split 4 of YTF's splits.txt)". `fileFold` words the second for the protocol's file.
 */
function checkFolds(fn: string, list: readonly { same: boolean; fold: number }[], fileFold: (index: number) => string): void {
  list.forEach((p, i) => {
    if (typeof p.fold !== 'number') throw typeError(fn, `pairs[${i}].fold`, 'a fold index (an integer >= 0)', p.fold);
    if (!Number.isInteger(p.fold) || p.fold < 0) throw rangeError(fn, `pairs[${i}].fold`, 'a fold index (an integer >= 0)', p.fold);
  });
  const name = (f: number) => `fold index ${f} (${fileFold(f)})`;
  const folds = [...new Set(list.map((p) => p.fold))].sort((a, b) => a - b);
  if (folds.length < 2) throw rangeError(fn, 'pairs', 'pairs in at least 2 folds (each fold is tested with a threshold chosen on the others)', `${list.length} pair(s) all in ${name(folds[0])}`, true);
  for (const f of folds) {
    const others = list.filter((p) => p.fold !== f);
    const matched = others.filter((p) => p.same).length;
    if (matched === 0 || matched === others.length)
      throw rangeError(
        fn,
        'pairs',
        `matched and mismatched pairs outside every fold (each fold is tested with a threshold chosen on the others)`,
        `only ${matched === 0 ? 'mismatched' : 'matched'} pairs outside ${name(f)}: ${others.length} of the ${list.length} pairs, in ${folds.length} folds`,
        true,
      );
  }
}

/** LFW View 2's folds counted from 1, in pairs.txt's order (as its reader's messages count them). */
const lfwFold = (index: number) => `fold ${index + 1} of LFW's pairs.txt`;
/** YTF's folds as splits.txt numbers them. */
const ytfSplit = (index: number) => `split ${index + 1} of YTF's splits.txt`;

/** Scores every pair with the recogniser and runs the k-fold verification protocol on the scores. */
export async function evaluatePairs(recognizer: FaceRecognizer, pairs: Iterable<VerificationPair> | AsyncIterable<VerificationPair>, options: PairEvaluationOptions = {}): Promise<PairEvaluationResult> {
  const fn = 'evaluatePairs';
  if (!recognizer || typeof recognizer.embed !== 'function') throw typeError(fn, 'recognizer', 'a FaceRecognizer', recognizer);
  checkKeys(fn, options, PAIR_EVALUATION_OPTION_KEYS);
  const { onProgress } = options;
  const score = options.score ?? 'similarity';
  if (score !== 'similarity' && score !== 'distance') throw typeError(fn, 'score', "'similarity' or 'distance'", score);
  checkPreparation(fn, options);
  const list: VerificationPair[] = [];
  for await (const p of pairs as AsyncIterable<VerificationPair>) {
    if (!p || !Array.isArray(p.images) || p.images.length !== 2) throw typeError(fn, `pairs[${list.length}]`, '{ images: [a, b], same, fold }', p);
    list.push(p);
  }
  if (list.length === 0) throw rangeError(fn, 'pairs', 'at least one pair', 0);
  checkFolds(fn, list, lfwFold);
  // Images recur across pairs (LFW: 7701 images in 6000 pairs); each is described once.
  const cache = new Map<string | Uint8Array, Float32Array>();
  const featureOf = async (image: LazyImage | string): Promise<Float32Array> => {
    const key = sourceOf(image);
    let feature = cache.get(key);
    if (!feature) cache.set(key, (feature = await faceFeature(recognizer, key, options, false)));
    return feature;
  };
  const scores = new Float32Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const p = list[i];
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

// ---------------------------------------------------------------------------------------------
// Identification.

/** One face of an identification set: its image and identity (null or -1: a distractor). Datasets' FaceSamples fit. */
export interface IdentificationFace {
  image: LazyImage | string;
  identity: number | string | null;
}

export interface IdentificationEvaluationOptions extends FacePreparation {
  /** Ranks of the CMC curve to report (default [1, 5, 10, 20]). */
  ranks?: number[];
  /** Distractor features compared per matrix product (default 1024). */
  chunk?: number;
  /** Called after each face described, with the count so far and the total (probes + gallery). */
  onProgress?: (done: number, total: number) => void;
}

export interface IdentificationEvaluation extends IdentificationResult {
  /** Gallery faces with an identity, and distractors. */
  galleryMatched: number;
  distractors: number;
}

const isDistractor = (id: number | string | null) => id === null || id === -1;

/**
 * Closed-set identification (TinyFace's protocol): every probe's feature ranked against the
 * gallery by cosine similarity; CMC at `ranks` and mAP over the probes that have a match, as
 * {@link identificationMetrics} defines them (equal similarities keep gallery order). Only the
 * matched gallery faces' features are kept; distractors (TinyFace: 153,428) stream through in
 * chunks, each adding to the count of entries that outrank every probe's true matches.
 */
export async function evaluateIdentification(
  recognizer: FaceRecognizer,
  probes: Iterable<IdentificationFace> | AsyncIterable<IdentificationFace>,
  gallery: Iterable<IdentificationFace> | AsyncIterable<IdentificationFace>,
  options: IdentificationEvaluationOptions = {},
): Promise<IdentificationEvaluation> {
  const fn = 'evaluateIdentification';
  if (!recognizer || typeof recognizer.embed !== 'function') throw typeError(fn, 'recognizer', 'a FaceRecognizer', recognizer);
  checkKeys(fn, options, IDENTIFICATION_EVALUATION_OPTION_KEYS);
  checkPreparation(fn, options);
  const ranks = options.ranks ?? [1, 5, 10, 20];
  if (!Array.isArray(ranks) || ranks.length === 0 || !ranks.every((r) => Number.isInteger(r) && r >= 1)) throw rangeError(fn, 'ranks', 'a non-empty array of integers >= 1', ranks);
  const chunk = options.chunk ?? 1024;
  if (!Number.isInteger(chunk) || chunk < 1) throw rangeError(fn, 'chunk', 'an integer >= 1', chunk);
  const collect = async (faces: typeof probes, arg: string) => {
    const list: IdentificationFace[] = [];
    for await (const f of faces as AsyncIterable<IdentificationFace>) {
      if (f === null || typeof f !== 'object' || !('image' in f) || !('identity' in f)) throw typeError(fn, `${arg}[${list.length}]`, '{ image, identity }', f);
      list.push(f);
    }
    return list;
  };
  const probeList = await collect(probes, 'probes');
  const galleryList = await collect(gallery, 'gallery');
  if (probeList.length === 0) throw rangeError(fn, 'probes', 'at least one probe', 0);
  const probeIds = probeList.map((p, i) => {
    if (isDistractor(p.identity)) throw rangeError(fn, `probes[${i}].identity`, 'an identity (probes are never distractors)', p.identity);
    return p.identity as number | string;
  });
  const matched = galleryList.map((g, i) => ({ g, i })).filter(({ g }) => !isDistractor(g.identity));
  const distractors = galleryList.map((g, i) => ({ g, i })).filter(({ g }) => isDistractor(g.identity));
  const total = probeList.length + galleryList.length;
  let done = 0;
  const describe = async (face: IdentificationFace) => {
    const f = await faceFeature(recognizer, sourceOf(face.image), options, true);
    options.onProgress?.(++done, total);
    return f;
  };
  const probeFeatures: Float32Array[] = [];
  for (const p of probeList) probeFeatures.push(await describe(p));
  const matchedFeatures: Float32Array[] = [];
  for (const { g } of matched) matchedFeatures.push(await describe(g));
  const dim = probeFeatures[0].length;
  const rows = (features: Float32Array[]) => {
    const out = new Float32Array(features.length * dim);
    features.forEach((f, i) => out.set(f, i * dim));
    return out;
  };
  const probeMatrix = ops.tensor(rows(probeFeatures), [probeFeatures.length, dim]);
  /** Cosine similarities [probes, n] of the probes with n unit features laid out in rows. */
  const similarities = (features: Float32Array, n: number) =>
    n === 0 ? new Float32Array(0) : ops.scope(() => ops.matmul(probeMatrix, ops.transpose(ops.tensor(features, [n, dim]), 0, 1)).data() as Float32Array);
  const matchedSims = similarities(rows(matchedFeatures), matched.length);
  // Per probe, its true matches: gallery position, similarity, and how many entries outrank it.
  const matches = probeIds.map((id, p) => {
    const sim = (k: number) => matchedSims[p * matched.length + k];
    return matched
      .map(({ g, i }, m) => ({ m, i, same: g.identity === id }))
      .filter((x) => x.same)
      .map(({ m, i }) => ({
        index: i,
        similarity: sim(m),
        ahead: matched.filter((other, k) => sim(k) > sim(m) || (sim(k) === sim(m) && other.i < i)).length,
      }));
  });
  try {
    for (let start = 0; start < distractors.length; start += chunk) {
      const part = distractors.slice(start, start + chunk);
      const features: Float32Array[] = [];
      for (const { g } of part) features.push(await describe(g));
      const sims = similarities(rows(features), part.length);
      matches.forEach((own, p) => {
        for (const match of own)
          for (let j = 0; j < part.length; j++) {
            const s = sims[p * part.length + j];
            if (s > match.similarity || (s === match.similarity && part[j].i < match.index)) match.ahead++;
          }
      });
    }
  } finally {
    probeMatrix.dispose();
  }
  const hits = new Map<number, number>(ranks.map((r) => [r, 0]));
  let apSum = 0;
  let counted = 0;
  for (const own of matches) {
    if (own.length === 0) continue;
    const positions = own.map((m) => m.ahead + 1).sort((a, b) => a - b);
    counted++;
    apSum += positions.reduce((sum, position, k) => sum + (k + 1) / position, 0) / positions.length;
    for (const r of ranks) if (positions[0] <= r) hits.set(r, hits.get(r)! + 1);
  }
  if (counted === 0) throw rangeError(fn, 'gallery', 'a true match for at least one probe', 'none', true);
  const cmc: Record<number, number> = {};
  for (const r of ranks) cmc[r] = hits.get(r)! / counted;
  return { cmc, meanAveragePrecision: apSum / counted, probes: counted, galleryMatched: matched.length, distractors: distractors.length };
}

// ---------------------------------------------------------------------------------------------
// Video verification (YouTube Faces).

/** One face of a video: the frame image and the face box in it. */
export interface VideoFrame {
  image: LazyImage | string;
  box?: Box;
}

/** A pair of videos (each a list of frames), whether they show one person, and its fold. */
export interface VideoPair {
  videos: [readonly VideoFrame[], readonly VideoFrame[]];
  same: boolean;
  /** 0-based fold index (YTF: split k of splits.txt is k - 1). */
  fold: number;
}

export interface VideoPairEvaluationOptions extends Omit<FacePreparation, 'box'> {
  /** Frames described per video, evenly spaced over it (default 100; Infinity: all). */
  framesPerVideo?: number;
  /** Called after each pair with the pairs done and the total. */
  onProgress?: (done: number, total: number) => void;
}

/** `count` indices evenly spaced over [0, n) (all of them when n <= count). */
export function evenlySpaced(n: number, count: number): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: count }, (_, i) => Math.floor(((i + 0.5) * n) / count));
}

/**
 * YouTube Faces' video-level verification: each video is described by the mean of its frames'
 * unit features (`framesPerVideo` frames, evenly spaced, each cut out by its own box), a pair is
 * scored by the cosine similarity of the two means, and the scores go through the k-fold
 * protocol over the pairs' folds (YTF's 10 splits). A video recurring across pairs is described once.
 */
export async function evaluateVideoPairs(recognizer: FaceRecognizer, pairs: Iterable<VideoPair> | AsyncIterable<VideoPair>, options: VideoPairEvaluationOptions = {}): Promise<PairEvaluationResult> {
  const fn = 'evaluateVideoPairs';
  if (!recognizer || typeof recognizer.embed !== 'function') throw typeError(fn, 'recognizer', 'a FaceRecognizer', recognizer);
  checkKeys(fn, options, VIDEO_PAIR_EVALUATION_OPTION_KEYS);
  checkPreparation(fn, options);
  const framesPerVideo = options.framesPerVideo ?? 100;
  if (!(framesPerVideo === Infinity || (Number.isInteger(framesPerVideo) && framesPerVideo >= 1))) throw rangeError(fn, 'framesPerVideo', 'an integer >= 1 or Infinity', framesPerVideo);
  const list: VideoPair[] = [];
  for await (const p of pairs as AsyncIterable<VideoPair>) {
    if (!p || !Array.isArray(p.videos) || p.videos.length !== 2 || !p.videos.every((v) => Array.isArray(v) && v.length > 0))
      throw typeError(fn, `pairs[${list.length}]`, '{ videos: [frames, frames] (non-empty), same, fold }', p);
    list.push(p);
  }
  if (list.length === 0) throw rangeError(fn, 'pairs', 'at least one pair', 0);
  checkFolds(fn, list, ytfSplit);
  const cache = new Map<readonly VideoFrame[], Float32Array>();
  const videoFeature = async (frames: readonly VideoFrame[]): Promise<Float32Array> => {
    const known = cache.get(frames);
    if (known) return known;
    let sum: Float32Array | null = null;
    const picked = evenlySpaced(frames.length, framesPerVideo);
    for (const k of picked) {
      const f = await faceFeature(recognizer, sourceOf(frames[k].image), { ...options, box: frames[k].box }, true);
      if (!sum) sum = new Float32Array(f.length);
      for (let d = 0; d < f.length; d++) sum[d] += f[d] / picked.length;
    }
    cache.set(frames, sum!);
    return sum!;
  };
  const scores = new Float32Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const [a, b] = list[i].videos;
    scores[i] = matchFeatures(await videoFeature(a), await videoFeature(b)).similarity;
    options.onProgress?.(i + 1, list.length);
  }
  const same = list.map((p) => p.same);
  const result = verificationAccuracy(scores, same, list.map((p) => p.fold));
  return { ...result, scores, auc: rocAuc(scores, same), eer: equalErrorRate(scores, same), pairs: list.length };
}

/**
 * YouTube Faces' pairs as {@link VideoPair}s: each video's labelled frames (in frame order) with
 * their boxes, one shared list per video; the fold is the 0-based split index (`YtfPair.split`:
 * split k of splits.txt is fold index k - 1).
 */
export async function ytfVideoPairs(ytf: Ytf, splitsFile?: string): Promise<VideoPair[]> {
  if (!(ytf instanceof Ytf)) throw typeError('ytfVideoPairs', 'ytf', 'a Ytf dataset (Ytf.open)', ytf);
  const frames = new Map<YtfVideo, VideoFrame[]>();
  const framesOf = (video: YtfVideo) => {
    let list = frames.get(video);
    if (!list) {
      list = video.frames.map((i) => {
        const sample = ytf.get(i);
        return { image: sample.image, box: sample.boxes[0] };
      });
      frames.set(video, list);
    }
    return list;
  };
  const out: VideoPair[] = [];
  for (const p of await ytf.pairs(splitsFile)) out.push({ videos: [framesOf(p.videos[0]), framesOf(p.videos[1])], same: p.same, fold: p.split });
  return out;
}
