// Path confusion: the path the policy judges must be the path the backend receives. Each target
// is sent by an allowed peer against a policy that allows only GET /public(/.*)?; we check the
// client's status and the exact path (and Host) that reached deathstar, if any. The rules are in
// proxy/http1/normalize-path.ts and docs/hardening.md#normalisation.
import t from 'tap';
import { guarded, request, responses, settle, HOST } from './harness.js';

interface Case {
  readonly target: string;
  readonly status: number;
  /** What the backend must have received (200 cases) or the 307's location. */
  readonly path?: string;
}

const cases: Case[] = [
  { target: '/public/a', status: 200, path: '/public/a' },
  // Dot segments and repeated slashes: removed (RFC 3986 §5.2.4, Envoy normalize_path + merge_slashes).
  { target: '/public/./a', status: 200, path: '/public/a' },
  { target: '/public//a', status: 200, path: '/public/a' },
  { target: '//public///a', status: 200, path: '/public/a' },
  { target: '/public/x/../a', status: 200, path: '/public/a' },
  { target: '/public/a/..', status: 200, path: '/public/' },
  { target: '/private/../public/a', status: 200, path: '/public/a' },
  { target: '/../../public/a', status: 200, path: '/public/a' },
  { target: '/public/../private', status: 403 },
  { target: '/public/../../private', status: 403 },
  // %2E counts as '.' in dot segments (as in Envoy), in any case and mix.
  { target: '/public/%2e%2e/private', status: 403 },
  { target: '/public/%2E%2e/private', status: 403 },
  { target: '/public/.%2E/private', status: 403 },
  { target: '/public/%2e/a', status: 200, path: '/public/a' },
  // Encoded slash / backslash (any case): 307 to the unescaped, normalised path; nothing forwarded.
  { target: '/public%2F..%2Fprivate', status: 307, path: '/private' },
  { target: '/public%2f..%2fprivate', status: 307, path: '/private' },
  { target: '/public%5C..%5Cprivate', status: 307, path: '/private' },
  { target: '/public%5c..%5cprivate?q=1', status: 307, path: '/private?q=1' },
  { target: '/public/a%2Fb', status: 307, path: '/public/a/b' },
  { target: '/public/%2e%2e%2fprivate', status: 307, path: '/private' },
  // Raw backslash: refused (backends disagree on whether it separates segments).
  { target: '/public\\..\\private', status: 400 },
  { target: '/public/a\\b', status: 400 },
  // ;parameters: kept, except where they hide a dot segment from us but not from a servlet container.
  { target: '/public/a;x=1', status: 200, path: '/public/a;x=1' },
  { target: '/public/..;/private', status: 400 },
  { target: '/public/.;/a', status: 400 },
  // Queries are never normalised, and are part of what the path rule sees.
  { target: '/public/a?x=/../../private', status: 200, path: '/public/a?x=/../../private' },
  { target: '/public/a?x=%2F%5C', status: 200, path: '/public/a?x=%2F%5C' },
  { target: '/private?/public/a', status: 403 },
  // Fragments are not part of a request-target (RFC 9112 §3.2).
  { target: '/public/a#x', status: 400 },
  { target: '/private#/public/a', status: 400 },
  // Other escapes are forwarded as sent; malformed ones and %00 are refused.
  { target: '/public/caf%C3%A9', status: 200, path: '/public/caf%C3%A9' },
  { target: '/public/%61', status: 200, path: '/public/%61' },
  { target: '/public/%zz', status: 400 },
  { target: '/public/%2', status: 400 },
  { target: '/public/%00/a', status: 400 },
  // Non-ASCII bytes must be percent-encoded (RFC 9112 §3.2).
  { target: '/public/caf\xc3\xa9', status: 400 },
  { target: '/public/\x7f', status: 400 },
  // Case matters: the path rule is a case-sensitive full match.
  { target: '/PUBLIC/a', status: 403 },
  // Absolute-form: the path part is normalised like any other; an empty path is "/".
  { target: `http://${HOST}/public/./a`, status: 200, path: '/public/a' },
  { target: `HTTP://${HOST.toUpperCase()}/public/a`, status: 200, path: '/public/a' },
  { target: `http://${HOST}/public/../private`, status: 403 },
  { target: `http://${HOST}`, status: 403 },
  { target: `http://${HOST}?x`, status: 403 },
  { target: `http://user@${HOST}/public/a`, status: 400 },
  { target: `ftp://${HOST}/public/a`, status: 400 },
  // Authority-form is CONNECT's alone; asterisk-form is OPTIONS's alone.
  { target: `${HOST}:80`, status: 400 },
  { target: '*', status: 400 },
  { target: 'public/a', status: 400 },
];

t.test('the path the rules judge is the path the backend receives', async (t) => {
  const g = await guarded(t, { port: 18104 });
  for (const c of cases) {
    const before = g.journal.length;
    const r = await g.send(request('GET', c.target), { until: (b) => responses(b.toString('latin1')).length > 0 });
    const got = responses(r.text)[0];
    t.equal(got?.status, c.status, `${JSON.stringify(c.target)} → ${c.status}`);
    await settle(c.status === 200 ? 50 : 0);
    const reached = g.journal.slice(before).map((x) => x.url);
    if (c.status === 200) {
      t.same(reached, [c.path], `${JSON.stringify(c.target)}: the backend got ${c.path}`);
    } else {
      t.same(reached, [], `${JSON.stringify(c.target)}: nothing reached the backend`);
      if (c.status === 307) t.match(got?.head ?? '', new RegExp(`\\r\\nlocation: ${c.path!.replace(/[?]/g, '\\$&')}(\\r|$)`), 'location');
    }
  }
  await settle();
  for (const x of g.journal) t.match(x.url, /^\/public(\/|$)/, `only /public was ever forwarded (${x.url})`);
});
