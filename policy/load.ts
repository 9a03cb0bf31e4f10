/**
 * Reading `-f` paths into Kubernetes objects: files or folders (not recursive), multi-document YAML,
 * JSON, `kind: List`. Later paths win; within a folder files load in lexical order; a later object
 * with the same kind+namespace+name replaces the earlier one.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import jsyaml from 'js-yaml';
import { LineCounter, parseAllDocuments, isMap, isSeq, type Node } from 'yaml';
import { type LoadProblem, PolicyLoadError, ProblemCodes } from './errors.js';
import { NOT_IN_SUBSET, parseYamlSubset } from './yaml-subset.js';

/** One Kubernetes object and where it came from. */
export interface SourcedObject {
  readonly file: string;
  /** 1-based line of the object's start, when known. */
  readonly line: number | undefined;
  readonly apiVersion: string;
  readonly kind: string;
  /** metadata.namespace as written (undefined when absent). */
  readonly namespace: string | undefined;
  readonly name: string;
  readonly raw: Record<string, unknown>;
}

const EXTENSIONS = ['.yaml', '.yml', '.json'];

/**
 * Expands paths to files: folders list their direct entries (dot-entries skipped, symlinks followed).
 * A folder without any .yaml/.yml/.json file is a warning: valid (a ConfigMap not filled yet) but
 * most often the wrong path.
 */
export async function expand(paths: readonly string[], problems: LoadProblem[], warnings?: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const p of paths) {
    let st;
    try {
      st = await stat(p);
    } catch (e) {
      problems.push(readProblem(p, e));
      continue;
    }
    if (!st.isDirectory()) {
      files.push(p);
      continue;
    }
    // A ConfigMap mount holds `..data -> ..2024_xx` and `name.yaml -> ..data/name.yaml`: the dot
    // entries are skipped and the top-level symlinks are read through stat(), which follows them.
    const names = (await readdir(p)).filter((n) => !n.startsWith('.') && EXTENSIONS.some((x) => n.endsWith(x))).sort();
    if (names.length === 0) warnings?.push(`${p}: the folder holds no manifest (no ${EXTENSIONS.join(', ')} file): nothing is loaded from it`);
    for (const n of names) {
      const full = join(p, n);
      try {
        if ((await stat(full)).isFile()) files.push(full);
      } catch (e) {
        problems.push(readProblem(full, e));
      }
    }
  }
  return files;
}

function readProblem(file: string, e: unknown): LoadProblem {
  return { code: ProblemCodes.L7G_ERR_POLICY_READ, file, object: undefined, field: undefined, line: undefined, message: `cannot read: ${e instanceof Error ? e.message : String(e)}` };
}

function parseProblem(file: string, line: number | undefined, message: string): LoadProblem {
  return { code: ProblemCodes.L7G_ERR_POLICY_PARSE, file, object: undefined, field: undefined, line, message };
}

/**
 * Parses one file's text into objects; syntax errors become problems with line numbers.
 *
 * Three parsers, one result. The fast path reads each document with the YAML-subset parser
 * (yaml-subset.ts: the block, flow and scalar forms manifests are written in, with js-yaml's exact
 * results) and gives any document outside that subset to js-yaml (core schema). Both are far faster
 * than `yaml`'s document model (a 2 MiB, 2,000-object file: ~28 ms, ~120 ms and ~1,900 ms; parseText
 * end to end ~35-50 ms, was ~140 ms: bench/reload/yaml.mjs), which matters on every reload; `yaml`
 * keeps exact line numbers per List item and the best error messages. The fast path takes files
 * that are plain data: no anchors/aliases (js-yaml has no alias budget, so a YAML bomb must go to
 * the guarded parser) and no syntax errors (any js-yaml error re-parses the file with `yaml` to
 * report it).
 */
