// Regex engines for policy patterns (method/path/host are full-match RE2): native `re2` vs `re2js`
// vs l7guard's compiled matchers (literal, "literal.*" prefix and literal-alternation fast paths in
// front of re2js), with JS RegExp as a reference only (it backtracks: never used on policy patterns).
//
//   npm run build                       # from the repository root
//   cd bench && npm install && npm install --no-save re2@1.23.3   # re2 builds from source (~1-5 min)
//   node regex.mjs
import { bench, run, summary } from 'mitata';
import { RE2JS } from 're2js';

const dist = new URL('../dist/', import.meta.url);
const { compileFullMatch } = await import(new URL('policy/regex.js', dist));
let RE2;
try {
  RE2 = (await import('re2')).default;
} catch {
  console.log('# re2 (native) is not installed: `npm install --no-save re2@1.23.3` to compare it too');
}

const cases = [
  ['/v1/request-landing', '/v1/request-landing'],
  ['/v1/[a-z-]+', '/v1/request-landing'],
  ['/v1/.*', '/v1/request-landing?x=1'],
  ['(?i)/PUBLIC/[0-9]{1,4}', '/public/123'],
];
for (const [p, s] of cases) {
  const anchored = `^(?:${p})$`;
  const js = RE2JS.compile(anchored);
  const ours = compileFullMatch(p);
  const native = p.startsWith('(?i)') ? new RegExp(`^(?:${p.slice(4)})$`, 'i') : new RegExp(anchored);
  const re2 = RE2 ? new RE2(anchored) : undefined;
  summary(() => {
    if (re2) bench(`re2 (native)     ${p}`, () => re2.test(s));
    bench(`re2js            ${p}`, () => js.matches(s));
    bench(`l7guard matcher  ${p}`, () => ours.test(s));
    bench(`JS RegExp (ref)  ${p}`, () => native.test(s));
  });
}
await run({ colors: false });
