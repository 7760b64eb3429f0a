// Face features and comparisons from images: the face (a box, or the whole image) warped to
// the network's input as in training, the network's feature, unit length, cosine similarity.
import * as ops from '@lrface/cuda-core';
import { checkKeys, rangeError, typeError, type Tensor } from '@lrface/cuda-core';
import { checkBox, checkImage, decodeImage, type Box, type RawImage } from '@lrface/datasets';
import { RECOGNITION_ARCHS, checkNetworkInput, type RecognitionNetwork } from './models.js';
import { writeFace } from './preprocess.js';
import { l2Normalize, matchFeatures } from './metrics.js';
import { loadRecognitionNetwork, type LoadRecognitionOptions } from './weights.js';
import { loadFaceApiResNet29 } from './resnet29.js';

/** A face to describe: an image file, encoded bytes, decoded pixels, or a network-ready tensor [N, C, H, W] in [0, 1]. */
export type FaceInput = string | Uint8Array | RawImage | Tensor;

export interface EmbedOptions {
  /** The face in the image (default: the whole image, e.g. an aligned crop). */
  box?: Box;
}

export interface RecognizerOptions {
  /** Margin around the face box as a fraction of its side (default 0). Use what training used. */
  margin?: number;
  /** Where the network runs (default: where it is). */
  device?: ops.DeviceSpec;
}

const RECOGNIZER_OPTION_KEYS: Record<keyof RecognizerOptions, true> = { margin: true, device: true };
const EMBED_OPTION_KEYS: Record<keyof EmbedOptions | 'normalize', true> = { box: true, normalize: true };
const INPUT_OPTION_KEYS: Record<keyof EmbedOptions, true> = { box: true };
const FEATURES_OPTION_KEYS: Record<'normalize', true> = { normalize: true };
const PAIR_OPTION_KEYS: Record<'boxA' | 'boxB', true> = { boxA: true, boxB: true };
const LOAD_FACE_API_OPTION_KEYS: Record<keyof RecognizerOptions | 'modelDir', true> = { ...RECOGNIZER_OPTION_KEYS, modelDir: true };
const LOAD_RECOGNIZER_OPTION_KEYS: Record<keyof (LoadRecognitionOptions & RecognizerOptions), true> = { ...RECOGNIZER_OPTION_KEYS, arch: true, config: true };

export class FaceRecognizer {
  readonly margin: number;
  constructor(readonly network: RecognitionNetwork, options: RecognizerOptions = {}) {
    if (!network || !RECOGNITION_ARCHS.includes(network.arch)) throw typeError('FaceRecognizer', 'network', 'a recognition network', network);
    checkKeys('FaceRecognizer', options, RECOGNIZER_OPTION_KEYS);
    this.margin = options.margin ?? 0;
    if (typeof this.margin !== 'number' || !(this.margin >= 0)) throw new RangeError(`FaceRecognizer: 'margin' must be a number >= 0, got ${this.margin}`);
    if (options.device) network.to(options.device);
    network.eval();
  }

  /** The network input [1, C, H, W] for one face. */
  async input(face: FaceInput, options: EmbedOptions = {}): Promise<Tensor> {
    checkKeys('FaceRecognizer.input', options, INPUT_OPTION_KEYS);
    return this.inputAs('FaceRecognizer.input', face, options.box, 'box');
  }

  /** input() with the caller's name and the name its box goes by (boxA / boxB in match) for messages. */
  private async inputAs(fn: string, face: FaceInput, box: Box | undefined, boxArg: string): Promise<Tensor> {
    if (ops.isTensor(face)) {
      // A network input is already the face: a box there would be ignored without a word.
      if (box !== undefined) throw rangeError(fn, boxArg, 'left out for a network-input tensor (it is the face already)', box);
      return checkNetworkInput(fn, face, this.network.inputShape);
    }
    let image: RawImage;
    // Photos as a viewer shows them: faces and boxes are upright.
    if (typeof face === 'string' || face instanceof Uint8Array) image = await decodeImage(face, { orientation: 'exif' });
    else image = checkImage(fn, 'face', face);
    if (box !== undefined) checkBox(fn, boxArg, box, image);
    const [c, h, w] = this.network.inputShape;
    const out = new Float32Array(c * h * w);
    writeFace(image, box, c, h, w, this.margin, undefined, out, 0);
    return ops.tensor(out, [1, c, h, w]);
  }

