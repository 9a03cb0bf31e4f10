/** RE2 full-match compilation (docs/semantics.md#anchoring-and-dialect). */
import t from 'tap';
import { compileFullMatch } from '../../policy/regex.js';

t.test('full match, RE2 dialect', async (t) => {
  const rows: [string, string, boolean, string][] = [
    ['/public', '/public', true, 'plain literal'],
    ['/public', '/publicx', false, 'plain literal is a full match'],
    ['^/public$', '/public', true, 'redundant anchors'],
    ['GET|HEAD', 'HEAD', true, 'literal alternation'],
    ['GET|HEAD', 'GET|HEAD', false, 'alternation is not a literal'],
    ['/v1/.*', '/v1/x', true, 'regex'],
    ['a.c', 'abc', true, '. is a metacharacter'],
    ['(?i)abc', 'ABC', true, 'inline flag'],
    ['\\d{3}', '123', true, 'class and repetition'],
    ['\\d{3}', '1234', false, 'repetition full match'],
    ['a|b.*', 'bzz', true, 'alternation with regex part'],
    // The "literal.*" prefix fast path must agree with RE2 on every edge.
    ['/v1/.*', '/v1/', true, 'prefix: empty rest'],
    ['/v1/.*', '/v1', false, 'prefix: shorter than the literal'],
    ['/v1/.*', '/v2/x', false, 'prefix: other literal'],
    ['/v1/.*', '/v1/a\nb', false, 'prefix: RE2 . does not match a newline'],
    ['^/v1/.*$', '/v1/x?y=1', true, 'prefix with redundant anchors'],
  ];
  // Same answers from the cached matcher and from re2js itself, for the prefix rows.
  for (const [p, s] of rows.filter(([p]) => p.endsWith('.*') || p.endsWith('.*$'))) {
    t.equal(compileFullMatch(p).test(s), compileFullMatch(`(?:${p})`).test(s), `fast path agrees with re2js: ${p} ~ ${JSON.stringify(s)}`);
  }
  t.equal(compileFullMatch('/v1/.*'), compileFullMatch('/v1/.*'), 'equal patterns share one compiled matcher');
  for (const [p, s, want, name] of rows) t.equal(compileFullMatch(p).test(s), want, `${name}: ${p} ~ ${s}`);
});

t.test('RE2 rejects backtracking-only syntax', async (t) => {
  for (const p of ['(a)\\1', '(?=a)', '(?<=a)b', '[unclosed']) t.throws(() => compileFullMatch(p), { name: 'RegexSyntaxError' }, p);
});

// A backtracking engine would not finish this within the subtest's timeout (2^5000 paths).
t.test('catastrophic pattern stays linear', { timeout: 30_000 }, async (t) => {
  const m = compileFullMatch('(a+)+$');
  t.equal(m.test('a'.repeat(5000) + 'b'), false);
});

// Compiled as written, as RE2 in Envoy and Go's regexp in Cilium's sanitizer do: a pattern that
// only parses once wrapped in a group must be refused, not widened to match everything.
t.test('a pattern that closes the internal anchoring group is rejected', async (t) => {
  for (const p of ['GET)|(.*', 'a)|(b', '/x)(']) t.throws(() => compileFullMatch(p), { name: 'RegexSyntaxError' }, p);
});

t.test('regex errors quote the pattern as written, not the anchored form', async (t) => {
  for (const p of ['/a(b', '[z-a]', '(?=x)']) {
    const err = t.throws(() => compileFullMatch(p)) as Error;
    t.match(err.message, `invalid RE2 regex ${JSON.stringify(p)}`, p);
    t.notMatch(err.message, '(?:', `${p}: no internal wrapping in the message`);
  }
});

t.test('full match without textual anchors: alternation and leftmost-first agree with a full-match JS RegExp', async (t) => {
  const rows: [string, string[]][] = [
    ['a|ab', ['a', 'ab', 'abc', '']],
    ['(a|ab)(c|bcd)', ['abcd', 'ac', 'abc', 'acd']],
    ['/v[0-9]+/(foo|bar)?', ['/v1/', '/v12/foo', '/v/foo', '/v1/foobar']],
    ['x*', ['', 'xxx', 'xy']],
  ];
  for (const [p, inputs] of rows) {
    const js = new RegExp(`^(?:${p})$`);
    for (const s of inputs) t.equal(compileFullMatch(p).test(s), js.test(s), `${p} ~ ${JSON.stringify(s)}`);
  }
});
