/**
 * Full-match matchers for policy patterns (method, path, host), in the RE2 dialect Envoy uses
 * (`safe_regex_match` = RE2::FullMatch). User patterns never reach a backtracking engine: plain
 * literals become string equality, alternations of literals a Set, everything else re2js.
 */
import { RE2JS } from 're2js';

export interface StringMatcher {
  /** The pattern as written in the policy, for diagnostics. */
  readonly source: string;
  test(s: string): boolean;
}

const META = /[\\.+*?()|[\]{}^$]/;

/** Removes redundant full-match anchors from a pattern without other metacharacters ("^/x$" -> "/x"). */
function stripAnchors(p: string): string {
  let s = p;
  if (s.startsWith('^')) s = s.slice(1);
  if (s.endsWith('$')) s = s.slice(0, -1);
  return s;
}

export class RegexSyntaxError extends Error {
  readonly pattern: string;
  constructor(pattern: string, detail: string) {
    super(`invalid RE2 regex ${JSON.stringify(pattern)}: ${detail}`);
    this.name = 'RegexSyntaxError';
    this.pattern = pattern;
  }
}

/**
 * Matchers are pure, so equal patterns share one across rules and builds: a 10,000-rule policy has
 * few distinct patterns, and re2js compilation dominated its build time before this cache. Bounded,
 * since policies come and go over a long-running proxy's life.
 */
const cache = new Map<string, StringMatcher>();
const CACHE_MAX = 20_000;

/** Compiles once at load time; throws RegexSyntaxError on patterns RE2 rejects. */
export function compileFullMatch(pattern: string): StringMatcher {
  let m = cache.get(pattern);
  if (m === undefined) {
    m = compileUncached(pattern);
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(pattern, m);
  }
  return m;
}

function compileUncached(pattern: string): StringMatcher {
  const bare = stripAnchors(pattern);
  if (!META.test(bare)) {
    return { source: pattern, test: (s) => s === bare };
  }
  // "literal.*": a prefix test. RE2's `.` excludes only \n, so that is the one byte to rule out.
  if (bare.endsWith('.*') && !META.test(bare.slice(0, -2))) {
    const prefix = bare.slice(0, -2);
    return { source: pattern, test: (s) => s.startsWith(prefix) && !s.includes('\n', prefix.length) };
  }
  if (bare.includes('|') && bare.split('|').every((alt) => alt !== '' && !META.test(alt))) {
    const set = new Set(bare.split('|'));
    return { source: pattern, test: (s) => set.has(s) };
  }
  // The pattern is compiled as written and matched with matches(), RE2's FullMatch (ANCHOR_BOTH),
  // not wrapped in `^(?:…)$`: wrapped, `GET)|(.*` compiled (to `^(?:GET)|(.*)$`, which matches
  // anything) where RE2 in Envoy and Go's regexp in Cilium reject it, and RE2's error messages
  // quoted the wrapped form instead of the user's pattern. Bare is also ~2x faster to compile.
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (err) {
    throw new RegexSyntaxError(pattern, err instanceof Error ? err.message : String(err));
  }
  return { source: pattern, test: (s) => re.matches(s) };
}
