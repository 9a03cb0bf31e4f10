/**
 * The YAML subset parser against js-yaml CORE_SCHEMA, its reference: for every text it either bails
 * (NOT_IN_SUBSET) or returns a deep-equal value with the same key order. Corpora: the manifest
 * fixtures, the demo's manifests and the examples, the reload benchmark's policy, seeded random documents dumped
 * in several styles (and then mutated, for syntax errors), fast-check manifest-shaped documents in
 * mixed styles (seeded; L7GUARD_FUZZ_RUNS for more), random block scalars and character soup;
 * each also parsed as a range of a larger text. Then tables of must-bail and must-parse edge cases.
 * Last, parseFast (which now splits by offsets and tries the subset first) against the line-array
 * splitting and js-yaml it replaced.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import jsyaml from 'js-yaml';
import t from 'tap';
import { bigPolicy } from '../../fixtures/big-policy.js';
import { deathstarPolicy, POLICIES, RECORDED_ADDRESSES, starWarsPolicy, starWarsYaml } from '../../fixtures/star-wars.js';
import { parseFast, type SourcedObject } from '../../policy/load.js';
import { NOT_IN_SUBSET, parseYamlSubset, parseYamlSubsetStrict } from '../../policy/yaml-subset.js';
import { FIXTURES } from './helpers.js';
import { fuzzParameters } from '../helpers/fuzz.js';

/** Cilium's Star Wars manifests as the demo ships them, and the README's quickstart files. */
const SHIPPED_YAML = ['../../../demo/manifests/', '../../../examples/'].map((p) => fileURLToPath(new URL(p, import.meta.url)));

function load(text: string): { value: unknown } | { error: Error } {
  try {
    return { value: jsyaml.load(text, { schema: jsyaml.CORE_SCHEMA }) };
  } catch (e) {
    return { error: e as Error };
  }
}

