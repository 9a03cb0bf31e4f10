// The controller in-process, on real files: serialisation, coalescing, no-op on identical inputs,
// one failure counted once, the overlay's precedence and lifetime.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { StateRef } from '../../../proxy/state-ref.js';
import { ReloadController } from '../../../proxy/reload/reload-controller.js';
import { parseText, type SourcedObject } from '../../../policy/index.js';
import { ApplyError } from '../../../proxy/reload/errors.js';

const ns = (name: string, label: string) => `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${name}, labels: {team: ${label}}}\n`;

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'l7guard-ctl-'));
  writeFileSync(join(dir, 'a.yaml'), ns('alpha', 'one'));
  const ref = new StateRef();
  const ctl = new ReloadController({ paths: [dir], build: { clusterName: 'default', nodeIPs: [], allowLocalhost: 'always' }, ref, log: pino({ level: 'silent' }) });
  return { dir, ref, ctl };
}

const obj = (text: string): SourcedObject => parseText('api', text, [])[0]!;

t.test('bursts coalesce; identical inputs swap nothing; SIGHUP forces', async (t) => {
  const { dir, ref, ctl } = setup();
  await ctl.start();
  t.equal(ref.current?.revision, 1);
  const same = await ctl.reload('file');
  t.equal(same.changed, false, 'no byte changed: no swap');
  writeFileSync(join(dir, 'b.yaml'), ns('beta', 'two'));
  const burst = await Promise.all([ctl.reload('file'), ctl.reload('file'), ctl.reload('poll')]);
  t.equal(ref.current?.revision, 2, 'a burst of three triggers is one swap');
  t.same(burst.map((o) => o.revision), [2, 2, 2]);
  t.equal((await ctl.reload('SIGHUP', true)).revision, 3, 'forced');
  t.equal(ctl.stats().reloads, 2);
  t.same(ctl.stats().files.map((f) => f.file), [join(dir, 'a.yaml'), join(dir, 'b.yaml')]);
});

t.test('a broken file fails once, keeps the state, and recovers', async (t) => {
  const { dir, ref, ctl } = setup();
  await ctl.start();
  writeFileSync(join(dir, 'a.yaml'), 'kind: [');
  const bad = await ctl.reload('file');
  t.equal(bad.ok, false);
  t.equal(ref.current?.revision, 1, 'running state kept');
  await ctl.reload('poll');
  t.equal(ctl.stats().failures, 1, 'the poll does not count the same failure again');
  t.match(ctl.stats().lastError?.message ?? '', /a\.yaml/);
  writeFileSync(join(dir, 'a.yaml'), ns('alpha', 'three'));
  t.equal((await ctl.reload('file')).revision, 2);
});

t.test('the overlay wins over files and survives reloads until deleted', async (t) => {
  const { dir, ref, ctl } = setup();
  await ctl.start();
  const r = await ctl.apply(obj(ns('alpha', 'api')));
  t.equal(r.result, 'configured', 'alpha existed in a file');
  t.equal((await ctl.apply(obj(ns('alpha', 'api')))).result, 'unchanged');
  t.equal((await ctl.apply(obj(ns('gamma', 'api')))).result, 'created');
  writeFileSync(join(dir, 'a.yaml'), ns('alpha', 'file2'));
  await ctl.reload('file');
  await ctl.reload('SIGHUP', true);
  const sources = Object.fromEntries(ctl.stats().objects.map((o) => [o.name, o.source]));
  t.same(sources, { alpha: 'api', gamma: 'api' });
  await ctl.remove('Namespace', undefined, 'alpha');
  t.equal(ctl.stats().objects.find((o) => o.name === 'alpha')?.source, `file:${join(dir, 'a.yaml')}`, 'the file object is back');
  await t.rejects(ctl.remove('Namespace', undefined, 'alpha'), ApplyError, 'a file object cannot be deleted through the API');
  const rev = ref.current?.revision;
  await t.rejects(ctl.apply(obj('apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x, namespace: alpha}\nspec: {bogus: 1}\n')), { code: 'L7G_ERR_APPLY_INVALID' });
  t.equal(ref.current?.revision, rev, 'a rejected apply swaps nothing');
  ctl.close();
  await t.rejects(ctl.apply(obj(ns('delta', 'x'))), { code: 'L7G_ERR_RELOAD_CLOSED' });
});
