/**
 * Cluster objects as a real API server gives them (policy/kube.ts, policy/build.ts): which pods are
 * endpoints (cilium/cilium pkg/k8s/watchers/pod.go: not running = k8sUtils.IsPodRunning false,
 * hostNetwork skipped), node addresses as `host`/`remote-node` (pkg/node/manager/manager.go
 * upsertIntoIDMD), endpoint IDs for this node's pods only, Pod IP reuse, and Service backends from
 * EndpointSlices (https://kubernetes.io/docs/reference/kubernetes-api/service-resources/endpoint-slice-v1/).
 */
import t from 'tap';
import { buildPolicyState, type BuildOptions } from '../../policy/build.js';
import { classify } from '../../policy/classify.js';
import { RESERVED_IDS } from '../../policy/identity.js';
import type { SourcedObject } from '../../policy/load.js';
import type { Destination, PolicyState } from '../../policy/model.js';
import { endpointsView } from '../../observe/operator-views.js';
import { toHubbleEndpoint } from '../../observe/flow.js';
import { numberingSeed, revisionPayload, sameNumbering } from '../../proxy/cluster/messages.js';
import { OPTS, problemsOf, verdict } from './helpers.js';
import { cnpObject, namespaceObject, podObject, type PodSpec, serviceObject, type ServiceSpec, sliceObject, type SliceSpec } from './kube-objects.js';

const buildApi = (objects: SourcedObject[], opts: Partial<BuildOptions> = {}): PolicyState =>
  buildPolicyState(objects, { ...OPTS, allowLocalhost: 'policy', ...opts });
const ep = (s: PolicyState, name: string, ns = 'default') => s.endpoints.find((e) => e.namespace === ns && e.name === name);

t.test('which pods are endpoints', async (t) => {
  const rows: [string, PodSpec, boolean][] = [
    ['Running with an IP', { ip: '10.0.0.1' }, true],
    ['Pending with an IP (containers starting): IsPodRunning', { ip: '10.0.0.1', phase: 'Pending' }, true],
    ['Unknown phase', { ip: '10.0.0.1', phase: 'Unknown' }, true],
    ['no phase (a hand-written file)', { ip: '10.0.0.1', phase: '' }, true],
    ['Pending without an IP', { phase: 'Pending' }, false],
    ['Succeeded (a finished Job keeps its pod, not its IP)', { ip: '10.0.0.1', phase: 'Succeeded' }, false],
    ['Failed', { ip: '10.0.0.1', phase: 'Failed' }, false],
    ['hostNetwork: the IP is the node\'s', { ip: '10.0.0.1', hostNetwork: true }, false],
    ['hostNetwork: false', { ip: '10.0.0.1', hostNetwork: false }, true],
  ];
  for (const [why, spec, want] of rows) {
    const s = buildApi([podObject('p', { labels: { app: 'only-me' }, ...spec })]);
    t.equal(ep(s, 'p') !== undefined, want, `${why}: endpoint`);
    const identity = [...s.identities.values()].some((i) => i.labels.includes('k8s:app=only-me'));
    t.equal(identity, want, `${why}: identity`);
    t.equal(s.identify('10.0.0.1').endpoint !== undefined, want, `${why}: identify`);
  }
});

