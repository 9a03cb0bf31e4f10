#!/usr/bin/env node
// Import-cycle check for the TypeScript sources: no dependencies, Node >= 20.
//
//   node .ci/import-cycles.mjs [root]
//
// Walks every top-level folder of <root> (default: the repository this script lives in) except
// node_modules, dist, bench and dot-folders, plus the .ts files at the top level, collecting .ts/.mts/.cts
// files (again skipping nested node_modules/dist). For each file it reads the relative specifiers of
//   import ... from './x.js'      import './x.js'      import('./x.js')
//   export ... from './x.js'      export * from './x.js'
// resolves them to the source file (./x.js -> ./x.ts, ./x -> ./x.ts or ./x/index.ts), builds the
// graph, and finds its strongly connected components with Tarjan's algorithm. Every component with
// more than one file (or a file importing itself) is a cycle: the script prints cycles that together
// use every import edge inside the component, one per line as `a.ts -> b.ts -> a.ts`, and exits 1.
// Without cycles it prints `no import cycles (N files)` and exits 0.
//
// `import type` / `export type` count as edges on purpose: they vanish from the emitted JavaScript,
// but a type-only cycle still couples the two files (neither can be read, moved or changed on its own)
// and is usually one edit away from a runtime cycle when a value import joins the type one.
//
// The specifiers are found with a small tokenizer, not a regular expression over the raw text, so
// comments, string and template-literal contents (e.g. a test writing `import x from './y.js'` into
// a temporary file) and regular-expression literals are not mistaken for imports.

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const SKIP_DIRS = new Set(['node_modules', 'dist', 'bench']);
const SOURCE_EXT = /\.(?:ts|mts|cts)$/;

// ---- files ------------------------------------------------------------------------------------

function walk(dir, out) {
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    if (ent.name.startsWith('.')) continue;
    const p = join(dir, ent.name);
    if (ent.isDirectory()) {
      if (!SKIP_DIRS.has(ent.name)) walk(p, out);
    } else if (ent.isFile() && SOURCE_EXT.test(ent.name)) {
      out.push(p);
    }
  }
  return out;
}

// ---- tokenizer --------------------------------------------------------------------------------

const ID_START = /[A-Za-z_$\u0080-\uffff]/;
const ID_PART = /[A-Za-z0-9_$\u0080-\uffff]/;
// After these keywords a `/` starts a regular expression, not a division.
const REGEX_AFTER_KEYWORD = new Set([
  'return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else',
  'yield', 'await', 'extends',
]);

/**
 * Tokens: { t: 'id' | 'str' | 'punct' | 'num' | 'tpl' | 're', v }.
 * Template literals become one 'tpl' token, but the expressions inside `${...}` are tokenized too
 * (their tokens are emitted before the closing 'tpl'), so a dynamic import inside one is still seen.
 */
