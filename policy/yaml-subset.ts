/**
 * A fast, exact parser for the YAML that Kubernetes manifests are made of: block mappings and
 * sequences, single-line flow collections, plain/quoted scalars, literal and folded block scalars.
 *
 * Contract: for every text it accepts, the result is deep-equal (types, key order, -0, NaN) to
 * `jsyaml.load(text, { schema: jsyaml.CORE_SCHEMA })`; anything else returns NOT_IN_SUBSET and the
 * caller falls back to js-yaml. Every rule below is a port of js-yaml's loader (4.x, see
 * node_modules/js-yaml/dist/js-yaml.mjs), narrowed wherever matching it exactly would take more
 * code than the case is worth: those cases bail instead. It never throws.
 *
 * Why it is fast (~4x js-yaml on manifests, see bench/reload/yaml.mjs): one pass over the text with
 * charCodeAt and no per-line strings or arrays; no regexes on the hot path (the float regex only
 * runs on scalars that start like a number); a document is a range of the file's text, not a copy;
 * sequences are built exactly sized; repeated keys and short values come from string caches.
 */

/** Returned for any text outside the subset (including text js-yaml would reject). */
export const NOT_IN_SUBSET: unique symbol = Symbol('yaml-subset: not in subset');

/**
 * Parses one YAML document: `text`, or the part of it from `start` to `end` (a multi-document file
 * split by the caller, without copying the document out). Returns the value js-yaml's CORE_SCHEMA
 * load of that text would return, or NOT_IN_SUBSET. A document with no content at all (only blanks
 * and comments) is NOT_IN_SUBSET too: js-yaml returns null or undefined for it depending on leading
 * whitespace, and such documents are cheap for js-yaml anyway.
 */
export function parseYamlSubset(text: string, start = 0, end = text.length): unknown {
  try {
    return parseYamlSubsetStrict(text, start, end);
  } catch {
    // A bug here must never cost a reload: js-yaml gets the document instead.
    reset();
    return NOT_IN_SUBSET;
  }
}

/** As parseYamlSubset, but internal errors (not bail-outs) propagate: for the tests. */
export function parseYamlSubsetStrict(text: string, start = 0, end = text.length): unknown {
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start < end && end <= text.length)) return NOT_IN_SUBSET;
  // js-yaml strips a BOM only at the start of its input.
  if (text.charCodeAt(start) === 0xfeff) return NOT_IN_SUBSET;
  s = text;
  n = end;
  depth = 0;
  try {
    return parseDocument(start);
  } catch (e) {
    if (e === BAIL) return NOT_IN_SUBSET;
    throw e;
  } finally {
    reset();
  }
}

// Parser state lives in module variables rather than an object: the hot loops read them directly
// and nothing is allocated per document. The parser is synchronous, so there is no interleaving.
let s = '';
let n = 0;
/** Start of the current content line's first non-space character, or -1 at the end of the text. */
let pos = 0;
/** Indentation (spaces) of the line `pos` is on; -1 at the end of the text. */
let ind = 0;
/** Start of the line `pos` is on: columns of compact nodes (`- - x`, `- k: v`) are pos - lineStart. */
let lineStart = 0;
/** Nesting of collections; js-yaml throws past 100 composeNode levels, we stop well before. */
let depth = 0;
/** End (exclusive) of the last plain scalar's content, trailing spaces excluded. */
let plainEnd = 0;
/**
 * The last plain scalar's characters packed 8 bits each, the last 16 in four words (a3 oldest):
 * with its length that *is* the string when it has at most 16 characters, all below U+0100 and no
 * space (plainExact), so the string caches below recognise it without comparing characters (which
 * took a sixth of the parse).
 */
let plainA0 = 0;
let plainA1 = 0;
let plainA2 = 0;
let plainA3 = 0;
let plainExact = false;
/** The string caches' slot for the last plain scalar: a hash of its length and packed characters. */
let plainSlot = 0;
const CACHE_SLOTS = 4096;

const MAX_DEPTH = 60;

/**
 * Sequence items are collected here and copied out with slice() once the sequence is complete:
 * an array grown by push() gets a backing store of 17+ slots for its first element, and that slack
 * (most manifest sequences have one or two items) doubled the live heap a 2 MiB file parses into,
 * and with it the scavenger's copying. Nested sequences stack above their parent's items.
 */
const items: unknown[] = [];
let top = 0;

/** Items from `base` to the top as an exactly sized array, popping them. */
function takeItems(base: number): unknown[] {
  const count = top - base;
  top = base;
  // Literals for the common short sequences: cheaper than a slice() call.
  if (count === 1) return [items[base]];
  if (count === 2) return [items[base], items[base + 1]];
  return items.slice(base, base + count);
}

/** Thrown to unwind on anything outside the subset; a plain object so no stack is captured. */
const BAIL = { bail: true };

function bail(): never {
  throw BAIL;
}

function reset(): void {
  items.length = 0;
  top = 0;
  s = '';
  n = 0;
  pos = 0;
  ind = 0;
  lineStart = 0;
  depth = 0;
}

