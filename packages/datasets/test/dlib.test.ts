import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DlibXml, parseXml } from '../src/index.js';
import { data, expectFileError, have, tmp, writeTree } from './helpers.js';

const dir = join(data, 'dlib-faces');
const haveDlib = have('dlib-faces/training_with_face_landmarks.xml', 'dlib-faces/training.xml', 'dlib-faces/testing_with_face_landmarks.xml');

describe('dlib imglab XML', () => {
  it.skipIf(!haveDlib)('reads the real dlib example files: boxes, 68 ordered parts, images beside the XML', async () => {
    const ds = await DlibXml.open({ file: join(dir, 'training_with_face_landmarks.xml') });
    expect(ds.length).toBe(4);
    expect(ds.points).toBe(68);
    const s = ds.get(0);
    expect(s.attributes.file).toBe('2007_007763.jpg');
    expect(s.image.source).toBe(join(dir, '2007_007763.jpg'));
    expect(s.attributes.width).toBe(500);
    expect(s.boxes[0]).toEqual({ x: 194, y: 90, width: 37, height: 37 });
    // <part name='00' x='201' y='107'/>, <part name='16' x='231' y='105'/>, <part name='17' x='201' y='102'/>
    const p = s.landmarks[0];
    expect([p[0], p[1], p[32], p[33], p[34], p[35]]).toEqual([201, 107, 231, 105, 201, 102]);
    expect(s.visibility[0].every((v) => v === 1)).toBe(true);
    // Independent count of <part> elements in the raw text.
    const raw = readFileSync(join(dir, 'training_with_face_landmarks.xml'), 'latin1');
    const partCount = (raw.match(/<part /g) ?? []).length;
    expect(ds.toArray().reduce((n, x) => n + x.landmarks.length * 68, 0)).toBe(partCount);
    // The box-only file lists the same images with as many faces (its boxes differ slightly: they were re-fitted).
    const plain = await DlibXml.open({ file: join(dir, 'training.xml') });
    expect(plain.points).toBe(0);
    expect(plain.get(1).landmarks).toEqual([]);
    plain.toArray().forEach((x, i) => {
      const y = ds.get(i);
      expect(x.attributes.file).toBe(y.attributes.file);
      expect(x.boxes.length).toBe(y.boxes.length);
    });
    // Landmarks of these (machine-made) annotations lie in or near their boxes; images decode at the stated size.
    const img = await s.image.decode();
    expect([img.width, img.height]).toEqual([s.attributes.width, s.attributes.height]);
    for (const [k, b] of s.boxes.entries())
      for (let q = 0; q < 68; q++) {
        expect(s.landmarks[k][2 * q]).toBeGreaterThan(b.x - b.width * 0.5);
        expect(s.landmarks[k][2 * q]).toBeLessThan(b.x + b.width * 1.5);
      }
    const test = await DlibXml.open({ file: join(dir, 'testing_with_face_landmarks.xml') });
    expect(test.length).toBe(5);
  });

  it('handles ignore flags, labels, missing parts and entities; names the line of malformed XML', async () => {
    const d = tmp();
    const f = (name: string, text: string) => writeTree(d, { [name]: text }) && join(d, name);
    const ok = await DlibXml.open({
      file: f('ok.xml', `<?xml version='1.0' encoding='ISO-8859-1'?>\n<!-- c -->\n<dataset><name>x</name><images>\n<image file='a&amp;b.jpg'>\n<box top='1' left='2' width='3' height='4' ignore='1'><label>face</label><part name='01' x='5' y='6'/></box>\n<box top="7" left="8" width="9" height="10"/>\n</image>\n</images></dataset>\n`),
      points: 3,
    });
    const s = ok.get(0);
    expect(s.attributes.file).toBe('a&b.jpg');
    expect(Array.from(s.attributes.ignore)).toEqual([1, 0]);
    expect(s.attributes.labels).toEqual(['face', '']);
    expect(s.boxes[1]).toEqual({ x: 8, y: 7, width: 9, height: 10 });
    expect(Array.from(s.landmarks[0])).toEqual([NaN, NaN, 5, 6, NaN, NaN]);
    expect(Array.from(s.visibility[0])).toEqual([0, 1, 0]);
    await expectFileError(() => DlibXml.open({ file: f('a.xml', '<dataset>\n<images>\n<image file="a.jpg">\n</images>\n</dataset>') }), join(d, 'a.xml'), { line: 4 }, 'closing tag </images> does not match <image> opened on line 3');
    await expectFileError(() => DlibXml.open({ file: f('b.xml', '<dataset><images>\n<image file="a.jpg"><box top="1" left="2" width="3"/></image>\n</images></dataset>') }), join(d, 'b.xml'), { line: 2 }, "<box> is missing the 'height' attribute");
    await expectFileError(() => DlibXml.open({ file: f('c.xml', '<dataset><images><image file="a.jpg">\n<box top="1" left="2" width="3" height="x"/></image></images></dataset>') }), join(d, 'c.xml'), { line: 2 }, '<box> height must be a number');
    await expectFileError(() => DlibXml.open({ file: f('e.xml', '<dataset><images><image file="a.jpg"><box top="1" left="2" width="3" height="4">\n<part name="00" x="1" y="1"/>\n<part name="00" x="2" y="2"/></box></image></images></dataset>') }), join(d, 'e.xml'), { line: 3 }, 'part 00 appears twice');
    await expectFileError(() => DlibXml.open({ file: f('g.xml', '<dataset><images>\n<image file="a.jpg">') }), join(d, 'g.xml'), { line: 2 }, 'file ends inside <image> opened on line 2');
    await expectFileError(() => DlibXml.open({ file: f('h.xml', '<other/>') }), join(d, 'h.xml'), { line: 1 }, 'no <dataset> element');
    expect(() => parseXml('<a>\n<b x=1/></a>', 't.xml')).toThrow(/^t\.xml:2: malformed tag/);
  });
});