export function parseText(file: string, text: string, problems: LoadProblem[]): SourcedObject[] {
  // JSON (what `kubectl get -o json` and the admin API's JSON bodies are) is YAML 1.2 too, and
  // JSON.parse reads it ~10x faster still; a file that is not valid JSON takes the YAML paths.
  if (/^\s*[{[]/.test(text)) {
    const json = parseJson(file, text, problems);
    if (json !== undefined) return json;
  }
  const fast = parseFast(file, text, problems);
  if (fast !== undefined) return fast;
  return parseWithDocuments(file, text, problems);
}

/** Anchors (&a) and aliases (*a) outside quotes: then only the guarded parser is used. */
const MAY_HAVE_ALIASES = /(?:^|[\s[{,:-])[&*][^\s,\]}]/m;

/** Document separators: a line starting with "---" followed by nothing, a space or a comment. */
const DOC_START = /^---(?:[ \t].*)?$/;

export function parseJson(file: string, text: string, problems: LoadProblem[]): SourcedObject[] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const out: SourcedObject[] = [];
  addObject(file, 1, value, () => 1, out, problems);
  return out;
}

export function parseFast(file: string, text: string, problems: LoadProblem[]): SourcedObject[] | undefined {
  // The same split as `text.split('\n')` line by line, but documents are kept as offsets into the
  // text: materialising 60,000 lines and re-joining them cost more than parsing a 2 MiB file.
  const docs: { line: number; start: number; end: number }[] = [];
  let docLine = 0; // 0-based index and offset of the current document's first line
  let docStart = 0;
  let i = 0;
  for (let p = 0; ; i++, p++) {
    let e = text.indexOf('\n', p);
    if (e < 0) e = text.length;
    const c = text.charCodeAt(p);
    if (c === 0x2d && text.startsWith('---', p) && DOC_START.test(text.slice(p, e).trimEnd())) {
      if (text.slice(p, e).trim() !== '---') return undefined; // content on the separator line: leave it to `yaml`
      if (i > docLine) docs.push({ line: docLine + 1, start: docStart, end: p - 1 });
      docLine = i + 1;
      docStart = e + 1;
    } else if (c === 0x25 || (e - p === 3 && text.startsWith('...', p))) {
      return undefined; // directives and document-end markers: the full parser handles them
    }
    if (e === text.length) break;
    p = e;
  }
  if (i + 1 > docLine) docs.push({ line: docLine + 1, start: docStart, end: text.length });
  const out: SourcedObject[] = [];
  const local: LoadProblem[] = [];
  for (const d of docs) {
    // The subset parser reads typical manifests several times faster than js-yaml, with identical
    // results; any document outside its subset (or not valid YAML) goes to js-yaml as before.
    let value = parseYamlSubset(text, d.start, d.end);
    if (value === NOT_IN_SUBSET) {
      const doc = text.slice(d.start, d.end);
      // Anchors and aliases (never in the subset): js-yaml has no alias budget, so a YAML bomb
      // must go to the guarded parser. Checked per fallback document, not over every file.
      if (MAY_HAVE_ALIASES.test(doc)) return undefined;
      try {
        value = jsyaml.load(doc, { schema: jsyaml.CORE_SCHEMA, filename: file });
      } catch {
        return undefined; // report syntax errors with the `yaml` parser's messages and positions
      }
    }
    if (value === null || value === undefined) continue;
    // The first non-blank, non-comment line is where the object starts (as `yaml` reports it).
    let first = 0;
    for (let p = d.start; ; p++) {
      let e = text.indexOf('\n', p);
      if (e < 0 || e > d.end) e = d.end;
      if (!/^\s*(#.*)?$/.test(text.slice(p, e))) break;
      first++;
      if (e === d.end) break;
      p = e;
    }
    addObject(file, d.line + first, value, () => d.line + first, out, local);
  }
  problems.push(...local);
  return out;
}

/** The `yaml` package's budget for alias nodes in one document (its own default is also 100). */
const MAX_ALIAS_COUNT = 100;

function parseWithDocuments(file: string, text: string, problems: LoadProblem[]): SourcedObject[] {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const out: SourcedObject[] = [];
  const lineOf = (node: Node | null | undefined) => (node?.range ? lc.linePos(node.range[0]).line : undefined);
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) problems.push(parseProblem(file, e.linePos?.[0].line ?? lc.linePos(e.pos[0]).line, `YAML syntax error: ${e.message.split('\n')[0]}`));
      continue;
    }
    const node = doc.contents;
    if (node === null) continue; // empty document ("---" at the end)
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (e) {
      // `yaml` throws (ReferenceError) on alias expansion past the budget: a "billion laughs" file
      // is a parse problem like any other, not a crash of the reload or the admin call.
      problems.push(parseProblem(file, lineOf(node), `YAML aliases expand too much (more than ${MAX_ALIAS_COUNT} alias nodes): ${e instanceof Error ? e.message : String(e)}`));
      continue;
    }
    if (value === null || value === undefined) continue;
    const seq = isMap(node) ? node.get('items', true) : undefined;
    addObject(file, lineOf(node), value, (i) => lineOf(isSeq(seq) ? (seq.items[i] as Node) : node), out, problems);
  }
  return out;
}

