// The HR 68-point reference detector: face-api's FaceLandmark68Net (four dense blocks of
// depthwise-separable convolutions on a 112x112 input, global average pool, one 256 -> 136
// fully connected layer) evaluated on lrface's engine, with the trained weights read straight
// from the installed @vladmandic/face-api package (TensorFlow.js manifest, uint8-quantised).
import { join } from 'node:path';
import { add, conv2d, globalAvgPool2d, isTensor, keep, matmul, noGrad, permute, relu, reshape, scope, tensor, upsample } from '@lrface/cuda-core';
import type { Tensor } from '@lrface/cuda-core';
import { DatasetFileError, cropImage, decodeImage, imageToTensor, rangeError, tensorToImage, typeError } from '@lrface/datasets';
import type { Box, RawImage } from '@lrface/datasets';
import { faceApiModelDir, readTfjsWeights } from '@lrface/nn';

/** The net's input side. */
const INPUT_SIZE = 112;
/** face-api's per-channel mean (on 0-255 RGB); inputs are (x - mean) / 255. */
const MEAN_RGB = [122.782, 117.001, 104.298];

interface SeparableConv {
  depthwise: Tensor;
  pointwise: Tensor;
  bias: Tensor;
}

/** Options of {@link ReferenceDetector.detect68}. */
export interface Detect68Options {
  /**
   * Context added around the box on each side, as a fraction of its size, before the square
   * crop that the net sees (default 0.1: the margin that agrees best with dlib's points on the
   * human-drawn boxes of dlib's examples/faces).
   */
  margin?: number;
}

/** face-api's FaceLandmark68Net on lrface's engine. */
export class ReferenceDetector {
  private constructor(
    private readonly conv0: { filters: Tensor; bias: Tensor },
    private readonly separable: SeparableConv[][],
    private readonly fc: { weights: Tensor; bias: Tensor },
  ) {}

  /** Builds the net from face-api's weights (default: the installed package's model folder). */
  static async load(modelDir: string = faceApiModelDir('loadReferenceDetector')): Promise<ReferenceDetector> {
    const file = join(modelDir, 'face_landmark_68_model-weights_manifest.json');
    const w = await readTfjsWeights(file);
    const get = (name: string, rank: number): { shape: number[]; data: Float32Array } => {
      const v = w.get(name);
      if (!v) throw new DatasetFileError(file, {}, `weight '${name}' is missing`);
      if (v.shape.length !== rank) throw new DatasetFileError(file, { record: name }, `expected rank ${rank}, found shape [${v.shape.join(', ')}]`);
      return v;
    };
    // TF layouts -> lrface's: conv HWIO -> OIHW; depthwise HWC1 -> C1HW; pointwise 11IO -> OI11.
    const toOIHW = (v: { shape: number[]; data: Float32Array }) => keep(permute(tensor(v.data, v.shape), [3, 2, 0, 1]));
    const toDepthwise = (v: { shape: number[]; data: Float32Array }) => keep(permute(tensor(v.data, v.shape), [2, 3, 0, 1]));
    const vec = (v: { shape: number[]; data: Float32Array }) => keep(tensor(v.data, v.shape));
    return scope(() => {
      const conv0 = { filters: toOIHW(get('dense0/conv0/filters', 4)), bias: vec(get('dense0/conv0/bias', 1)) };
      const separable: SeparableConv[][] = [];
      for (let b = 0; b < 4; b++) {
        const block: SeparableConv[] = [];
        for (let c = b === 0 ? 1 : 0; c < 4; c++) {
          const p = `dense${b}/conv${c}`;
          block.push({ depthwise: toDepthwise(get(`${p}/depthwise_filter`, 4)), pointwise: toOIHW(get(`${p}/pointwise_filter`, 4)), bias: vec(get(`${p}/bias`, 1)) });
        }
        separable.push(block);
      }
      const fc = { weights: vec(get('fc/weights', 2)), bias: vec(get('fc/bias', 1)) };
      return new ReferenceDetector(conv0, separable, fc);
    });
  }

  /**
   * The net on a batch [N, 3, 112, 112] of RGB in [0, 1]: [N, 136] points in [0, 1] of the
   * input side (x0, y0, x1, y1, ...).
   */
  forward(x: Tensor): Tensor {
    if (x.shape.length !== 4 || x.shape[1] !== 3 || x.shape[2] !== INPUT_SIZE || x.shape[3] !== INPUT_SIZE)
      throw rangeError('ReferenceDetector.forward', 'x', `[N, 3, ${INPUT_SIZE}, ${INPUT_SIZE}]`, `[${x.shape.join(', ')}]`, true);
    return noGrad(() =>
      scope(() => {
        const mean = tensor(Float32Array.from(MEAN_RGB, (m) => -m / 255), [1, 3, 1, 1]);
        let h = add(x, mean);
        for (let b = 0; b < 4; b++) h = this.denseBlock(h, b);
        const pooled = reshape(globalAvgPool2d(h), [x.shape[0], 256]);
        return add(matmul(pooled, this.fc.weights), this.fc.bias);
      }),
    );
  }

