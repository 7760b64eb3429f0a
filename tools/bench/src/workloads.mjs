// The benchmark workloads: layers and forwards of the seed networks, each written once over
// the op set of net.mjs so lrface and onnxruntime run the same graph on the same weights.

/** conv + optional ReLU. */
const convRelu = (f, x, name, o) => f.convRelu(x, name, o);

/**
 * Residual block without normalisation (BatchNorm folds into the conv bias at inference):
 * relu(conv3x3(relu(conv3x3(x))) + shortcut), shortcut a 1x1 conv when the width changes.
 */
function residualBlock(f, x, name, cin, cout) {
  return f.block(() => residualBody(f, x, name, cin, cout));
}

function residualBody(f, x, name, cin, cout) {
  const h = convRelu(f, x, `${name}.conv1`, { in: cin, out: cout, kernel: 3, padding: 1 });
  const s = cin === cout ? x : f.conv(x, `${name}.proj`, { in: cin, out: cout, kernel: 1 });
  return f.convAddRelu(h, `${name}.conv2`, { in: cout, out: cout, kernel: 3, padding: 1 }, s);
}

/**
 * SRINC inception module (01_srinc.md: the internals are not recoverable from the sources,
 * so this is the document's placeholder, GoogLeNet-v1 style without reduction): four
 * branches of 32 channels each, ReLU after every conv, concatenated back to 128 channels.
 */
function inception(f, x, name) {
  return f.block(() => inceptionBody(f, x, name));
}

function inceptionBody(f, x, name) {
  const o = (cin, cout, kernel) => ({ in: cin, out: cout, kernel, padding: (kernel - 1) / 2 });
  const a = convRelu(f, x, `${name}.a`, o(128, 32, 1));
  const b = convRelu(f, convRelu(f, x, `${name}.b1`, o(128, 32, 1)), `${name}.b2`, o(32, 32, 3));
  const c = convRelu(f, convRelu(f, x, `${name}.c1`, o(128, 32, 1)), `${name}.c2`, o(32, 32, 5));
  const d = convRelu(f, f.maxPool(x, { kernel: 3, stride: 1, padding: 1 }), `${name}.d`, o(128, 32, 1));
  return f.concat([a, b, c, d], 1);
}

/**
 * Widths of the U-Net heatmap generator G2 (05_kumar_chellappa_lr_landmarks.md): the paper
 * fixes the block structure (16 residual blocks, encoder 4 groups of 2 with a 2x2 max-pool
 * after each group, decoder 4 groups of 2, encoder->decoder skips, N+1 = 69 output maps at
 * 32x32) but not the widths or the upsampling op; these are the toolkit's defaults.
 */
const UNET = { stem: 64, encoder: [64, 128, 256, 256], decoder: [256, 128, 64, 64], maps: 69 };

/** FRNET (Face-ResNet of the center-loss release, 06_wu_...md): [width, residual units] per stage. */
const FRNET_STAGES = [
  [64, 1],
  [128, 2],
  [256, 5],
  [512, 3],
];

