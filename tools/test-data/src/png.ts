// A minimal PNG decoder for test data (8-bit grey/RGB/RGBA, non-interlaced), so the engine's
// tests can read real images without depending on the image package.
import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';

export interface DecodedImage {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
}

export function decodePng(path: string): DecodedImage {
  const buf = readFileSync(path);
  const signature = [137, 80, 78, 71, 13, 10, 26, 10];
  if (!signature.every((b, i) => buf[i] === b)) throw new Error(`${path}: not a PNG file`);
  let pos = 8;
  let width = 0;
  let height = 0;
  let colorType = 0;
  const idat: Buffer[] = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    const body = buf.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      if (body[8] !== 8 || body[12] !== 0) throw new Error(`${path}: only 8-bit non-interlaced PNG is supported`);
      colorType = body[9];
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    pos += 12 + len;
  }
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[colorType as 0 | 2 | 4 | 6];
  if (!channels) throw new Error(`${path}: unsupported PNG colour type ${colorType}`);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? out[y * stride + x - channels] : 0;
      const b = y > 0 ? out[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? out[(y - 1) * stride + x - channels] : 0;
      let v = line[x];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[y * stride + x] = v & 255;
    }
  }
  return { width, height, channels, data: out };
}

/** MATLAB rgb2ycbcr's Y (BT.601, [16, 235]) scaled to [0, 1]. */
export function lumaOf(img: DecodedImage): Float32Array {
  const n = img.width * img.height;
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = img.data[i * img.channels] / 255;
    const g = img.data[i * img.channels + 1] / 255;
    const b = img.data[i * img.channels + 2] / 255;
    y[i] = (16 + 65.481 * r + 128.553 * g + 24.966 * b) / 255;
  }
  return y;
}
