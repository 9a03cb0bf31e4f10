/**
 * The immutable PolicyState the proxy consults: identify (source address -> identity), resolve
 * (authority -> destination) and decide (the per-request verdict from precomputed tables).
 */
import { canonicalIP, parseIP, type Prefix, prefixContainsAddr } from './cidr.js';
import { ALLOW, type DirectionPolicy, L7DecisionCache, PortTable, directionPolicy, type CompiledRule, peerFromIdentity } from './compile.js';
import { type IdentityEntry, RESERVED_IDS } from './identity.js';
import { L7_DENY } from './http-rule.js';
import type { Destination, Endpoint, Identity, L7Request, L7Result, LoadedObject, PolicyState, PortDecision, Service, Source } from './model.js';
import type { Resolver } from './resolve.js';
import type { PeerIdentity } from './selector.js';

export interface StateParts {
  readonly revision: number;
  readonly clusterName: string;
  readonly objects: readonly LoadedObject[];
  readonly endpoints: readonly Endpoint[];
  readonly services: readonly Service[];
  readonly identities: ReadonlyMap<number, IdentityEntry>;
  readonly warnings: readonly string[];
  readonly rules: readonly CompiledRule[];
  readonly nodeIPs: readonly string[];
  readonly allowLocalhost: 'always' | 'policy';
  /** CIDR identities, longest prefix first. */
  readonly cidrIdentities: readonly IdentityEntry[];
  readonly resolver: Resolver;
}

/** A table, or NO_POLICY when nothing selecting the subject speaks about the direction. */
type TableSlot = PortTable | null;

const HOST = RESERVED_IDS.host;

export class CompiledPolicyState implements PolicyState {
  readonly revision: number;
  readonly clusterName: string;
  readonly objects: readonly LoadedObject[];
  readonly endpoints: readonly Endpoint[];
  readonly services: readonly Service[];
  readonly identities: ReadonlyMap<number, Identity>;
  readonly warnings: readonly string[];

  readonly #rules: readonly CompiledRule[];
  readonly #allowLocalhostAlways: boolean;
  readonly #byIP = new Map<string, Source>();
  readonly #world: Source;
  readonly #cidr: readonly { prefix: Prefix; source: Source }[];
  readonly #resolver: Resolver;
  readonly #ingress = new Map<number, TableSlot>();
  readonly #egress = new Map<number, TableSlot>();
  readonly #l7 = new L7DecisionCache();
  readonly #podPeers: PeerIdentity[];
  readonly #allPeers: PeerIdentity[];
  readonly #both = new WeakMap<PortDecision, WeakMap<PortDecision, PortDecision>>();

  constructor(p: StateParts) {
    this.revision = p.revision;
    this.clusterName = p.clusterName;
    this.objects = Object.freeze([...p.objects]);
    this.endpoints = Object.freeze([...p.endpoints]);
    this.services = Object.freeze([...p.services]);
    this.identities = p.identities;
    this.warnings = Object.freeze([...p.warnings]);
    this.#rules = p.rules;
    this.#allowLocalhostAlways = p.allowLocalhost === 'always';
    this.#resolver = p.resolver;
    const reserved = (n: number) => p.identities.get(n) as IdentityEntry;
    this.#world = Object.freeze({ identity: reserved(RESERVED_IDS.world), endpoint: undefined });
    const host: Source = Object.freeze({ identity: reserved(HOST), endpoint: undefined });
    for (const ip of p.nodeIPs) {
      const c = canonicalIP(ip);
      if (c !== undefined) this.#byIP.set(c, host);
    }
    for (const e of p.endpoints) {
      const src: Source = Object.freeze({ identity: e.identity, endpoint: e });
      for (const ip of e.ips) this.#byIP.set(ip, src);
    }
    this.#cidr = p.cidrIdentities.map((id) => ({ prefix: id.cidr as Prefix, source: Object.freeze({ identity: id, endpoint: undefined }) }));
    this.#allPeers = [...p.identities.values()];
    const podIds = new Map<number, PeerIdentity>();
    for (const e of p.endpoints) podIds.set(e.identity.id, e.identity as IdentityEntry);
    this.#podPeers = [...podIds.values()];
    // Precompute both directions for every pod identity: same labels = same policy.
    for (const id of this.#podPeers) {
      this.#ingress.set(id.id, this.#table(id, 'INGRESS'));
      this.#egress.set(id.id, this.#table(id, 'EGRESS'));
    }
    Object.freeze(this);
  }

