// Host: present exactly once and valid (RFC 9112 §3.2), else 400 and close. With an absolute-form
// target the target's authority wins and the forwarded Host is rewritten to it (RFC 9112 §3.2.2),
// so the authority that was routed and judged is the one the backend sees.
import t from 'tap';
import { guarded, request, responses, settle, HOST } from './harness.js';

const get = (extra: string, host: string | null = HOST, target = '/public/a', version = '1.1'): string =>
  request('GET', target, extra, host).replace('HTTP/1.1', `HTTP/${version}`);

t.test('Host is required, unique and valid', async (t) => {
  const g = await guarded(t, { port: 18105 });
  const bad: [string, string][] = [
    ['missing', get('', null)],
    ['missing in HTTP/1.0', get('', null, '/public/a', '1.0')],
    ['duplicate, same value', get(`Host: ${HOST}\r\n`)],
    ['duplicate, different value', get(`Host: evil.example\r\n`)],
    ['duplicate, differently cased name', get(`HOST: ${HOST}\r\n`)],
    ['empty', get('', '')],
    ['only whitespace', get('', '   ')],
    ['a space inside', get('', 'deathstar default')],
    ['userinfo', get('', `user@${HOST}`)],
    ['a path', get('', `${HOST}/x`)],
    ['non-numeric port', get('', `${HOST}:http`)],
    ['port out of range', get('', `${HOST}:65536`)],
    ['empty port', get('', `${HOST}:`)],
    ['misplaced brackets', get('', `[${HOST}]`)],
    ['non-ASCII', get('', 'deathst\xe4r')],
    ['a comma (two hosts)', get('', `${HOST},evil.example`)],
    ['NUL', get('', 'deathstar\x00.evil')],
  ];
  for (const [name, bytes] of bad) {
    const r = await g.send(bytes, { idleMs: 1500 });
    t.equal(responses(r.text)[0]?.status, 400, `${name}: 400`);
    t.equal(r.closed, true, `${name}: closed`);
  }
  await settle();
  t.same(g.journal, [], 'none reached a backend');

  const good: [string, string][] = [
    ['FQDN', HOST],
    ['FQDN with a trailing dot', `${HOST}.`],
    ['mixed case', 'DeathStar.Default.SVC.cluster.local'],
    ['short name with the port', 'deathstar:80'],
    ['namespace-qualified', 'deathstar.default'],
  ];
  for (const [name, host] of good) {
    const r = await g.send(get('', host), { until: (b) => responses(b.toString('latin1')).length > 0 });
    t.equal(responses(r.text)[0]?.status, 200, `${name}: 200`);
  }
  await settle();
  t.same(g.journal.map((x) => x.headers.host), good.map(([, h]) => h), 'Host is forwarded as sent');
});

t.test('absolute-form authority versus Host: the target wins (RFC 9112 §3.2.2)', async (t) => {
  const g = await guarded(t, { port: 18106 });
  const r = await g.send(get('', 'unknown.example', `http://${HOST}/public/a`), { until: (b) => responses(b.toString('latin1')).length > 0 });
  t.equal(responses(r.text)[0]?.status, 200, 'routed by the target authority');
  await settle();
  t.equal(g.journal.length, 1);
  t.equal(g.journal[0]?.headers.host, HOST, 'the backend sees the authority that was routed, not the Host sent');
  t.equal(g.journal[0]?.rawHeaders.filter((h) => h.toLowerCase() === 'host').length, 1, 'exactly one Host');

  const r2 = await g.send(get('', HOST, 'http://unknown.example/public/a'), { until: (b) => responses(b.toString('latin1')).length > 0 });
  t.equal(responses(r2.text)[0]?.status, 421, 'an unknown target authority is refused even with a valid Host');
  const r3 = await g.send(get('', HOST, `http://${HOST}:abc/public/a`), { idleMs: 1500 });
  t.equal(responses(r3.text)[0]?.status, 400, 'an invalid target authority is a 400');
  await settle();
  t.equal(g.journal.length, 1, 'nothing more reached a backend');
});
