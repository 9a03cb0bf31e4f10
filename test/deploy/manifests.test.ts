/**
 * deploy/*.yaml (and deploy/uninstall.sh), checked offline: structurally valid Kubernetes objects;
 * deploy/rbac.yaml's ClusterRole granting get/list/watch on exactly what the Kubernetes source
 * watches; every l7guard container's args accepted by the real `serve` flag table, taking the
 * cluster from the API server (`--kubernetes`, no `-f`) as a ServiceAccount of deploy/ bound to that
 * ClusterRole; probes on the `--admin-readonly` port, the `--admin` unix socket's folder a declared
 * volume; container ports matching the listeners; the init containers' iptables rules targeting
 * exactly the ports l7guard listens on; no container running as root but the iptables ones; the
 * interception flags satisfiable by the Star Wars cluster; uninstall.sh removing what deploy/ adds.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { parseArgs } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { SERVE_OPTIONS } from '../../cli/serve.js';
import { POLICIES, starWarsPolicy, starWarsYaml, RECORDED_NAMING } from '../../fixtures/star-wars.js';
import { checkInterception, parseInterception, type InterceptionOptions } from '../../proxy/listen/original-destination.js';
import { parseHostPort } from '../../proxy/admin/server.js';
import { SECRET_KIND, WATCHED_KINDS } from '../../proxy/sources/kubernetes/kinds.js';
import { loadPolicyState } from '../../policy/index.js';
import { repoRoot } from '../helpers/serve.js';

type Obj = Record<string, unknown>;
const DEPLOY = join(repoRoot, 'deploy');
const files = readdirSync(DEPLOY).filter((f) => f.endsWith('.yaml')).sort();
const docs: { file: string; o: Obj }[] = [];
for (const file of files) {
  for (const d of parseAllDocuments(readFileSync(join(DEPLOY, file), 'utf8'))) {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]!.message}`);
    const o = d.toJS() as Obj | null;
    if (o !== null) docs.push({ file, o });
  }
}
const UNINSTALL = readFileSync(join(DEPLOY, 'uninstall.sh'), 'utf8');

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const objs = (v: unknown): Obj[] => arr(v).filter(isObj);
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const KINDS: Record<string, { apiVersion: string; namespaced: boolean }> = {
  Namespace: { apiVersion: 'v1', namespaced: false },
  ConfigMap: { apiVersion: 'v1', namespaced: true },
  DaemonSet: { apiVersion: 'apps/v1', namespaced: true },
  Deployment: { apiVersion: 'apps/v1', namespaced: true },
  ServiceAccount: { apiVersion: 'v1', namespaced: true },
  ClusterRole: { apiVersion: 'rbac.authorization.k8s.io/v1', namespaced: false },
  ClusterRoleBinding: { apiVersion: 'rbac.authorization.k8s.io/v1', namespaced: false },
};
const byKind = (kind: string) => docs.filter((d) => d.o.kind === kind);
const meta = (o: Obj) => o.metadata as Obj;
const named = (kind: string, name: unknown, namespace?: unknown) =>
  byKind(kind).find((d) => meta(d.o).name === name && (namespace === undefined || meta(d.o).namespace === namespace));
/** The service account token's folder, where a pod's in-cluster client (and l7guard's) reads it. */
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const PART_OF = 'app.kubernetes.io/part-of';

for (const f of ['daemonset.yaml', 'rbac.yaml', 'sidecar-deathstar.yaml']) t.ok(files.includes(f), `deploy/${f} exists`);
t.notOk(files.includes('policy-configmap.yaml'), 'no hand-kept ConfigMap of pods and policies: they come from the API server');

