/**
 * Request-target normalisation, matching what cilium-envoy does before policy matching
 * (docs/semantics.md#path-normalisation: HCM `normalize_path`, `merge_slashes`,
 * `path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT`). The normalised path is what policy
 * matches AND what the backend receives, so both always see the same thing.
 *
 * Decisions:
 * - `%2F` / `%5C` (any case) in the path: we return a redirect to the unescaped, normalised path
 *   (the caller answers 307 with `location`), as Envoy's UNESCAPE_AND_REDIRECT does. `%5C` becomes
 *   `/`, because Envoy's RFC 3986 canonicaliser (Chromium's) turns the unescaped `\` into `/`.
 * - A raw `\` in the path is rejected (400). Envoy would canonicalise it to `/`; backends disagree
 *   on whether `\` separates segments (IIS yes, most others no), so any answer we forward is a
 *   guess — refusing is the only choice that cannot be used to bypass a path rule.
 * - `%2E` (any case) counts as `.` inside dot segments (Envoy does the same), so
 *   `/a/%2e%2e/b` cannot smuggle a `..` past the policy to a decoding backend. Other escapes are
 *   left as sent; malformed escapes and `%00` are rejected (Envoy rejects both).
 * - A segment that is a dot segment once its `;` parameters are removed (`/a/..;/b`) is rejected
 *   (400): servlet containers climb on it, RFC 3986 does not (see hasDotSegmentWithParams).
 * - The query is never touched. A fragment (`#`) is not part of a request-target (RFC 9112 §3.2).
 */
import { HEX_VALUE } from './chars.js';

export type NormalizeErrorCode =
  | 'L7G_ERR_TARGET_FRAGMENT'
  | 'L7G_ERR_TARGET_BACKSLASH'
  | 'L7G_ERR_TARGET_BAD_ESCAPE'
  | 'L7G_ERR_TARGET_NUL'
  | 'L7G_ERR_TARGET_ASTERISK'
  | 'L7G_ERR_TARGET_FORM'
  | 'L7G_ERR_TARGET_AUTHORITY'
  | 'L7G_ERR_TARGET_DOT_PARAMS';

export type NormalizedTarget =
  /** `path` includes the query; `authority` is set for absolute-form (it overrides Host, RFC 9112 §3.2.2). */
  | { readonly path: string; readonly authority?: string }
  /** The path held `%2F`/`%5C`: answer 307 with this `location` (path + query). */
  | { readonly redirect: string }
  | { readonly error: NormalizeErrorCode };

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const QUESTION = 0x3f;
const BACKSLASH = 0x5c;
const HASH = 0x23;

/**
 * Normalise a raw request-target. Hot path — change with care: the common, already-clean
 * origin-form path is returned after one scan, without building anything.
 */
export function normalizeTarget(target: string, method?: string): NormalizedTarget {
  if (target.indexOf('#') !== -1) return { error: 'L7G_ERR_TARGET_FRAGMENT' };
  let authority: string | undefined;
  let pathStart = 0;
  const first = target.charCodeAt(0);
  if (first !== SLASH) {
    if (target === '*') return method === 'OPTIONS' ? { path: '*' } : { error: 'L7G_ERR_TARGET_ASTERISK' };
    const abs = splitAbsoluteForm(target);
    if (abs === undefined) return { error: 'L7G_ERR_TARGET_FORM' };
    if (abs.authority.length === 0 || abs.authority.includes('@')) return { error: 'L7G_ERR_TARGET_AUTHORITY' };
    authority = abs.authority;
    pathStart = abs.pathStart;
  }
  let q = target.indexOf('?', pathStart);
  if (q === -1) q = target.length;
  // absolute-form with an empty path ("http://h" or "http://h?x") means "/" (RFC 9112 §3.2.2).
  const rawPath = pathStart === q ? '/' : target.slice(pathStart, q);
  const query = target.slice(q);

  const scan = scanPath(rawPath);
  if (typeof scan === 'string') return { error: scan };
  if (rawPath.indexOf(';') !== -1 && hasDotSegmentWithParams(rawPath)) return { error: 'L7G_ERR_TARGET_DOT_PARAMS' };
  if (scan === Scan.EscapedSlash) return { redirect: removeDotSegments(unescapeSlashes(rawPath)) + query };
  const path = scan === Scan.Clean ? rawPath : removeDotSegments(rawPath);
  const normalized = scan === Scan.Clean && pathStart === 0 ? target : path + query;
  return authority === undefined ? { path: normalized } : { path: normalized, authority };
}