function parseDocument(start: number): unknown {
  toContent(start);
  if (pos < 0) bail();
  const root = ind;
  const c = s.charCodeAt(pos);
  let v: unknown;
  if (c === 0x2d /* - */ && isWsOrEolAt(pos + 1)) {
    v = parseSeq(root);
  } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
    v = parseFlowCollection();
    endLine(pos);
  } else {
    // A root scalar (or anything that is not a key) is not a manifest: bail.
    v = parseMapFrom(root, parseKey());
  }
  // Content after the root node (a less indented line) is an error for js-yaml.
  if (pos >= 0) bail();
  return v;
}

/**
 * From the start of a line: skips blank and comment-only lines, then leaves `pos` on the first
 * non-space character of the next content line (`ind`, `lineStart` set), or pos = ind = -1 at the end.
 */
function toContent(p: number): void {
  const src = s;
  while (p < n) {
    const ls = p;
    let c = src.charCodeAt(p);
    while (c === 0x20) c = src.charCodeAt(++p);
    if (c === 0x0a) {
      p++;
      continue;
    }
    if (c === 0x23 /* # */) {
      p = skipComment(p) + 1;
      continue;
    }
    if (p >= n) break;
    // Tabs in indentation: js-yaml either rejects them or treats them as separation in ways that
    // depend on the context; not worth matching.
    if (c === 0x09) bail();
    ind = p - ls;
    lineStart = ls;
    pos = p;
    // "---" / "..." at column 0 would end the document for js-yaml (parseFast splits on bare "---"
    // lines before we get here, so this is "--- x", "... # c" and the like); and js-yaml skips a
    // "---" that starts a document's first line whatever follows ("---x: 1" is {x: 1}): any
    // column-0 "---" goes to js-yaml.
    if (ind === 0 && (c === 0x2d || c === 0x2e) && s.charCodeAt(p + 1) === c && s.charCodeAt(p + 2) === c && (c === 0x2d || isWsOrEolAt(p + 3))) bail();
    return;
  }
  pos = -1;
  ind = -1;
}

/**
 * From a '#' to the line break that ends the comment (or the end). Every character of a document
 * passes through a check for CR and NUL somewhere, comments here: js-yaml takes a CR as a line
 * break (the rest of a "comment" would be content) and throws on NUL.
 */
function skipComment(p: number): number {
  const src = s;
  const len = n;
  for (; p < len; p++) {
    const c = src.charCodeAt(p);
    if (c === 0x0a) return p;
    if (c === 0x0d || c === 0) bail();
  }
  return len;
}

/** After an inline node ending at `p`: only spaces and a comment may follow on the line. */
function endLine(p: number): void {
  const src = s;
  let c = src.charCodeAt(p);
  while (c === 0x20) c = src.charCodeAt(++p);
  // js-yaml's skipSeparationSpace takes '#' as a comment here even without a space before it
  // (`key: "v"#c`); after a plain scalar we only stop at a '#' preceded by a space anyway.
  if (c === 0x23) {
    p = skipComment(p);
  } else if (c !== 0x0a && p < n) {
    bail();
  }
  if (p >= n) {
    pos = -1;
    ind = -1;
    return;
  }
  toContent(p + 1);
}

/** True at the end of the text, at a line break or a space; a tab there bails (see toContent). */
function isWsOrEolAt(p: number): boolean {
  if (p >= n) return true;
  const c = s.charCodeAt(p);
  if (c === 0x09) bail();
  return c === 0x20 || c === 0x0a;
}

function isFlowIndicator(c: number): boolean {
  return c === 0x2c || c === 0x5b || c === 0x5d || c === 0x7b || c === 0x7d;
}

/** js-yaml readPlainScalar's first-character test (false: not a plain scalar here). */
function isPlainStart(c: number, flow: boolean): boolean {
  switch (c) {
    case 0x20: case 0x09: case 0x0a:
    case 0x2c: case 0x5b: case 0x5d: case 0x7b: case 0x7d: // , [ ] { }
    case 0x23: case 0x26: case 0x2a: case 0x21: case 0x7c: // # & * ! |
    case 0x3e: case 0x27: case 0x22: case 0x25: case 0x40: case 0x60: // > ' " % @ `
      return false;
    case 0x3f: case 0x2d: { // ? -
      const f = pos + 1 < n ? s.charCodeAt(pos + 1) : 0x0a;
      return !(f === 0x20 || f === 0x0a || f === 0x09 || (flow && isFlowIndicator(f)));
    }
    default:
      return !Number.isNaN(c);
  }
}

/**
 * Scans a single-line plain scalar from `pos` (first character already checked): leaves `pos` on
 * the character that ended it (':' of ": ", '#' of " #", a line break/the end, or in flow context a
 * flow indicator) and `plainEnd` after its last non-space character.
 */