  /** Features [N, D] of a batch of network inputs, scaled to unit length unless `normalize` is false. */
  features(x: Tensor, options: { normalize?: boolean } = {}): Tensor {
    checkKeys('FaceRecognizer.features', options, FEATURES_OPTION_KEYS);
    const normalize = options.normalize ?? true;
    return ops.noGrad(() =>
      ops.scope(() => {
        const f = this.network.forward(x.to(this.network.device as ops.DeviceSpec)).to('cpu');
        return normalize ? l2Normalize(f) : f;
      }),
    );
  }

  /** The feature of one face: unit length, or as the network gives it with `normalize: false`. */
  async embed(face: FaceInput, options: EmbedOptions & { normalize?: boolean } = {}): Promise<Float32Array> {
    checkKeys('FaceRecognizer.embed', options, EMBED_OPTION_KEYS);
    return this.embedAs('FaceRecognizer.embed', face, options.box, 'box', options.normalize);
  }

  private async embedAs(fn: string, face: FaceInput, box: Box | undefined, boxArg: string, normalize?: boolean): Promise<Float32Array> {
    const x = await this.inputAs(fn, face, box, boxArg);
    try {
      if (x.shape[0] !== 1) throw new RangeError(`${fn}: 'face' must be one face, got a batch of ${x.shape[0]} (use features())`);
      const f = this.features(x, { normalize });
      const data = f.data() as Float32Array;
      f.dispose();
      return data;
    } finally {
      if (x !== face) x.dispose();
    }
  }

  /**
   * Both measures of two faces from one pass each: the cosine similarity of their features (in
   * [-1, 1]) and the Euclidean distance between the features as the network gives them
   * (face-api's rule for ResNet29: the same person below 0.6).
   */
  async match(a: FaceInput, b: FaceInput, options: { boxA?: Box; boxB?: Box } = {}): Promise<{ similarity: number; distance: number }> {
    checkKeys('FaceRecognizer.match', options, PAIR_OPTION_KEYS);
    const fa = await this.embedAs('FaceRecognizer.match', a, options.boxA, 'boxA', false);
    const fb = await this.embedAs('FaceRecognizer.match', b, options.boxB, 'boxB', false);
    return matchFeatures(fa, fb);
  }

  /** Cosine similarity of two faces' features, in [-1, 1]. */
  async compare(a: FaceInput, b: FaceInput, options: { boxA?: Box; boxB?: Box } = {}): Promise<number> {
    checkKeys('FaceRecognizer.compare', options, PAIR_OPTION_KEYS);
    return (await this.match(a, b, options)).similarity;
  }

  /** Euclidean distance between two faces' features as the network gives them. */
  async distance(a: FaceInput, b: FaceInput, options: { boxA?: Box; boxB?: Box } = {}): Promise<number> {
    checkKeys('FaceRecognizer.distance', options, PAIR_OPTION_KEYS);
    return (await this.match(a, b, options)).distance;
  }
}

/**
 * The HR face recogniser that ships with @vladmandic/face-api: dlib's ResNet29 with its trained
 * weights, read from the installed package (or `modelDir`). Faces are warped to 150x150 from
 * their box (default the whole image), as face-api does with a detection box.
 */
export async function loadFaceApiRecognizer(options: RecognizerOptions & { modelDir?: string } = {}): Promise<FaceRecognizer> {
  checkKeys('loadFaceApiRecognizer', options, LOAD_FACE_API_OPTION_KEYS);
  const { modelDir, ...rest } = options;
  return new FaceRecognizer(await loadFaceApiResNet29({ modelDir }, 'loadFaceApiRecognizer'), rest);
}

/** A recogniser for the network in a weights file (see {@link loadRecognitionNetwork}). */
export function loadRecognizer(file: string, options: LoadRecognitionOptions & RecognizerOptions = {}): FaceRecognizer {
  checkKeys('loadRecognizer', options, LOAD_RECOGNIZER_OPTION_KEYS);
  const { arch, config, ...rest } = options;
  return new FaceRecognizer(loadRecognitionNetwork(file, { arch, config }), rest);
}