t.test('hostNetwork pods: host on this node, remote-node elsewhere', async (t) => {
  const objects = [
    podObject('agent-a', { ns: 'kube-system', ip: '192.168.0.10', node: 'node-a', hostNetwork: true, labels: { app: 'agent' } }),
    podObject('agent-b', { ns: 'kube-system', ip: '192.168.0.11', node: 'node-b', hostNetwork: true, labels: { app: 'agent' } }),
    podObject('proxy-b', { ns: 'kube-system', ip: '192.168.0.11', node: 'node-b', hostNetwork: true, labels: { app: 'proxy' } }),
    podObject('static', { ns: 'kube-system', ip: '192.168.0.12', hostNetwork: true }), // no spec.nodeName: local
    podObject('done-b', { ns: 'kube-system', ip: '192.168.0.13', node: 'node-b', hostNetwork: true, phase: 'Succeeded' }),
    podObject('web', { ip: '10.0.1.5', node: 'node-a', labels: { app: 'web' } }),
    cnpObject('from-nodes', 'default', {
      endpointSelector: { matchLabels: { app: 'web' } },
      ingress: [{ fromEntities: ['remote-node'], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }],
    }),
  ];
  const rows: [string, Partial<BuildOptions>, string, number][] = [
    ['this node\'s hostNetwork pod', { nodeName: 'node-a' }, '192.168.0.10', RESERVED_IDS.host],
    ['another node\'s hostNetwork pods (two on one IP)', { nodeName: 'node-a' }, '192.168.0.11', RESERVED_IDS['remote-node']],
    ['a hostNetwork pod without spec.nodeName', { nodeName: 'node-a' }, '192.168.0.12', RESERVED_IDS.host],
    ['a finished hostNetwork pod says nothing', { nodeName: 'node-a' }, '192.168.0.13', RESERVED_IDS.world],
    ['--node-ip stays host', { nodeName: 'node-a' }, '192.168.49.2', RESERVED_IDS.host],
    ['--node-ip wins over a remote hostNetwork pod', { nodeName: 'node-a', nodeIPs: ['192.168.0.11'] }, '192.168.0.11', RESERVED_IDS.host],
    ['no node name: every node is this one', {}, '192.168.0.11', RESERVED_IDS.host],
    ['seen from node-b', { nodeName: 'node-b' }, '192.168.0.10', RESERVED_IDS['remote-node']],
    ['seen from node-b, its own', { nodeName: 'node-b' }, '192.168.0.11', RESERVED_IDS.host],
  ];
  for (const [why, opts, ip, want] of rows) {
    const s = buildApi(objects, opts);
    const src = s.identify(ip);
    t.equal(src.identity.id, want, `${why}: ${ip}`);
    t.equal(src.endpoint, undefined, `${why}: not an endpoint`);
  }
  const s = buildApi(objects, { nodeName: 'node-a' });
  t.notOk(s.endpoints.some((e) => e.namespace === 'kube-system'), 'no hostNetwork pod is an endpoint');
  const web = ep(s, 'web')!;
  t.equal(verdict(s.decide(s.identify('192.168.0.11'), web, 80)), 'allow', 'fromEntities remote-node allows another node');
  t.equal(verdict(s.decide(s.identify('192.168.0.10'), web, 80)), 'drop:POLICY_DENIED:INGRESS', 'this node is host, not remote-node');
  t.equal(s.resolve('192.168.0.11:80', undefined), undefined, 'a node address is no pod destination');
});

