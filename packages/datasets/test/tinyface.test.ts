import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TinyFace, readTinyFaceIdPairs, tinyFaceIdentity } from '../src/index.js';
import { expectArgError, expectFileError, fixtures, tmp, writeTree } from './helpers.js';

const root = join(fixtures, 'tinyface');

describe('TinyFace', () => {
  it('reads the training folders and the probe / gallery id lists (MAT-files written by scipy)', async () => {
    const train = await TinyFace.open({ root, part: 'train' });
    expect(train.toArray().map((s) => [s.attributes.file, s.identity])).toEqual([
      ['Training_Set/1/1_1.jpg', 1],
      ['Training_Set/1/1_2.jpg', 1],
      ['Training_Set/2/2_1.jpg', 2],
      ['Training_Set/10/10_1.jpg', 10],
    ]);
    expect(train.identityCount).toBe(3);
    const probe = await TinyFace.open({ root, part: 'probe' });
    expect(probe.toArray().map((s) => [s.attributes.file, s.identity])).toEqual([
      ['Testing_Set/Probe/1_1.jpg', 1],
      ['Testing_Set/Probe/2_1.jpg', 2],
      ['Testing_Set/Probe/2_2.jpg', 2],
    ]);
    // The file names carry the same identities as the MAT-file.
    for (const s of probe) expect(tinyFaceIdentity(s.attributes.file)).toBe(s.identity);
    const img = await probe.get(0).image.decode();
    expect([img.width, img.height]).toEqual([16, 20]);
    // A parent folder holding tinyface/ is accepted too.
    expect((await TinyFace.open({ root: fixtures, part: 'galleryMatch' })).length).toBe(3);
  });

  it('builds the closed-set identification inputs: gallery = matches + distractors', async () => {
    const { probe, gallery, galleryMatch, distractors } = await TinyFace.identification({ root });
    expect(probe.length).toBe(3);
    expect(galleryMatch.toArray().map((s) => s.identity)).toEqual([1, 2, 3]);
    expect(distractors!.toArray().map((s) => [s.attributes.part, s.identity])).toEqual([['distractor', null], ['distractor', null]]);
    expect(gallery.length).toBe(5);
    expect(gallery.toArray().map((s) => s.identity)).toEqual([1, 2, 3, null, null]);
    expect(gallery.get(4).attributes.part).toBe('distractor');
    const noDistractors = await TinyFace.identification({ root, distractors: false });
    expect(noDistractors.gallery.length).toBe(3);
  });

  it('names the file and variable of bad id lists', async () => {
    const dir = tmp();
    mkdirSync(join(dir, 'Testing_Set'), { recursive: true });
    // A probe list whose identities are missing from the gallery breaks the closed-set protocol.
    copyFileSync(join(root, 'Testing_Set/gallery_match_img_ID_pairs.mat'), join(dir, 'Testing_Set/probe_img_ID_pairs.mat'));
    await expectFileError(() => readTinyFaceIdPairs(join(dir, 'Testing_Set/probe_img_ID_pairs.mat'), 'probe'), join(dir, 'Testing_Set/probe_img_ID_pairs.mat'), { record: "variable 'probe_set'" }, 'variable missing (the file holds gallery_set, gallery_ids)');
    const open = tmp();
    writeTree(open, { 'Testing_Set/Gallery_Distractor/.keep': '' });
    copyFileSync(join(root, 'Testing_Set/probe_img_ID_pairs.mat'), join(open, 'Testing_Set/probe_img_ID_pairs.mat'));
    await expectFileError(() => TinyFace.identification({ root: open }), join(open, 'Testing_Set/gallery_match_img_ID_pairs.mat'), {}, 'MAT-file not found');
    copyFileSync(join(fixtures, 'mat/gallery-open.mat'), join(open, 'Testing_Set/gallery_match_img_ID_pairs.mat'));
    await expectFileError(() => TinyFace.identification({ root: open }), join(open, 'Testing_Set/probe_img_ID_pairs.mat'), { record: 'probe Testing_Set/Probe/2_1.jpg' }, 'identity 2 is not in the gallery');
    const empty = tmp();
    await expectFileError(() => TinyFace.open({ root: empty }), empty, {}, 'TinyFace root not found');
    await expectFileError(() => TinyFace.open({ root: open, part: 'train' }), join(open, 'Training_Set'), {}, 'Training_Set folder not found');
    await expectArgError(() => TinyFace.open({ root, part: 'gallery' as 'probe' }), RangeError, 'TinyFace.open', 'part');
  });
});
