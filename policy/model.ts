/**
 * The contract between policy/ (which builds an immutable, compiled PolicyState from YAML) and
 * proxy/ + observe/ (which consult it per request). Everything here is read-only once built:
 * a reload builds a new PolicyState and the proxy swaps one reference.
 */

/** A security identity: one per distinct security-relevant label set (Cilium semantics). */
export interface Identity {
  /** Numeric identity: reserved 1..10 (host=1, world=2, ...), cluster 256..65535, CIDR-derived >= 16777216. */
  readonly id: number;
  /** Sorted Cilium label strings, "source:key=value" (e.g. "k8s:org=empire", "reserved:world"). */
  readonly labels: readonly string[];
}

/**
 * A Pod with at least one IP that is not the node's (not `spec.hostNetwork`) and that has not
 * finished (`status.phase` not Succeeded/Failed): something traffic can be sent to or come from.
 * The pods of every node are endpoints (their labels decide verdicts); only this node's are numbered.
 */
export interface Endpoint {
  /**
   * Cilium-style endpoint ID in [1, 4095] (deterministic, stable across reloads) for a pod of this
   * node (BuildOptions.nodeName; every pod when it is unset, or when the pod names no node); 0 for a
   * pod of another node: Cilium numbers only its own node's endpoints, and Hubble shows a remote
   * endpoint with ID 0. Several endpoints can have ID 0: key them by namespace/name. A node with
   * more than 4,095 pods (beyond any Cilium agent's pool) has its pods numbered up to 65535.
   */
  readonly id: number;
  readonly namespace: string;
  readonly name: string;
  readonly ips: readonly string[];
  readonly identity: Identity;
  /** The pod's own metadata.labels, unfiltered. */
  readonly podLabels: Readonly<Record<string, string>>;
  /** Owning workload when known (Deployment via ReplicaSet naming, or the Pod itself). */
  readonly workload: { readonly name: string; readonly kind: string } | undefined;
  /** Named container ports (name -> port), for Service targetPort resolution. */
  readonly namedPorts: ReadonlyMap<string, number>;
}

export interface ServicePort {
  readonly name: string | undefined;
  readonly port: number;
  readonly protocol: 'TCP' | 'UDP' | 'SCTP';
  /** Number, or a container port name resolved per backend pod. */
  readonly targetPort: number | string;
}

export interface Service {
  readonly namespace: string;
  readonly name: string;
  readonly clusterIPs: readonly string[];
  readonly ports: readonly ServicePort[];
  /**
   * The pods backing the Service, in a stable order (namespace/name): its EndpointSlices' ready
   * endpoints when it has slices, else the endpoints its spec.selector matches.
   */
  readonly endpoints: readonly Endpoint[];
  /**
   * Set when the Service has EndpointSlices: the backends of each TCP Service port (by `port`),
   * with the target port the slices give for that port's name (policy/resolve.ts serviceBackends
   * reads either form).
   */
  readonly sliceBackends?: ReadonlyMap<number, readonly Backend[]> | undefined;
}

/** One concrete place a request may be sent: a pod IP and the pod (target) port. */
export interface Backend {
  readonly endpoint: Endpoint;
  readonly ip: string;
  readonly port: number;
}

/** Where a request is going, before load balancing. */
export type Destination =
  | {
      readonly kind: 'service';
      readonly service: Service;
      /** The Service port the client named (default 80). */
      readonly servicePort: number;
      /** Backends for that Service port (one per selected pod whose targetPort resolves); may be empty. */
      readonly backends: readonly Backend[];
    }
  | { readonly kind: 'pod'; readonly backend: Backend };

/** Who sent a request, resolved from the connection's source address. */
export interface Source {
  readonly identity: Identity;
  /** Set when the address is a known Pod IP. */
  readonly endpoint: Endpoint | undefined;
}

/**
 * Headers as received, in order: [name0, value0, name1, value1, ...]; names keep their case as sent.
 * Policy matching is case-insensitive on names.
 */
export type HeaderList = readonly string[];

export interface L7Request {
  readonly method: string;
  /** Normalised request-target path including its query (what the backend will receive). */
  readonly path: string;
  /** The Host header value exactly as sent (including ":port"), or undefined when absent. */
  readonly host: string | undefined;
  readonly headers: HeaderList;
}