t.test('endpoint IDs: this node\'s pods only', async (t) => {
  const objects: SourcedObject[] = [];
  for (const node of ['node-a', 'node-b', 'node-c']) {
    for (let i = 0; i < 3; i++) objects.push(podObject(`${node}-p${i}`, { ip: `10.${node.charCodeAt(5)}.0.${i + 1}`, node, labels: { app: `a${i}` } }));
  }
  objects.push(podObject('unscheduled-ip', { ip: '10.9.9.9', labels: { app: 'a0' } })); // no spec.nodeName: counts as local
  objects.push(cnpObject('a0-from-a1', 'default', {
    endpointSelector: { matchLabels: { app: 'a0' } },
    ingress: [{ fromEndpoints: [{ matchLabels: { app: 'a1' } }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] }],
  }));

  const s = buildApi(objects, { nodeName: 'node-a' });
  const ids = new Map(s.endpoints.map((e) => [e.name, e.id]));
  for (const [name, id] of ids) {
    const local = name.startsWith('node-a-') || name === 'unscheduled-ip';
    if (local) t.ok(id >= 1 && id <= 4095, `${name}: local, numbered (${id})`);
    else t.equal(id, 0, `${name}: remote, ID 0`);
  }
  t.equal(s.endpoints.length, 10, 'remote pods are endpoints all the same');
  t.equal(new Set(s.endpoints.filter((e) => e.id !== 0).map((e) => e.id)).size, 4, 'local IDs distinct');

  // Remote pods keep identities, and those decide verdicts (here: a remote client of a local server, and a remote server).
  const remoteClient = s.identify('10.98.0.2'); // node-b-p1, app=a1
  t.equal(remoteClient.endpoint?.name, 'node-b-p1');
  t.ok(remoteClient.identity.id >= 256, 'a cluster identity');
  t.equal(verdict(s.decide(remoteClient, ep(s, 'node-a-p0')!, 8080)), 'allow', 'remote a1 -> local a0: allowed by its labels');
  t.equal(verdict(s.decide(s.identify('10.98.0.3'), ep(s, 'node-a-p0')!, 8080)), 'drop:POLICY_DENIED:INGRESS', 'remote a2 -> local a0: denied');
  t.equal(verdict(s.decide(s.identify('10.98.0.2'), ep(s, 'node-c-p0')!, 8080)), 'allow', 'a1 -> a0, both remote');
  t.equal(pod0Identity(s, 'node-b-p0'), pod0Identity(s, 'node-a-p0'), 'same labels on two nodes: one identity');

  // The local numbering is the one a build of the local pods alone gives.
  const alone = buildApi(objects.filter((o) => o.kind !== 'Pod' || o.name.startsWith('node-a-') || o.name === 'unscheduled-ip'), { nodeName: 'node-a' });
  for (const e of alone.endpoints) t.equal(ids.get(e.name), e.id, `${e.name}: same ID without the remote pods`);

  // No node name: every pod is numbered, as for hand-written files.
  const all = buildApi(objects);
  t.ok(all.endpoints.every((e) => e.id >= 1 && e.id <= 4095), 'no nodeName: all numbered');
  t.same(buildApi(objects, { nodeName: '' }).endpoints.map((e) => e.id), all.endpoints.map((e) => e.id), 'an empty node name is none');

  // `endpoint list`: the node's endpoints (and the host), as `cilium endpoint list`.
  const view = endpointsView(s);
  t.same(view.filter((v) => v.identity !== RESERVED_IDS.host).map((v) => v.name).sort(), ['node-a-p0', 'node-a-p1', 'node-a-p2', 'unscheduled-ip']);
  t.equal(view.filter((v) => v.identity === RESERVED_IDS.host).length, 1, 'plus the host endpoint');
  t.equal(new Set(view.map((v) => v.id)).size, view.length, 'IDs distinct');

  // Hubble: a remote endpoint has no ID (ID 0 is omitted from the JSON), a local one has its own.
  const remote = ep(s, 'node-b-p0')!;
  const local = ep(s, 'node-a-p0')!;
  t.notOk('ID' in toHubbleEndpoint({ ip: remote.ips[0]!, port: 1, identity: remote.identity, endpoint: remote }, 'default'), 'remote: no ID');
  t.equal(toHubbleEndpoint({ ip: local.ips[0]!, port: 1, identity: local.identity, endpoint: local }, 'default').ID, local.id, 'local: its ID');
  t.equal(toHubbleEndpoint({ ip: remote.ips[0]!, port: 1, identity: remote.identity, endpoint: remote }, 'default').pod_name, 'node-b-p0', 'remote: still named');

  // Workers (--workers) rebuild from the primary's numbering: id-0 entries round-trip.
  const payload = revisionPayload(s, objects);
  const again = buildApi(objects, { nodeName: 'node-a', previous: numberingSeed(payload), revision: 2 });
  t.equal(sameNumbering(again, payload), undefined, 'a worker with the same node name numbers as the primary');
  t.match(sameNumbering(buildApi(objects, { previous: numberingSeed(payload), revision: 2 }), payload), /^endpoint /, 'one without it differs (and says so)');
});

