/**
 * @lrface/recognition: low-resolution face recognition. FRNET, LightCNN-9 and LightCNN-29,
 * dlib's ResNet29 with face-api's trained weights,
 * the joint hallucination + recognition model trained with center loss, training batches from
 * identity-labelled faces, a recogniser for images, and the verification (LFW, YTF) and
 * identification (TinyFace) protocols.
 * @packageDocumentation
 */
export * from './models.js';
export * from './resnet29.js';
export * from './metrics.js';
export * from './train.js';
export * from './weights.js';
export * from './recognizer.js';
export * from './evaluate.js';
export { writeFace } from './preprocess.js';
