/**
 * A Kubernetes API server for tests: the real wire protocol (discovery, list, watch, Status errors,
 * bearer tokens, RBAC) over real HTTP(S), so that clients under test (@kubernetes/client-node,
 * kubectl) run unmodified against it. It keeps objects in memory, with one global resourceVersion
 * counter and an event history, as etcd and the apiserver's watch cache do. Clients only read: the
 * harness methods (apply, delete, compact, pause, ...) are how a test changes the cluster.
 */
import http from 'node:http';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import jsyaml from 'js-yaml';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  resourceVersion?: string;
  uid?: string;
  creationTimestamp?: string;
  [key: string]: unknown;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

/** One rule of a ClusterRole (rbac.authorization.k8s.io/v1 PolicyRule). */
export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
}

export type ClusterRoleRules = readonly PolicyRule[];

export interface KubeApiServerOptions {
  host?: string;
  port?: number;
  /** PEM key and certificate: serve https. */
  tls?: { key: string; cert: string };
  /**
   * Bearer token -> user name. When set, a request without a known token is 401. kubectl sends a
   * kubeconfig's token only over https: pair tokens with `tls` to test it.
   */
  tokens?: Record<string, string>;
  /** The rules bound to every user (as a ClusterRoleBinding would); unset: everything is allowed. */
  role?: ClusterRoleRules;
  /**
   * How a watch from a compacted resourceVersion is refused: 'event' (a 200 stream whose only event
   * is ERROR 410, what a real apiserver answers) or 'status' (an HTTP 410 Status).
   */
  expiredAs?: 'event' | 'status';
  /** Send a BOOKMARK this often to every watch that allows them. */
  bookmarkIntervalMs?: number;
}

export interface RequestRecord {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string>;
  /** The authenticated user, undefined when the server takes no tokens. */
  readonly user: string | undefined;
  readonly status: number;
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface ResourceType {
  readonly group: string;
  readonly version: string;
  /** Plural, as in URLs and RBAC rules. */
  readonly name: string;
  readonly singularName: string;
  readonly kind: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
  /** A CRD's objects: list items keep kind/apiVersion (they are stored unstructured). */
  readonly custom: boolean;
}

const resource = (group: string, version: string, name: string, kind: string, namespaced: boolean, shortNames: string[] = []): ResourceType => ({
  group, version, name, singularName: kind.toLowerCase(), kind, namespaced, shortNames, custom: group === 'cilium.io',
});

const RESOURCES: readonly ResourceType[] = [
  resource('', 'v1', 'pods', 'Pod', true, ['po']),
  resource('', 'v1', 'services', 'Service', true, ['svc']),
  resource('', 'v1', 'namespaces', 'Namespace', false, ['ns']),
  resource('', 'v1', 'secrets', 'Secret', true),
  resource('discovery.k8s.io', 'v1', 'endpointslices', 'EndpointSlice', true),
  resource('networking.k8s.io', 'v1', 'networkpolicies', 'NetworkPolicy', true, ['netpol']),
  resource('cilium.io', 'v2', 'ciliumnetworkpolicies', 'CiliumNetworkPolicy', true, ['cnp', 'ciliumnp']),
  resource('cilium.io', 'v2', 'ciliumclusterwidenetworkpolicies', 'CiliumClusterwideNetworkPolicy', false, ['ccnp']),
];

const groupVersion = (rt: ResourceType): string => (rt.group === '' ? rt.version : `${rt.group}/${rt.version}`);
/** "pods", "ciliumnetworkpolicies.cilium.io": how Status messages name a resource. */
const qualified = (resourceName: string, group: string): string => (group === '' ? resourceName : `${resourceName}.${group}`);

/** An error answered as a Status object. */
class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, string>,
  ) {
    super(message);
  }

  body(): Record<string, unknown> {
    return {
      kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason,
      ...(this.details !== undefined && { details: this.details }), code: this.code,
    };
  }
}