function pod0Identity(s: PolicyState, name: string): number | undefined {
  return ep(s, name)?.identity.id;
}

t.test('more pods than endpoint IDs', async (t) => {
  const objects: SourcedObject[] = [];
  for (let i = 0; i < 10_003; i++) objects.push(podObject(`p${i}`, { ip: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, node: `node-${i % 4}`, labels: { app: `a${i % 50}` } }));
  const s = buildApi(objects, { nodeName: 'node-1' });
  t.equal(s.endpoints.length, 10_003, 'the cluster\'s 10,003 pods are endpoints (today: "cannot allocate 10003 ids in [1, 4095]")');
  const local = s.endpoints.filter((e) => e.id !== 0);
  t.equal(local.length, 2501, 'node-1 numbers its 2,501 pods');
  t.ok(local.every((e) => e.id <= 4095), 'in Cilium\'s pool');
  t.same(s.warnings, [], 'no warning');

  // One node with more pods than a Cilium agent's pool (none can have them; a kubelet runs 110 by
  // default): numbered past 4095, with a warning, rather than no policy at all.
  const all = buildApi(objects);
  t.equal(new Set(all.endpoints.map((e) => e.id)).size, 10_003, 'no node name: every pod numbered, distinct');
  t.ok(all.endpoints.every((e) => e.id >= 1 && e.id <= 65535), 'within uint16');
  t.same(all.warnings, ['10003 pods on this node (no node name is set: every pod counts as local): more than a Cilium agent\'s 4095 endpoint IDs; numbered in [1, 65535]']);
  const again = buildApi(objects, { previous: all, revision: 2 });
  t.same(again.endpoints.map((e) => e.id), all.endpoints.map((e) => e.id), 'stable across a rebuild');
  const ids = new Set(endpointsView(all).map((v) => v.id));
  t.equal(ids.size, 10_004, '`endpoint list`: the pods and a host endpoint with an ID of its own');
  // Exactly the pool: the host endpoint finds no free ID in [1, 4095] and takes the first above.
  const full: SourcedObject[] = [];
  for (let i = 0; i < 4095; i++) full.push(podObject(`q${i}`, { ip: `10.1.${i >> 8}.${i & 255}` }));
  const view = endpointsView(buildApi(full));
  t.equal(view.find((v) => v.identity === RESERVED_IDS.host)?.id, 4096, 'host endpoint past a full pool');
});