function scanPlain(flow: boolean): void {
  const src = s;
  const len = n;
  const stop = flow ? FLOW_SPECIAL : BLOCK_SPECIAL;
  const start = pos;
  let p = start;
  let end = p;
  let a0 = 0;
  let a1 = 0;
  let a2 = 0;
  let a3 = 0;
  let exact = true;
  for (;;) {
    const c = src.charCodeAt(p);
    if (c < 0x80 && stop[c] === 0 && p < len) {
      a3 = (a3 << 8) | (a2 >>> 24);
      a2 = (a2 << 8) | (a1 >>> 24);
      a1 = (a1 << 8) | (a0 >>> 24);
      a0 = (a0 << 8) | c;
      end = ++p;
      continue;
    }
    if (p >= len) break;
    if (c === 0x20) {
      exact = false;
      p++;
      continue;
    }
    if (c === 0x3a /* : */) {
      const f = src.charCodeAt(p + 1);
      if (p + 1 >= len || f === 0x20 || f === 0x0a || (flow && isFlowIndicator(f))) break;
      if (f === 0x09) bail();
    } else if (c === 0x23 /* # */) {
      if (src.charCodeAt(p - 1) === 0x20) break;
    } else if (c === 0x0a || (flow && isFlowIndicator(c))) {
      break;
    } else if (c < 0x20) {
      bail(); // tabs would need js-yaml's firstTabInLine rules; other controls make it throw
    } else {
      p = checkNonAscii(p);
      if (c > 0xff) exact = false;
    }
    a3 = (a3 << 8) | (a2 >>> 24);
    a2 = (a2 << 8) | (a1 >>> 24);
    a1 = (a1 << 8) | (a0 >>> 24);
    a0 = (a0 << 8) | c;
    end = ++p;
  }
  // Nothing before the stop (`: x`, `{: x}`): js-yaml's readPlainScalar reads no node there.
  if (end === start) bail();
  pos = p;
  plainEnd = end;
  plainA0 = a0;
  plainA1 = a1;
  plainA2 = a2;
  plainA3 = a3;
  plainExact = exact && end - start <= 16;
  let h = a0 ^ Math.imul(a1, 0x9e3779b1) ^ Math.imul(a2, 0x85ebca6b) ^ Math.imul(a3, 0x27d4eb2f) ^ Math.imul(end - start, 0xc2b2ae35);
  h ^= h >>> 15;
  plainSlot = h & (CACHE_SLOTS - 1);
}

/** Characters scanPlain must look at (1) rather than just take: controls, space, ':', '#', DEL. */
const BLOCK_SPECIAL = new Uint8Array(128);
const FLOW_SPECIAL = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const special = c < 0x20 || c === 0x20 || c === 0x3a || c === 0x23 || c === 0x7f ? 1 : 0;
  BLOCK_SPECIAL[c] = special;
  FLOW_SPECIAL[c] = special || isFlowIndicator(c) ? 1 : 0;
}

/**
 * js-yaml's PATTERN_NON_PRINTABLE for one character at or above 0x7f: C1 controls (except NEL),
 * U+FFFE/U+FFFF and unpaired surrogates bail. Returns the index of the character's last code unit.
 */
function checkNonAscii(p: number): number {
  const c = s.charCodeAt(p);
  if (c <= 0x9f) {
    if (c !== 0x85) bail();
  } else if (c >= 0xd800 && c <= 0xdfff) {
    const d = s.charCodeAt(p + 1);
    if (c >= 0xdc00 || p + 1 >= n || !(d >= 0xdc00 && d <= 0xdfff)) bail();
    return p + 1;
  } else if (c >= 0xfffe) {
    bail();
  }
  return p;
}

/**
 * A block mapping key at `pos`: a single-line plain or quoted scalar followed by ':' and a space or
 * the end of the line. Leaves `pos` just after the ':'.
 */
function parseKey(): string {
  const c = s.charCodeAt(pos);
  let key: string;
  if (c === 0x22 || c === 0x27) {
    key = c === 0x22 ? readDoubleQuoted() : readSingleQuoted();
    let p = pos;
    while (p < n && s.charCodeAt(p) === 0x20) p++;
    if (p >= n || s.charCodeAt(p) !== 0x3a || !isWsOrEolAt(p + 1)) bail();
    pos = p + 1;
  } else {
    if (!isPlainStart(c, false)) bail();
    const start = pos;
    scanPlain(false);
    // A key must end at ": " on its line; " #" or the end of the line first means it is not one.
    if (pos >= n || s.charCodeAt(pos) !== 0x3a) bail();
    key = plainKey(start, plainEnd);
    pos++;
  }
  checkKey(key);
  return key;
}

/**
 * `__proto__` is set with defineProperty by js-yaml (an own property, not the prototype);
 * `<<` is a merge key in other schemas. Neither appears in manifests: leave both to js-yaml.
 */
function checkKey(key: string): void {
  if (key === '__proto__' || key === '<<') bail();
}

