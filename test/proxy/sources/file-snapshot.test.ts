// One consistent read of the -f paths, re-parsing only files whose content changed.
import t from 'tap';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSnapshot } from '../../../proxy/sources/file-snapshot.js';

const ns = (name: string) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n`;

t.test('unchanged files are not parsed again; changed and removed ones are', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'l7guard-snap-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'a.yaml'), ns('a'));
  writeFileSync(join(dir, 'b.yaml'), ns('b'));
  const s1 = await readSnapshot([dir]);
  t.same(s1.objects.map((o) => o.name), ['a', 'b']);

  writeFileSync(join(dir, 'b.yaml'), ns('b2'));
  const s2 = await readSnapshot([dir]);
  t.same(s2.objects.map((o) => o.name), ['a', 'b2'], 'the edit is read');
  t.equal(s2.objects[0], s1.objects[0], 'a.yaml (unchanged bytes) reuses its parsed object');
  t.not(s2.objects[1], s1.objects[1], 'b.yaml (changed bytes) is parsed again');
  t.not(s2.signature, s1.signature);

  writeFileSync(join(dir, 'b.yaml'), 'kind: [broken\n');
  const s3 = await readSnapshot([dir]);
  t.equal(s3.problems.length, 1, 'a syntax error is reported');
  const s4 = await readSnapshot([dir]);
  t.equal(s4.problems.length, 1, 'and still reported when the broken file is unchanged (cached with its problems)');

  rmSync(join(dir, 'b.yaml'));
  writeFileSync(join(dir, 'b.yaml'), ns('b'));
  const s5 = await readSnapshot([dir]);
  t.same(s5.objects.map((o) => o.name), ['a', 'b']);
  t.same(s5.problems, []);
});