/** isDeepStrictEqual (which does tell -0 from 0) ignores the order of keys: this checks it, recursively. */
function sameKeyOrder(a: unknown, b: unknown): boolean {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return true;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.join('\0') !== kb.join('\0')) return false;
  return ka.every((k) => sameKeyOrder((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

interface Tally {
  parsed: number;
  bailed: number;
  failures: string[];
}

const tally = (): Tally => ({ parsed: 0, bailed: 0, failures: [] });

/**
 * Text around a document parsed as a range of a larger string (as parseFast does): nothing outside
 * [start, end) may be read as part of it.
 */
const AFFIXES: [string, string][] = [
  ['', ''], ['a: 1\n---\n', '\n---\nb: 2\n'], ['"', '"'], ["'", "'"], ['', '#x'], ['', ' x'], ['', 'x: y'], ['', ':'], ['', ': x'],
  ['[', ' ]'], ['', '\udc00'], ['  ', '  '], ['', '--'], ['', '\n  more: 1\n'], ['', '\\'], ['', '00'],
];
let affix = 0;

/** The contract: bail, or the same value as js-yaml. Internal errors propagate (Strict). */
function differential(text: string, label: string, into: Tally): 'parsed' | 'bailed' {
  let got: unknown;
  try {
    got = parseYamlSubsetStrict(text);
    const [pre, post] = AFFIXES[affix++ % AFFIXES.length] as [string, string];
    const ranged = parseYamlSubsetStrict(pre + text + post, pre.length, pre.length + text.length);
    if (!isDeepStrictEqual(ranged, got)) into.failures.push(`${label}: as a range between ${JSON.stringify(pre)} and ${JSON.stringify(post)}: ${JSON.stringify(text).slice(0, 200)}`);
  } catch (e) {
    into.failures.push(`${label}: internal error ${String(e)} on ${JSON.stringify(text).slice(0, 200)}`);
    return 'bailed';
  }
  if (got === NOT_IN_SUBSET) {
    into.bailed++;
    return 'bailed';
  }
  into.parsed++;
  const want = load(text);
  if ('error' in want) {
    into.failures.push(`${label}: accepted a text js-yaml rejects (${want.error.message.split('\n')[0]}): ${JSON.stringify(text).slice(0, 200)}`);
  } else if (!isDeepStrictEqual(got, want.value) || !sameKeyOrder(got, want.value)) {
    into.failures.push(`${label}: ${JSON.stringify(text).slice(0, 200)}\n  subset:  ${JSON.stringify(got)?.slice(0, 200)}\n  js-yaml: ${JSON.stringify(want.value)?.slice(0, 200)}`);
  }
  return 'parsed';
}

/** parseFast's document split as it was (lines and join), the reference for its offset version. */
function referenceSplit(text: string): { line: number; text: string }[] | undefined {
  const lines = text.split('\n');
  const docs: { line: number; text: string }[] = [];
  let start = 0;
  const flush = (end: number) => {
    if (end > start) docs.push({ line: start + 1, text: lines.slice(start, end).join('\n') });
  };
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i] as string;
    if (l.startsWith('---') && /^---(?:[ \t].*)?$/.test(l.trimEnd())) {
      if (l.trim() !== '---') return undefined;
      flush(i);
      start = i + 1;
    } else if (l.startsWith('%') || l === '...') {
      return undefined;
    }
  }
  flush(lines.length);
  return docs;
}

/** The old "first non-blank, non-comment line" of a document. */
function referenceFirst(doc: string): number {
  const body = doc.split('\n');
  let first = 0;
  while (first < body.length && /^\s*(#.*)?$/.test(body[first] as string)) first++;
  return first;
}

function yamlFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).sort().flatMap((n) => {
    const full = join(dir, n);
    if (statSync(full).isDirectory()) return yamlFiles(full);
    return /\.ya?ml$/.test(n) ? [full] : [];
  });
}

/** A document has content when some line is neither blank nor a comment (else the subset bails by design). */
const hasContent = (doc: string) => referenceFirst(doc) < doc.split('\n').length;

t.test('manifest fixtures, demo manifests and examples: identical to js-yaml, none outside the subset', async (t) => {
  const files = [...yamlFiles(FIXTURES), ...SHIPPED_YAML.flatMap(yamlFiles)];
  t.ok(files.length >= 20, `${files.length} files`);
  const all = tally();
  const bailedWithContent: string[] = [];
  for (const f of files) {
    const docs = referenceSplit(readFileSync(f, 'utf8'));
    if (!docs) continue;
    for (const d of docs) {
      if (differential(d.text, `${f}:${d.line}`, all) === 'bailed' && hasContent(d.text)) bailedWithContent.push(`${f}:${d.line}`);
    }
  }
  t.same(all.failures, [], 'no differences from js-yaml');
  t.same(bailedWithContent, [], 'every document with content is in the subset');
  t.ok(all.parsed >= 30, `${all.parsed} documents parsed`);
});

t.test('reload benchmark policy: identical to js-yaml, none outside the subset', async (t) => {
  const docs = referenceSplit(bigPolicy());
  if (!docs) throw new Error('benchmark policy does not split');
  const all = tally();
  for (const d of docs) differential(d.text, `bench:${d.line}`, all);
  t.same(all.failures, [], 'no differences from js-yaml');
  t.equal(all.bailed, 0, 'no document outside the subset');
  t.equal(all.parsed, 2000, 'all 2,000 documents parsed');
});

t.test('the Star Wars cluster and policies as fixtures/star-wars.ts renders them: identical to js-yaml, none outside the subset', async (t) => {
  const text = [
    starWarsYaml({ addresses: RECORDED_ADDRESSES, podPort: 8080, namespaceObject: true }),
    deathstarPolicy(8080, [{ method: 'POST', path: '/v1/request-landing(\\?id=[0-9]+)?' }]),
    starWarsPolicy(POLICIES.deny),
  ].join('---\n');
  const docs = referenceSplit(text);
  if (!docs) throw new Error('the rendered cluster does not split');
  const all = tally();
  for (const d of docs) differential(d.text, `star-wars:${d.line}`, all);
  t.same(all.failures, [], 'no differences from js-yaml');
  t.equal(all.bailed, 0, 'no document outside the subset');
  t.equal(all.parsed, 8, 'Namespace, Service, 4 Pods, 2 policies');
});

// --- seeded random documents -----------------------------------------------------------------

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const TRICKY = [
  '80', '0x1F', '0o17', '0b101', '1e3', '1E3', '1.', '.5', '+12', '-0', '-00', '012', '08', '1_000', '1e999', '.inf', '-.Inf', '.NaN', '+.5',
  'yes', 'no', 'on', 'off', 'y', 'n', 'null', 'Null', 'NULL', 'nULL', '~', 'true', 'True', 'tRUE', 'False', '',
  ':', '#', '-', '?', '|', '>', "'", '"', ',', '[', ']', '{', '}', '&a', '*a', '!x', '%x', '@x', '`x', '<<', '---', '...',
  'a: b', 'a #b', 'a#b', 'a:b', '- x', '? x', '[x]', '{x: y}', 'a,b', 'a]', ' lead', 'trail ', '  both  ', 'in  side',
  "it's", 'say "hi"', 'back\\slash', 'tab\there', 'new\nline', 'two\n\nlines\n', 'x\n', '\n', ' \n ',
  'é', '日本語', '😀', '\u0085', '\u2028', '\u00a0', '\ufeffbom', '\x7f', '\x01', '\ud800', '\udc00x',
  'http://x:80/y', '10.0.0.1', '10.0.0.0/8', 'GET', '/api/v1/.*', 'app-1', 'kube-system', 'x'.repeat(100),
  'a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p q r s t u v w x y z',
];
const KEYS = ['apiVersion', 'kind', 'metadata', 'name', 'namespace', 'labels', 'spec', 'ports', 'port', 'toPorts', 'rules', 'http', 'a', 'b', 'x y', 'constructor', 'toString'];

function randomValue(rnd: () => number, depth: number): unknown {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)] as T;
  const r = rnd();
  if (depth > 4 || r < 0.4) {
    const s = rnd();
    if (s < 0.45) return pick(TRICKY);
    if (s < 0.6) return Math.floor(rnd() * 100000) * (rnd() < 0.2 ? -1 : 1);
    if (s < 0.66) return pick([1.5, -0.25, 1e21, 1e-7, 0, -0, NaN, Infinity, -Infinity, 3.0, 0.1 + 0.2]);
    if (s < 0.74) return pick([true, false, null]);
    let out = '';
    for (let i = Math.floor(rnd() * 12); i > 0; i--) out += pick('abcxyz-_./: #\'"0123456789é'.split(''));
    return out;
  }
  if (r < 0.7) {
    const o: Record<string, unknown> = {};
    for (let i = Math.floor(rnd() * 5); i > 0; i--) {
      const k = rnd() < 0.3 ? String(pick(TRICKY)) : pick(KEYS);
      if (k !== '__proto__') o[k] = randomValue(rnd, depth + 1);
    }
    return o;
  }
  const a: unknown[] = [];
  for (let i = Math.floor(rnd() * 5); i > 0; i--) a.push(randomValue(rnd, depth + 1));
  return a;
}

