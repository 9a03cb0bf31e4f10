/**
 * Line and column of a reported problem's field. The fast parsers (load.ts) keep no positions, and
 * computing them for every field would slow every load; so positions are computed only when a
 * problem is reported: the document holding the object is parsed again with `yaml` (which keeps a
 * range per node; JSON is YAML 1.2 too) and the problem's field path is walked to its node.
 */
import { readFile } from 'node:fs/promises';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair } from 'yaml';
import { type LoadProblem, ProblemCodes } from './errors.js';

export interface LocateOptions {
  /**
   * Documents larger than this are not parsed again (their problems keep the object's line and the
   * field path): `yaml` reads ~1 MB/s, and a reload must not stall a proxy to place a message.
   */
  readonly maxDocumentBytes?: number;
}

/**
 * `problems` with line and column set to their field's (the key of an unknown or unsupported field,
 * the value of an invalid one; the deepest existing ancestor of a missing one). `textOf` gives the
 * text a problem's file was parsed from, or undefined (then the problem is kept as it is).
 */
export function locateProblems(problems: readonly LoadProblem[], textOf: (file: string) => string | undefined, opts: LocateOptions = {}): LoadProblem[] {
  const docs = new Map<string, DocumentIndex | undefined>();
  return problems.map((p) => {
    if (p.object === undefined || p.line === undefined) return p;
    const key = `${p.file}\n${p.line}`;
    let index = docs.get(key);
    if (!docs.has(key)) {
      const text = textOf(p.file);
      index = text === undefined ? undefined : indexDocument(text, p.line, opts.maxDocumentBytes ?? Infinity);
      docs.set(key, index);
    }
    if (index === undefined) return p;
    const node = findObject(index, p.object, p.line);
    if (node === undefined) return p;
    const offset = fieldOffset(node, p.field ?? '', p.code);
    if (offset === undefined) return p;
    const pos = index.lc.linePos(offset);
    return { ...p, line: pos.line + index.firstLine - 1, column: pos.col };
  });
}

interface DocumentIndex {
  /** 1-based line of the document's first line in the file. */
  readonly firstLine: number;
  readonly lc: LineCounter;
  /** The objects of the document: its root, or the items of a `kind: List`. */
  readonly objects: readonly { readonly node: Node; readonly kind: string; readonly name: string; readonly line: number }[];
}

/** Document separators, as load.ts splits them. */
const DOC_START = /^---(?:[ \t].*)?$/;

/** Parses the document of `text` that holds 1-based `line`. */
function indexDocument(text: string, line: number, maxBytes: number): DocumentIndex | undefined {
  let start = 0;
  let firstLine = 1;
  let end = text.length;
  for (let p = 0, n = 1; p < text.length; n++) {
    let e = text.indexOf('\n', p);
    if (e < 0) e = text.length;
    if (text.startsWith('---', p) && DOC_START.test(text.slice(p, e).trimEnd())) {
      if (n >= line) {
        end = p;
        break;
      }
      start = e + 1;
      firstLine = n + 1;
    }
    p = e + 1;
  }
  if (end - start > maxBytes) return undefined;
  const lc = new LineCounter();
  const doc = parseDocument(text.slice(start, end), { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
  const root = doc.contents;
  if (!isMap(root)) return undefined;
  const objects: DocumentIndex['objects'][number][] = [];
  const add = (node: unknown) => {
    if (!isMap(node) || node.range == null) return;
    const meta = node.get('metadata', true);
    const name: unknown = isMap(meta) ? meta.get('name') : undefined;
    const kind: unknown = node.get('kind');
    if (typeof kind === 'string' && typeof name === 'string') objects.push({ node, kind, name, line: lc.linePos(node.range[0]).line + firstLine - 1 });
  };
  const items = root.get('items', true);
  if ((root.get('kind') as unknown) === 'List' && isSeq(items)) items.items.forEach(add);
  else add(root);
  return { firstLine, lc, objects };
}

/**
 * The object a problem names ("Kind ns/name" or "Kind name"): same kind and name; of several (a
 * file may repeat one, the last wins), the one at the problem's line, else the last.
 */
function findObject(index: DocumentIndex, label: string, line: number): Node | undefined {
  const sp = label.indexOf(' ');
  const kind = label.slice(0, sp);
  const rest = label.slice(sp + 1);
  const name = rest.slice(rest.indexOf('/') + 1);
  const same = index.objects.filter((o) => o.kind === kind && o.name === name);
  return (same.find((o) => o.line === line) ?? same[same.length - 1])?.node;
}

/**
 * Offset of `field` ("spec.ingress[0].toPorts[0].rules.http[0].method") under `root`. Keys may hold
 * dots (label keys such as `app.kubernetes.io/name`): at each map the longest key the path goes on
 * with is taken. A path that leaves the document (a missing field) ends at its deepest ancestor.
 */
function fieldOffset(root: Node, field: string, code: LoadProblem['code']): number | undefined {
  let node: unknown = root;
  let pair: Pair | undefined;
  let pos = 0;
  while (pos < field.length) {
    if (field[pos] === '.') pos++;
    if (field[pos] === '[') {
      const close = field.indexOf(']', pos);
      const item = isSeq(node) ? node.items[Number(field.slice(pos + 1, close))] : undefined;
      if (close < 0 || item === undefined) break;
      node = item;
      pair = undefined;
      pos = close + 1;
      continue;
    }
    if (!isMap(node)) break;
    let next: Pair | undefined;
    let len = -1;
    for (const it of node.items) {
      const k = isScalar(it.key) ? String(it.key.value) : undefined;
      if (k === undefined || k.length <= len || !field.startsWith(k, pos)) continue;
      const after = field[pos + k.length];
      if (after === undefined || after === '.' || after === '[') {
        next = it;
        len = k.length;
      }
    }
    if (next === undefined) break;
    pair = next;
    node = next.value;
    pos += len;
  }
  const keyNode = pair?.key as Node | undefined;
  // An unknown or unsupported field is its key; a bad value is the value, where it is written.
  const atKey = pos < field.length || code === ProblemCodes.L7G_ERR_POLICY_UNKNOWN_FIELD || code === ProblemCodes.L7G_ERR_POLICY_UNSUPPORTED;
  const target = (atKey && keyNode !== undefined ? keyNode : (node as Node | null | undefined)) ?? keyNode;
  return target?.range?.[0];
}

/** locateProblems with each file's text read from disk now: for one-shot commands (`policy trace -f`). */
export async function locateInFiles(problems: readonly LoadProblem[]): Promise<LoadProblem[]> {
  const texts = new Map<string, string>();
  for (const f of new Set(problems.map((p) => p.file))) {
    const text = await readFile(f, 'utf8').catch(() => undefined);
    if (text !== undefined) texts.set(f, text);
  }
  return locateProblems(problems, (f) => texts.get(f));
}