const notFoundPath = (): ApiError => new ApiError(404, 'NotFound', 'the server could not find the requested resource');
const badRequest = (message: string): ApiError => new ApiError(400, 'BadRequest', message);

// ---------------------------------------------------------------------------------------------
// Selectors, as the apiserver parses them (k8s.io/apimachinery labels and fields).

type Predicate = (o: KubeObject) => boolean;

/** Splits on commas outside parentheses: "a in (x,y),b" is two requirements. */
function splitRequirements(selector: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      out.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  out.push(selector.slice(start));
  return out.map((s) => s.trim()).filter((s) => s !== '');
}

const KEY = String.raw`[A-Za-z0-9][-A-Za-z0-9_./]*`;
const VALUE = String.raw`[-A-Za-z0-9_.]*`;
const SET_RE = new RegExp(String.raw`^(${KEY})\s+(in|notin)\s+\(\s*(${VALUE}(?:\s*,\s*${VALUE})*)\s*\)$`);
const EQ_RE = new RegExp(String.raw`^(${KEY})\s*(==|=|!=)\s*(${VALUE})$`);
const EXISTS_RE = new RegExp(String.raw`^(!?)\s*(${KEY})$`);

function labelRequirement(term: string): (labels: Record<string, string>) => boolean {
  const set = SET_RE.exec(term);
  if (set !== null) {
    const [, key, op, list] = set as unknown as [string, string, string, string];
    const values = new Set(list.split(',').map((v) => v.trim()));
    // notin also matches an object without the label, as != does.
    return op === 'in' ? (l) => key in l && values.has(l[key]!) : (l) => !(key in l && values.has(l[key]!));
  }
  const eq = EQ_RE.exec(term);
  if (eq !== null) {
    const [, key, op, value] = eq as unknown as [string, string, string, string];
    return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
  }
  const exists = EXISTS_RE.exec(term);
  if (exists !== null) {
    const [, not, key] = exists as unknown as [string, string, string];
    return not === '!' ? (l) => !(key in l) : (l) => key in l;
  }
  throw badRequest(`unable to parse requirement: ${JSON.stringify(term)}`);
}

function labelSelector(selector: string): Predicate {
  const reqs = splitRequirements(selector).map(labelRequirement);
  return (o) => reqs.every((r) => r(o.metadata.labels ?? {}));
}

/** The field labels the real apiserver accepts: every kind's metadata ones, and Pods' spec.nodeName. */
function fieldValue(rt: ResourceType, field: string): ((o: KubeObject) => string) | undefined {
  if (field === 'metadata.name') return (o) => o.metadata.name;
  if (field === 'metadata.namespace') return (o) => o.metadata.namespace ?? '';
  if (field === 'spec.nodeName' && rt.kind === 'Pod') return (o) => String((o.spec as { nodeName?: string } | undefined)?.nodeName ?? '');
  return undefined;
}

function fieldSelector(rt: ResourceType, selector: string): Predicate {
  const reqs = selector.split(',').filter((s) => s.trim() !== '').map((term): Predicate => {
    const m = /^\s*([\w.]+)\s*(==|=|!=)\s*(.*?)\s*$/.exec(term);
    if (m === null) throw badRequest(`invalid field selector: ${JSON.stringify(term)}`);
    const [, field, op, value] = m as unknown as [string, string, string, string];
    const get = fieldValue(rt, field);
    if (get === undefined) throw badRequest(`field label not supported: ${field}`);
    return op === '!=' ? (o) => get(o) !== value : (o) => get(o) === value;
  });
  return (o) => reqs.every((r) => r(o));
}

