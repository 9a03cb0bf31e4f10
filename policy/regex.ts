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

/** Compiles once at load time; throws RegexSyntaxError on patterns RE2 rejects. */
export function compileFullMatch(pattern: string): StringMatcher {
  const bare = stripAnchors(pattern);
  if (!META.test(bare)) {
    return { source: pattern, test: (s) => s === bare };
  }
  if (bare.includes('|') && bare.split('|').every((alt) => alt !== '' && !META.test(alt))) {
    const set = new Set(bare.split('|'));
    return { source: pattern, test: (s) => set.has(s) };
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(`^(?:${pattern})$`);
  } catch (err) {
    throw new RegexSyntaxError(pattern, err instanceof Error ? err.message : String(err));
  }
  return { source: pattern, test: (s) => re.matches(s) };
}
