// @lrface/face-corpus: the real-face corpus (HR crops with reference points, real tiny faces).
export { buildFaceCorpus, openFaceCorpus } from './corpus.js';
export type { BuildFaceCorpusOptions, CorpusItem, CorpusSource, FaceCorpus, FaceCorpusIndex } from './corpus.js';