/** A plain key is resolved like any plain scalar and then stringified (`~: x` is key "null"). */
function plainKey(start: number, end: number): string {
  const c = s.charCodeAt(start) | 0x20;
  if (c >= 0x61 && c <= 0x7a) {
    // Of the words a letter starts, only null/true/false resolve to something else; "name",
    // "type" and the like are told apart from them without slicing.
    const len = end - start;
    if ((c !== 0x6e && c !== 0x74 && c !== 0x66) || (len !== 4 && len !== 5) || (plainExact && !isNullOrBoolWord(len))) return cachedKey(start, end);
  }
  const v = resolvePlain(s.slice(start, end));
  return typeof v === 'string' ? cachedKey(start, end) : String(v);
}

/** Whether the last plain scalar (packed exactly, see plainA0) is one of the null/bool words. */
function isNullOrBoolWord(len: number): boolean {
  const a = plainA0;
  if (len === 4) return a === NULL[0] || a === NULL[1] || a === NULL[2] || a === TRUE[0] || a === TRUE[1] || a === TRUE[2];
  // "false": "f" in a1, "alse" in a0.
  return (a === FALSE[0] && plainA1 === 0x66) || (a === FALSE[1] && plainA1 === 0x46) || (a === FALSE[2] && plainA1 === 0x46);
}

/** The last four characters of `word` packed as scanPlain packs them (plainA0). */
function packLast4(word: string): number {
  let a0 = 0;
  for (let i = Math.max(0, word.length - 4); i < word.length; i++) a0 = (a0 << 8) | word.charCodeAt(i);
  return a0;
}

const NULL = ['null', 'Null', 'NULL'].map(packLast4);
const TRUE = ['true', 'True', 'TRUE'].map(packLast4);
const FALSE = ['false', 'False', 'FALSE'].map(packLast4);

/**
 * A plain scalar value: resolved, and when it stays a short string, shared with earlier equal
 * values (TCP, GET, default, v1...): fewer strings to allocate and, above all, for the scavenger to
 * copy while a large file's objects are still young.
 */
function plainValue(start: number, end: number): unknown {
  const len = end - start;
  const c = s.charCodeAt(start);
  if (c >= 0x31 && c <= 0x39 && len <= 15) {
    // [1-9][0-9]*, up to 15 digits: what js-yaml reads with parseInt(v, 10), exact in a double.
    let v = c - 0x30;
    let p = start + 1;
    for (; p < end; p++) {
      const d = s.charCodeAt(p) - 0x30;
      if (d < 0 || d > 9) break;
      v = v * 10 + d;
    }
    if (p === end) return v;
  }
  if (len > 12) return resolvePlain(s.slice(start, end));
  // Only strings are cached, and equal text resolves equally: a hit needs no resolving.
  const slot = plainSlot;
  const k = cached(VALUES, slot, start, len);
  if (k !== undefined) return k;
  const v = resolvePlain(s.slice(start, end));
  if (typeof v === 'string') remember(VALUES, slot, v);
  return v;
}

/** Strings by slot, and per slot [length, or -1 when not packable; a0, a1, a2, a3] (see plainA0). */
interface StringCache {
  readonly strings: (string | undefined)[];
  readonly packed: Int32Array;
}

const newCache = (): StringCache => ({ strings: new Array<string | undefined>(CACHE_SLOTS).fill(undefined), packed: new Int32Array(CACHE_SLOTS * 5).fill(-1) });
const KEYS = newCache();
const VALUES = newCache();

/** The cached string equal to the last plain scalar (at `start`, `len` long), if any. */
function cached(cache: StringCache, slot: number, start: number, len: number): string | undefined {
  const k = cache.strings[slot];
  if (k === undefined) return undefined;
  if (plainExact) {
    const i = slot * 5;
    const pk = cache.packed;
    return pk[i] === len && pk[i + 1] === plainA0 && pk[i + 2] === plainA1 && pk[i + 3] === plainA2 && pk[i + 4] === plainA3 ? k : undefined;
  }
  return k.length === len && s.startsWith(k, start) ? k : undefined;
}

function remember(cache: StringCache, slot: number, str: string): void {
  cache.strings[slot] = str;
  const i = slot * 5;
  cache.packed[i] = plainExact ? str.length : -1;
  cache.packed[i + 1] = plainA0;
  cache.packed[i + 2] = plainA1;
  cache.packed[i + 3] = plainA2;
  cache.packed[i + 4] = plainA3;
}

/**
 * Manifests repeat the same few hundred keys thousands of times. Handing V8 the same string object
 * for each occurrence means it is internalized once and later property stores and lookups take the
 * fast path, instead of a string-table lookup per store; and one copy is kept instead of thousands.
 */
function cachedKey(start: number, end: number): string {
  const len = end - start;
  if (len > 40) return s.slice(start, end);
  const slot = plainSlot;
  const k = cached(KEYS, slot, start, len);
  if (k !== undefined) return k;
  // The property name V8 made of it: internalized (no string-table lookup on later stores, flat for
  // the comparison above) and a copy (a slice of 13+ characters would keep the document alive).
  const fresh = Object.keys({ [s.slice(start, end)]: 0 })[0] as string;
  remember(KEYS, slot, fresh);
  return fresh;
}