const MUTATIONS = [' ', '\t', '#', ' #', ':', ': ', '- ', '\n', '  ', '"', "'", '[', ']', '{', '}', ',', '|', '>', '|-', '&a ', '*a', '!x ', '? ', '---\n', '...\n', '--- x\n', '%YAML 1.2\n', '\\', 'x', '\n  x: 1\n', '\n- y\n', '\r\n', '\0', '\ufeff'];

function mutate(rnd: () => number, text: string): string {
  const p = Math.floor(rnd() * (text.length + 1));
  const op = rnd();
  if (op < 0.45) return text.slice(0, p) + (MUTATIONS[Math.floor(rnd() * MUTATIONS.length)] as string) + text.slice(p);
  if (op < 0.75) return text.slice(0, p) + text.slice(p + 1 + Math.floor(rnd() * 3));
  const lines = text.split('\n');
  const i = Math.floor(rnd() * lines.length);
  lines[i] = ' '.repeat(Math.floor(rnd() * 5)) + (lines[i] as string).trimStart();
  return lines.join('\n');
}

t.test('seeded random documents in several dump styles, and mutations of them', async (t) => {
  const rnd = mulberry32(20240611);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)] as T;
  const dumps = tally();
  const blockStyle = tally();
  const mutated = tally();
  for (let i = 0; i < 1500; i++) {
    const value = rnd() < 0.8
      ? Object.fromEntries(KEYS.slice(0, 1 + Math.floor(rnd() * 5)).map((k) => [k, randomValue(rnd, 1)]))
      : randomValue(rnd, 0);
    const opts: jsyaml.DumpOptions = {
      schema: jsyaml.CORE_SCHEMA,
      flowLevel: pick([-1, -1, -1, 0, 1, 2, 3]),
      quotingType: pick(["'", '"'] as const),
      forceQuotes: rnd() < 0.15,
      indent: pick([1, 2, 2, 3, 4]),
      noArrayIndent: rnd() < 0.5,
      lineWidth: pick([-1, 20, 80]),
      condenseFlow: rnd() < 0.15,
      sortKeys: rnd() < 0.1,
    };
    let text: string;
    try {
      text = jsyaml.dump(value, opts);
    } catch {
      continue; // e.g. a lone surrogate js-yaml cannot dump
    }
    differential(text, `dump#${i}`, dumps);
    if (opts.flowLevel === -1 && !opts.forceQuotes) differential(text, `dump#${i}`, blockStyle);
    for (let m = 0; m < 6; m++) differential(mutate(rnd, text), `dump#${i} mutation ${m}`, mutated);
  }
  t.same(dumps.failures, [], `dumps: no differences (${dumps.parsed} parsed, ${dumps.bailed} bailed)`);
  t.same(mutated.failures, [], `mutations: no differences (${mutated.parsed} parsed, ${mutated.bailed} bailed)`);
  // Not a contract, a guard against the subset silently shrinking to nothing.
  t.ok(blockStyle.parsed > blockStyle.bailed, `block-style dumps mostly in the subset (${blockStyle.parsed} parsed, ${blockStyle.bailed} bailed)`);
  t.ok(mutated.parsed > 1000, `mutations: some still parse (${mutated.parsed})`);
});

t.test('random block scalars (headers, indentation, blank lines, chomping, folding)', async (t) => {
  const rnd = mulberry32(31337);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)] as T;
  const all = tally();
  for (let i = 0; i < 4000; i++) {
    const header = pick(['|', '>']) + pick(['', '', '+', '-']) + pick(['', '', '', '1', '2', '3']) + pick(['', '', ' ', ' # c', '  #c']);
    const lines: string[] = [];
    for (let j = Math.floor(rnd() * 6); j >= 0; j--) lines.push(' '.repeat(Math.floor(rnd() * 6)) + pick(['', '', 'x', 'a b', '# not', '\tt', ' ', '- y', 'k: v', 'é']));
    const pad = ' '.repeat(pick([0, 2]));
    const form = pick(['map', 'seq', 'compact']);
    let text: string;
    if (form === 'map') text = `${pad}a: ${header}\n${lines.map((l) => pad + l).join('\n')}` + pick(['', '\n', '\n\n', `\n${pad}b: 1\n`, `\n${pad}# c\n`]);
    else if (form === 'seq') text = `${pad}- ${header}\n${lines.map((l) => pad + l).join('\n')}` + pick(['', '\n', `\n${pad}- z\n`]);
    else text = `${pad}- a: ${header}\n${lines.map((l) => `${pad}  ${l}`).join('\n')}` + pick(['', '\n', `\n${pad}  b: 1\n`, `\n${pad}- z\n`]);
    differential(text, `block#${i}`, all);
  }
  t.same(all.failures, [], `no differences (${all.parsed} parsed, ${all.bailed} bailed)`);
  t.ok(all.parsed > 1000, 'most are in the subset');
});

