import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Ytf, parseYtfLabeledFaces, parseYtfSplits } from '../src/index.js';
import { expectArgError, expectFileError, fixtures, tmp, writeTree } from './helpers.js';

const root = join(fixtures, 'ytf');

describe('YouTube Faces', () => {
  it('reads labeled_faces.txt (centre boxes, Windows paths) and groups frames into videos (fixtures)', async () => {
    const ds = await Ytf.open({ root });
    expect(ds.length).toBe(8);
    // The readme's example line "Richard_Gere\3\3.618.jpg,0,262,165,132,132,0.0,1".
    const s = ds.toArray().find((x) => x.attributes.file === 'Richard_Gere/3/3.618.jpg')!;
    expect(s.identity).toBe('Richard_Gere');
    expect(s.attributes).toEqual({ name: 'Richard_Gere', video: '3', frame: 618, file: 'Richard_Gere/3/3.618.jpg' });
    expect(s.boxes).toEqual([{ x: 262 - 66, y: 165 - 66, width: 132, height: 132 }]);
    expect(s.image.source).toBe(join(root, 'frame_images_DB/Richard_Gere/3/3.618.jpg'));
    expect((await s.image.decode()).width).toBe(32);
    expect([...ds.videos.keys()].sort()).toEqual(['Aaron_Eckhart/0', 'Richard_Gere/3', 'Richard_Gere/5']);
    const v = ds.video('Richard_Gere/3');
    expect(v.frames.map((i) => ds.get(i).attributes.frame)).toEqual([618, 619, 620]);
    const only = await Ytf.open({ root, people: ['Aaron_Eckhart'] });
    expect(only.length).toBe(3);
  });

  it('reads splits.txt with either column layout', async () => {
    const ds = await Ytf.open({ root });
    const pairs = await ds.pairs();
    expect(pairs.length).toBe(3);
    expect(pairs.toArray().map((p) => [p.split, p.a, p.b, p.same])).toEqual([
      [0, 'Richard_Gere/3', 'Richard_Gere/5', true],
      [0, 'Richard_Gere/3', 'Aaron_Eckhart/0', false],
      [1, 'Aaron_Eckhart/0', 'Richard_Gere/5', false],
    ]);
    expect(pairs.get(0).videos[1].frames.length).toBe(2);
    const dir = tmp();
    writeTree(dir, { 'splits4.txt': 'split number, first name, second name, is same\n1,Richard_Gere/3,Richard_Gere/5,1\n' });
    expect((await parseYtfSplits(join(dir, 'splits4.txt'))).map((p) => [p.split, p.a, p.b, p.same, p.line])).toEqual([[0, 'Richard_Gere/3', 'Richard_Gere/5', true, 2]]);
  });

  it('names the file and line of malformed files', async () => {
    const dir = tmp();
    const f = (name: string, text: string) => writeTree(dir, { [name]: text }) && join(dir, name);
    await expectFileError(() => parseYtfLabeledFaces(f('a.txt', 'A\\0\\0.1.jpg,0,10,10,5\n')), join(dir, 'a.txt'), { line: 1 }, 'got 5 fields');
    await expectFileError(() => parseYtfLabeledFaces(f('b.txt', 'A\\0\\0.1.jpg,0,10,10,5,5,0.0,1\nA/0.2.jpg,0,10,10,5,5,0.0,1\n')), join(dir, 'b.txt'), { line: 2 }, 'expected a frame path');
    await expectFileError(() => parseYtfLabeledFaces(f('c.txt', 'A\\0\\0.1.jpg,0,10,ten,5,5,0.0,1\n')), join(dir, 'c.txt'), { line: 1 }, 'y (face centre) must be a number');
    await expectFileError(() => parseYtfSplits(f('s.txt', 'h\n1, 1, A/0, B/1, 2\n')), join(dir, 's.txt'), { line: 2 }, 'same-person flag must be 0 or 1');
    await expectFileError(() => parseYtfSplits(f('t.txt', 'h\n1, 1, A/0, 0\n')), join(dir, 't.txt'), { line: 2 }, 'expected "split, [pair,] Name/video, Name/video, same"');
    await expectFileError(() => parseYtfSplits(f('u.txt', 'h\n0, 1, A/0, B/0, 1\n')), join(dir, 'u.txt'), { line: 2 }, 'split numbers start at 1');
    const ds = await Ytf.open({ root });
    await expectFileError(() => ds.pairs(f('v.txt', 'h\n1, 1, Richard_Gere/3, Nobody/1, 0\n')), join(dir, 'v.txt'), { line: 2 }, 'video Nobody/1 has no labelled frames');
    await expectFileError(() => Ytf.open({ root, people: ['Nobody'] }), join(root, 'frame_images_DB/Nobody.labeled_faces.txt'), {}, 'YouTube Faces labeled_faces file not found');
    await expectArgError(() => Ytf.open({ root, people: 'Aaron' as unknown as string[] }), TypeError, 'Ytf.open', 'people');
  });
});