t.test('every object is a structurally valid Kubernetes object', async (t) => {
  for (const { file, o } of docs) {
    const where = `${file} ${String(o.kind)}/${String(isObj(o.metadata) ? o.metadata.name : '?')}`;
    const k = KINDS[String(o.kind)];
    t.ok(k, `${where}: known kind`);
    if (k === undefined) continue;
    t.equal(o.apiVersion, k.apiVersion, `${where}: apiVersion`);
    t.ok(isObj(o.metadata) && DNS_SUBDOMAIN.test(String(meta(o).name)), `${where}: metadata.name`);
    if (k.namespaced) {
      const ns = meta(o).namespace;
      t.ok(DNS_LABEL.test(String(ns)), `${where}: metadata.namespace`);
      t.ok(ns === 'default' || named('Namespace', ns) !== undefined, `${where}: namespace ${String(ns)} is default or declared in deploy/`);
    }
    t.equal((meta(o).labels as Obj | undefined)?.[PART_OF], 'l7guard', `${where}: labelled ${PART_OF}=l7guard`);
    if (o.kind === 'ConfigMap') t.ok(Object.values(o.data as Obj).every((v) => typeof v === 'string'), `${where}: data values are strings`);
    if (o.kind === 'DaemonSet' || o.kind === 'Deployment') checkWorkload(t, where, o);
  }
  const keys = docs.map(({ o }) => `${String(o.kind)}/${String(meta(o).namespace ?? '')}/${String(meta(o).name)}`);
  t.equal(new Set(keys).size, keys.length, 'no object is declared twice');
});

function checkWorkload(t: Test, where: string, o: Obj): void {
  const spec = o.spec as Obj;
  const template = spec.template as Obj;
  const labels = (template.metadata as Obj).labels as Obj;
  const selector = (spec.selector as Obj).matchLabels as Obj;
  t.ok(Object.entries(selector).every(([k, v]) => labels[k] === v), `${where}: selector matches the template labels`);
  const pod = template.spec as Obj;
  const all = [...objs(pod.initContainers), ...objs(pod.containers)];
  t.ok(objs(pod.containers).length > 0, `${where}: has containers`);
  t.equal(new Set(all.map((c) => c.name)).size, all.length, `${where}: container names are unique`);
  const volumes = new Map(objs(pod.volumes).map((v) => [String(v.name), v]));
  for (const c of all) {
    t.ok(typeof c.image === 'string' && c.image !== '', `${where} ${String(c.name)}: image`);
    for (const m of objs(c.volumeMounts)) {
      t.ok(volumes.has(String(m.name)), `${where} ${String(c.name)}: volume ${String(m.name)} is declared`);
      t.equal(m.subPath, undefined, `${where} ${String(c.name)}: no subPath (updates must reach the folder)`);
    }
    const env = new Set(objs(c.env).map((e) => String(e.name)));
    for (const a of arr(c.args)) {
      for (const m of String(a).matchAll(/\$\(([A-Z_][A-Z0-9_]*)\)/g)) t.ok(env.has(m[1]!), `${where} ${String(c.name)}: $(${m[1]}) is in env`);
    }
    if (c.restartPolicy !== undefined) t.equal(c.restartPolicy, 'Always', `${where} ${String(c.name)}: only native sidecars set restartPolicy`);
  }
  for (const v of volumes.values()) {
    if (!isObj(v.configMap)) continue;
    const name = v.configMap.name;
    t.ok(named('ConfigMap', name, meta(o).namespace), `${where}: ConfigMap ${String(name)} is in deploy/, same namespace`);
  }
  if (o.kind === 'DaemonSet') {
    t.equal(pod.hostNetwork, true, `${where}: hostNetwork`);
    t.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet', `${where}: dnsPolicy`);
    t.ok(objs(pod.tolerations).some((x) => x.operator === 'Exists'), `${where}: tolerates every taint`);
    t.equal((spec.updateStrategy as Obj).type, 'RollingUpdate', `${where}: RollingUpdate`);
  }
}

t.test('deploy/rbac.yaml: read-only, on exactly the kinds the Kubernetes source watches', async (t) => {
  const roles = byKind('ClusterRole');
  t.same(roles.map((d) => `${d.file} ${String(meta(d.o).name)}`), ['rbac.yaml l7guard'], 'one ClusterRole, l7guard, in rbac.yaml');
  const rules = objs(roles[0]?.o.rules);
  const granted = new Set<string>();
  for (const r of rules) {
    t.same([...arr(r.verbs)].sort(), ['get', 'list', 'watch'], `rule ${JSON.stringify(r.resources)}: get, list, watch and nothing else`);
    t.equal(r.resourceNames, undefined, 'not limited to named objects (the source lists whole collections)');
    for (const g of arr(r.apiGroups)) for (const res of arr(r.resources)) granted.add(`${String(g)}/${String(res)}`);
  }
  // `/apis/cilium.io/v2/ciliumnetworkpolicies` -> `cilium.io/ciliumnetworkpolicies`; `/api/v1/pods` -> `/pods`.
  const watched = [...WATCHED_KINDS, SECRET_KIND].map((k) => {
    const group = k.apiVersion.includes('/') ? k.apiVersion.split('/')[0]! : '';
    return `${group}/${k.path.split('/').pop()!}`;
  });
  t.same([...granted].sort(), [...watched].sort(), 'the granted resources are the watched kinds plus Secrets');
});

