// The demo: the shipped public-domain face (astronaut portrait crop) is degraded to a tiny face
// (MATLAB bicubic x4 down, 8-bit), super-resolved with face-x4, and shown side by side
// (LR enlarged with nearest neighbour | bicubic | lrface) with PSNR/SSIM against the original;
// the landmarks lr68 finds on the tiny face are drawn on the LR panel.
// Steps are separate functions so other packages can add panels and figures (landmarks).
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { modcrop } from '@lrface/datasets';
import { bicubicDownImage, loadSuperResolver, readDemoFace, srScores } from '@lrface/sr';
import { loadLandmarkDetector, nme } from '@lrface/landmarks';
import { drawDots, writeOutputImage } from './landmarks.mjs';

/**
 * The face box in the shipped 160x160 demo face (HR pixels): a box refined from the 68 points
 * of the reference HR detector, the same kind of box the landmark models were trained with.
 */
export const DEMO_FACE_BOX = Object.freeze({ x: 25, y: 60, width: 103, height: 97 });

/** Nearest-neighbour enlargement of 8-bit pixels (shows the LR pixels as they are). */
export function nearestUpscale(img, scale) {
  const w = img.width * scale, h = img.height * scale, c = img.channels;
  const out = new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const src = (Math.floor(y / scale) * img.width + Math.floor(x / scale)) * c;
      for (let k = 0; k < c; k++) out[(y * w + x) * c + k] = img.data[src + k];
    }
  return { data: out, width: w, height: h, channels: c };
}

/** Panels of equal height placed left to right with a gap of white pixels. */
export function sideBySide(panels, gap = 4) {
  const h = Math.max(...panels.map((p) => p.height));
  const w = panels.reduce((s, p) => s + p.width, 0) + gap * (panels.length - 1);
  const out = new Uint8Array(w * h * 3).fill(255);
  let x0 = 0;
  for (const p of panels) {
    for (let y = 0; y < p.height; y++)
      for (let x = 0; x < p.width; x++)
        for (let k = 0; k < 3; k++) out[(y * w + x0 + x) * 3 + k] = p.data[(y * p.width + x) * p.channels + (p.channels === 3 ? k : 0)];
    x0 += p.width + gap;
  }
  return { data: out, width: w, height: h, channels: 3 };
}

/** The demo's images and figures: { hr, lr, panels: [{ label, image }], figures }. */
export async function buildDemo({ model = 'face-x4', scale = 4 } = {}) {
  const hr = modcrop(await readDemoFace(), scale);
  const lrFloat = bicubicDownImage(hr, scale);
  // The tiny face as an 8-bit image, as a camera or a file would hold it.
  const lr = { ...lrFloat, data: Uint8Array.from(lrFloat.data, (v) => Math.min(255, Math.max(0, Math.round(v * 255)))) };
  const t0 = performance.now();
  const bicubic = await (await loadSuperResolver('bicubic')).upscale(lr, { scale });
  const sr = await loadSuperResolver(model);
  const out = await sr.upscale(lr, { scale });
  const ms = performance.now() - t0;
  const b = srScores(bicubic.y, hr, scale);
  const s = srScores(out.y, hr, scale);
  return {
    hr,
    lr,
    panels: [
      { label: `LR ${lr.width}x${lr.height} (nearest)`, image: nearestUpscale(lr, scale) },
      { label: 'bicubic', image: bicubic.image },
      { label: `lrface ${model}`, image: out.image },
    ],
    figures: { model, scale, lr: `${lr.width}x${lr.height}`, hr: `${hr.width}x${hr.height}`, bicubic_psnr: b.psnr, bicubic_ssim: b.ssim, psnr: s.psnr, ssim: s.ssim, ms },
  };
}

/**
 * A box in HR pixels as the same region of the x`scale` smaller image. A box spans
 * [x - 0.5, x + width - 0.5] (pixel centres at integers) and an HR position u maps to
 * (u + 0.5) / scale - 0.5, so every field simply divides by the scale.
 */
