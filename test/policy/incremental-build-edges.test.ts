/**
 * Rebuilds from the state in force (policy/build.ts) in the cases a random walk seldom reaches:
 * numbers taken by probing past a used slot, a pod at a node's address leaving, a failed build. And
 * that a one-pod change reuses the rest of the previous state rather than rebuilding it.
 */
import t, { type Test } from 'tap';
import { buildPolicyState, type BuildOptions } from '../../policy/build.js';
import { CLUSTER_ID_MAX, CLUSTER_ID_MIN, ENDPOINT_ID_MAX, ENDPOINT_ID_MIN, fnv1a, labelKey, RESERVED_IDS } from '../../policy/identity.js';
import { podIdentityLabels } from '../../policy/labels.js';
import type { SourcedObject } from '../../policy/load.js';
import type { PolicyState } from '../../policy/model.js';
import { apiObject, scaleCluster } from '../../fixtures/scale-cluster.js';
import { bare, numbered } from './compare-states.js';
import { OPTS } from './helpers.js';
import { podObject } from './kube-objects.js';

const opts: BuildOptions = { ...OPTS, nodeName: 'node-1' };
const base = scaleCluster({ pods: 2000, namespaces: 20, nodes: 4, services: 100, policies: 100 });
const first = buildPolicyState(base, opts);

/** `objects` with pod `name` at `ip` (a new object, as after an update), the others as they were. */
function move(objects: readonly SourcedObject[], name: string, ip: string): SourcedObject[] {
  const at = objects.findIndex((x) => x.kind === 'Pod' && x.name === name);
  const pod = objects[at] as SourcedObject;
  const next = objects.slice();
  next[at] = apiObject('v1', 'Pod', { ...pod.raw, status: { ...(pod.raw.status as object), podIP: ip, podIPs: [{ ip }] } });
  return next;
}

/** The rebuild from `previous`, checked against a build from scratch with the same previous numbers. */
function rebuild(t: Test, objects: SourcedObject[], previous: PolicyState, revision: number): PolicyState {
  const s = buildPolicyState(objects, { ...opts, previous, revision });
  t.same(numbered(s), numbered(buildPolicyState(objects, { ...opts, previous: bare(previous), revision })), `revision ${revision} as built from scratch`);
  return s;
}

t.test('one pod\'s new IP: the rest of the previous state is reused, not rebuilt', async (t) => {
  const pod = first.endpoints[0] as (typeof first.endpoints)[number];
  const b = rebuild(t, move(base, pod.name, '10.250.0.1'), first, 2);
  const kept = new Set(first.endpoints);
  t.same(b.endpoints.filter((e) => !kept.has(e)).map((e) => e.name), [pod.name], 'one new endpoint object: the moved pod\'s');
  const services = new Set(first.services);
  t.equal(b.services.filter((s) => !services.has(s)).length, 1, 'one Service rebuilt: the one whose slice lists the old address');
  t.equal(b.identities, first.identities, 'the identities, as they were');
  t.equal(b.identify('10.250.0.1').endpoint?.name, pod.name, 'the new address is the pod\'s');
  t.equal(b.identify(pod.ips[0] as string).endpoint, undefined, 'the old one no one\'s');
});

t.test('a changed pod keeps the endpoint ID it probed to, though the slot it hashes to is free again', async (t) => {
  const size = ENDPOINT_ID_MAX - ENDPOINT_ID_MIN + 1;
  const slot = (e: { namespace: string; name: string }) => ENDPOINT_ID_MIN + (fnv1a(`${e.namespace}/${e.name}`) % size);
  const probed = first.endpoints.filter((e) => e.id !== 0 && e.id !== slot(e));
  t.ok(probed.length >= 3, `${probed.length} endpoints numbered past their slot`);
  let state = first;
  let objects = base;
  let revision = 2;
  for (const x of probed.slice(0, 3)) {
    const holder = state.endpoints.find((e) => e.id === slot(x)) as (typeof first.endpoints)[number];
    objects = objects.filter((o) => !(o.kind === 'Pod' && o.name === holder.name));
    state = rebuild(t, objects, state, revision++);
    objects = move(objects, x.name, `10.250.1.${revision}`);
    state = rebuild(t, objects, state, revision++);
    t.equal(state.endpoints.find((e) => e.name === x.name)?.id, x.id, `${x.name} keeps ${x.id}, not its free slot ${slot(x)}`);
  }
});

