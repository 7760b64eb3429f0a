#!/usr/bin/env node
// The `lrface` command.
import { runBenchCommand } from '../src/bench.mjs';
import { runDemoCommand } from '../src/demo.mjs';
import { runEvalLandmarks } from '../src/eval-landmarks.mjs';
import { runLandmarks } from '../src/landmarks.mjs';
import { runEvalSr, runSr, srUsage } from '../src/sr.mjs';
import { runTrain } from '../src/train.mjs';
import { runEvalIdentify, runEvalVerify, runVerify } from '../src/verify.mjs';

const usage = () => `usage: lrface <command> [options]

commands:
  demo [--out DIR] [--json]
                    a tiny face (the public-domain astronaut portrait, x4 down) super-resolved with
                    face-x4: writes lrface-demo.png (LR | bicubic | lrface) and prints PSNR/SSIM
${srUsage}
  bench [--only NAME,...] [--device ID] [--threads N] [--repeats N] [--json]
                    median milliseconds of the main jobs here (super-resolution, landmarks, features, a training step)
  devices           the devices the engine can use here
  landmarks <image> --box x,y,w,h [--model lr68|hr68|lgcn] [--weights FILE] [--no-flip] [--out overlay.png] [--json]
                    68 face landmarks in image coordinates (lr68: tiny faces of 20-40 px)
  eval-landmarks (--w300 DIR [--subset NAME] | --dlib-xml FILE) [--model lr68|hr68|lgcn] [--weights FILE] [--low-resolution S] [--json]
                    NME / AUC / failure rate on annotated faces, optionally shrunk to S px first
  verify <imageA> <imageB> (--model face-api | --weights FILE) [--box-a x,y,w,h] [--box-b x,y,w,h] [--json]
                    whether two faces are the same person, from a recognition network's features
                    (face-api's trained ResNet29, or FRNET/LightCNN/ResNet29 weights of your own)
  eval-verify --pairs FILE --images DIR (--model face-api | --weights FILE) [--low-resolution S] [--hallucinate face-x4] [--json]
                    LFW's 10-fold verification protocol, optionally on faces shrunk to S px (and super-resolved)
  eval-identify --tinyface DIR (--model face-api | --weights FILE) [--no-distractors] [--low-resolution S] [--hallucinate face-x4] [--json]
                    TinyFace's closed-set identification: rank-1/5/10/20 and mAP
  train sr --model NAME --images DIR --steps N --out FILE.safetensors [--init FILE] [--checkpoint FILE] [--eval DIR] [--json]
                    trains a super-resolution model on a folder of HR images (resumable); the weights
                    load with \`lrface sr --weights\` and \`lrface eval-sr --weights\` (lrface train --help)
  train recognition --arch frnet|lightcnn9|lightcnn29 --images DIR --steps N --out FILE.safetensors [--downscale K] [--json]
                    trains a recogniser (softmax + center loss) on identity sub-folders; \`lrface verify --weights\` loads it
  train landmarks --arch lgcn (--w300 DIR | --dlib-xml FILE) --steps N --out FILE.safetensors [--config JSON] [--json]
                    trains LGCN and fits its PCA shape model; \`lrface landmarks --model lgcn --weights\` loads it
  train dic (--w300 DIR | --dlib-xml FILE) --steps N --out FILE.safetensors [--config JSON] [--json]
                    trains DIC (x8 face SR with landmark estimation); \`lrface sr --model dic --weights\` runs it
  help              this text`;

async function main(argv) {
  const [command, ...rest] = argv;
  switch (command) {
    case 'demo':
      return runDemoCommand(rest);
    case 'sr':
      return runSr(rest);
    case 'eval-sr':
      return runEvalSr(rest);
    case 'landmarks':
      return runLandmarks(rest);
    case 'eval-landmarks':
      return runEvalLandmarks(rest);
    case 'verify':
      return runVerify(rest);
    case 'eval-verify':
      return runEvalVerify(rest);
    case 'eval-identify':
      return runEvalIdentify(rest);
    case 'train':
      return runTrain(rest);
    case 'bench':
      return runBenchCommand(rest);
    case 'devices': {
      const devicesUsage = 'usage: lrface devices   (prints the devices the engine can use here and its build info, as JSON)';
      // It takes no options: a typo such as `lrface devices --json` should not pass unnoticed.
      const bad = rest.find((a) => a !== '--help' && a !== '-h');
      if (bad !== undefined) {
        console.error(`lrface devices: unexpected argument '${bad}'\n\n${devicesUsage}`);
        return 2;
      }
      if (rest.length) {
        console.log(devicesUsage);
        return 0;
      }
      const core = await import('@lrface/cuda-core');
      console.log(JSON.stringify({ devices: core.devices(), build: core.buildInfo() }, null, 2));
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(usage());
      return 0;
    default:
      console.error(`lrface: unknown command '${command}'\n\n${usage()}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code ?? 0),
  (err) => {
    console.error(`lrface: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