t.test('Pod IP reuse: the newer pod owns the IP', async (t) => {
  const old = (over: PodSpec = {}) => podObject('old', { ip: '10.0.0.7', labels: { app: 'old' }, created: '2024-05-01T10:00:00Z', ...over });
  const young = (over: PodSpec = {}) => podObject('young', { ip: '10.0.0.7', labels: { app: 'young' }, created: '2024-05-01T10:05:00Z', ...over });
  const rows: [string, SourcedObject[], string, string | undefined][] = [
    ['newer by creationTimestamp', [old(), young()], 'young', undefined],
    ['whatever the order', [young(), old()], 'young', undefined],
    ['to the second', [old({ created: '2024-05-01T10:00:00Z' }), young({ created: '2024-05-01T10:00:01Z' })], 'young', undefined],
    ['same second: the greater name', [old({ created: '2024-05-01T10:00:00Z' }), young({ created: '2024-05-01T10:00:00Z' })], 'young', undefined],
    ['same second, other order', [young({ created: '2024-05-01T10:00:00Z' }), old({ created: '2024-05-01T10:00:00Z' })], 'young', undefined],
    ['a timestamp beats none', [old({ created: undefined }), young()], 'young', undefined],
    ['neither has a timestamp: the greater name (what files always got)', [young({ created: undefined }), old({ created: undefined })], 'young', undefined],
    ['the older pod is in another namespace', [podObject('zzz', { ns: 'a', ip: '10.0.0.7', created: '2024-01-01T00:00:00Z' }), young()], 'young', undefined],
    ['the old one keeps its other IP', [old({ ips: ['10.0.0.7', 'fd00::7'] }), young()], 'young', 'default/old'],
    ['a finished old pod never competes', [old({ created: '2024-06-01T00:00:00Z', phase: 'Failed' }), young()], 'young', undefined],
  ];
  for (const [why, objects, owner, alsoEndpoint] of rows) {
    const s = buildApi(objects);
    t.equal(s.identify('10.0.0.7').endpoint?.name, owner, `${why}: owner`);
    t.same(ep(s, owner)?.ips.includes('10.0.0.7'), true, `${why}: owner's IP`);
    const others = s.endpoints.filter((e) => e.name !== owner).map((e) => `${e.namespace}/${e.name}`);
    t.same(others, alsoEndpoint === undefined ? [] : [alsoEndpoint], `${why}: the other pod is an endpoint only with an IP of its own`);
    for (const e of s.endpoints) if (e.name !== owner) t.notOk(e.ips.includes('10.0.0.7'), `${why}: ${e.name} lost the IP`);
    const d = s.resolve('10.0.0.7:80', undefined);
    t.equal(d?.kind === 'pod' ? d.backend.endpoint.name : undefined, owner, `${why}: resolve`);
  }
  const both = buildApi([old(), young()]);
  t.ok(both.warnings.some((w) => w === 'Pod IP 10.0.0.7 is claimed by default/old and default/young: the newest, default/young, owns it'), 'a warning names both');

  // One revision switches the identity: before, the old pod's; once the new pod is listed, the new one's.
  const cnp = cnpObject('web', 'default', {
    endpointSelector: { matchLabels: { app: 'web' } },
    ingress: [{ fromEndpoints: [{ matchLabels: { app: 'young' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }],
  });
  const web = podObject('web', { ip: '10.0.0.80', labels: { app: 'web' } });
  const rev1 = buildApi([web, cnp, old()], { revision: 1 });
  const rev2 = buildApi([web, cnp, old(), young()], { revision: 2, previous: rev1 });
  t.equal(verdict(rev1.decide(rev1.identify('10.0.0.7'), ep(rev1, 'web')!, 80)), 'drop:POLICY_DENIED:INGRESS', 'rev 1: the old pod, denied');
  t.equal(verdict(rev2.decide(rev2.identify('10.0.0.7'), ep(rev2, 'web')!, 80)), 'allow', 'rev 2: the new pod, allowed');
  t.notOk([...rev2.identities.values()].some((i) => i.labels.includes('k8s:app=old')), 'rev 2: the old pod\'s identity is gone with it');
  const svc = buildApi([old(), young(), serviceObject('olds', { selector: { app: 'old' } })]);
  t.same(svc.services[0]?.endpoints, [], 'the old pod backs no Service through an IP it lost');
});

t.test('EndpointSlices', async (t) => {
  const pods = [
    podObject('web-1', { ip: '10.0.2.1', ips: ['10.0.2.1', 'fd00::21'], labels: { app: 'web' }, ports: { http: 8000 }, node: 'node-a' }),
    podObject('web-2', { ip: '10.0.2.2', labels: { app: 'web' }, ports: { http: 8001 }, node: 'node-b' }),
    podObject('web-3', { ip: '10.0.2.3', labels: { app: 'web' }, ports: { http: 8000 }, node: 'node-b' }),
    podObject('other', { ip: '10.0.2.9', labels: { app: 'other' }, ports: { http: 8000 } }),
    podObject('api-1', { ns: 'api', ip: '10.0.3.1', labels: { app: 'api' } }),
  ];
  const web: ServiceSpec = { selector: { app: 'web' }, clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80, targetPort: 'http' }, { name: 'admin', port: 9000, targetPort: 9001 }] };
  const one = (ip: string, more: Partial<SliceSpec> = {}): SliceSpec => ({ service: 'web', endpoints: [{ ip }], ports: [{ name: 'http', port: 8000 }, { name: 'admin', port: 9001 }], ...more });
  type Row = [string, ServiceSpec, SliceSpec[], string, string];
  const rows: Row[] = [
    ['no slices: the selector, named targetPort per pod', web, [], 'web:80', 'web-1@10.0.2.1:8000,web-2@10.0.2.2:8001,web-3@10.0.2.3:8000'],
    ['slices: their ready endpoints (ready nil = ready, false = not)', web, [{ service: 'web', endpoints: [{ ip: '10.0.2.1', ready: true, pod: 'web-1' }, { ip: '10.0.2.2', ready: false, pod: 'web-2' }, { ip: '10.0.2.3', pod: 'web-3' }], ports: [{ name: 'http', port: 8000 }, { name: 'admin', port: 9001 }] }], 'web:80', 'web-1@10.0.2.1:8000,web-3@10.0.2.3:8000'],
    ['the slice port by Service port name', web, [one('10.0.2.2', { ports: [{ name: 'admin', port: 9001 }, { name: 'http', port: 7000 }] })], 'web:80', 'web-2@10.0.2.2:7000'],
    ['the other named port', web, [one('10.0.2.2', { ports: [{ name: 'admin', port: 9101 }, { name: 'http', port: 7000 }] })], 'web:9000', 'web-2@10.0.2.2:9101'],
    ['a Service port the slice lacks: no backend', web, [one('10.0.2.2', { ports: [{ name: 'http', port: 7000 }] })], 'web:9000', ''],
    ['unnamed single port: the one entry', { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] }, [{ service: 'web', endpoints: [{ ip: '10.0.2.1' }], ports: [{ port: 8081 }] }], 'web:80', 'web-1@10.0.2.1:8081'],
    ['unnamed Service port, one slice port of another name: that one', { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] }, [{ service: 'web', endpoints: [{ ip: '10.0.2.1' }], ports: [{ name: 'web', port: 8083 }] }], 'web:80', 'web-1@10.0.2.1:8083'],
    ['named Service port, one slice port of another name: none', { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] }, [{ service: 'web', endpoints: [{ ip: '10.0.2.1' }], ports: [{ name: 'web', port: 8083 }] }], 'web:80', ''],
    ['unnamed, named "" as the controller writes it', { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] }, [{ service: 'web', endpoints: [{ ip: '10.0.2.1' }], ports: [{ name: '', port: 8082 }] }], 'web:80', 'web-1@10.0.2.1:8082'],
    ['a nil slice port ("all ports"): the Service targetPort', web, [one('10.0.2.2', { ports: [{ name: 'http' }] })], 'web:80', 'web-2@10.0.2.2:8001'],
    ['slices win over the selector', web, [one('10.0.2.9')], 'web:80', 'other@10.0.2.9:8000'],
    ['a Service without selector, backed by slices', { ports: [{ name: 'http', port: 80 }] }, [one('10.0.3.1', { ports: [{ name: 'http', port: 5000 }] })], 'web:80', 'api-1@10.0.3.1:5000'],
    ['an address that is no pod (a VM): no backend', web, [one('172.16.0.9'), one('10.0.2.3')], 'web:80', 'web-3@10.0.2.3:8000'],
    ['targetRef names another pod than the address owner: stale, skipped', web, [{ ...one('10.0.2.2'), endpoints: [{ ip: '10.0.2.2', pod: 'web-3' }, { ip: '10.0.2.1', pod: 'web-1' }] }], 'web:80', 'web-1@10.0.2.1:8000'],
    ['targetRef in another namespace, same pod', web, [{ ...one('10.0.3.1'), endpoints: [{ ip: '10.0.3.1', pod: 'api/api-1' }] }], 'web:80', 'api-1@10.0.3.1:8000'],
    ['several slices: the union, pods in name order', web, [one('10.0.2.3'), one('10.0.2.1')], 'web:80', 'web-1@10.0.2.1:8000,web-3@10.0.2.3:8000'],
    ['dual stack: one backend per pod, at its first IP', web, [one('fd00::21', { addressType: 'IPv6' }), one('10.0.2.1')], 'web:80', 'web-1@10.0.2.1:8000'],
    ['only an IPv6 slice: that address', web, [one('fd00::21', { addressType: 'IPv6' })], 'web:80', 'web-1@fd00::21:8000'],
    ['an empty slice: no backends, though the selector matches', web, [{ service: 'web', endpoints: [] }], 'web:80', ''],
    ['a slice of another Service changes nothing', web, [{ ...one('10.0.2.9'), service: 'db' }], 'web:80', 'web-1@10.0.2.1:8000,web-2@10.0.2.2:8001,web-3@10.0.2.3:8000'],
    ['a slice without the service-name label changes nothing', web, [{ ...one('10.0.2.9'), service: null }], 'web:80', 'web-1@10.0.2.1:8000,web-2@10.0.2.2:8001,web-3@10.0.2.3:8000'],
    ['a slice in another namespace changes nothing', web, [{ ...one('10.0.2.9'), ns: 'api' }], 'web:80', 'web-1@10.0.2.1:8000,web-2@10.0.2.2:8001,web-3@10.0.2.3:8000'],
    ['FQDN slices name no pod', web, [{ ...one('10.0.2.1'), addressType: 'FQDN' }], 'web:80', ''],
    ['a UDP slice port does not serve a TCP port', web, [one('10.0.2.1', { ports: [{ name: 'http', port: 53, protocol: 'UDP' }] })], 'web:80', ''],
  ];
  for (const [why, svc, slices, authority, want] of rows) {
    const objects = [...pods, namespaceObject('default'), serviceObject('web', svc), ...slices.map((sl, i) => sliceObject(`web-${i}`, sl))];
    const s = buildApi(objects, { nodeName: 'node-a' });
    const d = s.resolve(authority, 'default');
    t.equal(d?.kind, 'service', `${why}: a service`);
    const got = d?.kind === 'service' ? d.backends.map((b) => `${b.endpoint.name}@${b.ip}:${b.port}`).join(',') : 'none';
    t.equal(got, want, why);
    const sliced = slices.some((sl) => sl.service === 'web' && (sl.ns ?? 'default') === 'default');
    t.equal(s.services.find((x) => x.name === 'web')?.sliceBackends !== undefined, sliced, `${why}: ${sliced ? '' : 'not '}slice-backed`);
    t.notOk(s.warnings.some((w) => /skipped/.test(w)), `${why}: no "skipped" warning`);
  }

  // Remote pods back Services too (the proxy sends to any node's pods).
  const s = buildApi([...pods, serviceObject('web', web), sliceObject('web-x', one('10.0.2.2'))], { nodeName: 'node-a' });
  const d = s.resolve('10.96.0.1:80', undefined) as Extract<Destination, { kind: 'service' }>;
  t.equal(d.backends[0]?.endpoint.id, 0, 'a remote backend, endpoint ID 0');
  t.same(s.services.find((x) => x.name === 'web')?.endpoints.map((e) => e.name), ['web-2'], 'Service.endpoints: the slice\'s pods');
});

