// Agreement of the reference detector with dlib's points (dlib examples/faces) and FAN's (AFLW photo), per crop margin.
// Usage: node tools/face-corpus/scripts/agreement.mjs [shared data folder]
import { loadReferenceDetector } from '../dist/index.js';
import { findSharedData } from './shared-data.mjs';
import { DlibXml } from '@lrface/datasets';
import { readFileSync } from 'node:fs';
const D = (process.argv[2] ?? findSharedData()).replace(/\/?$/, '/');
const det = await loadReferenceDetector();
const ioNorm = (p) => Math.hypot(p[36*2]-p[45*2], p[36*2+1]-p[45*2+1]);
for (const margin of [0, 0.1, 0.2]) {
  const nmes = [];
  for (const xml of ['training_with_face_landmarks.xml', 'testing_with_face_landmarks.xml']) {
    const ds = await DlibXml.open({ file: D + 'dlib-faces/' + xml });
    for (const s of ds) for (let k = 0; k < s.boxes.length; k++) {
      const ref = s.landmarks[k]; if (!ref || !Number.isFinite(ref[0])) continue;
      const pts = await det.detect68(s.image.source, s.boxes[k], { margin });
      let e = 0; for (let i = 0; i < 68; i++) e += Math.hypot(pts[i][0]-ref[2*i], pts[i][1]-ref[2*i+1]);
      nmes.push(e / 68 / ioNorm(ref));
    }
  }
  nmes.sort((a,b)=>a-b);
  console.log(`margin ${margin}: dlib faces n=${nmes.length} mean NME(io) ${(nmes.reduce((a,b)=>a+b)/nmes.length).toFixed(4)} median ${nmes[nmes.length>>1].toFixed(4)} max ${nmes.at(-1).toFixed(4)}`);
}
const ref = JSON.parse(readFileSync(D+'misc-faces/face-alignment/aflw-test.reference_3d_68.json','utf8')).points_xyz.flatMap(p=>[p[0],p[1]]);
let x0=1e9,y0=1e9,x1=-1e9,y1=-1e9; for(let i=0;i<68;i++){x0=Math.min(x0,ref[2*i]);x1=Math.max(x1,ref[2*i]);y0=Math.min(y0,ref[2*i+1]);y1=Math.max(y1,ref[2*i+1]);}
for (const margin of [0, 0.1, 0.2]) {
  const pts = await det.detect68(D+'misc-faces/face-alignment/aflw-test.jpg', {x:x0,y:y0,width:x1-x0,height:y1-y0}, { margin });
  let e=0; for (let i=0;i<68;i++) e+=Math.hypot(pts[i][0]-ref[2*i],pts[i][1]-ref[2*i+1]);
  console.log(`margin ${margin}: aflw NME(io) ${(e/68/ioNorm(ref)).toFixed(4)}`);
}