/**
 * Block mapping at indentation k whose first key has been read (`pos` just after its ':'). Returns
 * with `pos`/`ind` on the first content line after it (ind < k) or at the end.
 */
function parseMapFrom(k: number, key: string): Record<string, unknown> {
  if (++depth > MAX_DEPTH) bail();
  const obj: Record<string, unknown> = {};
  for (;;) {
    obj[key] = parseMapValue(k);
    if (pos < 0 || ind < k) break;
    if (ind > k) bail(); // "bad indentation of a mapping entry" (also catches multi-line plain scalars)
    key = parseKey();
    // js-yaml throws "duplicated mapping key"; the `yaml` parser reports it with a line.
    if (Object.hasOwn(obj, key)) bail();
  }
  depth--;
  return obj;
}

/** The value after "key:" in a block mapping at indentation k. */
function parseMapValue(k: number): unknown {
  let p = pos;
  let c = s.charCodeAt(p);
  while (c === 0x20) c = s.charCodeAt(++p);
  if (c === 0x0a || c === 0x23 || p >= n) {
    if (!nextLineAfter(p)) return null;
    if (ind > k) return parseBlockNode();
    // A sequence may sit at the key's own indentation (kubectl's style); anything else at k or
    // less means the value is empty.
    if (ind === k && s.charCodeAt(pos) === 0x2d && isWsOrEolAt(pos + 1)) return parseSeq(k);
    return null;
  }
  if (c === 0x09) bail();
  pos = p;
  switch (c) {
    case 0x22: case 0x27: { // " '
      const v = c === 0x22 ? readDoubleQuoted() : readSingleQuoted();
      endLine(pos);
      return v;
    }
    case 0x5b: case 0x7b: { // [ {
      const v = parseFlowCollection();
      endLine(pos);
      return v;
    }
    case 0x7c: case 0x3e: // | >
      return readBlockScalar(k);
  }
  // A block collection cannot start on the key's line (`a: - x`, `a: b: c`): js-yaml throws.
  if (!isPlainStart(c, false)) bail();
  const start = pos;
  scanPlain(false);
  const v = plainValue(start, plainEnd);
  endLine(pos);
  return v;
}

/**
 * `p` is at a line break, a comment or the end, with nothing on the line before it that counts:
 * moves to the next content line. False at the end of the text.
 */
function nextLineAfter(p: number): boolean {
  if (s.charCodeAt(p) === 0x23) p = skipComment(p);
  if (p >= n) {
    pos = -1;
    ind = -1;
    return false;
  }
  toContent(p + 1);
  return pos >= 0;
}

/** A block sequence or mapping starting at `pos` on its own line (indentation `ind`). */
function parseBlockNode(): unknown {
  const k = ind;
  if (s.charCodeAt(pos) === 0x2d && isWsOrEolAt(pos + 1)) return parseSeq(k);
  // Scalars and flow collections on the line after their key are valid YAML but rare: bail.
  return parseMapFrom(k, parseKey());
}

/** Block sequence at indentation m, `pos` on its first "-". */
function parseSeq(m: number): unknown[] {
  if (++depth > MAX_DEPTH) bail();
  const base = top;
  for (;;) {
    const v = parseSeqEntry(m);
    items[top++] = v;
    if (pos < 0 || ind < m) break;
    if (ind > m) bail(); // "bad indentation of a sequence entry"
    // At the same indentation but not "- ": the sequence is the value of a key at this indentation.
    if (!(s.charCodeAt(pos) === 0x2d && isWsOrEolAt(pos + 1))) break;
  }
  depth--;
  return takeItems(base);
}

/** One "- entry" of a sequence at indentation m; `pos` on the "-". */
function parseSeqEntry(m: number): unknown {
  let p = pos + 1;
  let c = s.charCodeAt(p);
  while (c === 0x20) c = s.charCodeAt(++p);
  if (c === 0x0a || c === 0x23 || p >= n) {
    if (!nextLineAfter(p)) return null;
    if (ind > m) return parseBlockNode();
    if (ind === m) return null;
    // js-yaml would go on reading the *parent's* entries into this sequence (`- -\n- b` is
    // [[null, b]]): bail rather than copy that.
    bail();
  }
  if (c === 0x09) bail();
  pos = p;
  const col = p - lineStart;
  switch (c) {
    case 0x2d: // - (a nested sequence "- - x" when followed by a space)
      if (isWsOrEolAt(p + 1)) return parseSeq(col);
      break;
    case 0x22: case 0x27: { // " '
      const v = c === 0x22 ? readDoubleQuoted() : readSingleQuoted();
      let q = pos;
      while (q < n && s.charCodeAt(q) === 0x20) q++;
      if (q < n && s.charCodeAt(q) === 0x3a && isWsOrEolAt(q + 1)) {
        checkKey(v);
        pos = q + 1;
        return parseMapFrom(col, v);
      }
      endLine(pos);
      return v;
    }
    case 0x5b: case 0x7b: { // [ {
      const v = parseFlowCollection();
      endLine(pos);
      return v;
    }
    case 0x7c: case 0x3e: // | >
      return readBlockScalar(m);
  }
  if (!isPlainStart(c, false)) bail();
  const start = pos;
  scanPlain(false);
  if (pos < n && s.charCodeAt(pos) === 0x3a) {
    // "- key: value": a compact mapping at the key's column.
    const key = plainKey(start, plainEnd);
    checkKey(key);
    pos++;
    return parseMapFrom(col, key);
  }
  const v = plainValue(start, plainEnd);
  endLine(pos);
  return v;
}