export interface HeaderEdit {
  readonly op: 'add' | 'delete' | 'replace';
  /** Lower-case header name. */
  readonly name: string;
  readonly value: string;
}

export interface L7Result {
  readonly allowed: boolean;
  /** Header actions (headerMatches mismatch ADD/DELETE/REPLACE) to apply before forwarding, in order. */
  readonly edits: readonly HeaderEdit[];
  /** For the access log: headers logged as missing / rejected (secret values as "[redacted]"). */
  readonly missing: readonly { readonly key: string; readonly value: string }[];
  readonly rejected: readonly { readonly key: string; readonly value: string }[];
}

export type DropReason = 'POLICY_DENIED' | 'POLICY_DENY';

/**
 * Provenance: one policy rule that took part in a decision (flows' `*_allowed_by` / `*_denied_by`,
 * `policy trace`). Precomputed at compile time and shared; never built per request.
 */
export interface RuleRef {
  readonly kind: 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy' | 'NetworkPolicy';
  /** undefined for a CiliumClusterwideNetworkPolicy. */
  readonly namespace: string | undefined;
  readonly name: string;
  /** Index of the rule in the object: `spec` first, then `specs[]` in order (so `specs[i]` alone is i). */
  readonly ruleIndex: number;
  readonly direction: 'INGRESS' | 'EGRESS';
  /** The peer rule as written, e.g. "spec.ingress[0]" or "specs[1].egressDeny[0]". */
  readonly field: string;
}

/** The verdict at L3/L4 for (source, destination endpoint, destination port). */
export type PortDecision =
  | {
      readonly kind: 'drop';
      /** POLICY_DENIED: no allow rule under default deny; POLICY_DENY: an explicit ingressDeny/egressDeny. */
      readonly reason: DropReason;
      readonly direction: 'INGRESS' | 'EGRESS';
      /** POLICY_DENY: the deny rules that matched. POLICY_DENIED: empty or absent = no rule selected this peer. */
      readonly by?: readonly RuleRef[] | undefined;
    }
  /**
   * Allowed with no L7 restriction (no policy, or an L3/L4-only rule covers the peer).
   * `by`: the covering rules; empty or absent = no policy enforces this direction.
   */
  | { readonly kind: 'allow'; readonly by?: readonly RuleRef[] | undefined }
  /**
   * Allowed at L3/L4; each request must pass the compiled HTTP rules (egress and ingress both, when both apply).
   * `by`: the rules whose HTTP rules judge the request (they allow it, or it is denied for matching none).
   */
  | { readonly kind: 'l7'; readonly check: (req: L7Request) => L7Result; readonly by?: readonly RuleRef[] | undefined };

/** One policy rule as written (`spec`, then each of `specs[]`), for `policy get`. */
export interface PolicyRuleSource {
  readonly kind: RuleRef['kind'];
  readonly namespace: string | undefined;
  readonly name: string;
  /** Same numbering as RuleRef.ruleIndex. */
  readonly ruleIndex: number;
  readonly file: string;
  /** The rule object exactly as loaded (YAML/JSON), not normalised. */
  readonly spec: unknown;
}

/**
 * A resolved CNP TLSContext: PEM text from a Secret given with `-f` (checked at load time).
 * `secret` is "namespace/name", for logs; never log the PEM.
 */
export interface TlsMaterial {
  readonly secret: string;
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly ca: string | undefined;
}

/** One toPorts entry's TLS, resolved (policy/tls.ts resolveTls); carried by its compiled contributions. */
export interface PortTls {
  readonly terminating: TlsMaterial | undefined;
  readonly originating: TlsMaterial | undefined;
  /** Lower-case; empty = any SNI. */
  readonly serverNames: readonly string[];
}

/**
 * What TLS applies to (source, destination endpoint, destination port): the contexts of the covering
 * allow rules (egress of the source first, then ingress of the destination) and the SNI gate.
 */
export interface TlsDecision {
  /** Server side: the certificate the proxy presents; undefined = nothing to terminate with. */
  readonly terminating: TlsMaterial | undefined;
  /** Client side towards the backend: verify it against `ca` (and present `cert` if set). */
  readonly originating: TlsMaterial | undefined;
  /** `serverNames`: false = an L3/L4 drop for this SNI. */
  serverNameAllowed(sni: string): boolean;
}

