// @lrface/face-corpus: the real-face corpus (HR crops with reference points, real tiny faces).
export { buildFaceCorpus, openFaceCorpus, readBoxesFile, differenceHash, hammingDistance, REFERENCE_LANDMARKS } from './corpus.js';
export type { BuildFaceCorpusOptions, ExtraSource, CorpusItem, CorpusSource, FaceCorpus, FaceCorpusIndex } from './corpus.js';
export { ReferenceDetector, loadReferenceDetector } from './detector.js';
export type { Detect68Options } from './detector.js';
export { refineFaceBox, boxFromPoints, boxIou, pointsBoundingBox, implausibleFacePoints } from './refine.js';
export type { RefineFaceBoxOptions, RefinedFace } from './refine.js';