/** Spaces inside a flow collection; a line break, comment or tab there bails (single-line only). */
function skipFlowSpace(): void {
  const src = s;
  let p = pos;
  let c = src.charCodeAt(p);
  while (c === 0x20) c = src.charCodeAt(++p);
  if (c === 0x0a || c === 0x23 || c === 0x09 || p >= n) bail();
  pos = p;
}

/** A single-line flow collection at `pos` ('[' or '{'); leaves `pos` after its closing bracket. */
function parseFlowCollection(): unknown[] | Record<string, unknown> {
  if (++depth > MAX_DEPTH) bail();
  const v = s.charCodeAt(pos) === 0x7b ? parseFlowMap() : parseFlowSeq();
  depth--;
  return v;
}

function parseFlowMap(): Record<string, unknown> {
  const obj: Record<string, unknown> = {};
  pos++;
  skipFlowSpace();
  let c = s.charCodeAt(pos);
  if (c === 0x7d) {
    pos++;
    return obj;
  }
  for (;;) {
    // "expected the node content, but found ','"
    if (c === 0x2c) bail();
    const key = parseFlowKey(c);
    skipFlowSpace();
    // `{a}` (a key with no ':') is valid but not worth supporting.
    if (s.charCodeAt(pos) !== 0x3a) bail();
    checkKey(key);
    if (Object.hasOwn(obj, key)) bail();
    pos++;
    skipFlowSpace();
    c = s.charCodeAt(pos);
    // `{a: , b: c}`: an empty value is null.
    obj[key] = c === 0x2c || c === 0x7d ? null : parseFlowNode();
    skipFlowSpace();
    c = s.charCodeAt(pos++);
    if (c === 0x7d) return obj;
    if (c !== 0x2c) bail(); // "missed comma between flow collection entries"
    skipFlowSpace();
    c = s.charCodeAt(pos);
    if (c === 0x7d) {
      pos++;
      return obj;
    }
  }
}

function parseFlowSeq(): unknown[] {
  const base = top;
  pos++;
  skipFlowSpace();
  let c = s.charCodeAt(pos);
  if (c === 0x5d) {
    pos++;
    return [];
  }
  for (;;) {
    if (c === 0x2c) bail();
    const v = parseFlowNode();
    items[top++] = v;
    skipFlowSpace();
    c = s.charCodeAt(pos++);
    if (c === 0x5d) return takeItems(base);
    // `[a: b]` is a single-pair mapping in a sequence; anything else is a missing comma.
    if (c !== 0x2c) bail();
    skipFlowSpace();
    c = s.charCodeAt(pos);
    if (c === 0x5d) {
      pos++;
      return takeItems(base);
    }
  }
}

/** A key in a flow mapping (first character `c`): a quoted or plain scalar; collections bail. */
function parseFlowKey(c: number): string {
  if (c === 0x22) return readDoubleQuoted();
  if (c === 0x27) return readSingleQuoted();
  if (!isPlainStart(c, true)) bail();
  const start = pos;
  scanPlain(true);
  return plainKey(start, plainEnd);
}

/** A node inside a flow collection: nested collection, quoted or plain scalar. */
function parseFlowNode(): unknown {
  const c = s.charCodeAt(pos);
  if (c === 0x5b || c === 0x7b) return parseFlowCollection();
  if (c === 0x22) return readDoubleQuoted();
  if (c === 0x27) return readSingleQuoted();
  // Anchors, aliases, tags, a nested "- " or any other indicator: bail.
  if (!isPlainStart(c, true)) bail();
  const start = pos;
  scanPlain(true);
  return plainValue(start, plainEnd);
}

/** 'single quoted', '' escapes a quote; single-line only. Leaves `pos` after the closing quote. */
function readSingleQuoted(): string {
  let p = pos + 1;
  let start = p;
  let out = '';
  for (;;) {
    if (p >= n) bail();
    const c = s.charCodeAt(p);
    if (c === 0x27) {
      if (p + 1 < n && s.charCodeAt(p + 1) === 0x27) {
        out += s.slice(start, p + 1);
        p += 2;
        start = p;
        continue;
      }
      pos = p + 1;
      return out + s.slice(start, p);
    }
    // Multi-line quoted scalars fold lines: bail. js-yaml allows only tab and >= 0x20 inside quotes.
    if (c === 0x0a || (c < 0x20 && c !== 0x09)) bail();
    p++;
  }
}

