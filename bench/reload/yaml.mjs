// YAML parsing of the reload benchmark's 2 MiB policy (fixtures/big-policy.ts): the subset parser
// (policy/yaml-subset.ts) vs js-yaml CORE_SCHEMA on the same documents, and parseText end to end.
// Run from the repository root after `npm run build`:   node bench/reload/yaml.mjs [--runs 10]
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import jsyaml from 'js-yaml';
import { bigPolicy } from '../../dist/fixtures/big-policy.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' }, identities: { type: 'string', default: '1000' }, rules: { type: 'string', default: '10000' } } });
const dist = new URL('../../dist/', import.meta.url);
const { parseYamlSubset, NOT_IN_SUBSET } = await import(new URL('policy/yaml-subset.js', dist));
const { parseText } = await import(new URL('policy/load.js', dist));

const text = bigPolicy({ identities: Number(values.identities), rules: Number(values.rules) });
// The documents as parseFast hands them over: ranges of the text between bare "---" lines (js-yaml
// gets each document sliced out).
const ranges = [];
for (let start = 0; ;) {
  const sep = text.indexOf('\n---\n', start);
  ranges.push([start, sep < 0 ? text.length : sep]);
  if (sep < 0) break;
  start = sep + 5;
}
const docs = ranges.map(([a, b]) => text.slice(a, b));
const viaSubset = ranges.map(([a, b]) => parseYamlSubset(text, a, b));
const bails = viaSubset.filter((v) => v === NOT_IN_SUBSET).length;
const viaJsYaml = docs.map((d) => jsyaml.load(d, { schema: jsyaml.CORE_SCHEMA }));
if (!isDeepStrictEqual(viaSubset, viaJsYaml)) throw new Error('subset parser and js-yaml disagree on the benchmark input');
const json = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: viaJsYaml });
// The same objects in block style, the way kubectl and most hand-written manifests look.
const blockDocs = viaJsYaml.map((o) => jsyaml.dump(o, { schema: jsyaml.CORE_SCHEMA, noArrayIndent: true }));
const blockText = blockDocs.join('---\n');
const blockRanges = [];
for (let i = 0, start = 0; i < blockDocs.length; start += blockDocs[i].length + 4, i++) blockRanges.push([start, start + blockDocs[i].length]);
const blockSubset = blockRanges.map(([a, b]) => parseYamlSubset(blockText, a, b));
if (!isDeepStrictEqual(blockSubset, viaJsYaml)) throw new Error('subset parser and js-yaml disagree on the block-style input');

const cases = {
  'yaml-subset': () => { for (const [a, b] of ranges) parseYamlSubset(text, a, b); },
  'js-yaml': () => { for (const d of docs) jsyaml.load(d, { schema: jsyaml.CORE_SCHEMA }); },
  'yaml-subset, block style': () => { for (const [a, b] of blockRanges) parseYamlSubset(blockText, a, b); },
  'js-yaml, block style': () => { for (const [a, b] of blockRanges) jsyaml.load(blockText.slice(a, b), { schema: jsyaml.CORE_SCHEMA }); },
  'JSON.parse (same data)': () => JSON.parse(json),
};
const runs = Number(values.runs);
console.log(`input: ${(text.length / 1024 / 1024).toFixed(2)} MiB YAML (${(blockText.length / 1024 / 1024).toFixed(2)} MiB in block style), ${docs.length} documents, ${bails} outside the subset`);
for (const fn of Object.values(cases)) for (let i = 0; i < 3; i++) fn(); // JIT warm-up
// Rounds interleave the parser cases so that noise from other processes hits them alike.
const ms = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let i = 0; i < runs; i++) {
  for (const [name, fn] of Object.entries(cases)) {
    const t0 = performance.now();
    fn();
    ms[name].push(performance.now() - t0);
  }
}
// parseText last and on its own: its result (all 2,000 objects) stays alive until the next run, as
// a reload's does, and collecting it would otherwise land on whichever case runs next.
ms['parseText (end to end)'] = [];
let kept = [];
for (let i = 0; i < 3; i++) kept = parseText('bench.yaml', text, []);
for (let i = 0; i < runs; i++) {
  const t0 = performance.now();
  kept = parseText('bench.yaml', text, []);
  ms['parseText (end to end)'].push(performance.now() - t0);
}
if (kept.length !== 2000) throw new Error(`parseText: ${kept.length} objects`);
for (const [name, xs] of Object.entries(ms)) {
  xs.sort((a, b) => a - b);
  console.log(`${name.padEnd(26)} median ${xs[Math.floor(xs.length / 2)].toFixed(1)} ms   min ${xs[0].toFixed(1)} ms   max ${xs[xs.length - 1].toFixed(1)} ms`);
}