const enum Scan {
  Clean,
  NeedsWork,
  EscapedSlash,
}

/** One pass over the path: validity errors, and whether dot segments / `//` / `%2F` are present. */
function scanPath(path: string): Scan | NormalizeErrorCode {
  let result = Scan.Clean;
  let prev = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === BACKSLASH) return 'L7G_ERR_TARGET_BACKSLASH';
    if (c === PERCENT) {
      const h = HEX_VALUE[path.charCodeAt(i + 1) & 0xff]!;
      const l = HEX_VALUE[path.charCodeAt(i + 2) & 0xff]!;
      if (i + 2 >= path.length || h === 255 || l === 255) return 'L7G_ERR_TARGET_BAD_ESCAPE';
      const byte = h * 16 + l;
      if (byte === 0) return 'L7G_ERR_TARGET_NUL';
      if (byte === SLASH || byte === BACKSLASH) result = Scan.EscapedSlash;
      else if (byte === DOT && prev === SLASH && result === Scan.Clean) result = Scan.NeedsWork;
    } else if (prev === SLASH && (c === SLASH || c === DOT) && result === Scan.Clean) {
      result = Scan.NeedsWork;
    }
    prev = c;
  }
  return result;
}

/**
 * A segment that is `.` or `..` once its `;` parameters are cut off (`/public/..;/admin`,
 * `/a/.;x/b`). RFC 3986 does not treat it as a dot segment, so neither do we nor Envoy, but
 * servlet containers (Tomcat, Jetty) strip path parameters first and then climb: the rules would
 * judge `/public/..;/admin` while the backend serves `/admin`. No meaning survives that
 * disagreement, so it is a 400 (a rule choice where Cilium and Envoy are silent).
 */
function hasDotSegmentWithParams(path: string): boolean {
  for (const seg of path.split('/')) {
    const semi = seg.indexOf(';');
    if (semi === -1) continue;
    const name = seg.slice(0, semi);
    if (isDot(name) || isDotDot(name)) return true;
  }
  return false;
}

/** `http://authority/...` or `https://...` (scheme case-insensitive): the authority and where the path starts. */
function splitAbsoluteForm(target: string): { authority: string; pathStart: number } | undefined {
  const colon = target.indexOf('://');
  if (colon !== 4 && colon !== 5) return undefined;
  const scheme = target.slice(0, colon).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return undefined;
  const start = colon + 3;
  let end = start;
  while (end < target.length) {
    const c = target.charCodeAt(end);
    if (c === SLASH || c === QUESTION || c === HASH) break;
    end++;
  }
  return { authority: target.slice(start, end), pathStart: end };
}

/** UNESCAPE_AND_REDIRECT: `%2F` → `/`, `%5C` → `/` (Envoy's canonicaliser maps the `\` to `/`). */
function unescapeSlashes(path: string): string {
  return path.replace(/%2f|%5c/gi, '/');
}

function isDot(s: string): boolean {
  return s === '.' || s === '%2e' || s === '%2E';
}

function isDotDot(s: string): boolean {
  if (s.length === 2) return s === '..';
  if (s.length === 4) return isDot(s.slice(0, 1)) ? isDot(s.slice(1)) : isDot(s.slice(0, 3)) && s[3] === '.';
  if (s.length === 6) return isDot(s.slice(0, 3)) && isDot(s.slice(3));
  return false;
}

/**
 * RFC 3986 §5.2.4 remove_dot_segments on an absolute path, with Envoy's `merge_slashes`
 * (empty segments dropped). A trailing `.`/`..`/`/` keeps the trailing slash ("/a/b/.." → "/a/"),
 * and `..` never climbs above the root ("/../a" → "/a").
 */
export function removeDotSegments(path: string): string {
  const segments = path.split('/');
  const out: string[] = [];
  const last = segments.length - 1;
  // segments[0] is the empty string before the leading '/'.
  for (let i = 1; i <= last; i++) {
    const s = segments[i]!;
    if (s.length === 0 || isDot(s)) {
      if (i === last) out.push('');
    } else if (isDotDot(s)) {
      out.pop();
      if (i === last) out.push('');
    } else {
      out.push(s);
    }
  }
  return '/' + out.join('/');
}