t.test('a new label set whose slot an identity holds is numbered past it', async (t) => {
  const ids = new Set([...first.identities.keys()]);
  const size = CLUSTER_ID_MAX - CLUSTER_ID_MIN + 1;
  const labelsOf = (app: string) => podIdentityLabels({ namespace: 'ns-0', serviceAccount: 'default', clusterName: opts.clusterName, podLabels: { app }, namespaceLabels: { 'kubernetes.io/metadata.name': 'ns-0', team: 'team-0' } });
  let app = '';
  for (let i = 0; app === ''; i++) if (ids.has(CLUSTER_ID_MIN + (fnv1a(labelKey(labelsOf(`x${i}`))) % size))) app = `x${i}`;
  const b = rebuild(t, [...base, podObject('newcomer', { ns: 'ns-0', ip: '10.250.2.1', node: 'node-1', labels: { app } })], first, 2);
  const id = b.identify('10.250.2.1').identity;
  t.same(id.labels, labelsOf(app), 'the new label set');
  t.notOk(first.identities.has(id.id), `numbered ${id.id}, past the identity at its slot`);
  t.equal(b.identities.size, first.identities.size + 1);
});

t.test('a new pod whose endpoint-ID slot is taken is numbered past it', async (t) => {
  const taken = new Set(first.endpoints.map((e) => e.id));
  const slot = (name: string) => ENDPOINT_ID_MIN + (fnv1a(`ns-0/${name}`) % (ENDPOINT_ID_MAX - ENDPOINT_ID_MIN + 1));
  let name = '';
  for (let i = 0; name === ''; i++) if (taken.has(slot(`extra-${i}`))) name = `extra-${i}`;
  const b = rebuild(t, [...base, podObject(name, { ns: 'ns-0', ip: '10.250.4.1', node: 'node-1', labels: { app: 'svc-0' } })], first, 2);
  const id = b.identify('10.250.4.1').endpoint?.id as number;
  t.notOk(taken.has(id), `${name} numbered ${id}, past its slot ${slot(name)}`);
});

t.test('endpoint IDs: past 4,095 local pods and back', async (t) => {
  const all: BuildOptions = { ...OPTS, nodeName: undefined };
  const many = scaleCluster({ pods: 4200, namespaces: 20, nodes: 4, services: 100, policies: 10 });
  const a = buildPolicyState(many, all);
  const over = a.endpoints.length - (ENDPOINT_ID_MAX - ENDPOINT_ID_MIN + 1);
  t.ok(over > 0 && a.endpoints.some((e) => e.id > ENDPOINT_ID_MAX), `${a.endpoints.length} local pods, numbered up to 65535`);
  const leaving = new Set(a.endpoints.slice(0, over).map((e) => e.name));
  const fewer = many.filter((o) => !(o.kind === 'Pod' && leaving.has(o.name)));
  const check = (objects: SourcedObject[], previous: PolicyState, revision: number) => {
    const s = buildPolicyState(objects, { ...all, previous, revision });
    t.same(numbered(s), numbered(buildPolicyState(objects, { ...all, previous: bare(previous), revision })), `revision ${revision} as built from scratch`);
    return s;
  };
  const b = check(fewer, a, 2);
  t.ok(b.endpoints.every((e) => e.id <= ENDPOINT_ID_MAX), `${b.endpoints.length}: back within [1, 4095]`);
  check(many, b, 3);
});

t.test('a pod at a node\'s address, gone: the address is the node\'s again', async (t) => {
  const remote = base.find((o) => o.kind === 'Pod' && o.name === 'cilium-2') as SourcedObject;
  const remoteIP = (remote.raw.status as { podIP: string }).podIP;
  const squatters = [
    podObject('on-host', { ns: 'ns-0', ip: OPTS.nodeIPs[0] as string, node: 'node-1', labels: { app: 'odd' } }),
    podObject('on-remote', { ns: 'ns-0', ip: remoteIP, node: 'node-2', labels: { app: 'odd' } }),
  ];
  const a = rebuild(t, [...base, ...squatters], first, 2);
  t.equal(a.identify(OPTS.nodeIPs[0] as string).endpoint?.name, 'on-host', 'an endpoint wins over --node-ip');
  t.equal(a.identify(remoteIP).endpoint?.name, 'on-remote', 'and over a remote node');
  const b = rebuild(t, base, a, 3);
  t.equal(b.identify(OPTS.nodeIPs[0] as string).identity.id, RESERVED_IDS.host, 'host again');
  t.equal(b.identify(remoteIP).identity.id, RESERVED_IDS['remote-node'], 'remote-node again');
  t.ok(b.endpoints.every((e, i) => e === first.endpoints[i] || e === a.endpoints[i]), 'built from the previous endpoints');
});

t.test('a failed build leaves the previous build reusable', async (t) => {
  const bad = podObject('bad-ip', { ns: 'ns-0', ip: 'not-an-ip' });
  t.throws(() => buildPolicyState([...base, bad], { ...opts, previous: first, revision: 2 }), { code: 'L7G_ERR_POLICY_INVALID' });
  rebuild(t, move(base, (first.endpoints[1] as { name: string }).name, '10.250.3.1'), first, 2);
});
