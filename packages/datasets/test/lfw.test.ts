import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Lfw, parseLfwPairs, parseLfwPeople } from '../src/index.js';
import { data, expectArgError, expectFileError, fixtures, have, tmp, writeTree } from './helpers.js';

const lfw = join(fixtures, 'lfw');

describe('LFW', () => {
  it.skipIf(!have('lfw/pairs.txt'))('reads the official View 2 pairs.txt: 10 folds of 300 matched + 300 mismatched', async () => {
    const file = join(data, 'lfw/pairs.txt');
    const p = await parseLfwPairs(file);
    expect([p.folds, p.perFold, p.pairs.length]).toEqual([10, 300, 6000]);
    for (let f = 0; f < 10; f++) {
      const fold = p.pairs.filter((x) => x.fold === f);
      expect(fold.length).toBe(600);
      expect(fold.filter((x) => x.same).length).toBe(300);
      // Matched pairs come first in each fold.
      expect(fold.slice(0, 300).every((x) => x.same && x.a.name === x.b.name)).toBe(true);
      expect(fold.slice(300).every((x) => !x.same)).toBe(true);
    }
    // Against the raw lines: line 2 is the first matched pair, line 302 the first mismatched one.
    const lines = readFileSync(file, 'utf8').split('\n');
    const m = lines[1].trim().split(/\s+/);
    expect(p.pairs[0]).toMatchObject({ fold: 0, same: true, line: 2, a: { name: m[0], number: Number(m[1]) }, b: { name: m[0], number: Number(m[2]) } });
    const d = lines[301].trim().split(/\s+/);
    expect(p.pairs[300]).toMatchObject({ fold: 0, same: false, line: 302, a: { name: d[0], number: Number(d[1]) }, b: { name: d[2], number: Number(d[3]) } });
    expect(p.pairs[5999].line).toBe(6001);
    const pairs = await Lfw.pairs({ root: '/lfw', pairsFile: file });
    expect(pairs.length).toBe(6000);
    expect(pairs.get(0).images[0].source).toBe(`/lfw/${m[0]}/${m[0]}_${m[1].padStart(4, '0')}.jpg`);
  });

  it.skipIf(!have('lfw/images/Anthony_Hopkins_0001.jpg'))('finds and decodes the real images in a flat folder', async () => {
    const ds = await Lfw.scan({ root: join(data, 'lfw/images'), layout: 'flat' });
    expect(ds.toArray().map((s) => [s.identity, s.attributes.number])).toEqual([['Anthony_Hopkins', 1], ['Anthony_Hopkins', 2]]);
    const img = await ds.get(0).image.decode();
    expect([img.width, img.height, img.channels]).toEqual([250, 250, 3]);
  });

  it('reads View 1 pairs, people files in three layouts, and a nested image folder (fixtures)', async () => {
    const dev = await parseLfwPairs(join(lfw, 'pairsDevTest.txt'));
    expect([dev.folds, dev.perFold]).toEqual([1, 2]);
    expect(dev.pairs.map((p) => [p.same, p.a.name, p.a.number, p.b.name, p.b.number])).toEqual([
      [true, 'Abel_Pacheco', 1, 'Abel_Pacheco', 2],
      [true, 'Akhmed_Zakayev', 1, 'Akhmed_Zakayev', 3],
      [false, 'Abel_Pacheco', 1, 'Amber_Tamblyn', 2],
      [false, 'Akhmed_Zakayev', 2, 'Anthony_Hopkins', 1],
    ]);
    const view2 = await parseLfwPeople(join(lfw, 'people.txt'));
    expect(view2.folds.map((f) => f.map((p) => `${p.name}:${p.count}`))).toEqual([['Abel_Pacheco:2', 'Akhmed_Zakayev:3'], ['Amber_Tamblyn:2', 'Anthony_Hopkins:2']]);
    expect((await parseLfwPeople(join(lfw, 'peopleDevTrain.txt'))).folds).toEqual([[{ name: 'Akhmed_Zakayev', count: 3 }, { name: 'Amber_Tamblyn', count: 2 }]]);
    expect((await parseLfwPeople(join(lfw, 'lfw-names.txt'))).folds[0].length).toBe(4);
    const byPeople = await Lfw.fromPeople({ root: join(lfw, 'lfw'), peopleFile: join(lfw, 'people.txt') });
    expect(byPeople.length).toBe(9);
    expect(byPeople.toArray().map((s) => s.attributes.fold)).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1]);
    const scanned = await Lfw.scan({ root: join(lfw, 'lfw') });
    expect(scanned.toArray().map((s) => `${s.identity}/${s.attributes.number}`)).toEqual(byPeople.toArray().map((s) => `${s.identity}/${s.attributes.number}`));
    // Every listed image exists and decodes.
    for (const s of scanned) expect((await s.image.info()).width).toBe(25);
    const pairs = await Lfw.pairs({ root: join(lfw, 'lfw'), pairsFile: join(lfw, 'pairsDevTest.txt') });
    const [a, b] = pairs.get(2).images;
    expect(a.source).toBe(join(lfw, 'lfw/Abel_Pacheco/Abel_Pacheco_0001.jpg'));
    expect(b.source).toBe(join(lfw, 'lfw/Amber_Tamblyn/Amber_Tamblyn_0002.jpg'));
    expect((await b.decode()).width).toBe(25);
  });

  it('names the file and line of malformed lists', async () => {
    const dir = tmp();
    const f = (name: string, text: string) => writeTree(dir, { [name]: text }) && join(dir, name);
    await expectFileError(() => parseLfwPairs(f('a.txt', '2 1\nA 1 2\nA 1 B 2\n')), join(dir, 'a.txt'), { line: 4 }, 'header promises 2 fold(s) x 2 pairs = 4 lines, the file has 2');
    await expectFileError(() => parseLfwPairs(f('b.txt', '1\nA 1 B 2\nA 1 B 2\n')), join(dir, 'b.txt'), { line: 2 }, 'matched pair 1 of fold 1 must be "name i j", got 4 fields');
    await expectFileError(() => parseLfwPairs(f('c.txt', '1\nA 1 2\nA 1 2\n')), join(dir, 'c.txt'), { line: 3 }, 'mismatched pair 1 of fold 1 must be "name1 i name2 j"');
    await expectFileError(() => parseLfwPairs(f('d.txt', '1\nA one 2\nA 1 B 2\n')), join(dir, 'd.txt'), { line: 2 }, 'image number must be a number');
    await expectFileError(() => parseLfwPairs(f('e.txt', '1\nA 0 2\nA 1 B 2\n')), join(dir, 'e.txt'), { line: 2 }, 'image number must be >= 1');
    await expectFileError(() => parseLfwPairs(f('g.txt', '')), join(dir, 'g.txt'), { line: 1 }, 'empty file');
    await expectFileError(() => parseLfwPeople(f('p.txt', '2\n1\nA 1\n2\nB 1\n')), join(dir, 'p.txt'), { line: 6 }, 'file ends inside fold 2 (person 2 of 2)');
    await expectFileError(() => parseLfwPeople(f('q.txt', '1\n1\nA 1 extra\n')), join(dir, 'q.txt'), { line: 3 }, 'expected "name count"');
    await expectFileError(() => parseLfwPairs(join(dir, 'none.txt')), join(dir, 'none.txt'), {}, 'LFW pairs file not found');
    await expectFileError(() => Lfw.scan({ root: join(dir, 'nope') }), join(dir, 'nope'), {}, 'LFW image folder not found');
    await expectArgError(() => Lfw.scan({ root: dir, layout: 'tree' as 'flat' }), RangeError, 'Lfw.scan', 'layout');
  });
});
