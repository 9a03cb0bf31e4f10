/**
 * The Star Wars demo as FlowEvents, with the identities, endpoint IDs, pod names and IPs of the
 * `cilium endpoint list` and `hubble observe` output of a run of the Star Wars demo on a Cilium 1.17.6 cluster, so rendered lines can be
 * compared verbatim (the line shapes: docs/semantics.md#flows).
 */
import type { Endpoint, Identity } from '../../policy/model.js';
import type { FlowEvent, FlowPeer } from '../../observe/flow-event.js';

const common = (ns: string): string[] => [
  `k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=${ns}`,
  'k8s:io.cilium.k8s.policy.cluster=default',
  'k8s:io.cilium.k8s.policy.serviceaccount=default',
  `k8s:io.kubernetes.pod.namespace=${ns}`,
];

function identity(id: number, labels: string[]): Identity {
  return { id, labels: [...labels].sort() };
}

export const DEATHSTAR_ID = identity(27476, ['k8s:app.kubernetes.io/name=deathstar', 'k8s:class=deathstar', ...common('default'), 'k8s:org=empire']);
export const TIEFIGHTER_ID = identity(22234, ['k8s:app.kubernetes.io/name=tiefighter', 'k8s:class=tiefighter', ...common('default'), 'k8s:org=empire']);
export const XWING_ID = identity(42250, ['k8s:app.kubernetes.io/name=xwing', 'k8s:class=xwing', ...common('default'), 'k8s:org=alliance']);
export const WORLD_ID: Identity = { id: 2, labels: ['reserved:world'] };
export const HOST_ID: Identity = { id: 1, labels: ['reserved:host'] };

function endpoint(id: number, name: string, ip: string, ident: Identity, workload: Endpoint['workload']): Endpoint {
  return {
    id,
    namespace: 'default',
    name,
    ips: [ip],
    identity: ident,
    podLabels: {},
    workload,
    namedPorts: new Map(),
  };
}

export const DEATHSTAR = endpoint(786, 'deathstar-8c4c77fb7-vhj8x', '10.233.65.155', DEATHSTAR_ID, { name: 'deathstar', kind: 'Deployment' });
export const TIEFIGHTER = endpoint(2501, 'tiefighter', '10.233.65.163', TIEFIGHTER_ID, { name: 'tiefighter', kind: 'Pod' });
export const XWING = endpoint(1585, 'xwing', '10.233.65.156', XWING_ID, { name: 'xwing', kind: 'Pod' });

export function podPeer(ep: Endpoint, port: number, service?: FlowPeer['service']): FlowPeer {
  return { ip: ep.ips[0] as string, port, identity: ep.identity, endpoint: ep, service };
}

export const DEATHSTAR_SVC = { namespace: 'default', name: 'deathstar' } as const;
const deathstar = (): FlowPeer => podPeer(DEATHSTAR, 80);

/** Date.UTC for Jul <day> 2025 hh:mm:ss.mmm. */
export function jul(day: number, h: number, m: number, s: number, ms: number): number {
  return Date.UTC(2025, 6, day, h, m, s, ms);
}

const base = { revision: 3, nodeName: 'k8s-w1', direction: 'INGRESS' } as const;
const LANDING = 'http://deathstar.default.svc.cluster.local/v1/request-landing';
const EXHAUST = 'http://deathstar.default.svc.cluster.local/v1/exhaust-port';

export const scenarios = {
  /** tiefighter POST /v1/request-landing, allowed (docs/semantics.md#flows, first line). */
  landingRequest: {
    ...base,
    timeMs: jul(26, 6, 57, 5, 120),
    kind: 'http-request',
    verdict: 'FORWARDED',
    source: podPeer(TIEFIGHTER, 33330),
    destination: deathstar(),
    http: {
      method: 'POST',
      url: LANDING,
      protocol: 'HTTP/1.1',
      headers: [
        { key: 'user-agent', value: 'curl/8.5.0' },
        { key: 'accept', value: '*/*' },
        { key: 'x-request-id', value: '5d1c2a4e-9d4c-4a57-b0a5-2f1f7f7e0c11' },
      ],
    },
  },
  /** ...and its 200 response, 1.5 ms later (docs/semantics.md#flows, second line: "HTTP/1.1 200 1ms (POST ...)"). */
  landingResponse: {
    ...base,
    timeMs: jul(26, 6, 57, 5, 122),
    kind: 'http-response',
    verdict: 'FORWARDED',
    source: podPeer(TIEFIGHTER, 33330),
    destination: deathstar(),
    http: { method: 'POST', url: LANDING, protocol: 'HTTP/1.1', code: 200, latencyNs: 1_532_417n },
  },
  /** tiefighter PUT /v1/exhaust-port, denied at L7, as that run's `hubble observe` printed it. */
  exhaustRequest: {
    ...base,
    timeMs: jul(26, 6, 57, 12, 949),
    kind: 'http-request',
    verdict: 'DROPPED',
    source: podPeer(TIEFIGHTER, 33338),
    destination: deathstar(),
    http: { method: 'PUT', url: EXHAUST, protocol: 'HTTP/1.1' },
  },
  /** ...and the proxy's 403 (docs/semantics.md#flows, fourth line: "HTTP/1.1 403 0ms (PUT ...)"). */
  exhaustResponse: {
    ...base,
    timeMs: jul(26, 6, 57, 12, 949),
    kind: 'http-response',
    verdict: 'FORWARDED',
    source: podPeer(TIEFIGHTER, 33338),
    destination: deathstar(),
    http: { method: 'PUT', url: EXHAUST, protocol: 'HTTP/1.1', code: 403, latencyNs: 182_000n },
  },
  /** xwing SYN dropped by default deny: policy-verdict, then drop, as that run printed them. */
  xwingDrop: {
    ...base,
    timeMs: jul(26, 6, 57, 34, 526),
    kind: 'drop',
    verdict: 'DROPPED',
    dropReason: 'POLICY_DENIED',
    source: podPeer(XWING, 56934),
    destination: deathstar(),
  },
} satisfies Record<string, FlowEvent>;

export type ScenarioName = keyof typeof scenarios;

/** A fixed UUID sequence per call, so golden files are stable. */
export function uuidSeq(prefix = '00000000-0000-4000-8000-'): () => string {
  let n = 0;
  return () => prefix + String(++n).padStart(12, '0');
}