/** One parsed document: a Kubernetes object, or a `kind: List` of them. */
function addObject(
  file: string,
  line: number | undefined,
  v: unknown,
  itemLine: (i: number) => number | undefined,
  out: SourcedObject[],
  problems: LoadProblem[],
): void {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    problems.push(parseProblem(file, line, 'a document must be a Kubernetes object (a map)'));
    return;
  }
  const o = v as Record<string, unknown>;
  const meta = (typeof o.metadata === 'object' && o.metadata !== null ? o.metadata : {}) as Record<string, unknown>;
  if (typeof o.kind !== 'string' || o.kind === '') {
    problems.push(parseProblem(file, line, 'object has no kind'));
    return;
  }
  if (o.kind === 'List' && Array.isArray(o.items)) {
    o.items.forEach((it, i) => addObject(file, itemLine(i), it, () => itemLine(i), out, problems));
    return;
  }
  if (typeof meta.name !== 'string' || meta.name === '') {
    problems.push({ ...parseProblem(file, line, 'metadata.name is required'), object: o.kind, field: 'metadata.name' });
    return;
  }
  out.push({
    file, line,
    apiVersion: typeof o.apiVersion === 'string' ? o.apiVersion : '',
    kind: o.kind,
    namespace: typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : undefined,
    name: meta.name,
    raw: o,
  });
}

/** Key for "same object": cluster-scoped kinds and the default namespace are normalised. */
export function objectKey(o: SourcedObject): string {
  const ns = CLUSTER_SCOPED.has(o.kind) ? '' : (o.namespace ?? 'default');
  return `${o.kind}/${ns}/${o.name}`;
}

const CLUSTER_SCOPED = new Set(['Namespace', 'CiliumClusterwideNetworkPolicy', 'Node', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition']);

/**
 * Later objects replace earlier ones with the same key (objectKey's kind, namespace, name); order of
 * first appearance is kept. Keyed by nested maps, not objectKey's string: 100,000 pods took ~250 ms
 * to build and hash their keys.
 */
export function dedupe(objects: readonly SourcedObject[], warnings?: string[]): SourcedObject[] {
  const out: SourcedObject[] = [];
  const byKind = new Map<string, Map<string, Map<string, number>>>();
  for (const o of objects) {
    let byNs = byKind.get(o.kind);
    if (byNs === undefined) byKind.set(o.kind, (byNs = new Map()));
    const ns = CLUSTER_SCOPED.has(o.kind) ? '' : (o.namespace ?? 'default');
    let byName = byNs.get(ns);
    if (byName === undefined) byNs.set(ns, (byName = new Map()));
    const at = byName.get(o.name);
    if (at === undefined) {
      byName.set(o.name, out.length);
      out.push(o);
      continue;
    }
    const prev = out[at] as SourcedObject;
    if (warnings) warnings.push(`${o.kind} ${o.namespace ?? ''}${o.namespace ? '/' : ''}${o.name} from ${prev.file} is replaced by ${o.file}`);
    out[at] = o;
  }
  return out;
}

/** Reads files and folders, collecting problems instead of throwing (for `policy validate`). */
export async function readObjects(paths: readonly string[], texts?: Map<string, string>): Promise<{ objects: SourcedObject[]; problems: LoadProblem[]; warnings: string[] }> {
  const problems: LoadProblem[] = [];
  const warnings: string[] = [];
  const all: SourcedObject[] = [];
  for (const f of await expand(paths, problems, warnings)) {
    let text: string;
    try {
      text = await readFile(f, 'utf8');
    } catch (e) {
      problems.push(readProblem(f, e));
      continue;
    }
    texts?.set(f, text);
    all.push(...parseText(f, text, problems));
  }
  return { objects: dedupe(all, warnings), problems, warnings };
}

/** Loads `-f` paths; throws PolicyLoadError when any file cannot be read or parsed. */
export async function loadObjects(paths: string[]): Promise<SourcedObject[]> {
  const { objects, problems } = await readObjects(paths);
  if (problems.length > 0) throw new PolicyLoadError(problems);
  return objects;
}
