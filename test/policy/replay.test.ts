// policy/replay.ts and http-rule.ts judgeRecorded: a recorded request judged without its header
// fields is decide()'s verdict whenever that verdict cannot depend on them, and undecidable
// otherwise; recorded ends resolve as docs/cli.md#policy-replay says.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { compileCrdHttpRule } from '../../policy/compile.js';
import { judgeRecorded, type RecordedRequest } from '../../policy/http-rule.js';
import { Replayer, type Replayed } from '../../policy/replay.js';
import type { CrdHttpRule } from '../../policy/schema.js';
import { build, CLUSTER, MANIFESTS, req, verdict } from './helpers.js';

const cluster = readFileSync(CLUSTER, 'utf8');
const manifest = (n: string) => readFileSync(MANIFESTS + n, 'utf8');
const L34 = manifest('examples__minikube__sw_l3_l4_policy.yaml');
const L7 = manifest('examples__minikube__sw_l3_l4_l7_policy.yaml');
const DENY_EMPIRE = manifest('examples__minikube__sw_deny_policy.yaml');

const rule = (r: Partial<CrdHttpRule>) =>
  compileCrdHttpRule({ method: undefined, path: undefined, host: undefined, headers: [], headerMatches: [], ...r }, () => undefined);
const recorded = (method: string, path: string, host: string | undefined = 'deathstar', hostKnown = true): RecordedRequest => ({ method, path, host, hostKnown });

t.test('judgeRecorded: a verdict only when no header field could change it', async (t) => {
  const { compileFullMatch } = await import('../../policy/regex.js');
  const m = (s: string) => compileFullMatch(s);
  const landing = rule({ method: m('POST'), path: m('/v1/request-landing') });
  const forced = rule({ method: m('PUT'), path: m('/v1/exhaust-port'), headers: [{ name: 'X-Has-Force', value: 'True' }] });
  const logged = rule({ method: m('PUT'), headerMatches: [{ name: 'X-Trace', value: 'on', secret: undefined, mismatch: 'LOG' }] });
  const secret = rule({ method: m('GET'), headerMatches: [{ name: 'Authorization', value: undefined, secret: { namespace: 'default', name: 'gone' }, mismatch: '' }] });
  const hosted = rule({ host: m('deathstar(:80)?') });
  const cases: [string, ReturnType<typeof rule>[], RecordedRequest, ReturnType<typeof judgeRecorded>][] = [
    ['plain rule matches', [landing], recorded('POST', '/v1/request-landing'), { allowed: true }],
    ['plain rule misses', [landing], recorded('PUT', '/v1/exhaust-port'), { allowed: false }],
    ['header rule on a matching request', [landing, forced], recorded('PUT', '/v1/exhaust-port'), { needs: ['x-has-force'] }],
    ['header rule, another rule allows', [forced, landing], recorded('POST', '/v1/request-landing'), { allowed: true }],
    ['header rule misses on path', [forced], recorded('PUT', '/v1/exhaust-port?x=1'), { allowed: false }],
    ['LOG on mismatch passes whatever was sent', [logged], recorded('PUT', '/'), { allowed: true }],
    ['an unresolvable secret never matches', [secret], recorded('GET', '/'), { allowed: false }],
    ['host rule, HTTP/1.1', [hosted], recorded('GET', '/', 'deathstar:80'), { allowed: true }],
    ['host rule, other host', [hosted], recorded('GET', '/', 'alderaan'), { allowed: false }],
    ['host rule, HTTP/1.0: the Host field may not have been sent', [hosted], recorded('GET', '/', 'deathstar', false), { needs: ['host'] }],
  ];
  for (const [name, rules, r, want] of cases) t.same(judgeRecorded(rules, r), want, name);
});

const short = (r: Replayed): string => {
  if (r.verdict === 'DENIED') return r.layer === 'L7' ? '403' : `drop:${r.reason}:${r.direction}`;
  if (r.verdict === 'UNDECIDABLE') return 'undecidable';
  return 'allowed';
};

t.test('same verdict as decide() for every pod pair and request without header rules', async (t) => {
  const requests: [string, string][] = [['POST', '/v1/request-landing'], ['PUT', '/v1/exhaust-port'], ['GET', '/']];
  for (const [name, texts] of Object.entries({ l34: [cluster, L34], l7: [cluster, L7], deny: [cluster, DENY_EMPIRE, L7] })) {
    const s = build(texts);
    const replayer = new Replayer(s);
    for (const a of s.endpoints) {
      for (const b of s.endpoints) {
        const src = replayer.end({ namespace: a.namespace, podName: a.name, labels: a.identity.labels, ip: a.ips[0] });
        const dst = replayer.end({ namespace: b.namespace, podName: b.name, labels: b.identity.labels, ip: b.ips[0] });
        const d = s.decide(s.identify(a.ips[0]!), b, 80);
        for (const [m, p] of requests) {
          const want = verdict(d, req(m, p)).replace(/^(200|allow)$/, 'allowed');
          t.equal(short(replayer.judge(src!, dst!, 80, recorded(m, p))), want, `${name}: ${a.name} -> ${b.name} ${m} ${p}`);
        }
        if (d.kind !== 'l7') t.equal(short(replayer.judge(src!, dst!, 80, undefined)), verdict(d).replace(/^allow$/, 'allowed'), `${name}: ${a.name} -> ${b.name} L3/L4`);
        else t.equal(short(replayer.judge(src!, dst!, 80, undefined)), 'undecidable', `${name}: ${a.name} -> ${b.name}: an L3/L4 flow under L7 rules`);
      }
    }
  }
});

t.test('recorded ends: the candidate\'s pod, else the recorded labels, else the address', async (t) => {
  const FROM_CIDR = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: outside, namespace: default}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromCIDR: [203.0.113.0/24]
`;
  const s = build([cluster, FROM_CIDR]);
  const r = new Replayer(s);
  const tie = s.endpoints.find((e) => e.name === 'tiefighter')!;
  const known = r.end({ namespace: 'default', podName: 'tiefighter', labels: ['k8s:stale=label'] });
  t.same([known?.labels, known?.identity, known?.pod], [tie.identity.labels, tie.identity.id, 'default/tiefighter'], 'a known pod: the candidate\'s labels win');
  const gone = r.end({ namespace: 'default', podName: 'tiefighter-old', labels: [...tie.identity.labels].reverse() });
  t.same([gone?.labels, gone?.identity, gone?.isPod], [tie.identity.labels, tie.identity.id, true], 'a pod the candidate lacks: its recorded label set');
  const world = r.end({ labels: ['reserved:world'], ip: '203.0.113.7' });
  t.same(world?.labels, ['cidr:203.0.113.0/24', 'reserved:world'], 'world: the candidate\'s CIDR identity for the address');
  t.same(r.end({ labels: ['reserved:host'], ip: '10.9.9.9' })?.labels, ['reserved:host'], 'host: as recorded');
  t.equal(r.end({}), undefined, 'nothing recorded');
  const ds = r.end({ namespace: 'default', podName: s.endpoints.find((e) => e.name.startsWith('deathstar'))!.name })!;
  t.equal(short(r.judge(world!, ds, 80, recorded('GET', '/'))), 'allowed', 'fromCIDR allows the world address');
  t.equal(short(r.judge(r.end({ labels: ['reserved:world'], ip: '198.51.100.1' })!, ds, 80, recorded('GET', '/'))), 'drop:POLICY_DENIED:INGRESS', 'another address is denied');
});