function tokenize(src) {
  const tokens = [];
  const n = src.length;
  let i = 0;
  // One entry per open `${`: the brace depth at which the template resumes.
  const tplStack = [];
  let braceDepth = 0;

  const prevAllowsRegex = () => {
    const p = tokens[tokens.length - 1];
    if (!p) return true;
    if (p.t === 'id') return REGEX_AFTER_KEYWORD.has(p.v);
    if (p.t === 'num' || p.t === 'str' || p.t === 'tpl' || p.t === 're') return false;
    return !(p.v === ')' || p.v === ']' || p.v === '}');
  };

  // Scans template characters from i (just after ` or after the } closing a ${...}); returns true if
  // it stopped at a `${` (expression follows), false at the closing backtick.
  const scanTemplate = () => {
    while (i < n) {
      const c = src[i];
      if (c === '\\') { i += 2; continue; }
      if (c === '`') { i++; tokens.push({ t: 'tpl', v: '' }); return false; }
      if (c === '$' && src[i + 1] === '{') { i += 2; tplStack.push(braceDepth); braceDepth++; return true; }
      i++;
    }
    return false;
  };

  while (i < n) {
    const c = src[i];
    // whitespace
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v' || c === '\ufeff' || c === '\u00a0' || c === '\u2028' || c === '\u2029') { i++; continue; }
    // comments
    if (c === '/' && src[i + 1] === '/') { while (i < n && src[i] !== '\n') i++; continue; }
    if (c === '/' && src[i + 1] === '*') { const e = src.indexOf('*/', i + 2); i = e < 0 ? n : e + 2; continue; }
    // hashbang
    if (c === '#' && i === 0 && src[1] === '!') { while (i < n && src[i] !== '\n') i++; continue; }
    // strings
    if (c === '"' || c === "'") {
      let v = '';
      i++;
      while (i < n && src[i] !== c) {
        if (src[i] === '\\') { v += src[i + 1] ?? ''; i += 2; continue; }
        if (src[i] === '\n') break; // unterminated: stop at end of line
        v += src[i++];
      }
      i++;
      tokens.push({ t: 'str', v });
      continue;
    }
    // template literals
    if (c === '`') { i++; scanTemplate(); continue; }
    // identifiers / keywords
    if (ID_START.test(c)) {
      let j = i + 1;
      while (j < n && ID_PART.test(src[j])) j++;
      tokens.push({ t: 'id', v: src.slice(i, j) });
      i = j;
      continue;
    }
    // private names (#x)
    if (c === '#') {
      let j = i + 1;
      while (j < n && ID_PART.test(src[j])) j++;
      tokens.push({ t: 'id', v: src.slice(i, j) });
      i = j;
      continue;
    }
    // numbers
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      let j = i + 1;
      while (j < n && /[0-9A-Za-z_.]/.test(src[j])) j++;
      tokens.push({ t: 'num', v: src.slice(i, j) });
      i = j;
      continue;
    }
    // regular expression literals
    if (c === '/' && prevAllowsRegex()) {
      let j = i + 1;
      let inClass = false;
      while (j < n) {
        const d = src[j];
        if (d === '\\') { j += 2; continue; }
        if (d === '\n') break;
        if (inClass) { if (d === ']') inClass = false; } else if (d === '[') inClass = true; else if (d === '/') break;
        j++;
      }
      j++;
      while (j < n && ID_PART.test(src[j])) j++;
      tokens.push({ t: 're', v: src.slice(i, j) });
      i = j;
      continue;
    }
    // braces (template expression ends)
    if (c === '{') { braceDepth++; tokens.push({ t: 'punct', v: '{' }); i++; continue; }
    if (c === '}') {
      if (tplStack.length > 0 && tplStack[tplStack.length - 1] === braceDepth - 1) {
        tplStack.pop();
        braceDepth--;
        i++;
        scanTemplate();
        continue;
      }
      braceDepth = Math.max(0, braceDepth - 1);
      tokens.push({ t: 'punct', v: '}' });
      i++;
      continue;
    }
    // `...` and `?.` matter only so that `.import` / `x?.import` are not read as keywords.
    if (c === '.' && src[i + 1] === '.' && src[i + 2] === '.') { tokens.push({ t: 'punct', v: '...' }); i += 3; continue; }
    if (c === '?' && src[i + 1] === '.' && !/[0-9]/.test(src[i + 2] ?? '')) { tokens.push({ t: 'punct', v: '?.' }); i += 2; continue; }
    tokens.push({ t: 'punct', v: c });
    i++;
  }
  return tokens;
}

// ---- specifiers -------------------------------------------------------------------------------

/** Skips a balanced {...} group starting at tokens[k] === '{'; returns the index after the '}'. */
function skipBraces(tokens, k) {
  let depth = 0;
  for (; k < tokens.length; k++) {
    const tok = tokens[k];
    if (tok.t !== 'punct') continue;
    if (tok.v === '{') depth++;
    else if (tok.v === '}' && --depth === 0) return k + 1;
  }
  return k;
}

