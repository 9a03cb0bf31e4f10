/**
 * The immutable PolicyState the proxy consults: identify (source address -> identity), resolve
 * (authority -> destination) and decide (the per-request verdict from precomputed tables).
 */
import { canonicalIP, parseIP, type Prefix, prefixContainsAddr } from './cidr.js';
import { ALLOW, type DirectionPolicy, L7DecisionCache, PortTable, directionPolicy, type CompiledRule, peerFromIdentity, scanMatcher, type TableContext } from './compile.js';
import { tlsDecision } from './tls.js';
import { IdentityIndex, PeerMatches, rulesBySubject } from './selector-index.js';
import { type IdentityEntry, RESERVED_IDS } from './identity.js';
import { L7_DENY } from './http-rule.js';
import type { Destination, Endpoint, Identity, L7Request, L7Result, LoadedObject, PolicyRuleSource, PolicyState, PortDecision, Service, Source, StagedPolicy, TlsDecision } from './model.js';
import type { Resolver } from './resolve.js';
import { sameItems } from './same-items.js';
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
  /** Addresses of this node (`--node-ip`, this node's hostNetwork pods): `reserved:host`. */
  readonly nodeIPs: readonly string[];
  /** Addresses of other nodes (their hostNetwork pods' IPs): `reserved:remote-node`. */
  readonly remoteNodeIPs?: readonly string[] | undefined;
  readonly allowLocalhost: 'always' | 'policy';
  /** CIDR identities, longest prefix first. */
  readonly cidrIdentities: readonly IdentityEntry[];
  readonly resolver: Resolver;
  readonly policyRules?: readonly PolicyRuleSource[];
  /**
   * The state this one replaces, when built from it (policy/build.ts): what this state derives from
   * parts both share is taken from it rather than derived again. `removed`: its endpoints that
   * `endpoints` lacks; `added`: the endpoints it lacks (no address of an endpoint has two owners in
   * either state). Without them the address map is built anew.
   */
  readonly follows?: { readonly state: PolicyState; readonly removed?: readonly Endpoint[] | undefined; readonly added?: readonly Endpoint[] | undefined } | undefined;
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
  readonly policyRules: readonly PolicyRuleSource[];
  // Set once by the build before the state is handed out (policy/build.ts stagedBuildSteps): the
  // candidates are built from this state, so they cannot be constructor arguments. A private field,
  // since the instance itself is frozen.
  #staged: readonly StagedPolicy[] | undefined = undefined;
  get staged(): readonly StagedPolicy[] | undefined {
    return this.#staged;
  }
  attachStaged(staged: readonly StagedPolicy[]): void {
    if (this.#staged !== undefined) throw new Error('staged policies are attached once');
    this.#staged = staged;
  }

  readonly #rules: readonly CompiledRule[];
  readonly #allowLocalhostAlways: boolean;
  readonly #byIP: Map<string, Source>;
  readonly #world: Source;
  readonly #host: Source;
  readonly #remoteNode: Source;
  /** Canonical `nodeIPs` and `remoteNodeIPs`. */
  readonly #hostIPs: ReadonlySet<string>;
  readonly #remoteIPs: ReadonlySet<string>;
  readonly #cidr: readonly { prefix: Prefix; source: Source }[];
  readonly #resolver: Resolver;
  readonly #ingress = new Map<number, TableSlot>();
  readonly #egress = new Map<number, TableSlot>();
  readonly #l7 = new L7DecisionCache();
  readonly #podPeers: PeerIdentity[];
  /** Identities of this node's endpoints (endpoint ID not 0). */
  readonly #localPeers: PeerIdentity[];
  readonly #allPeers: PeerIdentity[];
  readonly #ctx: TableContext;
  readonly #bySubject: ReadonlyMap<number, readonly CompiledRule[]>;
  readonly #both = new WeakMap<PortDecision, WeakMap<PortDecision, PortDecision>>();

  constructor(p: StateParts) {
    this.revision = p.revision;
    this.clusterName = p.clusterName;
    this.objects = Object.freeze([...p.objects]);
    this.endpoints = Object.freeze([...p.endpoints]);
    this.services = Object.freeze([...p.services]);
    this.identities = p.identities;
    this.warnings = Object.freeze([...p.warnings]);
    this.policyRules = Object.freeze([...(p.policyRules ?? [])]);
    this.#rules = p.rules;
    this.#allowLocalhostAlways = p.allowLocalhost === 'always';
    this.#resolver = p.resolver;
    // Derived anew after one pod's new IP in a 10,000-pod, 1,000-CNP cluster, the parts below cost
    // ~15 ms of CPU a revision (self time: this constructor ~9 ms, IdentityIndex ~6 ms; bench/reload/
    // cluster.mjs --change pod). Following the state it replaces (policy/build.ts), each is that
    // state's own when what it is derived from is the same.
    const prev = p.follows?.state instanceof CompiledPolicyState && p.follows.state.clusterName === p.clusterName ? p.follows.state : undefined;
    const reserved = (n: number) => p.identities.get(n) as IdentityEntry;
    const source = (id: IdentityEntry, old: Source | undefined): Source => (old?.identity === id ? old : Object.freeze({ identity: id, endpoint: undefined }));
    this.#world = source(reserved(RESERVED_IDS.world), prev === undefined ? undefined : prev.#world);
    this.#host = source(reserved(HOST), prev === undefined ? undefined : prev.#host);
    this.#remoteNode = source(reserved(RESERVED_IDS['remote-node']), prev === undefined ? undefined : prev.#remoteNode);
    this.#hostIPs = canonicalSet(p.nodeIPs);
    this.#remoteIPs = canonicalSet(p.remoteNodeIPs ?? []);
    this.#byIP = this.#addresses(p, prev);
    this.#cidr = p.cidrIdentities.map((id) => ({ prefix: id.cidr as Prefix, source: Object.freeze({ identity: id, endpoint: undefined }) }));
    this.#allPeers = prev !== undefined && prev.identities === p.identities ? prev.#allPeers : [...p.identities.values()];
    const podIds = new Map<number, PeerIdentity>();
    for (const e of p.endpoints) podIds.set(e.identity.id, e.identity as IdentityEntry);
    this.#podPeers = reuse([...podIds.values()], prev === undefined ? undefined : prev.#podPeers);
    const localIds = new Map<number, PeerIdentity>();
    for (const e of p.endpoints) if (e.id !== 0) localIds.set(e.identity.id, e.identity as IdentityEntry);
    this.#localPeers = reuse([...localIds.values()], prev === undefined ? undefined : prev.#localPeers);
    // The indexes below answer which identities match (sets of numbers) and which rules select an
    // identity (in rule order): the same for the same identities in another order. (A pod replaced
    // by one of another name can move its identity's first endpoint, and so its place in the order.)
    this.#ctx = prev !== undefined && sameEntries(prev.#allPeers, this.#allPeers)
      ? { ...prev.#ctx, l7: this.#l7 }
      : { clusterName: this.clusterName, l7: this.#l7, known: new Map(this.#allPeers.map((i) => [i.id, i])), peers: new PeerMatches(new IdentityIndex(this.#allPeers), this.clusterName) };
    const same = prev !== undefined && sameEntries(prev.#podPeers, this.#podPeers) && reuse(this.#rules, prev.#rules) === prev.#rules;
    this.#bySubject = same ? prev.#bySubject : rulesBySubject(this.#rules, new IdentityIndex(this.#podPeers));
    // Tables are built on first use or by warm(), not here: a reload's swap must not wait for
    // (pod identities x directions) tables, and a table built later is the same table.
    Object.freeze(this);
  }

  /**
   * Source address -> Source: hostNetwork pods' node addresses, overridden by `--node-ip`s, overridden
   * by endpoints. Following a state with the same node addresses, its map with the endpoints that
   * went and came patched in: one copy rather than 10,000 Sources made and hashed.
   */
  #addresses(p: StateParts, prev: CompiledPolicyState | undefined): Map<string, Source> {
    const removed = p.follows?.removed;
    const added = p.follows?.added;
    if (
      prev !== undefined && removed !== undefined && added !== undefined && prev.#host === this.#host && prev.#remoteNode === this.#remoteNode &&
      sameSet(prev.#hostIPs, this.#hostIPs) && sameSet(prev.#remoteIPs, this.#remoteIPs)
    ) {
      // Never changed once built: shared when no endpoint went or came.
      if (removed.length === 0 && added.length === 0) return prev.#byIP;
      const m = new Map(prev.#byIP);
      for (const e of removed) {
        for (const ip of e.ips) {
          if (m.get(ip)?.endpoint !== e) continue;
          if (this.#hostIPs.has(ip)) m.set(ip, this.#host);
          else if (this.#remoteIPs.has(ip)) m.set(ip, this.#remoteNode);
          else m.delete(ip);
        }
      }
      for (const e of added) {
        const src: Source = Object.freeze({ identity: e.identity, endpoint: e });
        for (const ip of e.ips) m.set(ip, src);
      }
      return m;
    }
    const m = new Map<string, Source>();
    for (const ip of this.#remoteIPs) m.set(ip, this.#remoteNode);
    for (const ip of this.#hostIPs) m.set(ip, this.#host);
    for (const e of p.endpoints) {
      const src: Source = Object.freeze({ identity: e.identity, endpoint: e });
      for (const ip of e.ips) m.set(ip, src);
    }
    return m;
  }

  /** How far warm() got in the local identities (no subjects) and in every pod identity (subjects). */
  #warmedLocal = 0;
  #warmedAll = 0;

  /**
   * Builds the tables of every identity of this node's pods (same labels = same policy), or of
   * the pod identities in `subjects`, until `deadline` (performance.now() ms); true when all are
   * built. Called off the request path after a swap, so that requests find ready tables; a
   * request that comes first builds the one it needs (~50 µs for a 10,000-rule policy). The
   * identities found only on other nodes are left to first use: in a 100,000-pod cluster most are.
   */
  warm(deadline: number, subjects?: ReadonlySet<number>): boolean {
    const local = subjects === undefined;
    const ids = local ? this.#localPeers : this.#podPeers;
    let i = local ? this.#warmedLocal : this.#warmedAll;
    while (i < ids.length) {
      const id = ids[i++] as IdentityEntry;
      if (subjects !== undefined && !subjects.has(id.id)) continue;
      this.#slot(this.#ingress, id, 'INGRESS');
      this.#slot(this.#egress, id, 'EGRESS');
      if (performance.now() >= deadline) break;
    }
    if (local) this.#warmedLocal = i;
    else this.#warmedAll = i;
    return i >= ids.length;
  }

  /**
   * Identity numbers whose tables requests used (numbers are stable across revisions): what the
   * next revision warms. Warming every pod identity after each swap cost a 10,000-rule policy
   * ~100 ms of CPU per reload, mostly for identities that send or receive nothing through this node.
   */
  hotSubjects(): ReadonlySet<number> {
    const out = new Set<number>();
    for (const m of [this.#ingress, this.#egress]) for (const [id, t] of m) if (t !== null && t.used) out.add(id);
    return out;
  }

  #table(subject: PeerIdentity, dir: 'INGRESS' | 'EGRESS'): TableSlot {
    // Pod identities of this build have their selecting rules indexed; anything else scans them all.
    const candidates = this.#ctx.known.get(subject.id) === subject ? (this.#bySubject.get(subject.id) ?? []) : this.#rules;
    const dp: DirectionPolicy | undefined = directionPolicy(candidates, subject, dir);
    if (dp === undefined) return null;
    return new PortTable(dp, dir === 'INGRESS' ? this.#allPeers : this.#podPeers, this.#ctx);
  }

  /** Table for an identity built elsewhere (e.g. an Endpoint of an older state): built once, cached. */
  #slot(map: Map<number, TableSlot>, id: Identity, dir: 'INGRESS' | 'EGRESS'): TableSlot {
    const t = map.get(id.id);
    if (t !== undefined) return t;
    const built = this.#table(peerFromIdentity(id), dir);
    map.set(id.id, built);
    return built;
  }

  /**
   * What `policy trace` (policy/trace.ts) re-evaluates, off the hot path: the compiled rules and the
   * options decide() applies. A trace never touches this state's tables or caches.
   */
  traceContext(): { readonly rules: readonly CompiledRule[]; readonly allowLocalhostAlways: boolean } {
    return { rules: this.#rules, allowLocalhostAlways: this.#allowLocalhostAlways };
  }

  enforcement(identity: Identity): { readonly ingress: boolean; readonly egress: boolean } {
    const i = this.#slot(this.#ingress, identity, 'INGRESS');
    const e = this.#slot(this.#egress, identity, 'EGRESS');
    return { ingress: i !== null && i.enforcing, egress: e !== null && e.enforcing };
  }

  readonly #tls = new Map<string, TlsDecision>();

  /** Off the hot path: once per TLS handshake, cached per (source id, destination id, port). */
  tls(src: Source, dst: Endpoint, port: number): TlsDecision {
    const known = (i: Identity) => (this.#ctx.known.get(i.id) as Identity | undefined) === i;
    const cacheable = known(src.identity) && known(dst.identity);
    const key = `${src.identity.id}/${dst.identity.id}/${port}`;
    const hit = cacheable ? this.#tls.get(key) : undefined;
    if (hit !== undefined) return hit;
    const s = peerFromIdentity(src.identity);
    const d = peerFromIdentity(dst.identity);
    const candidates = (id: PeerIdentity) => (this.#ctx.known.get(id.id) === id ? (this.#bySubject.get(id.id) ?? []) : this.#rules);
    const ingress = directionPolicy(candidates(d), d, 'INGRESS');
    const egress = src.endpoint === undefined ? undefined : directionPolicy(candidates(s), s, 'EGRESS');
    // allow-localhost=always lets the host through every policy: no SNI gate for it either.
    const gate = !(src.identity.id === HOST && this.#allowLocalhostAlways);
    const decision = tlsDecision(ingress, egress, s, d, port, scanMatcher(this.clusterName), gate);
    if (cacheable && this.#tls.size < 65_536) this.#tls.set(key, decision);
    return decision;
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
    // ALLOW (no provenance) on one side: the other side's decision says everything.
    if (ingress.kind === 'drop' || egress === ALLOW) return ingress;
    if (ingress === ALLOW) return egress;
    return this.#combine(egress, ingress);
  }

  decideAudited(src: Source, dst: Endpoint, port: number, audited: (direction: 'INGRESS' | 'EGRESS') => boolean): PortDecision | undefined {
    if (src.identity.id === HOST && this.#allowLocalhostAlways) return ALLOW;
    let egress = ALLOW;
    if (src.endpoint !== undefined) {
      const t = this.#slot(this.#egress, src.identity, 'EGRESS');
      if (t !== null) egress = t.lookup(dst.identity, port);
    }
    const it = this.#slot(this.#ingress, dst.identity, 'INGRESS');
    let ingress = it === null ? ALLOW : it.lookup(src.identity, port);
    if (egress.kind === 'drop') {
      if (!audited('EGRESS')) return undefined;
      egress = ALLOW;
    }
    if (ingress.kind === 'drop') {
      if (!audited('INGRESS')) return undefined;
      ingress = ALLOW;
    }
    if (egress === ALLOW) return ingress;
    if (ingress === ALLOW) return egress;
    return this.#combine(egress, ingress);
  }

  /**
   * Both directions took part: an allow-by-rule and/or L7 rules on each side. The result carries
   * both sides' provenance; an L7 request must pass egress, then ingress. Built once per pair.
   */
  #combine(egress: PortDecision, ingress: PortDecision): PortDecision {
    let inner = this.#both.get(egress);
    if (inner === undefined) {
      inner = new WeakMap();
      this.#both.set(egress, inner);
    }
    let d = inner.get(ingress);
    if (d === undefined) {
      d = this.#combined(egress, ingress);
      inner.set(ingress, d);
    }
    return d;
  }

  #combined(egress: PortDecision, ingress: PortDecision): PortDecision {
    const by = Object.freeze([...(egress.by ?? []), ...(ingress.by ?? [])]);
    if (egress.kind === 'allow' && ingress.kind === 'allow') return Object.freeze({ kind: 'allow', by });
    if (egress.kind === 'allow' && ingress.kind === 'l7') return Object.freeze({ kind: 'l7', check: ingress.check, by });
    if (egress.kind === 'l7' && ingress.kind === 'allow') return Object.freeze({ kind: 'l7', check: egress.check, by });
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
    return Object.freeze({ kind: 'l7', check, by }) as PortDecision;
  }
}

function canonicalSet(ips: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const ip of ips) {
    const c = canonicalIP(ip);
    if (c !== undefined) out.add(c);
  }
  return out;
}

const sameSet = (a: ReadonlySet<string>, b: ReadonlySet<string>): boolean => a.size === b.size && [...a].every((x) => b.has(x));

/** The same identity objects, in any order. */
function sameEntries(a: readonly PeerIdentity[], b: readonly PeerIdentity[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  const inA = new Set(a);
  return b.every((x) => inA.has(x));
}

/** `old` when it holds the same items in the same order (its derived indexes then apply), else `next`. */
function reuse<T>(next: T[], old: T[] | undefined): T[];
function reuse<T>(next: readonly T[], old: readonly T[] | undefined): readonly T[];
function reuse<T>(next: readonly T[], old: readonly T[] | undefined): readonly T[] {
  return old !== undefined && sameItems(next, old) ? old : next;
}