/** "double quoted" with the common escapes; single-line only. Leaves `pos` after the closing quote. */
function readDoubleQuoted(): string {
  let p = pos + 1;
  let start = p;
  let out = '';
  for (;;) {
    if (p >= n) bail();
    const c = s.charCodeAt(p);
    if (c === 0x22) {
      pos = p + 1;
      return out + s.slice(start, p);
    }
    if (c === 0x5c /* \ */) {
      out += s.slice(start, p);
      const e = s.charCodeAt(p + 1);
      p += 2;
      switch (e) {
        case 0x30: out += '\0'; break;
        case 0x61: out += '\x07'; break; // a
        case 0x62: out += '\b'; break;
        case 0x74: out += '\t'; break;
        case 0x6e: out += '\n'; break;
        case 0x76: out += '\v'; break;
        case 0x66: out += '\f'; break;
        case 0x72: out += '\r'; break;
        case 0x65: out += '\x1b'; break; // e
        case 0x20: out += ' '; break;
        case 0x22: out += '"'; break;
        case 0x2f: out += '/'; break;
        case 0x5c: out += '\\'; break;
        case 0x78: out += hexEscape(p, 2); p += 2; break; // xNN
        case 0x75: out += hexEscape(p, 4); p += 4; break; // uNNNN
        case 0x55: out += hexEscape(p, 8); p += 8; break; // UNNNNNNNN
        // \N \_ \L \P, an escaped tab or line break (multi-line), unknown escapes: bail.
        default: bail();
      }
      start = p;
      continue;
    }
    if (c === 0x0a || (c < 0x20 && c !== 0x09)) bail();
    p++;
  }
}

function hexEscape(p: number, len: number): string {
  let v = 0;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(p + i);
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66) d = (c | 0x20) - 0x61 + 10;
    else bail();
    v = v * 16 + d;
  }
  // js-yaml shifts in 32 bits: past U+10FFFF its result is garbage rather than an error.
  if (v > 0x10ffff) bail();
  return v <= 0xffff ? String.fromCharCode(v) : String.fromCharCode(((v - 0x10000) >> 10) + 0xd800, ((v - 0x10000) & 0x3ff) + 0xdc00);
}

/**
 * `|` / `>` block scalar, a line-for-line port of js-yaml's readBlockScalar (chomping, explicit
 * indentation, folding, and its quirks: the indentation is taken from the first non-empty line or
 * from longer blank lines before it). `parent` is the indentation of the enclosing collection.
 * Leaves `pos`/`ind` on the next content line.
 */
function readBlockScalar(parent: number): string {
  // js-yaml appends "\n" to a text that does not end with one, and reads "\0" past the end.
  const virtualNl = s.charCodeAt(n - 1) !== 0x0a;
  const at = (p: number): number => {
    if (p >= n) return p === n && virtualNl ? 0x0a : 0;
    const c = s.charCodeAt(p);
    if (c === 0 || c === 0x0d) bail(); // 0 is the end for the port below; CR a line break for js-yaml
    return c;
  };
  const folding = s.charCodeAt(pos) === 0x3e;
  const CLIP = 1, STRIP = 2, KEEP = 3;
  let chomping = CLIP;
  let detectedIndent = false;
  const nodeIndent = parent + 1;
  let textIndent = nodeIndent;
  let p = pos;
  let ch: number;
  for (;;) {
    ch = at(++p);
    if (ch === 0x2b || ch === 0x2d) {
      if (chomping !== CLIP) bail();
      chomping = ch === 0x2b ? KEEP : STRIP;
    } else if (ch >= 0x30 && ch <= 0x39) {
      if (ch === 0x30 || detectedIndent) bail();
      textIndent = nodeIndent + (ch - 0x30) - 1;
      detectedIndent = true;
    } else {
      break;
    }
  }
  if (ch === 0x20) {
    do ch = at(++p);
    while (ch === 0x20);
    if (ch === 0x23) ch = at((p = skipComment(p)));
  }
  if (ch !== 0x0a) bail(); // text after the header (or a tab): js-yaml throws or differs
  let result = '';
  let didReadContent = false;
  let emptyLines = 0;
  let atMoreIndented = false;
  let lineIndent = 0;
  let ls = 0;
  while (ch !== 0) {
    p++; // the line break
    ls = p;
    lineIndent = 0;
    ch = at(p);
    while ((!detectedIndent || lineIndent < textIndent) && ch === 0x20) {
      lineIndent++;
      ch = at(++p);
    }
    if (!detectedIndent && lineIndent > textIndent) textIndent = lineIndent;
    if (ch === 0x0a) {
      emptyLines++;
      continue;
    }
    if (!detectedIndent && textIndent === 0) bail();
    if (lineIndent < textIndent) {
      if (chomping === KEEP) result += '\n'.repeat(didReadContent ? 1 + emptyLines : emptyLines);
      else if (chomping === CLIP && didReadContent) result += '\n';
      break;
    }
    if (folding) {
      if (ch === 0x20 || ch === 0x09) {
        atMoreIndented = true;
        result += '\n'.repeat(didReadContent ? 1 + emptyLines : emptyLines);
      } else if (atMoreIndented) {
        atMoreIndented = false;
        result += '\n'.repeat(emptyLines + 1);
      } else if (emptyLines === 0) {
        if (didReadContent) result += ' ';
      } else {
        result += '\n'.repeat(emptyLines);
      }
    } else {
      result += '\n'.repeat(didReadContent ? 1 + emptyLines : emptyLines);
    }
    didReadContent = true;
    detectedIndent = true;
    emptyLines = 0;
    const captureStart = p;
    while (ch !== 0x0a && ch !== 0) {
      if (ch < 0x20 || ch > 0x7e) {
        if (ch < 0x20 && ch !== 0x09) bail();
        if (ch > 0x7e) p = checkNonAscii(p);
      }
      ch = at(++p);
    }
    if (p > captureStart) result += s.slice(captureStart, Math.min(p, n));
  }
  // The loop stopped on a less indented line (at `ls`) or at the end of the text.
  if (ch === 0 || ls >= n) {
    pos = -1;
    ind = -1;
  } else {
    toContent(ls);
  }
  return result;
}