t.test('random character soup never throws and never disagrees', async (t) => {
  const rnd = mulberry32(7);
  const alphabet = ['a', 'b', '1', '0', '.', '-', ' ', '  ', '\n', '\n  ', ':', ': ', '#', ',', '[', ']', '{', '}', '"', "'", '\\', '|', '>', '+', 'x', 'e', '\t', '~', 'é', '\u2028', '\ud83d\ude00', '\ud800'];
  const soup = tally();
  for (let i = 0; i < 5000; i++) {
    let text = rnd() < 0.5 ? 'k: ' : '- ';
    for (let j = Math.floor(rnd() * 30); j > 0; j--) text += alphabet[Math.floor(rnd() * alphabet.length)];
    differential(text, `soup#${i}`, soup);
  }
  t.same(soup.failures, [], `no differences (${soup.parsed} parsed, ${soup.bailed} bailed)`);
});

// --- fast-check: manifest-shaped documents ------------------------------------------------------

/** A YAML tree and how each node is written: the styles manifests mix, which js-yaml's dump never writes (comments, blank lines, flow inside block, odd indents). */
type Doc =
  | { readonly k: 'scalar'; readonly text: string; readonly style: 'plain' | 'single' | 'double' | 'literal' | 'folded'; readonly comment: boolean }
  | { readonly k: 'map'; readonly entries: readonly (readonly [string, Doc])[]; readonly flow: boolean }
  | { readonly k: 'seq'; readonly items: readonly Doc[]; readonly flow: boolean };

const scalarText = fc.oneof(
  fc.constantFrom(...TRICKY),
  fc.stringOf(fc.constantFrom(...'abcxyz-_./: #\'"0123456789é\\\t'), { maxLength: 12 }),
  fc.integer().map(String),
  fc.double({ noNaN: false }).map(String),
);

const { doc: docArb } = fc.letrec<{ doc: Doc; scalar: Doc; map: Doc; seq: Doc }>((tie) => ({
  doc: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('scalar'), tie('map'), tie('seq')),
  scalar: fc.record({
    k: fc.constant('scalar' as const),
    text: scalarText,
    style: fc.constantFrom('plain', 'plain', 'plain', 'single', 'double', 'literal', 'folded'),
    comment: fc.boolean(),
  }),
  // Unique keys: a duplicate only makes the subset bail (a table below checks that).
  map: fc.record({ k: fc.constant('map' as const), entries: fc.uniqueArray(fc.tuple(fc.oneof(fc.constantFrom(...KEYS), scalarText), tie('doc')), { maxLength: 4, selector: (e) => e[0] }), flow: fc.boolean() }),
  seq: fc.record({ k: fc.constant('seq' as const), items: fc.array(tie('doc'), { maxLength: 4 }), flow: fc.boolean() }),
}));

interface Layout {
  /** Spaces per level. */
  readonly step: number;
  /** Sequences under a key at the key's indentation (kubectl's style) or one step in. */
  readonly seqIndented: boolean;
  readonly blankLines: boolean;
}

function inline(d: Doc): string {
  switch (d.k) {
    case 'scalar':
      return d.style === 'single' ? `'${d.text.replace(/'/g, "''")}'` : d.style === 'double' ? JSON.stringify(d.text) : d.text;
    case 'map':
      return `{${d.entries.map(([k, v]) => `${k}: ${inline(v)}`).join(', ')}}`;
    case 'seq':
      return `[${d.items.map(inline).join(', ')}]`;
  }
}

/** The text after `key:` or `-` for a value at `indent`. */
function after(d: Doc, indent: number, l: Layout, inSeq: boolean): string {
  if (d.k === 'scalar') {
    if (d.style === 'literal' || d.style === 'folded') {
      const pad = ' '.repeat(indent);
      return ` ${d.style === 'literal' ? '|' : '>'}\n${d.text.split('\n').map((line) => pad + line).join('\n')}`;
    }
    return ` ${inline(d)}${d.comment ? ' # c' : ''}`;
  }
  if (d.flow || (d.k === 'map' ? d.entries.length === 0 : d.items.length === 0)) return ` ${inline(d)}`;
  const at = d.k === 'seq' && !inSeq && !l.seqIndented ? indent - l.step : indent;
  return `\n${block(d, at, l)}`;
}

function block(d: Doc, indent: number, l: Layout): string {
  const pad = ' '.repeat(Math.max(indent, 0));
  const sep = l.blankLines ? '\n\n' : '\n';
  if (d.k === 'map') return d.entries.map(([k, v]) => `${pad}${k}:${after(v, indent + l.step, l, false)}`).join(sep);
  if (d.k === 'seq') return d.items.map((v) => `${pad}-${after(v, indent + l.step, l, true)}`).join(sep);
  return pad + inline(d);
}

const layoutArb: fc.Arbitrary<Layout> = fc.record({ step: fc.integer({ min: 1, max: 4 }), seqIndented: fc.boolean(), blankLines: fc.boolean() });

const manifestArb = fc
  .tuple(
    fc.uniqueArray(fc.tuple(fc.constantFrom(...KEYS), docArb), { minLength: 1, maxLength: 5, selector: (e) => e[0] }),
    layoutArb,
    fc.oneof(fc.constant([]), fc.array(fc.tuple(fc.nat(), fc.constantFrom(...MUTATIONS)), { minLength: 1, maxLength: 2 })),
  )
  .map(([entries, layout, edits]) => {
    let text = block({ k: 'map', entries, flow: false }, 0, layout) + '\n';
    for (const [at, ins] of edits) {
      const p = at % (text.length + 1);
      text = text.slice(0, p) + ins + text.slice(p);
    }
    return text;
  });

