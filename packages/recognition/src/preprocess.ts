// Turning a face in an image into a network input: the face box (default the whole image),
// made square about its centre and widened by a margin, warped to the network's size. Training
// batches and the recogniser share it, so a network sees at inference what it saw in training.
import { convertColor, cropAffine, grayToRgb, warpAffine, writeCHW, type AugmentParams, type Box, type RawImage } from '@lrface/datasets';
import { rangeError } from '@lrface/cuda-core';

/** Writes the face of `image` as CHW floats in [0, 1] of size [channels, h, w] at `offset` of `out`. */
export function writeFace(
  image: RawImage,
  box: Box | undefined,
  channels: number,
  h: number,
  w: number,
  margin: number,
  augment: AugmentParams | undefined,
  out: Float32Array,
  offset: number,
): void {
  const region = box ?? { x: 0, y: 0, width: image.width, height: image.height };
  let face: RawImage = warpAffine(image, cropAffine(region, [h, w], margin, augment), w, h, { fill: 'replicate' });
  if (channels === 1 && face.channels !== 1) face = convertColor(face, 'gray');
  if (channels === 3) face = grayToRgb(face);
  if (face.channels !== channels) throw rangeError('writeFace', 'image', `an image with 1 or 3 channels for a ${channels}-channel network`, `${face.channels} channels`, true);
  writeCHW(face, out, offset, face.data instanceof Uint8Array ? 1 / 255 : 1);
}