/** Summary of one loaded object, for /config_dump and `policy validate`. */
export interface LoadedObject {
  readonly kind: string;
  readonly namespace: string | undefined;
  readonly name: string;
  readonly file: string;
}

export interface PolicyState {
  /** Monotonic revision, bumped by every successful swap. */
  readonly revision: number;
  readonly clusterName: string;
  readonly objects: readonly LoadedObject[];
  readonly endpoints: readonly Endpoint[];
  readonly services: readonly Service[];
  readonly identities: ReadonlyMap<number, Identity>;
  /** Warnings produced while loading (skipped kinds, Deployments in serve, ...). */
  readonly warnings: readonly string[];
  /** The loaded policy rules as written, in load order (`policy get`). */
  readonly policyRules?: readonly PolicyRuleSource[];

  /** Source identity for a connection's remote address (IPv4, IPv6, or IPv4-mapped IPv6). O(1) for pod/node IPs. */
  identify(ip: string): Source;
  /**
   * Kubernetes-DNS-style resolution of an authority ("name", "name.ns", "name.ns.svc",
   * "name.ns.svc.cluster.local", a clusterIP or a pod IP; optional ":port", default 80;
   * case-insensitive; trailing dot allowed). `srcNamespace` is the source pod's namespace ("default" otherwise).
   */
  resolve(authority: string, srcNamespace: string | undefined): Destination | undefined;
  /**
   * Precomputes decision tables until `deadline` (performance.now() ms); true when done. Optional:
   * decide() builds what it needs on first use, this only moves that work off the request path.
   */
  warm?(deadline: number, subjects?: ReadonlySet<number>): boolean;
  /** Identity numbers whose decision tables requests used: the next revision warms only these. */
  hotSubjects?(): ReadonlySet<number>;
  /** The hot path: O(1) per source identity after a port-range lookup. */
  decide(src: Source, dst: Endpoint, port: number): PortDecision;
  /**
   * Policy audit mode, after `decide` dropped: each direction is judged apart, a drop by a direction
   * whose endpoint `audited` says is in audit mode counts as allowed, and what the other direction
   * decides still holds. Undefined: some drop is enforced. Else the decision left to apply (allow,
   * or the other direction's L7 rules). Off the hot path: only an audited denial asks.
   */
  decideAudited?(src: Source, dst: Endpoint, port: number, audited: (direction: 'INGRESS' | 'EGRESS') => boolean): PortDecision | undefined;
  /**
   * Whether policy is enforced (default deny) for an identity, per direction, as `cilium endpoint
   * list` shows it: true when a rule selecting it enforces that direction. Off the hot path.
   */
  enforcement?(identity: Identity): { readonly ingress: boolean; readonly egress: boolean };
  /**
   * TLS interception for (source, destination endpoint, port): `terminatingTLS`, `originatingTLS`
   * and `serverNames` of the allow rules that cover it. Off the hot path (once per TLS handshake).
   */
  tls?(src: Source, dst: Endpoint, port: number): TlsDecision;
  /**
   * Staged policies (annotation `l7guard.io/mode: audit`), each compiled beside the enforced set and
   * never enforced (docs/audit.md). Absent: none, and the request path reads nothing else.
   */
  readonly staged?: readonly StagedPolicy[] | undefined;
}

/** One staged policy: what the enforced policies plus this one would decide. */
export interface StagedPolicy {
  readonly kind: 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy';
  /** undefined for a CiliumClusterwideNetworkPolicy. */
  readonly namespace: string | undefined;
  readonly name: string;
  /** "kind/namespace/name" (namespace empty when clusterwide), the metrics' label. */
  readonly key: string;
  /** The enforced objects plus this one, numbered as the enforced state (its identities apply here). */
  readonly state: PolicyState;
  /**
   * This policy's own rules among a decision's provenance, or all of its rules of `direction`
   * when the decision names none of them (a default deny it brings: no rule selected the peer).
   */
  own(by: readonly RuleRef[] | undefined, direction: 'INGRESS' | 'EGRESS'): readonly RuleRef[];
}
