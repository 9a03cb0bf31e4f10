/**
 * FlowEvents on their way from a worker to the primary's FlowSink and metrics.
 *
 * A worker's FlowEvent points at its own compiled Identity/Endpoint objects (label sets, Maps of
 * named ports): cloning those per event would cost more than the flow. slimEvent() keeps what the
 * flow JSON reads (observe/flow.ts toHubbleEndpoint: endpoint id, namespace, name, workload;
 * identity id and labels). On the primary, Interner gives every (revision, id) one shared object
 * again, so observe/flow.ts's per-object caches keep working across events.
 */
import type { FlowEvent, FlowPeer } from '../../observe/flow-event.js';
import type { Endpoint, Identity } from '../../policy/model.js';

const NO_PORTS: ReadonlyMap<string, number> = new Map();
const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});
const NO_IPS: readonly string[] = Object.freeze([]);

function slimIdentity(i: Identity): Identity {
  return { id: i.id, labels: i.labels };
}

function slimPeer(p: FlowPeer): FlowPeer {
  const ep = p.endpoint;
  return {
    ip: p.ip,
    port: p.port,
    identity: slimIdentity(p.identity),
    endpoint: ep === undefined ? undefined : {
      id: ep.id, namespace: ep.namespace, name: ep.name, workload: ep.workload,
      identity: slimIdentity(ep.identity), ips: NO_IPS, podLabels: NO_LABELS, namedPorts: NO_PORTS,
    },
    service: p.service,
  };
}

/** Worker side: the event as it crosses the IPC channel. */
export function slimEvent(ev: FlowEvent): FlowEvent {
  return { ...ev, source: slimPeer(ev.source), destination: slimPeer(ev.destination) };
}

/** Above this many interned objects the tables start over (a revision storm must not grow memory). */
const MAX_INTERNED = 20_000;

/** Primary side: one object per (revision, identity) and (revision, endpoint, identity). */
export class Interner {
  #identities = new Map<string, Identity>();
  #endpoints = new Map<string, Endpoint>();

  event(ev: FlowEvent): FlowEvent {
    if (this.#identities.size + this.#endpoints.size > MAX_INTERNED) {
      this.#identities = new Map();
      this.#endpoints = new Map();
    }
    return { ...ev, source: this.#peer(ev.source, ev.revision), destination: this.#peer(ev.destination, ev.revision) };
  }

  #peer(p: FlowPeer, revision: number): FlowPeer {
    const identity = this.#identity(p.identity, revision);
    const ep = p.endpoint;
    let endpoint: Endpoint | undefined;
    if (ep !== undefined) {
      const k = `${revision}:${ep.id}:${ep.identity.id}:${ep.namespace}/${ep.name}`;
      endpoint = this.#endpoints.get(k);
      if (endpoint === undefined) this.#endpoints.set(k, (endpoint = { ...ep, identity: this.#identity(ep.identity, revision) }));
    }
    return { ...p, identity, endpoint };
  }

  #identity(i: Identity, revision: number): Identity {
    const k = `${revision}:${i.id}`;
    let out = this.#identities.get(k);
    if (out === undefined) this.#identities.set(k, (out = i));
    return out;
  }
}