function boxOnSmallerImage(box, scale) {
  return { x: box.x / scale, y: box.y / scale, width: box.width / scale, height: box.height / scale };
}

/**
 * Landmarks on the tiny face: lr68 runs on the LR pixels directly and its points are drawn on the
 * LR panel; hr68 runs on the HR original, and their agreement is reported as NME (inter-ocular).
 */
export async function addLandmarks(demo, { scale = 4 } = {}) {
  const lrBox = boxOnSmallerImage(DEMO_FACE_BOX, scale);
  const onLr = await (await loadLandmarkDetector('lr68')).detect(demo.lr, { box: lrBox });
  const onHr = await (await loadLandmarkDetector('hr68')).detect(demo.hr, { box: DEMO_FACE_BOX });
  // LR pixel centre x maps to (x + 0.5) * scale - 0.5 in the HR (and nearest-enlarged) image.
  const lrPointsInHr = onLr.points.map(([x, y]) => [(x + 0.5) * scale - 0.5, (y + 0.5) * scale - 0.5]);
  const panel = demo.panels[0];
  panel.label += ' + lr68 landmarks';
  drawDots(panel.image, lrPointsInHr, 1);
  demo.figures.landmarks_model = 'lr68';
  demo.figures.landmarks_nme_vs_hr68 = nme(lrPointsInHr.flat(), onHr.points.flat(), { normalizer: 'inter-ocular' });
  demo.figures.landmarks = lrPointsInHr.map(([x, y]) => [Math.round(x * 10) / 10, Math.round(y * 10) / 10]);
  return demo;
}

/** Builds the demo, writes `lrface-demo.png` into outDir and prints the figures (one JSON line with json). */
export async function runDemo({ outDir = '.', json = false } = {}) {
  const demo = await addLandmarks(await buildDemo());
  const file = join(outDir, 'lrface-demo.png');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(outDir, { recursive: true });
  await writeOutputImage(file, sideBySide(demo.panels.map((p) => p.image)));
  const f = demo.figures;
  if (json) console.log(JSON.stringify({ ...f, file }));
  else {
    console.log(`lrface demo: a ${f.lr} face (public-domain astronaut portrait, MATLAB bicubic x${f.scale} down) super-resolved to ${f.hr}`);
    console.log(`  panels: ${demo.panels.map((p) => p.label).join(' | ')}`);
    console.log(`  bicubic        PSNR ${f.bicubic_psnr.toFixed(2)} dB  SSIM ${f.bicubic_ssim.toFixed(4)}`);
    console.log(`  lrface ${f.model}  PSNR ${f.psnr.toFixed(2)} dB  SSIM ${f.ssim.toFixed(4)}   (${f.ms.toFixed(0)} ms on the CPU)`);
    console.log(`  lr68 on the ${f.lr} face: 68 landmarks drawn on the LR panel; NME against hr68 on the ${f.hr} original ${f.landmarks_nme_vs_hr68.toFixed(4)} (inter-ocular)`);
    console.log(`  wrote ${file}`);
  }
  return 0;
}

/** `lrface demo --help`. */
export const demoUsage = `usage: lrface demo [--out DIR] [--json]
  a tiny face (the public-domain astronaut portrait, x4 down) super-resolved with face-x4:
  writes lrface-demo.png (LR | bicubic | lrface) and prints PSNR/SSIM
  --out DIR       folder for lrface-demo.png (default: the current folder)
  --json          print the figures as one JSON line
  -h, --help      this text`;

/** lrface demo [--out DIR] [--json]: 0, or 2 with the usage on bad arguments. */
export async function runDemoCommand(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { out: { type: 'string', default: '.' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
    }));
  } catch (err) {
    if (typeof err?.code !== 'string' || !err.code.startsWith('ERR_PARSE_ARGS_')) throw err;
    console.error(`lrface demo: ${err.message}\n\n${demoUsage}`);
    return 2;
  }
  if (values.help) {
    console.log(demoUsage);
    return 0;
  }
  return runDemo({ outDir: values.out, json: values.json });
}