t.test('fast-check: manifest-shaped documents in mixed styles, and edits of them, parse like js-yaml or bail (seeded)', async (t) => {
  const params = fuzzParameters(3000);
  const all = tally();
  let last = '';
  const run = fc.check(
    fc.property(manifestArb, (text) => {
      const before = all.failures.length;
      differential(text, 'generated', all);
      if (all.failures.length === before) return true;
      last = all.failures.at(-1)!;
      all.failures.length = before; // shrinking replays it: keep only the final, smallest case
      return false;
    }),
    params,
  );
  t.notOk(run.failed, run.failed ? `${last}\n${fc.defaultReportMessage(run) ?? ''}` : `${run.numRuns} documents (seed ${params.seed}): ${all.parsed} parsed, ${all.bailed} bailed`);
  // Not a contract, a guard against the generator drifting outside the subset entirely.
  t.ok(all.parsed > all.bailed / 4, `a good part in the subset (${all.parsed} parsed, ${all.bailed} bailed)`);
});

// --- tables ---------------------------------------------------------------------------------------

t.test('edge cases outside the subset bail', async (t) => {
  const rows: [string, string][] = [
    ['tab indentation', 'a:\n\tb: 1\n'],
    ['tab after a colon', 'a:\tb\n'],
    ['tab inside a plain scalar', 'a: b\tc\n'],
    ['tab before a sequence entry', 'a:\n  -\tb\n'],
    // js-yaml skips a "---" that starts a document whatever follows it: "---x: 1" is {x: 1}.
    ['"---" glued to the first key', '---x: 1\n'],
    ['"----" as a key', '----: 1\n'],
    ['"---:" as a key', '---: 1\n'],
    ['tag', 'a: !!str 1\n'],
    ['local tag', 'a: !foo x\n'],
    ['anchor and alias', 'a: &x 1\nb: *x\n'],
    ['alias in flow', 'a: [*x]\n'],
    ['duplicate key', 'a: 1\nb: 2\na: 3\n'],
    ['duplicate key in a compact mapping', '- name: x\n  name: y\n'],
    ['duplicate key in a flow mapping', 'a: {x: 1, x: 2}\n'],
    ['duplicate key after resolution', '1: a\n1.0: b\n'],
    ['__proto__ key', '__proto__: {a: 1}\n'],
    ['__proto__ key in flow', 'a: {__proto__: 1}\n'],
    ['merge key', 'a: {x: 1}\n<<: {y: 2}\n'],
    ['multi-line plain scalar', 'a: b\n  c\n'],
    ['multi-line plain scalar in a sequence', '- a\n  b\n'],
    ['multi-line plain scalar below a comment', 'a: b\n  # c\n  d\n'],
    ['scalar on the line after its key', 'a:\n  b\n'],
    ['multi-line double-quoted scalar', 'a: "b\n  c"\n'],
    ['multi-line single-quoted scalar', "a: 'b\n  c'\n"],
    ['escaped line break', 'a: "b\\\n  c"\n'],
    ['multi-line flow sequence', 'a: [b,\n  c]\n'],
    ['multi-line flow mapping', 'a: {b: 1,\n  c: 2}\n'],
    ['comment inside flow', 'a: [b, # c\n  d]\n'],
    ['explicit key', '? a\n: b\n'],
    ['flow key', '[a]: b\n'],
    ['quoted key without a space after the colon', '"a":b\n'],
    ['flow mapping entry without a value', 'a: {b}\n'],
    ['single-pair mapping in a flow sequence', 'a: [b: c]\n'],
    ['directive', '%YAML 1.2\n---\na: 1\n'],
    ['document start with content', 'a: 1\n--- b\n'],
    ['bare document start', 'a: 1\n---\nb: 2\n'],
    ['document end', 'a: 1\n...\n'],
    ['document end with a comment', 'a: 1\n... # end\n'],
    ['two values on a line', 'a: b: c\n'],
    ['sequence on the key line', 'a: - b\n'],
    ['text after a quoted scalar', 'a: "b" c\n'],
    ['text after a flow collection', 'a: [b] c\n'],
    ['unclosed flow sequence', 'a: [b\n'],
    ['unclosed quote', 'a: "b\n'],
    ['missing comma', 'a: [b c, "d" "e"]\n'],
    ['leading comma', 'a: [, b]\n'],
    ['bad indentation of a mapping entry', 'a:\n  b: 1\n c: 2\n'],
    ['bad indentation of a sequence entry', '- a\n - b\n'],
    ['sequence after a mapping entry at the same indentation', 'a: 1\n- b\n'],
    ['empty entry followed by an outer entry (js-yaml reads it into the inner sequence)', '- -\n- b\n'],
    ['less indented content after the root', '  a: 1\nb: 2\n'],
    ['unsupported escape \\N', 'a: "\\N"\n'],
    ['unknown escape', 'a: "\\q"\n'],
    ['bad hex escape', 'a: "\\xZZ"\n'],
    ['code point past U+10FFFF', 'a: "\\U00110000"\n'],
    ['block scalar header junk', 'a: |x\n  b\n'],
    ['block scalar indentation indicator 0', 'a: |0\n  b\n'],
    ['block scalar repeated chomping', 'a: |+-\n  b\n'],
    ['block scalar at the root', '|\n  a\n'],
    ['root plain scalar', 'hello\n'],
    ['root quoted scalar', '"hello"\n'],
    ['empty text', ''],
    ['only comments and blank lines', '# a comment\n\n  \n'],
    ['CRLF line breaks', 'a: 1\r\nb: 2\r\n'],
    ['BOM', '\ufeffa: 1\n'],
    ['NUL', 'a: 1\n# \0\n'],
    ['C0 control in a plain scalar', 'a: b\x01c\n'],
    ['C1 control in a plain scalar', 'a: b\x9bc\n'],
    ['lone surrogate in a plain scalar', 'a: b\ud800c\n'],
    ['control character in a quoted scalar', 'a: "b\x01"\n'],
    ['empty plain key', ': a\n'],
    ['empty flow key', 'a: {: b}\n'],
    ['nesting deeper than js-yaml allows', 'a: ' + '['.repeat(120) + ']'.repeat(120) + '\n'],
    ['indicator at the start of a value', 'a: @b\n'],
    ['flow indicator at the start of a block value', 'a: ]b\n'],
  ];
  for (const [name, text] of rows) t.equal(parseYamlSubset(text), NOT_IN_SUBSET, `${name}: ${JSON.stringify(text).slice(0, 60)}`);
  // Bail-outs leave no state behind.
  t.same(parseYamlSubset('a: 1\n'), { a: 1 }, 'a parse after bail-outs');
});