t.test('EndpointSlice objects: classified, validated', async (t) => {
  const slice = sliceObject('web-abc', { service: 'web', endpoints: [{ ip: '10.0.0.1' }] });
  t.equal(classify(slice).type, 'cluster', 'EndpointSlice is a cluster kind');
  t.equal(classify({ ...slice, apiVersion: 'discovery.k8s.io/v1beta1' }).type, 'skip', 'v1beta1 (gone since Kubernetes 1.25) is not');
  t.equal(classify({ ...slice, apiVersion: 'constructor' }).type, 'skip', 'odd apiVersions are skipped, not a crash');
  const bad = sliceObject('web-bad', { service: 'web', endpoints: [{ ip: '10.0.0.300' }] });
  t.match(problemsOf(() => buildApi([bad])), [{ field: 'endpoints[0].addresses[0]', message: /invalid address "10.0.0.300"/ }], 'an invalid IPv4 address');
  const badPort = sliceObject('web-bad', { service: 'web', endpoints: [], ports: [{ name: 'http', port: 70000 }] });
  t.match(problemsOf(() => buildApi([badPort])), [{ field: 'ports[0].port', message: /invalid port 70000/ }], 'an invalid port');
  t.same(problemsOf(() => buildApi([sliceObject('web-fqdn', { service: 'web', addressType: 'FQDN', endpoints: [{ ip: 'db.example.com' }] })])), [], 'FQDN addresses are not IPs');
  t.same(buildApi([slice]).objects.map((o) => `${o.kind} ${o.namespace}/${o.name}`), ['EndpointSlice default/web-abc'], 'listed among the loaded objects');
});