/**
 * From tokens[k] (the first token after `import`/`export`), scans an import/export clause up to
 * `from '<spec>'`; returns the specifier or undefined when the clause ends first (`;`, a keyword
 * starting a declaration, ...).
 */
function clauseFrom(tokens, k) {
  for (let steps = 0; k < tokens.length && steps < 64; steps++) {
    const tok = tokens[k];
    if (tok.t === 'punct' && tok.v === '{') { k = skipBraces(tokens, k); continue; }
    if (tok.t === 'id' && tok.v === 'from' && tokens[k + 1]?.t === 'str') return tokens[k + 1].v;
    if (tok.t === 'id' || (tok.t === 'punct' && (tok.v === '*' || tok.v === ','))) { k++; continue; }
    return undefined;
  }
  return undefined;
}

/** Relative module specifiers of one file, in source order, with the kind of reference. */
export function specifiers(src) {
  const tokens = tokenize(src);
  const out = [];
  for (let k = 0; k < tokens.length; k++) {
    const tok = tokens[k];
    if (tok.t !== 'id' || (tok.v !== 'import' && tok.v !== 'export')) continue;
    const prev = tokens[k - 1];
    if (prev && prev.t === 'punct' && (prev.v === '.' || prev.v === '?.')) continue; // x.import
    const next = tokens[k + 1];
    if (!next) break;
    if (tok.v === 'import') {
      if (next.t === 'punct' && next.v === '.') continue; // import.meta
      if (next.t === 'punct' && next.v === '(') { // import('./x.js'), typeof import('./x.js')
        if (tokens[k + 2]?.t === 'str') out.push(tokens[k + 2].v);
        continue;
      }
      if (next.t === 'str') { out.push(next.v); continue; } // import './x.js'
      // `import x = require('./x')` (TypeScript's CommonJS form)
      if (next.t === 'id' && tokens[k + 2]?.v === '=' && tokens[k + 3]?.v === 'require' && tokens[k + 5]?.t === 'str') {
        out.push(tokens[k + 5].v);
        continue;
      }
      const spec = clauseFrom(tokens, k + 1);
      if (spec !== undefined) out.push(spec);
      continue;
    }
    // export: only `export {..} from`, `export * [as ns] from`, `export type {..} from` re-export.
    const first = next.t === 'id' && next.v === 'type' ? tokens[k + 2] : next;
    if (!first || first.t !== 'punct' || (first.v !== '{' && first.v !== '*')) continue;
    const spec = clauseFrom(tokens, k + 1);
    if (spec !== undefined) out.push(spec);
  }
  return out.filter((s) => s.startsWith('./') || s.startsWith('../'));
}

/** The source file a relative specifier of `from` names, or undefined (not a scanned source). */
function resolveSpecifier(from, spec, known) {
  const base = resolve(dirname(from), spec);
  const candidates = [];
  const m = /\.(m|c)?js$/.exec(base);
  if (m) candidates.push(base.slice(0, -m[0].length) + '.' + (m[1] ?? '') + 'ts');
  if (SOURCE_EXT.test(base)) candidates.push(base);
  if (!m) candidates.push(base + '.ts', base + '.mts', base + '.cts', join(base, 'index.ts'));
  return candidates.find((c) => known.has(c));
}

// ---- Tarjan's strongly connected components (iterative) ---------------------------------------

function stronglyConnected(nodes, edges) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const sccs = [];
  for (const root of nodes) {
    if (idx.has(root)) continue;
    const work = [{ v: root, i: 0 }];
    idx.set(root, index); low.set(root, index); index++;
    stack.push(root); onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const succ = edges.get(frame.v) ?? [];
      if (frame.i < succ.length) {
        const w = succ[frame.i++];
        if (!idx.has(w)) {
          idx.set(w, index); low.set(w, index); index++;
          stack.push(w); onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) {
          low.set(frame.v, Math.min(low.get(frame.v), idx.get(w)));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1].v;
        low.set(parent, Math.min(low.get(parent), low.get(frame.v)));
      }
      if (low.get(frame.v) === idx.get(frame.v)) {
        const scc = [];
        let w;
        do { w = stack.pop(); onStack.delete(w); scc.push(w); } while (w !== frame.v);
        sccs.push(scc);
      }
    }
  }
  return sccs;
}