  #table(subject: PeerIdentity, dir: 'INGRESS' | 'EGRESS'): TableSlot {
    const dp: DirectionPolicy | undefined = directionPolicy(this.#rules, subject, dir);
    if (dp === undefined) return null;
    return new PortTable(dp, dir === 'INGRESS' ? this.#allPeers : this.#podPeers, this.clusterName, this.#l7);
  }

  /** Table for an identity built elsewhere (e.g. an Endpoint of an older state): built once, cached. */
  #slot(map: Map<number, TableSlot>, id: Identity, dir: 'INGRESS' | 'EGRESS'): TableSlot {
    const t = map.get(id.id);
    if (t !== undefined) return t;
    const built = this.#table(peerFromIdentity(id), dir);
    map.set(id.id, built);
    return built;
  }

  identify(ip: string): Source {
    const direct = this.#byIP.get(ip);
    if (direct !== undefined) return direct;
    const c = canonicalIP(ip);
    if (c === undefined) return this.#world;
    const known = this.#byIP.get(c);
    if (known !== undefined) return known;
    if (this.#cidr.length > 0) {
      const a = parseIP(c);
      // Longest prefix first: the first containing prefix is the address's CIDR identity.
      if (a) for (const x of this.#cidr) if (prefixContainsAddr(x.prefix, a.family, a.addr)) return x.source;
    }
    return this.#world;
  }

  resolve(authority: string, srcNamespace: string | undefined): Destination | undefined {
    return this.#resolver.resolve(authority, srcNamespace);
  }

  // Hot path: called per request — change with care. Two table lookups; the returned objects are
  // shared and precomputed, except the first time a pair of L7 decisions is combined.
  decide(src: Source, dst: Endpoint, port: number): PortDecision {
    if (src.identity.id === HOST && this.#allowLocalhostAlways) return ALLOW;
    let egress = ALLOW;
    if (src.endpoint !== undefined) {
      const t = this.#slot(this.#egress, src.identity, 'EGRESS');
      if (t !== null) {
        egress = t.lookup(dst.identity, port);
        if (egress.kind === 'drop') return egress;
      }
    }
    const it = this.#slot(this.#ingress, dst.identity, 'INGRESS');
    const ingress = it === null ? ALLOW : it.lookup(src.identity, port);
    if (ingress.kind === 'drop' || egress.kind === 'allow') return ingress;
    if (ingress.kind === 'allow') return egress;
    return this.#combine(egress, ingress);
  }

  /** Both directions have L7 rules: the request must pass egress, then ingress. */
  #combine(egress: PortDecision, ingress: PortDecision): PortDecision {
    let inner = this.#both.get(egress);
    if (inner === undefined) {
      inner = new WeakMap();
      this.#both.set(egress, inner);
    }
    let d = inner.get(ingress);
    if (d === undefined) {
      const e = egress as Extract<PortDecision, { kind: 'l7' }>;
      const i = ingress as Extract<PortDecision, { kind: 'l7' }>;
      const check = (req: L7Request): L7Result => {
        const er = e.check(req);
        if (!er.allowed) return er.edits.length === 0 ? L7_DENY : er;
        const ir = i.check(req);
        if (er.edits.length === 0 && er.missing.length === 0 && er.rejected.length === 0) return ir;
        return {
          allowed: ir.allowed,
          edits: [...er.edits, ...ir.edits],
          missing: [...er.missing, ...ir.missing],
          rejected: [...er.rejected, ...ir.rejected],
        };
      };
      d = Object.freeze({ kind: 'l7', check }) as PortDecision;
      inner.set(ingress, d);
    }
    return d;
  }
}