t.test('every ClusterRoleBinding binds ServiceAccounts of deploy/ to the l7guard ClusterRole', async (t) => {
  t.ok(byKind('ClusterRoleBinding').length > 0, 'there are bindings');
  for (const { file, o } of byKind('ClusterRoleBinding')) {
    const where = `${file} ClusterRoleBinding/${String(meta(o).name)}`;
    const ref = o.roleRef as Obj;
    t.same(ref, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'l7guard' }, `${where}: roleRef`);
    for (const s of objs(o.subjects)) {
      t.equal(s.kind, 'ServiceAccount', `${where}: subject is a ServiceAccount`);
      t.ok(named('ServiceAccount', s.name, s.namespace), `${where}: ServiceAccount ${String(s.namespace)}/${String(s.name)} is in deploy/`);
    }
  }
});

interface Guard {
  readonly where: string;
  readonly workload: Obj;
  readonly pod: Obj;
  readonly container: Obj;
  readonly sidecar: boolean;
  readonly values: ReturnType<typeof parseServe>;
  readonly interception: InterceptionOptions;
}

/** What the kubelet does to `$(VAR)` in args, with a sample value per downward-API field. */
const SAMPLE: Record<string, string> = {
  'metadata.name': 'deathstar-8c4c77fb7-b9qmw', 'metadata.namespace': 'default', 'spec.nodeName': 'node-1',
  'status.hostIP': '192.168.1.10', 'status.podIP': '10.244.3.2',
};
function expand(c: Obj, s: string): string {
  return s.replace(/\$\(([A-Z_][A-Z0-9_]*)\)/g, (all, name: string) => {
    const e = objs(c.env).find((x) => x.name === name);
    if (e === undefined) return all;
    if (typeof e.value === 'string') return e.value;
    return SAMPLE[String((((e.valueFrom as Obj).fieldRef as Obj) ?? {}).fieldPath)] ?? all;
  });
}

function parseServe(argv: string[]) {
  return parseArgs({ args: argv, options: SERVE_OPTIONS, strict: true, allowPositionals: false }).values;
}

const guards: Guard[] = [];
for (const { file, o } of docs) {
  if (o.kind !== 'DaemonSet' && o.kind !== 'Deployment') continue;
  const pod = ((o.spec as Obj).template as Obj).spec as Obj;
  for (const [list, sidecar] of [[pod.initContainers, true], [pod.containers, false]] as const) {
    for (const c of objs(list)) {
      if (!arr(c.command).includes('l7guard')) continue;
      const args = arr(c.args).map((a) => expand(c, String(a)));
      t.equal(args[0], 'serve', `${file} ${String(c.name)}: runs l7guard serve`);
      const values = parseServe(args.slice(1));
      const interception = parseInterception({ mode: values.mode, pod: values.pod, redirect: values.redirect });
      guards.push({ where: `${file} ${String(c.name)}`, workload: o, pod, container: c, sidecar: sidecar && c.restartPolicy === 'Always', values, interception });
    }
  }
}
const IMAGE = guards[0] === undefined ? undefined : String(guards[0].container.image);