/** The name a list/watch is restricted to by `fieldSelector=metadata.name=X`, for RBAC resourceNames. */
function exactName(selector: string | null): string | undefined {
  for (const term of (selector ?? '').split(',')) {
    const m = /^\s*metadata\.name\s*==?\s*(.*?)\s*$/.exec(term);
    if (m !== null) return m[1];
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Request attributes and RBAC, as the apiserver's RequestInfoFactory and RBAC authorizer see them.

/** get, list, watch, create, update, patch, delete, deletecollection (or another method, lowercased). */
type Verb = string;

interface ResourceRequest {
  readonly verb: Verb;
  readonly group: string;
  readonly version: string;
  readonly namespace: string | undefined;
  readonly resource: string;
  /** The object's name in the URL. */
  readonly name: string | undefined;
  /** The name a list/watch is restricted to by `fieldSelector=metadata.name=X`: RBAC's resourceNames apply to it. */
  readonly selectedName: string | undefined;
  readonly subresource: string | undefined;
  /** More path segments than a resource URL has: no route serves it. */
  readonly extraPath: boolean;
}

const TRUE = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);
const isTrue = (v: string | null): boolean => v !== null && TRUE.has(v);

function verbOf(method: string, name: string | undefined, watch: boolean): Verb {
  if (method === 'GET' || method === 'HEAD') return name !== undefined ? 'get' : watch ? 'watch' : 'list';
  if (method === 'POST') return 'create';
  if (method === 'PUT') return 'update';
  if (method === 'PATCH') return 'patch';
  if (method === 'DELETE') return name === undefined ? 'deletecollection' : 'delete';
  return method.toLowerCase();
}

/** Undefined for non-resource paths (discovery, /version). */
function resourceRequest(method: string, url: URL): ResourceRequest | undefined {
  const parts = url.pathname.split('/').filter((p) => p !== '');
  let group = '';
  let rest: string[];
  let version: string | undefined;
  if (parts[0] === 'api') [version, ...rest] = parts.slice(1);
  else if (parts[0] === 'apis') [group = '', version, ...rest] = parts.slice(1);
  else return undefined;
  if (version === undefined || rest.length === 0) return undefined;
  let namespace: string | undefined;
  // /api/v1/namespaces/{ns}/{resource}/...; /api/v1/namespaces/{ns} is the Namespace itself (and
  // the real RequestInfo gives it that namespace too).
  if (rest[0] === 'namespaces' && rest.length >= 2) {
    namespace = rest[1];
    if (rest.length >= 3) rest = rest.slice(2);
  }
  const [resourceName = '', name, subresource] = rest;
  const verb = verbOf(method, name, isTrue(url.searchParams.get('watch')));
  const selectedName = verb === 'list' || verb === 'watch' ? exactName(url.searchParams.get('fieldSelector')) : undefined;
  return { verb, group, version, namespace, resource: resourceName, name, selectedName, subresource, extraPath: rest.length > 3 };
}

const matches = (list: readonly string[] | undefined, value: string): boolean => list?.some((v) => v === '*' || v === value) ?? false;
/** RBAC names a subresource "pods/log". */
const rbacResource = (r: ResourceRequest): string => (r.subresource === undefined ? r.resource : `${r.resource}/${r.subresource}`);
const rbacName = (r: ResourceRequest): string | undefined => r.name ?? r.selectedName;

function grants(rule: PolicyRule, r: ResourceRequest): boolean {
  if (!matches(rule.verbs, r.verb) || !matches(rule.apiGroups, r.group) || !matches(rule.resources, rbacResource(r))) return false;
  // resourceNames only restrict requests that carry a name: a plain list never matches them.
  if (rule.resourceNames === undefined || rule.resourceNames.length === 0) return true;
  const name = rbacName(r);
  return name !== undefined && rule.resourceNames.includes(name);
}

function forbidden(user: string, r: ResourceRequest): ApiError {
  const what = qualified(r.resource, r.group);
  const scope = r.namespace === undefined ? 'at the cluster scope' : `in the namespace ${JSON.stringify(r.namespace)}`;
  const name = rbacName(r);
  const subject = name === undefined ? what : `${what} ${JSON.stringify(name)}`;
  const why = `User ${JSON.stringify(user)} cannot ${r.verb} resource ${JSON.stringify(rbacResource(r))} in API group ${JSON.stringify(r.group)} ${scope}`;
  return new ApiError(403, 'Forbidden', `${subject} is forbidden: ${why}`, {
    ...(name !== undefined && { name }),
    ...(r.group !== '' && { group: r.group }),
    kind: r.resource,
  });
}

// ---------------------------------------------------------------------------------------------
// Discovery documents.

const GROUPS = [...new Set(RESOURCES.map((rt) => rt.group).filter((g) => g !== ''))];

function apiGroup(group: string): Record<string, unknown> {
  const versions = [...new Set(RESOURCES.filter((rt) => rt.group === group).map((rt) => rt.version))]
    .map((version) => ({ groupVersion: `${group}/${version}`, version }));
  return { name: group, versions, preferredVersion: versions[0] };
}

function resourceList(group: string, version: string): Record<string, unknown> | undefined {
  const served = RESOURCES.filter((rt) => rt.group === group && rt.version === version);
  if (served.length === 0) return undefined;
  return {
    kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group === '' ? version : `${group}/${version}`,
    resources: served.map((rt) => ({
      name: rt.name, singularName: rt.singularName, namespaced: rt.namespaced, kind: rt.kind,
      // What this server answers: reads only (writes are 405).
      verbs: ['get', 'list', 'watch'],
      ...(rt.shortNames.length > 0 && { shortNames: rt.shortNames }),
    })),
  };
}

function discovery(pathname: string, serverAddress: string): Record<string, unknown> | undefined {
  const parts = pathname.split('/').filter((p) => p !== '');
  const [root, a, b] = parts;
  if (parts.length === 1 && root === 'version') {
    return { major: '1', minor: '32', gitVersion: 'v1.32.0', gitCommit: 'l7guard-test', gitTreeState: 'clean', buildDate: '2025-01-01T00:00:00Z', goVersion: 'go1.23.4', compiler: 'gc', platform: 'linux/amd64' };
  }
  if (root === 'api' && parts.length === 1) {
    return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
  }
  if (root === 'api' && parts.length === 2) return resourceList('', a!);
  if (root === 'apis' && parts.length === 1) return { kind: 'APIGroupList', apiVersion: 'v1', groups: GROUPS.map(apiGroup) };
  if (root === 'apis' && parts.length === 2 && GROUPS.includes(a!)) return { kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(a!) };
  if (root === 'apis' && parts.length === 3) return resourceList(a!, b!);
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The store's events and how one watch sees them.

interface StoreEvent {
  readonly type: EventType;
  readonly rt: ResourceType;
  readonly rv: number;
  /** The object after the write; undefined for a delete. */
  readonly object: KubeObject | undefined;
  /** The object before the write; undefined for a create. */
  readonly prev: KubeObject | undefined;
}

interface WatchEvent {
  readonly type: EventType | 'BOOKMARK' | 'ERROR';
  readonly object: Record<string, unknown>;
}

interface OpenWatch {
  readonly rt: ResourceType;
  readonly filter: Predicate;
  readonly bookmarks: boolean;
  readonly res: http.ServerResponse;
}

/**
 * The event a watch with `filter` receives for `e`, as the watch cache converts it: an object that
 * starts matching is ADDED, one that stops matching (or is deleted) is DELETED with its previous
 * content at the event's resourceVersion.
 */
function eventFor(filter: Predicate, e: StoreEvent): WatchEvent | undefined {
  const curPasses = e.object !== undefined && filter(e.object);
  const prevPasses = e.prev !== undefined && filter(e.prev);
  if (curPasses) return { type: prevPasses ? 'MODIFIED' : 'ADDED', object: e.object! };
  if (!prevPasses) return undefined;
  return { type: 'DELETED', object: { ...e.prev!, metadata: { ...e.prev!.metadata, resourceVersion: String(e.rv) } } };
}

const objectKey = (namespace: string | undefined, name: string): string => `${namespace ?? ''}/${name}`;

function parseCount(param: string, value: string): number {
  if (!/^\d+$/.test(value)) throw badRequest(`${param}: Invalid value: ${JSON.stringify(value)}: must be a non-negative integer`);
  return Number(value);
}

function isKubeObject(v: unknown): v is KubeObject {
  const o = v as Partial<KubeObject> | null;
  return typeof o === 'object' && o !== null && typeof o.kind === 'string' && typeof o.metadata?.name === 'string';
}

/** YAML documents to objects; a `kind: List` contributes its items, as `kubectl apply -f` does. */
function objectsFromYaml(text: string): KubeObject[] {
  const out: KubeObject[] = [];
  for (const doc of jsyaml.loadAll(text)) {
    if (doc === null || doc === undefined) continue;
    const items = (doc as { kind?: unknown; items?: unknown[] }).kind === 'List' ? ((doc as { items?: unknown[] }).items ?? []) : [doc];
    for (const item of items) {
      if (!isKubeObject(item)) throw new Error(`not a Kubernetes object (kind and metadata.name): ${JSON.stringify(item).slice(0, 200)}`);
      out.push(item);
    }
  }
  return out;
}

interface Exchange {
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  readonly url: URL;
  user: string | undefined;
}

export class KubeApiServer {
  /** Every answered request, in order. */
  readonly requests: RequestRecord[] = [];
  private readonly objects = new Map<ResourceType, Map<string, KubeObject>>(RESOURCES.map((rt) => [rt, new Map()]));
  private history: StoreEvent[] = [];
  private rv = 0;
  /** Watches from a resourceVersion older than this are 410: their history is gone. */
  private compactedAt = 0;
  private readonly watches = new Set<OpenWatch>();
  private paused = false;
  /** Requests that arrived while paused: answered on resume. */
  private held: Exchange[] = [];
  private bookmarkTimer: NodeJS.Timeout | undefined;
  private server!: http.Server;
  private baseUrl = '';

  private constructor(private readonly opts: KubeApiServerOptions) {}

  static async start(opts: KubeApiServerOptions = {}): Promise<KubeApiServer> {
    const s = new KubeApiServer(opts);
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => s.onRequest(req, res);
    s.server = opts.tls === undefined ? http.createServer(handler) : https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, handler);
    const host = opts.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(opts.port ?? 0, host, () => resolve());
    });
    const { port } = s.server.address() as AddressInfo;
    s.baseUrl = `${opts.tls === undefined ? 'http' : 'https'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
    if (opts.bookmarkIntervalMs !== undefined) s.bookmarkTimer = setInterval(() => s.bookmark(), opts.bookmarkIntervalMs);
    return s;
  }

  /** The rules of the one ClusterRole in a (multi-document) manifest. */
  static roleFromManifest(yamlText: string): ClusterRoleRules {
    const roles = jsyaml.loadAll(yamlText).filter((d): d is { rules?: PolicyRule[] } => {
      const o = d as { apiVersion?: unknown; kind?: unknown } | null;
      return o?.apiVersion === 'rbac.authorization.k8s.io/v1' && o.kind === 'ClusterRole';
    });
    if (roles.length !== 1) throw new Error(`expected one ClusterRole in the manifest, found ${roles.length}`);
    return roles[0]!.rules ?? [];
  }

  /** http(s)://host:port */
  get url(): string {
    return this.baseUrl;
  }

  /** The current (last written) resourceVersion. */
  get resourceVersion(): string {
    return String(this.rv);
  }

  async close(): Promise<void> {
    clearInterval(this.bookmarkTimer);
    for (const w of this.watches) w.res.destroy();
    for (const h of this.held) h.res.destroy();
    this.held = [];
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ------------------------------------------------------------------------------------------
  // Harness: how tests change the cluster.

  /** Creates or replaces objects (ADDED / MODIFIED); a string is YAML, one or more documents. */
  apply(obj: KubeObject): KubeObject;
  apply(yamlText: string): KubeObject[];
  apply(input: KubeObject | string): KubeObject | KubeObject[] {
    if (typeof input === 'string') return objectsFromYaml(input).map((o) => this.applyOne(o));
    return this.applyOne(input);
  }

  /** Deletes an object (DELETED, with its final state at a new resourceVersion); undefined if absent. */
  delete(kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const rt = this.kind(kind);
    const key = objectKey(rt.namespaced ? namespace : undefined, name);
    const prev = this.objects.get(rt)!.get(key);
    if (prev === undefined) return undefined;
    this.objects.get(rt)!.delete(key);
    const rv = ++this.rv;
    this.record({ type: 'DELETED', rt, rv, object: undefined, prev });
    return structuredClone({ ...prev, metadata: { ...prev.metadata, resourceVersion: String(rv) } });
  }

  get(kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const rt = this.kind(kind);
    const o = this.objects.get(rt)!.get(objectKey(rt.namespaced ? namespace : undefined, name));
    return o === undefined ? undefined : structuredClone(o);
  }

  /** Drops all history, as etcd compaction does: a watch from an older resourceVersion is then 410. */
  compact(): void {
    this.history = [];
    this.compactedAt = this.rv;
  }

  /** Ends every open watch cleanly, as the apiserver's request timeout does. */
  closeWatches(): void {
    for (const w of [...this.watches]) this.endWatch(w);
  }

  /** A hung apiserver: requests are accepted but not answered, and open watch streams break. */
  pause(): void {
    this.paused = true;
    for (const w of [...this.watches]) {
      this.watches.delete(w);
      w.res.destroy();
    }
  }

  /** Answers again, including the requests that arrived while paused (if their client still waits). */
  resume(): void {
    this.paused = false;
    const held = this.held;
    this.held = [];
    for (const h of held) if (!h.res.destroyed) this.serve(h);
  }

  /** A BOOKMARK at the current resourceVersion on every watch that allows them. */
  bookmark(): void {
    for (const w of this.watches) {
      if (w.bookmarks) this.write(w, { type: 'BOOKMARK', object: { kind: w.rt.kind, apiVersion: groupVersion(w.rt), metadata: { resourceVersion: String(this.rv) } } });
    }
  }

  watchCount(): number {
    return this.watches.size;
  }

  private kind(kind: string): ResourceType {
    const rt = RESOURCES.find((r) => r.kind === kind);
    if (rt === undefined) throw new Error(`kind ${kind} is not served (served: ${RESOURCES.map((r) => r.kind).join(', ')})`);
    return rt;
  }

  private applyOne(input: KubeObject): KubeObject {
    const rt = this.kind(input.kind);
    if (input.apiVersion !== groupVersion(rt)) throw new Error(`${input.kind} is served as ${groupVersion(rt)}, not ${input.apiVersion}`);
    const meta = { ...input.metadata };
    // kubectl apply puts a namespaced object without one in the context's namespace, "default".
    if (rt.namespaced) meta.namespace ??= 'default';
    else delete meta.namespace;
    const key = objectKey(meta.namespace, meta.name);
    const prev = this.objects.get(rt)!.get(key);
    const rv = ++this.rv;
    // An update keeps the identity of what it replaces; every write gets a new resourceVersion.
    meta.uid = prev?.metadata.uid ?? meta.uid ?? randomUUID();
    meta.creationTimestamp = prev?.metadata.creationTimestamp ?? meta.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    meta.resourceVersion = String(rv);
    const object: KubeObject = structuredClone({ ...input, metadata: meta });
    this.objects.get(rt)!.set(key, object);
    this.record({ type: prev === undefined ? 'ADDED' : 'MODIFIED', rt, rv, object, prev });
    return structuredClone(object);
  }

  private record(e: StoreEvent): void {
    this.history.push(e);
    for (const w of this.watches) {
      if (w.rt !== e.rt) continue;
      const ev = eventFor(w.filter, e);
      if (ev !== undefined) this.write(w, ev);
    }
  }

  // ------------------------------------------------------------------------------------------
  // HTTP.

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const h: Exchange = { req, res, url: new URL(req.url ?? '/', 'http://apiserver'), user: undefined };
    if (this.paused) this.held.push(h);
    else this.serve(h);
  }

  private serve(h: Exchange): void {
    try {
      this.route(h);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      this.send(h, err.code, err.body());
    }
  }

  private route(h: Exchange): void {
    h.user = this.authenticate(h.req);
    const r = resourceRequest(h.req.method ?? 'GET', h.url);
    // Discovery and /version: any authenticated user (the default system:discovery and
    // system:public-info-viewer bindings).
    if (r === undefined) {
      const doc = h.req.method === 'GET' ? discovery(h.url.pathname, `${h.req.socket.localAddress}:${h.req.socket.localPort}`) : undefined;
      if (doc === undefined) throw notFoundPath();
      return this.send(h, 200, doc);
    }
    this.authorize(h.user, r);
    const rt = RESOURCES.find((t) => t.group === r.group && t.version === r.version && t.name === r.resource);
    if (rt === undefined || r.subresource !== undefined || r.extraPath) throw notFoundPath();
    // A namespaced type has no single-object URL outside a namespace; a cluster-scoped one has no
    // URL inside one (except a Namespace's own, /api/v1/namespaces/{name}).
    const ownNamespaceUrl = rt.kind === 'Namespace' && r.namespace === r.name;
    if (rt.namespaced ? r.namespace === undefined && r.name !== undefined : r.namespace !== undefined && !ownNamespaceUrl) throw notFoundPath();
    if (r.verb === 'get') return this.getOne(h, rt, r);
    if (r.verb === 'list') return this.list(h, rt, r);
    if (r.verb === 'watch') return this.watch(h, rt, r);
    throw new ApiError(405, 'MethodNotAllowed', `${r.verb} is not supported on resources of kind ${JSON.stringify(qualified(rt.name, rt.group))}`);
  }

  /** The user a bearer token names; undefined when the server takes no tokens. */
  private authenticate(req: http.IncomingMessage): string | undefined {
    if (this.opts.tokens === undefined) return undefined;
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const user = m === null ? undefined : this.opts.tokens[m[1]!];
    if (user === undefined) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
    return user;
  }

  private authorize(user: string | undefined, r: ResourceRequest): void {
    const rules = this.opts.role;
    if (rules === undefined || rules.some((rule) => grants(rule, r))) return;
    throw forbidden(user ?? 'system:anonymous', r);
  }

  private getOne(h: Exchange, rt: ResourceType, r: ResourceRequest): void {
    const name = r.name!;
    const o = this.objects.get(rt)!.get(objectKey(rt.namespaced ? r.namespace : undefined, name));
    if (o === undefined) {
      throw new ApiError(404, 'NotFound', `${qualified(rt.name, rt.group)} ${JSON.stringify(name)} not found`, {
        name, ...(rt.group !== '' && { group: rt.group }), kind: rt.name,
      });
    }
    this.send(h, 200, o);
  }

  /** The objects a list or watch of `rt` in `namespace` with the request's selectors sees. */
  private filterFor(rt: ResourceType, namespace: string | undefined, q: URLSearchParams): Predicate {
    const preds: Predicate[] = [];
    if (namespace !== undefined) preds.push((o) => o.metadata.namespace === namespace);
    const labels = q.get('labelSelector');
    if (labels !== null) preds.push(labelSelector(labels));
    const fields = q.get('fieldSelector');
    if (fields !== null) preds.push(fieldSelector(rt, fields));
    return (o) => preds.every((p) => p(o));
  }

  /** Current objects in key order, as etcd returns a range. */
  private current(rt: ResourceType, filter: Predicate): KubeObject[] {
    return [...this.objects.get(rt)!.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, o]) => o).filter(filter);
  }

  /** The whole collection: `limit` is honoured by sending everything without `continue`, which is valid. */
  private list(h: Exchange, rt: ResourceType, r: ResourceRequest): void {
    const items = this.current(rt, this.filterFor(rt, r.namespace, h.url.searchParams)).map((o) => {
      if (rt.custom) return o;
      // Built-in kinds' list items carry no kind/apiVersion: the list's kind says it.
      const { kind: _kind, apiVersion: _apiVersion, ...rest } = o;
      return rest;
    });
    this.send(h, 200, { kind: `${rt.kind}List`, apiVersion: groupVersion(rt), metadata: { resourceVersion: String(this.rv) }, items });
  }

  private watch(h: Exchange, rt: ResourceType, r: ResourceRequest): void {
    const q = h.url.searchParams;
    const filter = this.filterFor(rt, r.namespace, q);
    const from = q.get('resourceVersion');
    const timeout = q.get('timeoutSeconds');
    const timeoutMs = timeout === null ? undefined : parseCount('timeoutSeconds', timeout) * 1000;
    // Absent or "0": the current state as ADDED events first ("Get State and Start at Most Recent").
    const fromRv = from === null || from === '' || from === '0' ? undefined : parseCount('resourceVersion', from);
    if (fromRv !== undefined && fromRv < this.compactedAt) return this.expired(h, rt, fromRv);
    const replay: WatchEvent[] = fromRv === undefined
      ? this.current(rt, filter).map((object) => ({ type: 'ADDED', object }))
      : this.history.filter((e) => e.rt === rt && e.rv > fromRv).flatMap((e) => eventFor(filter, e) ?? []);
    const w: OpenWatch = { rt, filter, bookmarks: isTrue(q.get('allowWatchBookmarks')), res: h.res };
    this.startStream(h);
    for (const ev of replay) this.write(w, ev);
    this.watches.add(w);
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => this.endWatch(w), timeoutMs);
    h.res.on('close', () => {
      clearTimeout(timer);
      this.watches.delete(w);
    });
  }

  private expired(h: Exchange, rt: ResourceType, fromRv: number): void {
    const err = new ApiError(410, 'Expired', `too old resource version: ${fromRv} (${this.compactedAt})`);
    if (this.opts.expiredAs === 'status') return this.send(h, 410, err.body());
    this.startStream(h);
    h.res.end(JSON.stringify({ type: 'ERROR', object: err.body() }) + '\n');
  }

  private startStream(h: Exchange): void {
    this.log(h, 200);
    h.res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private' });
    // The client waits for the headers before it reads events: send them now, not with the first one.
    h.res.flushHeaders();
  }

  /** One event, one line. Stored objects keep kind/apiVersion, so events carry them (unlike list items). */
  private write(w: OpenWatch, ev: WatchEvent): void {
    w.res.write(JSON.stringify(ev) + '\n');
  }

  private endWatch(w: OpenWatch): void {
    this.watches.delete(w);
    w.res.end();
  }

  private send(h: Exchange, status: number, body: unknown): void {
    this.log(h, status);
    const text = JSON.stringify(body);
    h.res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    h.res.end(text);
  }

  private log(h: Exchange, status: number): void {
    this.requests.push({ method: h.req.method ?? '', path: h.url.pathname, query: Object.fromEntries(h.url.searchParams), user: h.user, status });
  }
}

/** A kubeconfig (JSON is YAML) for `server` with a bearer token, and the CA to verify an https server. */
export function kubeconfigText(server: string, token: string, ca?: string): string {
  return JSON.stringify({
    apiVersion: 'v1', kind: 'Config',
    clusters: [{ name: 'test', cluster: { server, ...(ca === undefined ? {} : { 'certificate-authority-data': Buffer.from(ca).toString('base64') }) } }],
    users: [{ name: 'l7guard', user: { token } }],
    contexts: [{ name: 'test', context: { cluster: 'test', user: 'l7guard', namespace: 'default' } }],
    'current-context': 'test',
  });
}

/** kubeconfigText written to `dir/kubeconfig`; returns the path. */
export function writeKubeconfig(dir: string, server: string, token: string, ca?: string): string {
  const path = join(dir, 'kubeconfig');
  writeFileSync(path, kubeconfigText(server, token, ca));
  return path;
}