  private denseBlock(x: Tensor, b: number): Tensor {
    const [c0, c1, c2, c3] = b === 0 ? [null, ...this.separable[0]] : this.separable[b];
    const out1 = relu(c0 === null ? addBias(conv2d(x, this.conv0.filters, undefined, sameStride2(x)), this.conv0.bias) : separableConv(x, c0, 2));
    const out2 = separableConv(out1, c1!, 1);
    const out3 = separableConv(relu(add(out1, out2)), c2!, 1);
    const out4 = separableConv(relu(add(add(out1, out2), out3)), c3!, 1);
    return relu(add(add(add(out1, out2), out3), out4));
  }

  /**
   * 68 points [[x, y], ...] in image coordinates for the face in `box` of an image (a file
   * path, decoded RGB pixels, or an RGB tensor [3, H, W] / [1, 3, H, W] in [0, 1]).
   */
  async detect68(image: string | RawImage | Tensor, box: Box, options: Detect68Options = {}): Promise<[number, number][]> {
    const fn = 'ReferenceDetector.detect68';
    if (box === null || typeof box !== 'object' || ![box.x, box.y, box.width, box.height].every((v) => typeof v === 'number' && Number.isFinite(v)))
      throw typeError(fn, 'box', '{x, y, width, height} of finite numbers', box);
    if (box.width <= 0 || box.height <= 0) throw rangeError(fn, 'box', 'a box of positive width and height', `${box.width}x${box.height}`, true);
    const margin = options.margin ?? 0.1;
    if (typeof margin !== 'number' || !(margin >= 0)) throw rangeError(fn, 'margin', 'a number >= 0', margin);
    let img: RawImage;
    if (typeof image === 'string') img = await decodeImage(image);
    else if (isTensor(image)) img = tensorToImage(image);
    else if (image && typeof image === 'object' && 'data' in image && 'width' in image) img = image;
    else throw typeError(fn, 'image', 'a file path, RawImage or [3, H, W] tensor', image);
    if (img.channels !== 3) throw rangeError(fn, 'image', 'an RGB image (3 channels)', `${img.channels} channels`, true);
    // face-api pads the crop to a square; cropping a square region (edges replicated) gives the same framing.
    const { image: crop, region } = cropImage(img, box, { margin, square: true, fill: 'replicate' });
    const flat = scope(() => {
      const t = imageToTensor(crop, { batch: true });
      const x = upsample(t, { size: [INPUT_SIZE, INPUT_SIZE], mode: 'bilinear' });
      return this.forward(x).data() as Float32Array;
    });
    const points: [number, number][] = [];
    for (let i = 0; i < 68; i++) points.push([region.x + flat[2 * i] * region.width, region.y + flat[2 * i + 1] * region.height]);
    return points;
  }
}

const addBias = (x: Tensor, bias: Tensor): Tensor => add(x, reshape(bias, [1, bias.shape[0], 1, 1]));

/** TF 'same' padding for a 3x3 stride-2 convolution: the odd pixel goes bottom/right. */
function sameStride2(x: Tensor): { stride: number; padding: number[] } {
  const pad = (n: number) => Math.max((Math.ceil(n / 2) - 1) * 2 + 3 - n, 0);
  const ph = pad(x.shape[2]);
  const pw = pad(x.shape[3]);
  return { stride: 2, padding: [Math.floor(ph / 2), ph - Math.floor(ph / 2), Math.floor(pw / 2), pw - Math.floor(pw / 2)] };
}

function separableConv(x: Tensor, p: SeparableConv, stride: number): Tensor {
  const c = x.shape[1];
  const opts = stride === 2 ? { ...sameStride2(x), groups: c } : { stride: 1, padding: 1, groups: c };
  const dw = conv2d(x, p.depthwise, undefined, opts);
  return conv2d(dw, p.pointwise, p.bias);
}

/** Loads the reference 68-point detector (face-api's FaceLandmark68Net weights on lrface's engine). */
export function loadReferenceDetector(modelDir?: string): Promise<ReferenceDetector> {
  return ReferenceDetector.load(modelDir);
}