/** Shortest path from `from` to `to` inside `members` (breadth-first), as a node list. */
function shortestPath(from, to, members, edges) {
  const prev = new Map([[from, null]]);
  const queue = [from];
  for (let q = 0; q < queue.length; q++) {
    const v = queue[q];
    if (v === to) break;
    for (const w of edges.get(v) ?? []) {
      if (!members.has(w) || prev.has(w)) continue;
      prev.set(w, v);
      queue.push(w);
    }
  }
  if (!prev.has(to)) return undefined;
  const path = [];
  for (let v = to; v !== null; v = prev.get(v)) path.unshift(v);
  return path;
}

/**
 * Cycles that together use every edge inside one component: for each edge u -> v not yet on a
 * printed cycle, u -> v -> (shortest way back) -> u. Each is rotated to start at its smallest file
 * so the output is stable.
 */
function cyclesOf(scc, edges) {
  const members = new Set(scc);
  const covered = new Set();
  const cycles = [];
  const seen = new Set();
  for (const u of [...scc].sort()) {
    for (const v of [...(edges.get(u) ?? [])].sort()) {
      if (!members.has(v) || covered.has(u + '\0' + v)) continue;
      const back = u === v ? [u] : shortestPath(v, u, members, edges);
      if (!back) continue;
      const ring = u === v ? [u] : [u, ...back.slice(0, -1)];
      for (let k = 0; k < ring.length; k++) covered.add(ring[k] + '\0' + ring[(k + 1) % ring.length]);
      let start = 0;
      for (let k = 1; k < ring.length; k++) if (ring[k] < ring[start]) start = k;
      const rotated = [...ring.slice(start), ...ring.slice(0, start)];
      const key = rotated.join('\0');
      if (seen.has(key)) continue;
      seen.add(key);
      cycles.push(rotated);
    }
  }
  return cycles;
}

// ---- main -------------------------------------------------------------------------------------

export function findCycles(root) {
  const files = [];
  for (const ent of readdirSync(root, { withFileTypes: true })) {
    if (ent.name.startsWith('.') || SKIP_DIRS.has(ent.name)) continue;
    const p = join(root, ent.name);
    if (ent.isDirectory()) walk(p, files);
    else if (ent.isFile() && SOURCE_EXT.test(ent.name)) files.push(p);
  }
  files.sort();
  const known = new Set(files);
  const edges = new Map();
  for (const f of files) {
    const deps = new Set();
    for (const spec of specifiers(readFileSync(f, 'utf8'))) {
      const target = resolveSpecifier(f, spec, known);
      if (target) deps.add(target);
    }
    edges.set(f, [...deps].sort());
  }
  const rel = (p) => relative(root, p).split(sep).join('/');
  const cyclic = stronglyConnected(files, edges)
    .filter((scc) => scc.length > 1 || (edges.get(scc[0]) ?? []).includes(scc[0]))
    .map((scc) => cyclesOf(scc, edges).map((c) => [...c, c[0]].map(rel)))
    .sort((a, b) => (a[0].join() < b[0].join() ? -1 : 1));
  return { files: files.length, components: cyclic };
}

function main() {
  const root = resolve(process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url)));
  const { files, components } = findCycles(root);
  if (components.length === 0) {
    console.log(`no import cycles (${files} files)`);
    return 0;
  }
  for (const cycles of components) for (const c of cycles) console.log(c.join(' -> '));
  const n = components.reduce((s, c) => s + c.length, 0);
  console.error(`\n${n} import cycle(s) in ${components.length} group(s) of mutually importing files (${files} files scanned).`
    + '\nBreak each by moving what both sides need into the module it belongs to (or a small third one).');
  return 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main();
