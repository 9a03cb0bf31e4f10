/**
 * The IPC vocabulary between the `--workers` primary and its data-plane workers (node:cluster with
 * `serialization: 'advanced'`, i.e. structured clone: Maps, bigints and undefined survive).
 *
 * A PolicyState holds compiled closures and cannot cross a process. What crosses is a
 * RevisionPayload: the validated objects of one revision (ReloadController.snapshot()) plus the
 * numbering the primary's build gave it (identity labels -> number, endpoint -> id). A worker
 * rebuilds with that numbering as `previous` (see numberingSeed), so it needs no history: a worker
 * started at revision 40 reaches the same identities, endpoint ids and verdicts as one that saw
 * 1..39, and it checks that it did before it acknowledges.
 */
import type { SourcedObject } from '../../policy/index.js';
import { CLUSTER_ID_MIN } from '../../policy/identity.js';
import type { PolicyState } from '../../policy/model.js';
import type { FlowEvent } from '../../observe/flow-event.js';
import type { Hardening } from '../hardening.js';
import type { InterceptionOptions } from '../listen/original-destination.js';
import type { TlsServeOptions } from '../tls/options.js';
import type { AuditSnapshot } from '../exchange/audit-modes.js';

export interface RevisionPayload {
  readonly revision: number;
  readonly objects: readonly SourcedObject[];
  /** [id, labels] of every identity >= 256 (cluster and CIDR scope) of the primary's state. */
  readonly identities: readonly (readonly [number, readonly string[]])[];
  /** [namespace, name, id] of every endpoint of the primary's state. */
  readonly endpoints: readonly (readonly [string, string, number])[];
}

/** Everything a worker needs to serve, sent once after fork (the worker's argv carries nothing). */
export interface WorkerConfig {
  readonly slot: number;
  readonly listen: readonly string[];
  readonly interception: InterceptionOptions | undefined;
  /** `--listen-tls` and `--identity-from mtls`: plain data (PEM strings), so it crosses IPC as is. */
  readonly tls: TlsServeOptions | undefined;
  readonly hardening: Hardening | undefined;
  readonly proxyProtocolFrom: readonly string[];
  /** Every admin listener (the self-guard never forwards to them). */
  readonly admin: readonly string[];
  readonly nodeIPs: readonly string[];
  readonly clusterName: string;
  readonly allowLocalhost: 'always' | 'policy';
  readonly nodeName: string;
  /** `--server-name`; undefined: l7guard's default replies. */
  readonly serverName: string | undefined;
  /** `--node-name` as given (undefined: every pod is local), for the builds (policy/build.ts). */
  readonly policyNodeName: string | undefined;
  readonly logLevel: string | undefined;
  /** Debug only (L7GUARD_DEBUG_WORKER_HEADER=1): every response says which worker wrote it. */
  readonly workerHeader: boolean;
  /** Policy audit mode as the primary has it when the worker starts. */
  readonly audit: AuditSnapshot;
}

export type ToWorker =
  | { readonly t: 'config'; readonly config: WorkerConfig }
  | { readonly t: 'revision'; readonly payload: RevisionPayload }
  /** `endpoint config` changed policy audit mode: the whole setting, replacing the worker's. */
  | { readonly t: 'audit'; readonly audit: AuditSnapshot }
  | { readonly t: 'drain'; readonly timeoutMs: number };

export type FromWorker =
  /**
   * The worker listens for messages now. The primary sends nothing before it: an ESM entry point
   * loads asynchronously, and IPC messages that arrive before `process.on('message')` are lost.
   */
  | { readonly t: 'hello' }
  /** Built and swapped (or refused: `error`, the worker keeps its older revision). */
  | { readonly t: 'ack'; readonly revision: number; readonly error?: string | undefined }
  /** Every listener is bound; `addresses` as the proxy logs them. */
  | { readonly t: 'listening'; readonly addresses: readonly string[] }
  | { readonly t: 'listen-failed'; readonly error: string }
  /** One batch per event-loop turn: flows, counters that are not flows, the connection gauge. */
  | {
      readonly t: 'stats';
      readonly flows: readonly FlowEvent[];
      readonly parseErrors: number;
      readonly upstreamErrors: readonly (readonly [string, number])[];
      /** Front-end timeouts by error code (L7G_ERR_HEADERS_TIMEOUT, ...). */
      readonly timeouts: readonly (readonly [string, number])[];
      readonly connections: number;
    };

/** The payload for `state`, built by the primary right after each swap. */
export function revisionPayload(state: PolicyState, objects: readonly SourcedObject[]): RevisionPayload {
  const identities: [number, readonly string[]][] = [];
  for (const id of state.identities.values()) if (id.id >= CLUSTER_ID_MIN) identities.push([id.id, [...id.labels]]);
  return {
    revision: state.revision,
    objects,
    identities,
    endpoints: state.endpoints.map((e) => [e.namespace, e.name, e.id] as const),
  };
}

/**
 * A stand-in `previous` carrying only the numbering. buildPolicyState reads nothing else from
 * `previous` (policy/identity.ts previousIdentityNumbers: identities' id + labels;
 * previousEndpointIds: endpoints' namespace, name, id), and allocate() keeps a previous number when
 * it is free: seeded with revision R's own numbering, the rebuild of R reproduces it exactly.
 * sameNumbering() below verifies that on every rebuild, so a change in build.ts cannot silently
 * make workers disagree.
 */
export function numberingSeed(p: RevisionPayload): PolicyState {
  const identities = new Map(p.identities.map(([id, labels]) => [id, { id, labels }]));
  const endpoints = p.endpoints.map(([namespace, name, id]) => ({ namespace, name, id }));
  return { identities, endpoints } as unknown as PolicyState;
}

/** undefined when `state` numbers identities and endpoints as the primary did; else the first difference. */
export function sameNumbering(state: PolicyState, p: RevisionPayload): string | undefined {
  const mine = revisionPayload(state, []);
  const key = (l: readonly string[]) => l.join(',');
  const want = new Map(p.identities.map(([id, l]) => [key(l), id]));
  if (mine.identities.length !== want.size) return `identities: ${mine.identities.length} here, ${want.size} in the primary`;
  for (const [id, l] of mine.identities) if (want.get(key(l)) !== id) return `identity ${key(l)}: ${id} here, ${want.get(key(l))} in the primary`;
  const eps = new Map(p.endpoints.map(([ns, n, id]) => [`${ns}/${n}`, id]));
  if (mine.endpoints.length !== eps.size) return `endpoints: ${mine.endpoints.length} here, ${eps.size} in the primary`;
  for (const [ns, n, id] of mine.endpoints) if (eps.get(`${ns}/${n}`) !== id) return `endpoint ${ns}/${n}: ${id} here, ${eps.get(`${ns}/${n}`)} in the primary`;
  return undefined;
}