/** @type {import('./net.mjs').Workload[]} */
export const workloads = [
  {
    id: 'conv3x3_128',
    description: 'conv 3x3 128->128, 64x64, pad 1, N=8, bias',
    inputs: [{ name: 'x', shape: [8, 128, 64, 64] }],
    forward: (f, [x]) => f.conv(x, 'conv', { in: 128, out: 128, kernel: 3, padding: 1 }),
    conv: { n: 8, c: 128, h: 64, w: 64, o: 128, k: 3, padding: 1 },
  },
  {
    id: 'conv9x9_3to64',
    description: 'conv 9x9 3->64, 128x128, pad 4, N=8, bias',
    inputs: [{ name: 'x', shape: [8, 3, 128, 128] }],
    forward: (f, [x]) => f.conv(x, 'conv', { in: 3, out: 64, kernel: 9, padding: 4 }),
    conv: { n: 8, c: 3, h: 128, w: 128, o: 64, k: 9, padding: 4 },
  },
  {
    id: 'srcnn_915',
    description: 'SRCNN 9-1-5 (3->64->32->3, ReLU, same padding), 128x128, N=8',
    inputs: [{ name: 'x', shape: [8, 3, 128, 128] }],
    forward: (f, [x]) => {
      const h1 = convRelu(f, x, 'conv1', { in: 3, out: 64, kernel: 9, padding: 4 });
      const h2 = convRelu(f, h1, 'conv2', { in: 64, out: 32, kernel: 1 });
      return f.conv(h2, 'conv3', { in: 32, out: 3, kernel: 5, padding: 2 });
    },
  },
  {
    id: 'vdsr20',
    description: 'VDSR: 1->64, 18x 64->64, 64->1, 3x3, ReLU, residual add; 1x1x128x128',
    inputs: [{ name: 'x', shape: [1, 1, 128, 128] }],
    forward: (f, [x]) => {
      const layers = [(h) => convRelu(f, h, 'conv1', { in: 1, out: 64, kernel: 3, padding: 1 })];
      for (let i = 2; i <= 19; i++) layers.push((h) => convRelu(f, h, `conv${i}`, { in: 64, out: 64, kernel: 3, padding: 1 }));
      layers.push((h) => f.conv(h, 'conv20', { in: 64, out: 1, kernel: 3, padding: 1 }));
      return f.add(f.chain(x, layers), x);
    },
  },
  {
    id: 'conv3x3_64_b32',
    description: 'conv 3x3 64->64, 32x32, pad 1, N=32, bias',
    inputs: [{ name: 'x', shape: [32, 64, 32, 32] }],
    forward: (f, [x]) => f.conv(x, 'conv', { in: 64, out: 64, kernel: 3, padding: 1 }),
    conv: { n: 32, c: 64, h: 32, w: 32, o: 64, k: 3, padding: 1 },
  },
  {
    id: 'gemm1024',
    description: 'matmul 1024x1024x1024, both operands runtime inputs',
    inputs: [
      { name: 'a', shape: [1024, 1024] },
      { name: 'b', shape: [1024, 1024] },
    ],
    forward: (f, [a, b]) => f.matmul(a, b),
  },
  {
    id: 'maxpool2x2',
    description: 'max-pool 2x2 stride 2 on 8x128x64x64',
    inputs: [{ name: 'x', shape: [8, 128, 64, 64] }],
    forward: (f, [x]) => f.maxPool(x, { kernel: 2, stride: 2 }),
    // Bytes read plus bytes written.
    bytes: 8 * 128 * 64 * 64 * 4 * (1 + 1 / 4),
  },
  {
    id: 'srinc_body',
    description: 'SRINC: conv3x3 1->128, 19 inception modules (placeholder branches), conv3x3 128->1, residual add; 1x1x128x128',
    inputs: [{ name: 'x', shape: [1, 1, 128, 128] }],
    forward: (f, [x]) => {
      const stages = [(h) => convRelu(f, h, 'conv1', { in: 1, out: 128, kernel: 3, padding: 1 })];
      for (let i = 0; i < 19; i++) stages.push((h) => inception(f, h, `inception${i}`));
      stages.push((h) => f.conv(h, 'conv_out', { in: 128, out: 1, kernel: 3, padding: 1 }));
      return f.add(f.chain(x, stages), x);
    },
  },
  {
    id: 'unet_heatmap_32',
    description: 'U-Net heatmap generator G2: 16 residual blocks, 3x32x32 -> 69 maps, N=8',
    inputs: [{ name: 'x', shape: [8, 3, 32, 32] }],
    forward: (f, [x]) => {
      let h = convRelu(f, x, 'stem', { in: 3, out: UNET.stem, kernel: 3, padding: 1 });
      let c = UNET.stem;
      const skips = [];
      UNET.encoder.forEach((width, g) => {
        h = residualBlock(f, h, `enc${g}.0`, c, width);
        h = residualBlock(f, h, `enc${g}.1`, width, width);
        c = width;
        skips.push({ t: h, c });
        h = f.maxPool(h, { kernel: 2, stride: 2 });
      });
      UNET.decoder.forEach((width, g) => {
        const skip = skips[skips.length - 1 - g];
        h = f.concat([f.upsample2x(h), skip.t], 1);
        h = residualBlock(f, h, `dec${g}.0`, c + skip.c, width);
        h = residualBlock(f, h, `dec${g}.1`, width, width);
        c = width;
      });
      return f.conv(h, 'head', { in: c, out: UNET.maps, kernel: 1 });
    },
  },
  {
    id: 'frnet_forward',
    description: 'FRNET (Face-ResNet, PReLU) 3x112x96 -> 512-d feature, N=8',
    inputs: [{ name: 'x', shape: [8, 3, 112, 96] }],
    forward: (f, [x]) => {
      const cp = (h, name, cin, cout, padding) => f.prelu(f.conv(h, name, { in: cin, out: cout, kernel: 3, padding }), `${name}.prelu`, cout);
      let h = cp(x, 'conv1a', 3, 32, 0);
      let c = 32;
      FRNET_STAGES.forEach(([width, units], s) => {
        // Stage 1 opens with conv1b; later stages with their transition conv; both are 3x3 valid.
        h = f.maxPool(cp(h, `conv${s + 1}${s === 0 ? 'b' : ''}`, c, width, 0), { kernel: 2, stride: 2 });
        c = width;
        for (let u = 0; u < units; u++) {
          const x = h;
          h = f.block(() => f.add(cp(cp(x, `res${s + 2}_${u}.conv1`, c, c, 1), `res${s + 2}_${u}.conv2`, c, c, 1), x));
        }
      });
      return f.linear(f.flatten(h), 'fc5', { in: 512 * 5 * 4, out: 512 });
    },
  },
];

export const workloadIds = workloads.map((w) => w.id);