t.test('edge cases inside the subset parse like js-yaml', async (t) => {
  const rows: [string, string, unknown][] = [
    ['integers', 'a: [0, -0, +1, 012, 08, -00, 0x1F, -0x1f, 0o17, 0b101, 0x, 0b2, 1_000, 99999999999999999999]\n',
      { a: [0, 0, 1, 12, 8, -0, 31, -31, 15, 5, '0x', '0b2', '1_000', 100000000000000000000] }],
    ['floats', 'a: [1.5, 1e3, 1E-2, 1., .5, -.5, +.5, .inf, -.Inf, +.INF, .NaN, .nan, 1e999, -0.0, 1.5e]\n',
      { a: [1.5, 1000, 0.01, 1, 0.5, '-.5', '+.5', Infinity, -Infinity, Infinity, NaN, NaN, '1e999', -0, '1.5e'] }],
    ['null and booleans', 'a: [null, Null, NULL, ~, nULL, true, True, TRUE, tRUE, false, False, FALSE, yes, no, on, off, y, n]\n',
      { a: [null, null, null, null, 'nULL', true, true, true, 'tRUE', false, false, false, 'yes', 'no', 'on', 'off', 'y', 'n'] }],
    ['empty values', 'a:\nb: # c\nc: {d: , e: }\n', { a: null, b: null, c: { d: null, e: null } }],
    ['keys are resolved, then stringified', '80: a\n~: b\nTrue: c\n0x10: d\n1.0: e\n.nan: f\n', { 80: 'a', null: 'b', true: 'c', 16: 'd', 1: 'e', NaN: 'f' }],
    ['inherited names are ordinary keys', 'constructor: 1\ntoString: 2\nhasOwnProperty: 3\n', { constructor: 1, toString: 2, hasOwnProperty: 3 }],
    ['quoted keys', '"a b": 1\n\'c: d\': 2\n"80": 3\n', { 'a b': 1, 'c: d': 2, 80: 3 }],
    ['double-quoted escapes', 'a: "q\\"b\\\\s\\/t\\tn\\nr\\r0\\0x\\x41u\\u00e9U\\U0001F600 \\ e\\e"\n', { a: 'q"b\\s/t\tn\nr\r0\0xAuéU😀  e\x1b' }],
    ['single-quoted escape', "a: 'it''s ''quoted'''\n", { a: "it's 'quoted'" }],
    ['quotes keep what plain scalars resolve', 'a: ["80", \'true\', "null", "0x1F", "", \'\']\n', { a: ['80', 'true', 'null', '0x1F', '', ''] }],
    ['comments', '# c\na: 1 # c\n\n  # c\nb: # c\n  - x # c\n# c\nc: "d"#no space needed after a quoted scalar\n', { a: 1, b: ['x'], c: 'd' }],
    ['hash and colon inside plain scalars', 'a: b#c\nd: e :f\ng: http://x:80/y#frag\nh: a:b\n', { a: 'b#c', d: 'e :f', g: 'http://x:80/y#frag', h: 'a:b' }],
    ['trailing spaces', 'a: b   \nc:   d e  \n', { a: 'b', c: 'd e' }],
    ['indicators inside plain scalars', 'a: -b\nc: ?d\ne: :f\ng: x,y]z\n', { a: '-b', c: '?d', e: ':f', g: 'x,y]z' }],
    ['unicode', 'é: 日本語 😀\nb: "\u2028"\nc: a\u0085b\n', { é: '日本語 😀', b: '\u2028', c: 'a\u0085b' }],
    ['sequence at the key\'s indentation', 'a:\n- 1\n- 2\nb: 3\n', { a: [1, 2], b: 3 }],
    ['nested and empty sequence entries', 'a:\n  - 1\n  -\n  - - x\n    - y\n  - # c\n    k: v\n', { a: [1, null, ['x', 'y'], { k: 'v' }] }],
    ['compact mappings in sequences', '- name: c\n  image: x\n- name: d\n  ports:\n  - containerPort: 80\n    protocol: TCP\n  env: []\n', [{ name: 'c', image: 'x' }, { name: 'd', ports: [{ containerPort: 80, protocol: 'TCP' }], env: [] }]],
    ['compact mapping with a quoted first key', '- "k": v\n  x: y\n-   a: 1\n    b: 2\n', [{ k: 'v', x: 'y' }, { a: 1, b: 2 }]],
    ['indented root', '  a: 1\n  b:\n    c: 2\n', { a: 1, b: { c: 2 } }],
    ['root flow mapping', '{a: 1, b: [x, {c: d}]} # c\n', { a: 1, b: ['x', { c: 'd' }] }],
    ['root flow sequence, trailing comma', '[a, "b", ]\n', ['a', 'b']],
    ['flow mapping, trailing comma', '{a: 1, }\n', { a: 1 }],
    ['flow forms', 'a: {"b":c, \'d\': e, f: [], g: {}, h: [[1, 2], [3]], i: a b, j: "x,y"}\n', { a: { b: 'c', d: 'e', f: [], g: {}, h: [[1, 2], [3]], i: 'a b', j: 'x,y' } }],
    ['flow plain scalars with colons', 'a: [a:b, http://x:80, {k: v:w}]\n', { a: ['a:b', 'http://x:80', { k: 'v:w' }] }],
    ['literal block scalar', 'a: |\n  x\n    y\n\n  z\nb: 1\n', { a: 'x\n  y\n\nz\n', b: 1 }],
    ['literal strip', 'a: |-\n  x\n  y\n\nb: 1\n', { a: 'x\ny', b: 1 }],
    ['literal keep', 'a: |+\n  x\n\n\nb: 1\n', { a: 'x\n\n\n', b: 1 }],
    ['literal keep at the end of the text', 'a: |+\n  x\n\n', { a: 'x\n\n' }],
    ['literal at the end without a newline', 'a: |\n  x', { a: 'x\n' }],
    ['empty literal', 'a: |\nb: 1\n', { a: '', b: 1 }],
    ['literal with comments and indicators inside', 'a: | # header comment\n  # not a comment\n  - x: y\n', { a: '# not a comment\n- x: y\n' }],
    ['explicit indentation', 'a: |2\n   x\n  y\n', { a: ' x\ny\n' }],
    ['explicit indentation and chomping', 'a: |-1\n  x\n b: 1\n', { a: ' x\nb: 1' }],
    ['indentation taken from a longer blank line (js-yaml)', 'a: |+\n      \nb: 1\n', { a: '\n', b: 1 }],
    ['folded', 'a: >\n  one\n  two\n\n  three\n    more\n  four\n', { a: 'one two\nthree\n  more\nfour\n' }],
    ['folded strip', 'a: >-\n  one\n  two\n', { a: 'one two' }],
    ['block scalar in a sequence', '- |\n  x\n- >-\n  y\n  z\n', ['x\n', 'y z']],
    ['block scalar in a compact mapping', '- k: |\n    x\n  j: 1\n', [{ k: 'x\n', j: 1 }]],
    ['a certificate', 'data:\n  tls.crt: |\n    -----BEGIN CERTIFICATE-----\n    MIIB\n    -----END CERTIFICATE-----\n', { data: { 'tls.crt': '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' } }],
    ['keys near the null/bool words', 'nulL: 1\nfALSE: 2\nFalse: 3\nTRUE: 4\nnone: 5\nfalsy: 6\nname: 7\nNull: 8\n', { nulL: 1, fALSE: 2, false: 3, true: 4, none: 5, falsy: 6, name: 7, null: 8 }],
    ['keys and values the string caches must tell apart', 'abcdefghijklmnopq: 1\nXbcdefghijklmnopq: 2\nbcdefghijklmnopq: 3\nab: [a b, a  b, ab, abc, éa, ĕa, xa, abcdefghijklm, Xbcdefghijklm]\n',
      { abcdefghijklmnopq: 1, Xbcdefghijklmnopq: 2, bcdefghijklmnopq: 3, ab: ['a b', 'a  b', 'ab', 'abc', 'éa', 'ĕa', 'xa', 'abcdefghijklm', 'Xbcdefghijklm'] }],
    ['deep but within bounds', 'a: ' + '['.repeat(40) + ']'.repeat(40) + '\n', { a: JSON.parse('['.repeat(40) + ']'.repeat(40)) as unknown }],
  ];
  for (const [name, text, want] of rows) {
    const js = load(text);
    t.ok('value' in js && isDeepStrictEqual(js.value, want), `${name}: the expected value is js-yaml's`);
    // Twice: the second parse takes keys and short values from the string caches.
    for (const pass of ['parsed', 'parsed again']) {
      const got = parseYamlSubset(text);
      t.ok(got !== NOT_IN_SUBSET && isDeepStrictEqual(got, want) && sameKeyOrder(got, 'value' in js ? js.value : undefined), `${name}: ${pass}`);
    }
  }
});

