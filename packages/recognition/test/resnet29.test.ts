// dlib's ResNet29 with face-api's trained weights against face-api's own forward pass
// (TensorFlow.js on the CPU, from the installed @vladmandic/face-api), and on real faces.
import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { faceApiModelDir, readTfjsWeights } from '@lrface/nn';
import { RecognitionTrainer, ResNet29, loadFaceApiRecognizer, loadFaceApiResNet29, readFaceApiRecognitionWeights } from '../src/index.js';
import { FACE_FILES, LFW_FACE_BOX, haveFaceApi, haveFaces, mean } from './helpers.js';


/** A deterministic 150x150 RGB image on the 8-bit scale, HWC (face-api's layout). */
function testImage(): Float32Array {
  const hwc = new Float32Array(150 * 150 * 3);
  for (let i = 0; i < hwc.length; i++) hwc[i] = Math.round(127 + 100 * Math.sin(i * 0.37) * Math.cos(i * 0.011));
  return hwc;
}

function toNchw(hwc: Float32Array, size: number): lr.Tensor {
  const plane = size * size;
  const chw = new Float32Array(hwc.length);
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) chw[c * plane + p] = hwc[p * 3 + c] / 255;
  return lr.tensor(chw, [1, 3, size, size]);
}

describe('ResNet29', () => {
  it("has face-api's layer names and maps [N, 3, 150, 150] to [N, 128]; the last unit's branch is empty at 2x2, as in face-api", () => {
    const net = new ResNet29().eval();
    const keys = [...net.stateDict().keys()];
    expect(keys).toContain('conv32_down.weight');
    expect(keys).toContain('conv256_down_out.conv2.bias');
    expect(keys).toContain('fc.weight');
    expect(keys).not.toContain('fc.bias');
    expect(keys).not.toContain('mean');
    expect(net.stateDict().get('conv64_down.conv1.weight')!.shape).toEqual([64, 32, 3, 3]);
    expect(net.forward(lr.rand([2, 3, 150, 150])).shape).toEqual([2, 128]);
    // At 2x2 the down unit is relu(avgpool(x)) with zero channels appended: conv weights do not matter.
    const unit = (net as unknown as Record<string, { forward(x: lr.Tensor): lr.Tensor }>).conv256_down_out;
    const x = lr.randn([1, 256, 2, 2]);
    const pooled = lr.relu(lr.avgPool2d(x, { kernelSize: 2 }));
    expect(Array.from(unit.forward(x).data())).toEqual(Array.from(pooled.data()));
    expect(() => new ResNet29({ inputSize: 70 })).toThrow(/'inputSize'/);
    expect(() => net.forward(lr.rand([1, 3, 112, 112]))).toThrow(/ResNet29\.forward: 'x' must be shape \[N, 3, 150, 150\]/);
    expect(() => net.classify(lr.rand([1, 128]))).toThrow(/no classification head/);
  });

  it.skipIf(!haveFaceApi)("gives face-api's descriptor (its TensorFlow.js forward on the CPU) to 1e-5", async () => {
    // TensorFlow.js's node platform wants node's util; as a browser platform it runs on its CPU backend.
    (globalThis as Record<string, unknown>).window = { document: {} };
    const faceapi = await import('@vladmandic/face-api/dist/face-api.esm.js' as string);
    const tf = faceapi.tf;
    await tf.setBackend('cpu');
    const weights = await readTfjsWeights(`${faceApiModelDir()}/face_recognition_model-weights_manifest.json`);
    const map: Record<string, unknown> = {};
    for (const [k, v] of weights) map[k] = tf.tensor(v.data, v.shape);
    const reference = new faceapi.FaceRecognitionNet();
    reference.loadFromWeightMap(map);
    const hwc = testImage();
    const expected = (await reference.computeFaceDescriptor(tf.tensor(hwc, [1, 150, 150, 3]))) as Float32Array;
    const net = (await loadFaceApiResNet29()).eval();
    const got = net.forward(toNchw(hwc, 150)).data();
    let diff = 0;
    for (let i = 0; i < 128; i++) diff = Math.max(diff, Math.abs(got[i] - expected[i]));
    expect(diff).toBeLessThan(1e-5);
    expect(Math.hypot(...expected)).toBeGreaterThan(0.5);
  });

  it.skipIf(!haveFaceApi || !haveFaces)('on real photographs: the two LFW images of one man are within face-api\'s 0.6, and closer than anyone else', async () => {
    const rec = await loadFaceApiRecognizer();
    const same = await rec.distance(FACE_FILES[5], FACE_FILES[6], { boxA: LFW_FACE_BOX, boxB: LFW_FACE_BOX });
    expect(same).toBeLessThan(0.6);
    for (let i = 0; i < 5; i++) expect(await rec.distance(FACE_FILES[i], FACE_FILES[5], { boxB: LFW_FACE_BOX })).toBeGreaterThan(same);
    // Unit features: cosine similarity agrees with the distance ordering.
    expect(await rec.compare(FACE_FILES[5], FACE_FILES[6], { boxA: LFW_FACE_BOX, boxB: LFW_FACE_BOX })).toBeGreaterThan(await rec.compare(FACE_FILES[0], FACE_FILES[5], { boxB: LFW_FACE_BOX }));
  });

  it.skipIf(!haveFaceApi || !haveFaces)('fine-tunes with a new head on low-resolution faces (loss falls)', async () => {
    const { identityBatches } = await import('../src/index.js');
    const { identityFaces } = await import('./helpers.js');
    lr.manualSeed(7);
    const net = await loadFaceApiResNet29({ numClasses: 6 });
    const trainer = new RecognitionTrainer(net, { optimizer: 'adam', lr: 5e-4, centerLossWeight: 0.003 });
    const batches = identityBatches(await identityFaces(), { batchSize: 7, inputShape: net.inputShape, lowResolutionScale: 6, seed: 2 });
    const log: number[] = [];
    for (let epoch = 0; epoch < 12; epoch++) for (const b of batches) log.push(trainer.trainStep({ images: b.images, labels: b.labels }).softmax);
    expect(mean(log.slice(-2))).toBeLessThan(0.7 * mean(log.slice(0, 2)));
  });

  it('names the weights file when face-api\'s model is not where it is asked for', async () => {
    await expect(readFaceApiRecognitionWeights('/nonexistent/model')).rejects.toThrow(/\/nonexistent\/model\/face_recognition_model-weights_manifest\.json: cannot read the weights manifest/);
  });
});