t.test('Service selector index: same endpoints as a scan', async (t) => {
  // A small deterministic generator (no Math.random: a failure must reproduce).
  let seed = 7;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const objects: SourcedObject[] = [];
  const values = ['a', 'b', 'c'];
  for (let i = 0; i < 600; i++) {
    const labels: Record<string, string> = {};
    for (const k of ['x', 'y', 'z']) if (rnd(3) > 0) labels[k] = values[rnd(3)] as string;
    objects.push(podObject(`p${i}`, { ns: `ns${rnd(3)}`, ip: `10.5.${i >> 8}.${i & 255}`, labels, phase: rnd(10) === 0 ? 'Succeeded' : 'Running' }));
  }
  const selectors: Record<string, string>[] = [];
  for (let i = 0; i < 60; i++) {
    const sel: Record<string, string> = {};
    for (const k of ['x', 'y', 'z', 'w']) if (rnd(2) === 0) sel[k] = values[rnd(3)] as string;
    selectors.push(sel);
    objects.push(serviceObject(`s${i}`, { ns: `ns${i % 3}`, selector: sel }));
  }
  const s = buildApi(objects);
  for (let i = 0; i < 60; i++) {
    const svc = s.services.find((x) => x.name === `s${i}`)!;
    const sel = selectors[i]!;
    const want = Object.keys(sel).length === 0 ? [] : s.endpoints.filter((e) => e.namespace === svc.namespace && Object.entries(sel).every(([k, v]) => e.podLabels[k] === v));
    t.same(svc.endpoints.map((e) => e.name), want.map((e) => e.name), `s${i} ${JSON.stringify(sel)}`);
  }
});

t.test('Kubernetes names: code-unit order is localeCompare order (policy/pod-endpoints.ts sortByNamespaceName)', async (t) => {
  // Every string of up to two characters of DNS-1123 names (and the "/" of "namespace/name").
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-./';
  const strings = [''];
  for (const a of alphabet) {
    strings.push(a);
    for (const b of alphabet) strings.push(a + b);
  }
  let differ = 0;
  for (const a of strings) for (const b of strings) if (Math.sign(a.localeCompare(b)) !== (a < b ? -1 : a > b ? 1 : 0)) differ++;
  t.equal(differ, 0, `${strings.length ** 2} pairs`);
  // Outside that alphabet the orders differ, and the build keeps localeCompare's.
  t.equal(Math.sign('B'.localeCompare('a')), 1);
  const s = buildApi([podObject('b', { ip: '10.0.0.2' }), podObject('B', { ip: '10.0.0.3' }), podObject('a', { ip: '10.0.0.1' })]);
  t.same(s.endpoints.map((e) => e.name), ['a', 'b', 'B'], 'not code-unit order (B, a, b)');
});