// --- parseFast ------------------------------------------------------------------------------------

/** What parseFast's addObject makes of one document (objects only; problems counted). */
function expectObjects(line: number, v: unknown, out: { line: number | undefined; raw: unknown }[], problems: { n: number }): void {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    problems.n++;
    return;
  }
  const o = v as Record<string, unknown>;
  if (typeof o.kind !== 'string' || o.kind === '') {
    problems.n++;
    return;
  }
  if (o.kind === 'List' && Array.isArray(o.items)) {
    for (const it of o.items) expectObjects(line, it, out, problems);
    return;
  }
  const meta = (typeof o.metadata === 'object' && o.metadata !== null ? o.metadata : {}) as Record<string, unknown>;
  if (typeof meta.name !== 'string' || meta.name === '') {
    problems.n++;
    return;
  }
  out.push({ line, raw: v });
}

/** Anchors/aliases outside quotes, as parseText has always screened them (policy/load.ts). */
const MAY_HAVE_ALIASES = /(?:^|[\s[{,:-])[&*][^\s,\]}]/m;

/**
 * parseFast as it was: line-array split, js-yaml per document; and as it is screened: a document
 * outside the subset that may hold anchors or aliases sends the whole file to the `yaml` parser.
 */
function referenceParseFast(text: string): { objects: { line: number | undefined; raw: unknown }[]; problems: number } | undefined {
  const docs = referenceSplit(text);
  if (!docs) return undefined;
  const objects: { line: number | undefined; raw: unknown }[] = [];
  const problems = { n: 0 };
  for (const d of docs) {
    if (MAY_HAVE_ALIASES.test(d.text) && parseYamlSubset(d.text) === NOT_IN_SUBSET) return undefined;
    const r = load(d.text);
    if ('error' in r) return undefined;
    if (r.value === null || r.value === undefined) continue;
    expectObjects(d.line + referenceFirst(d.text), r.value, objects, problems);
  }
  return { objects, problems: problems.n };
}