t.test('l7guard containers', async (t) => {
  t.equal(guards.length, 2, 'one in the DaemonSet, one sidecar');
  t.same(guards.map((g) => g.interception.mode.kind).sort(), ['node', 'sidecar'], 'both modes are shown');
  for (const g of guards) {
    t.equal(g.sidecar, g.interception.mode.kind === 'sidecar', `${g.where}: --mode sidecar iff a native sidecar (init container, restartPolicy Always)`);
    t.equal(g.container.image, IMAGE, `${g.where}: the image deploy/ uses for l7guard`);

    // The cluster comes from the API server, as the pod's service account.
    t.equal(g.values.kubernetes, true, `${g.where}: --kubernetes`);
    t.equal(g.values.file, undefined, `${g.where}: no -f (no ConfigMap of pods or policies)`);
    t.equal(g.values.kubeconfig, undefined, `${g.where}: no --kubeconfig (in a pod: its service account)`);
    const sa = g.pod.serviceAccountName;
    const ns = meta(g.workload).namespace;
    t.ok(named('ServiceAccount', sa, ns), `${g.where}: serviceAccountName ${String(sa)} is a ServiceAccount of deploy/ in ${String(ns)}`);
    t.ok(byKind('ClusterRoleBinding').some(({ o }) => (o.roleRef as Obj).name === 'l7guard'
      && objs(o.subjects).some((s) => s.kind === 'ServiceAccount' && s.name === sa && s.namespace === ns)),
    `${g.where}: ${String(ns)}/${String(sa)} is bound to the l7guard ClusterRole`);
    checkToken(t, g);

    // Mutations only through the unix socket; probes on the read-only listener.
    const admin = String(g.values.admin);
    t.match(admin, /^unix:\//, `${g.where}: --admin is a unix socket`);
    const socketDir = posix.dirname(admin.slice('unix:'.length));
    const mount = objs(g.container.volumeMounts).find((m) => m.mountPath === socketDir);
    const volume = objs(g.pod.volumes).find((v) => v.name === mount?.name);
    t.ok(mount !== undefined && mount.readOnly !== true, `${g.where}: the socket's folder ${socketDir} is a writable volume mount`);
    t.ok(volume !== undefined && isObj(volume.emptyDir), `${g.where}: ... of a declared emptyDir volume`);
    t.ok(g.values['admin-readonly'] !== undefined, `${g.where}: --admin-readonly`);
    const ro = parseHostPort(g.values['admin-readonly'] ?? '');
    for (const [probe, path] of [['startupProbe', '/ready'], ['readinessProbe', '/ready'], ['livenessProbe', '/healthz']] as const) {
      const get = (g.container[probe] as Obj | undefined)?.httpGet as Obj | undefined;
      t.equal(get?.path, path, `${g.where}: ${probe} GET ${path}`);
      t.equal(get?.port, ro.port, `${g.where}: ${probe} on the --admin-readonly port`);
      // The kubelet probes the pod IP (or, on the host network, the node): a loopback listener needs both.
      if (ro.host.startsWith('127.')) {
        t.equal(g.pod.hostNetwork, true, `${g.where}: a loopback --admin-readonly only works for probes on the host network`);
        t.equal(get?.host, ro.host, `${g.where}: ${probe} host is the --admin-readonly address`);
      }
    }
    const listenPorts = [
      ...(g.values.listen ?? (g.interception.redirects.length > 0 ? [] : ['0.0.0.0:80'])).map((l) => parseHostPort(l).port),
      ...g.interception.redirects.map((r) => r.listen.port),
    ];
    const declared = objs(g.container.ports).map((p) => Number(p.containerPort)).sort();
    t.same(declared, [...listenPorts, ro.port].sort(), `${g.where}: containerPorts are exactly the listeners and the read-only admin port`);

    const rules = redirectRules(g.pod);
    t.ok(rules.length > 0, `${g.where}: an init container installs redirect rules`);
    t.same(rules.map((r) => r.toPort).sort(), g.interception.redirects.map((r) => r.listen.port).sort(),
      `${g.where}: one REDIRECT per --redirect listener, to its port`);
    for (const r of rules) {
      const target = g.interception.redirects.find((x) => x.listen.port === r.toPort);
      t.equal(r.dport, target?.dest.port, `${g.where}: --dport ${r.dport} is the --redirect destination port`);
      t.equal(r.dest, target?.dest.ip, `${g.where}: -d ${String(r.dest)} is the --redirect destination IP`);
    }
  }
});

/**
 * The pod's token reaches l7guard: either mounted everywhere (the default), or, with
 * automountServiceAccountToken: false, projected at the standard path into l7guard alone.
 */
function checkToken(t: Test, g: Guard): void {
  const sa = named('ServiceAccount', g.pod.serviceAccountName, meta(g.workload).namespace)?.o;
  const automount = g.pod.automountServiceAccountToken ?? sa?.automountServiceAccountToken ?? true;
  if (automount !== false) return;
  const all = [...objs(g.pod.initContainers), ...objs(g.pod.containers)];
  for (const c of all) {
    const m = objs(c.volumeMounts).find((x) => x.mountPath === SA_DIR);
    if (c !== g.container) {
      t.equal(m, undefined, `${g.where}: container ${String(c.name)} gets no service account token`);
      continue;
    }
    t.equal(m?.readOnly, true, `${g.where}: the token is mounted read-only at ${SA_DIR}`);
    const v = objs(g.pod.volumes).find((x) => x.name === m?.name);
    const sources = objs((v?.projected as Obj | undefined)?.sources);
    t.ok(sources.some((s) => isObj(s.serviceAccountToken) && s.serviceAccountToken.path === 'token'), `${g.where}: projected token`);
    t.ok(sources.some((s) => isObj(s.configMap) && s.configMap.name === 'kube-root-ca.crt'
      && objs(s.configMap.items).some((i) => i.path === 'ca.crt')), `${g.where}: projected ca.crt`);
    t.ok(sources.some((s) => isObj(s.downwardAPI) && objs(s.downwardAPI.items).some((i) => i.path === 'namespace')), `${g.where}: projected namespace`);
  }
}

/** Every `iptables ... -j REDIRECT --to-ports N` line of the pod's non-l7guard init containers. */
function redirectRules(pod: Obj): { dest: string | undefined; dport: number; toPort: number }[] {
  const out: { dest: string | undefined; dport: number; toPort: number }[] = [];
  for (const c of objs(pod.initContainers)) {
    if (arr(c.command).includes('l7guard')) continue;
    const caps = (((c.securityContext as Obj | undefined)?.capabilities as Obj | undefined)?.add ?? []) as string[];
    for (const line of arr(c.args).join('\n').split('\n')) {
      if (!/\biptables\b.*-j REDIRECT/.test(line)) continue;
      if (!caps.includes('NET_ADMIN')) throw new Error(`${String(c.name)} runs iptables without NET_ADMIN`);
      const toPort = Number(/--to-ports (\d+)/.exec(line)?.[1]);
      const dport = Number(/--dport (\d+)/.exec(line)?.[1]);
      const dest = /-d (\S+?)(?:\/32)?\s/.exec(line)?.[1];
      out.push({ dest, dport, toPort });
    }
  }
  return out;
}

/** runAsUser/runAsNonRoot as the kubelet applies them: the container's securityContext over the pod's. */
function effective(pod: Obj, c: Obj): Obj {
  return { ...((pod.securityContext as Obj | undefined) ?? {}), ...((c.securityContext as Obj | undefined) ?? {}) };
}
const runsIptables = (c: Obj) => /\biptables\b/.test(arr(c.args).join('\n'));
/** The upstream app's containers (demo/manifests/http-sw-app.yaml), kept as Cilium ships them. */
const APP_CONTAINERS = parseAllDocuments(readFileSync(join(repoRoot, 'demo', 'manifests', 'http-sw-app.yaml'), 'utf8'))
  .map((d) => d.toJS() as Obj | null).filter((o): o is Obj => o?.kind === 'Deployment')
  .flatMap((o) => objs((((o.spec as Obj).template as Obj).spec as Obj).containers));

t.test('no container runs as root but the iptables init containers', async (t) => {
  for (const { file, o } of docs) {
    if (o.kind !== 'DaemonSet' && o.kind !== 'Deployment') continue;
    const pod = ((o.spec as Obj).template as Obj).spec as Obj;
    for (const c of [...objs(pod.initContainers), ...objs(pod.containers)]) {
      const where = `${file} ${String(c.name)}`;
      const sc = effective(pod, c);
      t.not(sc.privileged, true, `${where}: not privileged`);
      const caps = ((sc.capabilities as Obj | undefined) ?? {});
      t.ok(arr(caps.drop).includes('ALL') || APP_CONTAINERS.some((a) => a.image === c.image), `${where}: drops ALL capabilities`);
      if (runsIptables(c)) {
        t.ok(arr(pod.initContainers).includes(c), `${where}: iptables only in an init container`);
        t.equal(c.image, IMAGE, `${where}: the l7guard image (it has iptables)`);
        t.equal(sc.runAsUser, 0, `${where}: runs iptables as root (the image's user is node)`);
        t.same([...arr(caps.add)].sort(), ['NET_ADMIN', 'NET_RAW'], `${where}: with NET_ADMIN and NET_RAW only`);
        t.equal(c.restartPolicy, undefined, `${where}: runs once`);
      } else if (c.image === IMAGE) {
        t.equal(sc.runAsNonRoot, true, `${where}: runAsNonRoot`);
        t.equal(sc.runAsUser, 1000, `${where}: runAsUser 1000, the image's node user`);
        t.equal(sc.allowPrivilegeEscalation, false, `${where}: no privilege escalation`);
        t.same(arr(caps.add), [], `${where}: adds no capability`);
      } else {
        // Not ours: the upstream app container, as http-sw-app.yaml has it (its image runs as root).
        t.ok(APP_CONTAINERS.some((a) => a.name === c.name && a.image === c.image), `${where}: the Star Wars app's own container, unchanged`);
        t.equal(c.securityContext, undefined, `${where}: with the upstream securityContext`);
      }
    }
  }
});

t.test('the interception flags fit the Star Wars cluster as the API server would hold it', async (t) => {
  const node = guards.find((g) => g.interception.mode.kind === 'node')!;
  const dest = node.interception.redirects[0]!.dest;
  const dir = mkdtempSync(join(tmpdir(), 'l7guard-deploy-'));
  // The sidecar's $(POD_NAME) sample is the first replica's name, its status.podIP the first replica's IP.
  writeFileSync(join(dir, 'cluster.yaml'), starWarsYaml({
    addresses: { deathstar: [SAMPLE['status.podIP']!, '10.244.4.2'], tiefighter: '10.244.1.2', xwing: '10.244.2.2', clusterIP: dest.ip! },
    naming: RECORDED_NAMING, namespaceObject: true,
  }));
  writeFileSync(join(dir, 'policy.yaml'), starWarsPolicy(POLICIES.l7));
  const state = await loadPolicyState([dir], { clusterName: 'default', nodeIPs: [], allowLocalhost: 'always', previous: undefined, revision: 1 });
  for (const g of guards) {
    t.doesNotThrow(() => checkInterception(state, g.interception), `${g.where}: --pod / --redirect match the cluster`);
  }
  t.equal(dest.port, 80, 'the node redirect targets the deathstar Service port');
  const ds = state.endpoints.find((e) => e.podLabels['class'] === 'deathstar');
  t.ok(ds?.identity.labels.includes('k8s:org=empire'), 'the protected pods have their labels');
});

t.test('deploy/uninstall.sh removes what deploy/ adds, the node chain included', async (t) => {
  t.match(UNINSTALL, /^#!\/bin\/sh\n/, 'a POSIX sh script');
  t.match(UNINSTALL, /\nset -eu\n/, 'set -eu');
  for (const kind of ['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'DaemonSet']) {
    for (const { o } of byKind(kind)) {
      const name = String(meta(o).name);
      t.match(UNINSTALL, new RegExp(`delete ${kind.toLowerCase()} ${name}(\\s|$)`, 'm'), `deletes ${kind} ${name}`);
    }
  }
  t.match(UNINSTALL, new RegExp(`delete deployment,serviceaccount --all-namespaces -l ${PART_OF}=l7guard`), 'deletes the labelled Deployments and ServiceAccounts');
  // Every chain a host-network init container creates is deleted from both iptables backends.
  for (const { file, o } of byKind('DaemonSet')) {
    const pod = ((o.spec as Obj).template as Obj).spec as Obj;
    for (const c of objs(pod.initContainers).filter(runsIptables)) {
      for (const m of arr(c.args).join('\n').matchAll(/-t nat -N (\S+)/g)) {
        t.match(UNINSTALL, new RegExp(`-t nat -D PREROUTING -j ${m[1]}\\b`), `${file} ${String(c.name)}: the PREROUTING jump to ${m[1]} is deleted`);
        t.match(UNINSTALL, new RegExp(`-t nat -X ${m[1]}\\b`), `${file} ${String(c.name)}: chain ${m[1]} is deleted`);
      }
    }
  }
  t.match(UNINSTALL, /for ipt in iptables-nft iptables-legacy/, 'from iptables-nft and iptables-legacy');
});
