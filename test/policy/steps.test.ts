/**
 * The sliced build (policy/steps.ts, used by every reload while requests are served) gives the event
 * loop back while it compiles, and builds exactly what the one-go build does.
 */
import t from 'tap';
import { bigPolicy } from '../../fixtures/big-policy.js';
import { buildPolicyState, buildPolicyStateSliced, parseText } from '../../policy/index.js';
import type { PolicyState, PortDecision } from '../../policy/model.js';

const PODS = 120;
const RULES = 600;

/** The reload benchmark's synthetic cluster (fixtures/big-policy.ts), small: one identity per pod, ingress rules naming peer pods, ports and HTTP rules. */
const cluster = (): string => bigPolicy({ identities: PODS, rules: RULES });

const opts = { clusterName: 'default', nodeIPs: [], allowLocalhost: 'always' as const, revision: 1 };

/** Every (source pod, destination pod, port) decision, as comparable text. */
function decisions(s: PolicyState): string[] {
  const out: string[] = [];
  const text = (d: PortDecision): string => (d.kind === 'l7' ? `l7:${d.check({ method: 'GET', path: '/api/0/x', host: undefined, headers: [] }).allowed}` : d.kind === 'drop' ? `drop:${d.reason}` : 'allow');
  for (const src of s.endpoints) {
    for (const dst of s.endpoints) {
      for (const port of [8080, 8083, 9999]) out.push(`${src.name}>${dst.name}:${port}=${text(s.decide(s.identify(src.ips[0] as string), dst, port))}`);
    }
  }
  return out;
}

t.test('a sliced build yields to the event loop and builds the same state', async (t) => {
  const objects = parseText('gen.yaml', cluster(), []);
  t.equal(objects.length, PODS * 2);
  const once = buildPolicyState(objects, opts);
  let ticks = 0;
  let ticking = true;
  const tick = (): void => {
    if (!ticking) return;
    ticks++;
    setImmediate(tick);
  };
  setImmediate(tick);
  // sliceMs 0: it gives the loop back at every step, so the count does not depend on speed.
  const sliced = await buildPolicyStateSliced(objects, opts, 0);
  ticking = false;
  t.ok(ticks >= 3, `the event loop ran ${ticks} times during the build`);
  t.same([...sliced.identities.keys()], [...once.identities.keys()], 'same identity numbers');
  t.same(decisions(sliced), decisions(once), 'same decision for every pod pair and port');
  t.ok(decisions(once).some((d) => d.endsWith('=l7:true')) && decisions(once).some((d) => d.endsWith('=drop:POLICY_DENIED')), 'the comparison covers allows and drops');
});

t.test('a sliced build rejects what the one-go build rejects', async (t) => {
  const bad = parseText('bad.yaml', `${cluster()}\n---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: bad}\nspec: {endpointSelector: {}, ingress: [{fromEndpoints: [{matchLabels: {a: b}}], toPorts: [{ports: [{port: "99999"}]}]}]}\n`, []);
  t.throws(() => buildPolicyState(bad, opts), { code: 'L7G_ERR_POLICY_INVALID' });
  await t.rejects(buildPolicyStateSliced(bad, opts, 0), { code: 'L7G_ERR_POLICY_INVALID' });
});