t.test('parseFast: same documents, values and line numbers as the line-array split with js-yaml', async (t) => {
  const texts: [string, string][] = [];
  for (const f of [...yamlFiles(FIXTURES), ...SHIPPED_YAML.flatMap(yamlFiles)]) texts.push([f, readFileSync(f, 'utf8')]);
  texts.push(['bench (small)', bigPolicy({ identities: 50, rules: 200 })]);
  const pod = (name: string) => `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n`;
  const crafted: string[] = [
    `${pod('a')}---\n${pod('b')}`,
    `---\n${pod('a')}---\n---\n\n# c\n  # c\n\n${pod('b')}---\n`,
    `# head\n\n${pod('a')}---   \n${pod('b')}--- # comment\n${pod('c')}`,
    `${pod('a')}---\t\n${pod('b')}`,
    `${pod('a')}--- x\n${pod('b')}`,
    `${pod('a')}---x: 1\n`,
    `%YAML 1.2\n---\n${pod('a')}`,
    `${pod('a')}...\n`,
    `${pod('a')}... \n`,
    `${pod('a')}---\n${pod('a').replace('a\n', 'dup\n  name: again\n')}`,
    `${pod('a')}---\n[1, 2]\n---\nkind: Pod\n---\nkind: List\nitems:\n- ${pod('c').replace(/\n(?=.)/g, '\n  ')}- ${pod('d').replace(/\n(?=.)/g, '\n  ')}`,
    `${pod('a')}---\n\u00a0\n${pod('b')}`,
    `${pod('a').replace(/\n/g, '\r\n')}---\r\n${pod('b').replace(/\n/g, '\r\n')}`,
    `${pod('a')}---\nmetadata: {name: x, labels: {a: &x 1}}\nkind: Pod\n`,
    `\n\n\n${pod('a')}\n\n`,
    '---',
    '',
    '\n',
  ];
  crafted.forEach((c, i) => texts.push([`crafted#${i}`, c]));
  // Random multi-document texts: blank and comment lines around separators move the line numbers.
  const rnd = mulberry32(99);
  for (let i = 0; i < 200; i++) {
    const parts: string[] = [];
    for (let d = Math.floor(rnd() * 5); d >= 0; d--) {
      const lead = ['', '\n', '# c\n', '\n  # c\n\n'][Math.floor(rnd() * 4)] as string;
      const obj = { apiVersion: 'v1', kind: rnd() < 0.1 ? 'List' : 'Pod', metadata: { name: `p${i}-${d}`, labels: randomValue(rnd, 3) }, spec: randomValue(rnd, 2) };
      parts.push(lead + jsyaml.dump(obj, { schema: jsyaml.CORE_SCHEMA, flowLevel: rnd() < 0.3 ? 1 : -1 }));
    }
    texts.push([`random#${i}`, parts.join(rnd() < 0.5 ? '---\n' : '--- \n')]);
  }
  const failures: string[] = [];
  for (const [name, text] of texts) {
    const want = referenceParseFast(text);
    const problems: Parameters<typeof parseFast>[2] = [];
    const got = parseFast(name, text, problems);
    if (want === undefined || got === undefined) {
      if (want !== got) failures.push(`${name}: reference ${want === undefined ? 'bails' : 'parses'}, parseFast ${got === undefined ? 'bails' : 'parses'}`);
      continue;
    }
    const gotObjects = got.map((o: SourcedObject) => ({ line: o.line, raw: o.raw as unknown }));
    if (!isDeepStrictEqual(gotObjects, want.objects) || !sameKeyOrder(gotObjects, want.objects)) failures.push(`${name}: objects or lines differ: ${JSON.stringify(gotObjects.map((o) => o.line))} vs ${JSON.stringify(want.objects.map((o) => o.line))}`);
    if (problems.length !== want.problems) failures.push(`${name}: ${problems.length} problems, reference ${want.problems}`);
  }
  t.same(failures, [], `${texts.length} texts`);
});