// CORE_SCHEMA implicit resolution, in js-yaml's order: null, bool, int, float.

/** Same as js-yaml's YAML_FLOAT_PATTERN. */
const FLOAT = /^(?:[-+]?(?:[0-9]+)(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;
const FLOAT_SPECIAL = /^(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;

function resolvePlain(v: string): unknown {
  const c = v.charCodeAt(0);
  const len = v.length;
  switch (c) {
    case 0x7e: // ~
      return len === 1 ? null : v;
    case 0x6e: case 0x4e: // n N
      return len === 4 && (v === 'null' || v === 'Null' || v === 'NULL') ? null : v;
    case 0x74: case 0x54: // t T
      return len === 4 && (v === 'true' || v === 'True' || v === 'TRUE') ? true : v;
    case 0x66: case 0x46: // f F
      return len === 5 && (v === 'false' || v === 'False' || v === 'FALSE') ? false : v;
    case 0x2b: case 0x2d: case 0x2e: // + - .
      return resolveNumber(v);
    default:
      return c >= 0x30 && c <= 0x39 ? resolveNumber(v) : v;
  }
}

function resolveNumber(v: string): unknown {
  if (isYamlInteger(v)) return parseYamlInteger(v);
  if (FLOAT.test(v) && (Number.isFinite(parseFloat(v)) || FLOAT_SPECIAL.test(v))) return constructYamlFloat(v);
  return v;
}

/** js-yaml resolveYamlInteger (CORE: no underscores, 0b/0o/0x after an optional sign). */
function isYamlInteger(data: string): boolean {
  const max = data.length;
  let index = 0;
  let hasDigits = false;
  let ch = data.charCodeAt(index);
  if (ch === 0x2d || ch === 0x2b) ch = data.charCodeAt(++index);
  if (ch === 0x30) {
    if (index + 1 === max) return true;
    ch = data.charCodeAt(++index);
    if (ch === 0x62 || ch === 0x78 || ch === 0x6f) { // b x o
      const radix = ch;
      index++;
      for (; index < max; index++) {
        const d = data.charCodeAt(index);
        const ok = radix === 0x62 ? d === 0x30 || d === 0x31 : radix === 0x6f ? d >= 0x30 && d <= 0x37 : (d >= 0x30 && d <= 0x39) || (d >= 0x41 && d <= 0x46) || (d >= 0x61 && d <= 0x66);
        if (!ok) return false;
        hasDigits = true;
      }
      return hasDigits && Number.isFinite(parseYamlInteger(data));
    }
  }
  for (; index < max; index++) {
    const d = data.charCodeAt(index);
    if (!(d >= 0x30 && d <= 0x39)) return false;
    hasDigits = true;
  }
  if (!hasDigits) return false;
  return Number.isFinite(parseYamlInteger(data));
}

/** js-yaml parseYamlInteger, including its "-0" → 0 but "-00" → -0. */
function parseYamlInteger(data: string): number {
  let value = data;
  let sign = 1;
  let ch = value[0];
  if (ch === '-' || ch === '+') {
    if (ch === '-') sign = -1;
    value = value.slice(1);
    ch = value[0];
  }
  if (value === '0') return 0;
  if (ch === '0') {
    if (value[1] === 'b') return sign * parseInt(value.slice(2), 2);
    if (value[1] === 'x') return sign * parseInt(value.slice(2), 16);
    if (value[1] === 'o') return sign * parseInt(value.slice(2), 8);
  }
  return sign * parseInt(value, 10);
}

/** js-yaml constructYamlFloat. */
function constructYamlFloat(data: string): number {
  let value = data.toLowerCase();
  const sign = value[0] === '-' ? -1 : 1;
  if (value[0] === '+' || value[0] === '-') value = value.slice(1);
  if (value === '.inf') return sign === 1 ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  if (value === '.nan') return NaN;
  return sign * parseFloat(value);
}
