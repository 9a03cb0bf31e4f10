/**
 * deploy/*.yaml (and deploy/uninstall.sh), checked offline: structurally valid Kubernetes objects;
 * deploy/rbac.yaml's ClusterRole granting get/list/watch on exactly what the Kubernetes source
 * watches; every l7guard container's args accepted by the real `serve` flag table, taking the
 * cluster from the API server (`--kubernetes`, no `-f`) as a ServiceAccount of deploy/ bound to that
 * ClusterRole; probes on the `--admin-readonly` port, the `--admin` unix socket's folder a declared
 * volume; container ports matching the listeners; the DaemonSet managing its own interception
 * (`--manage-iptables`, its chain cleaned up by an init container with the same iptables binaries
 * first, time to remove it on SIGTERM); the sidecar's init container iptables rules targeting exactly
 * the ports l7guard listens on; no container running as root but the iptables ones, and those with
 * NET_ADMIN and NET_RAW only; the interception flags satisfiable by the Star Wars cluster; no address
 * written anywhere in deploy/; uninstall.sh removing what deploy/ adds.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { parseArgs } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { SERVE_OPTIONS } from '../../cli/serve.js';
import { parseDuration } from '../../cli/duration.js';
import { DEFAULT_CHAIN } from '../../proxy/interception/iptables.js';
import { planTargets } from '../../proxy/interception/plan.js';
import { PortPool } from '../../proxy/interception/ports.js';
import { POLICIES, starWarsPolicy, starWarsYaml, RECORDED_ADDRESSES, RECORDED_NAMING } from '../../fixtures/star-wars.js';
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
const SCRIPTS = readdirSync(DEPLOY).filter((f) => f.endsWith('.sh')).sort();

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
  /** The args as written, before the kubelet's `$(VAR)` expansion. */
  readonly raw: string[];
  readonly values: ReturnType<typeof parseServe>;
  /** `--manage-iptables`: l7guard writes its own rules, no init container does. */
  readonly managed: boolean;
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
      guards.push({
        where: `${file} ${String(c.name)}`, workload: o, pod, container: c, sidecar: sidecar && c.restartPolicy === 'Always',
        raw: arr(c.args).map(String), values, managed: values['manage-iptables'] === true, interception,
      });
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
    // As serve defaults --listen: none when --redirect or --manage-iptables gives the listeners.
    // The managed redirect listeners (--redirect-ports) come and go: on the host network they need no
    // containerPort.
    const listenPorts = [
      ...(g.values.listen ?? (g.interception.redirects.length > 0 || g.managed ? [] : ['0.0.0.0:80'])).map((l) => parseHostPort(l).port),
      ...g.interception.redirects.map((r) => r.listen.port),
    ];
    const declared = objs(g.container.ports).map((p) => Number(p.containerPort)).sort();
    t.same(declared, [...listenPorts, ro.port].sort(), `${g.where}: containerPorts are exactly the fixed listeners and the read-only admin port`);
    if (g.managed) {
      t.equal(g.pod.hostNetwork, true, `${g.where}: --manage-iptables on the host network (the redirect listeners' ports are the node's)`);
      const pool = PortPool.parse(g.values['redirect-ports'] ?? '15000-15999');
      for (const port of new Set([...declared, ro.port])) t.ok(port < pool.first || port > pool.last, `${g.where}: port ${port} is outside --redirect-ports`);
      continue;
    }

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

/** The lines of the container's shell script (`command: [/bin/sh, -c]`, the script in args). */
const scriptLines = (c: Obj): string[] => arr(c.args).map(String).join('\n').split('\n').map((l) => l.trim());
/** Every `l7guard iptables cleanup [flags]` line of the container's script, its flags parsed. */
function cleanupRuns(c: Obj): { chain: string; backend: string | undefined }[] {
  const out: { chain: string; backend: string | undefined }[] = [];
  for (const line of scriptLines(c)) {
    const m = /^(?:exec\s+)?l7guard iptables cleanup(?:\s+(.*))?$/.exec(line);
    if (m === null) continue;
    const args = (m[1] ?? '').split(/\s+/).filter((a) => a !== '').map((a) => a.replace(/^"(.*)"$/, '$1'));
    const { values } = parseArgs({ args, options: { chain: { type: 'string' }, backend: { type: 'string' } }, strict: true, allowPositionals: false });
    out.push({ chain: values.chain ?? DEFAULT_CHAIN, backend: values.backend });
  }
  return out;
}
const envValue = (c: Obj, name: string): unknown => objs(c.env).find((e) => e.name === name)?.value;

t.test('the DaemonSet manages its own interception', async (t) => {
  const managed = guards.filter((g) => g.managed);
  t.same(managed.map((g) => g.workload.kind), ['DaemonSet'], 'the DaemonSet\'s l7guard, and it alone, runs --manage-iptables');
  for (const g of managed) {
    // serve --kubernetes --manage-iptables --node-name $(NODE_NAME), nothing hand-written.
    t.equal(g.values.kubernetes, true, `${g.where}: --kubernetes`);
    const at = g.raw.indexOf('--node-name');
    t.equal(g.raw[at + 1], '$(NODE_NAME)', `${g.where}: --node-name $(NODE_NAME)`);
    const nodeName = objs(g.container.env).find((e) => e.name === 'NODE_NAME');
    t.equal((((nodeName?.valueFrom as Obj | undefined)?.fieldRef as Obj | undefined)?.fieldPath), 'spec.nodeName', `${g.where}: NODE_NAME is the pod's spec.nodeName`);
    t.ok(g.values.intercept === undefined || g.values.intercept === 'pod', `${g.where}: --intercept pod (enforced at the destination's node, as Cilium)`);
    t.equal(g.values.redirect, undefined, `${g.where}: no --redirect (l7guard opens the redirect listeners itself)`);
    t.equal(g.values.listen, undefined, `${g.where}: no --listen`);
    t.ok(g.values.mode === undefined || g.values.mode === 'node', `${g.where}: node mode`);
    t.ok(g.values.workers === undefined || g.values.workers === '1', `${g.where}: one process (--manage-iptables needs --workers 1)`);
    t.doesNotThrow(() => PortPool.parse(g.values['redirect-ports'] ?? '15000-15999'), `${g.where}: --redirect-ports is a valid range`);
    const chain = g.values['iptables-chain'] ?? DEFAULT_CHAIN;

    // On SIGTERM the chain goes first, then the drain: both must fit before SIGKILL.
    const drainMs = parseDuration(g.values['drain-timeout'] ?? '25s');
    const grace = Number(g.pod.terminationGracePeriodSeconds ?? 30) * 1000;
    t.ok(drainMs !== undefined && grace - drainMs >= 15_000, `${g.where}: terminationGracePeriodSeconds (${grace / 1000}s) leaves >= 15s beyond --drain-timeout (${String(drainMs)} ms) to remove the chain`);

    // An init container removes what a crashed instance left, with the binaries l7guard will use.
    const path = envValue(g.container, 'PATH');
    const cleaners = objs(g.pod.initContainers).filter((c) => cleanupRuns(c).some((r) => r.chain === chain));
    t.equal(cleaners.length, 1, `${g.where}: one init container runs \`l7guard iptables cleanup\` for chain ${chain} (--iptables-chain)`);
    const cleaner = cleaners[0];
    if (cleaner === undefined) continue;
    const where = `${g.where}, init container ${String(cleaner.name)}`;
    t.equal(cleaner.image, g.container.image, `${where}: the same image`);
    t.ok(cleanupRuns(cleaner).some((r) => r.chain === 'L7GUARD_REDIRECT'), `${where}: also removes the previous version's L7GUARD_REDIRECT chain (its REDIRECT to 15080 would hit a managed port)`);
    t.match(String(arr(cleaner.args)[0] ?? ''), /^set -eu\n/, `${where}: a failure stops the pod (set -eu)`);
    t.ok(cleanupRuns(cleaner).every((r) => r.backend === undefined), `${where}: no --backend: iptables-save/-restore from PATH, as l7guard runs them`);
    t.equal(envValue(cleaner, 'PATH'), path, `${where}: the PATH of the l7guard container, so both run the same iptables-save/-restore`);
    // PATH's first folder: a volume the init container fills with links to the chosen backend.
    const dir = String(path ?? '').split(':')[0]!;
    const initMount = objs(cleaner.volumeMounts).find((m) => m.mountPath === dir);
    const guardMount = objs(g.container.volumeMounts).find((m) => m.mountPath === dir);
    const volume = objs(g.pod.volumes).find((v) => v.name === initMount?.name);
    t.ok(initMount !== undefined && initMount.readOnly !== true && guardMount?.name === initMount.name, `${where}: PATH starts with ${dir}, a volume it writes and l7guard mounts`);
    t.equal(guardMount?.readOnly, true, `${g.where}: ... read-only`);
    t.ok(volume !== undefined && isObj(volume.emptyDir), `${where}: ... an emptyDir`);
    const script = arr(cleaner.args).map(String).join('\n');
    t.match(script, 'for tool in save restore', `${where}: links iptables-save and iptables-restore`);
    t.ok(script.includes(`"${dir}/iptables-$tool"`), `${where}: ... into ${dir}`);
    t.match(script, /ln -sf "\$\(command -v "iptables-\$backend-\$tool"\)"/, `${where}: ... to iptables-$backend-save/-restore`);
    const lines = scriptLines(cleaner);
    const link = lines.findIndex((l) => l.startsWith('ln -sf'));
    const firstCleanup = lines.findIndex((l) => /^(exec\s+)?l7guard iptables cleanup/.test(l));
    t.ok(link >= 0 && link < firstCleanup, `${where}: links before it cleans up`);
    t.equal(envValue(cleaner, 'L7GUARD_IPTABLES_BACKEND'), 'auto', `${where}: L7GUARD_IPTABLES_BACKEND=auto (kube-proxy's backend) by default`);
    t.match(script, /case "\$backend" in nft\|legacy\)/, `${where}: L7GUARD_IPTABLES_BACKEND is checked`);

    // iptables-legacy's lock is the node's, as kube-proxy's.
    for (const c of [cleaner, g.container]) {
      const m = objs(c.volumeMounts).find((x) => x.mountPath === '/run/xtables.lock');
      const v = objs(g.pod.volumes).find((x) => x.name === m?.name);
      t.equal((v?.hostPath as Obj | undefined)?.path, '/run/xtables.lock', `${g.where}: ${String(c.name)} mounts the node's /run/xtables.lock`);
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
/** A shell script that runs iptables (or `l7guard iptables`), or l7guard with `--manage-iptables`. */
const runsIptables = (c: Obj) => /\biptables\b/.test(arr(c.args).join('\n')) || (arr(c.command).includes('l7guard') && arr(c.args).includes('--manage-iptables'));
/** The upstream app's containers (demo/manifests/http-sw-app.yaml), kept as Cilium ships them. */
const APP_CONTAINERS = parseAllDocuments(readFileSync(join(repoRoot, 'demo', 'manifests', 'http-sw-app.yaml'), 'utf8'))
  .map((d) => d.toJS() as Obj | null).filter((o): o is Obj => o?.kind === 'Deployment')
  .flatMap((o) => objs((((o.spec as Obj).template as Obj).spec as Obj).containers));

t.test('no container runs as root but those running iptables, with NET_ADMIN and NET_RAW only', async (t) => {
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
        const init = arr(pod.initContainers).includes(c);
        t.ok(init || o.kind === 'DaemonSet', `${where}: iptables in an init container, or in the DaemonSet's l7guard (--manage-iptables)`);
        t.equal(c.image, IMAGE, `${where}: the l7guard image (it has iptables)`);
        // Added capabilities are not effective for a non-root process (Kubernetes sets no ambient ones).
        t.equal(sc.runAsUser, 0, `${where}: runs iptables as root (the image's user is node)`);
        t.same([...arr(caps.add)].sort(), ['NET_ADMIN', 'NET_RAW'], `${where}: with NET_ADMIN and NET_RAW only`);
        if (init) t.equal(c.restartPolicy, undefined, `${where}: runs once`);
        if (o.kind === 'DaemonSet') {
          t.equal(sc.allowPrivilegeEscalation, false, `${where}: no privilege escalation`);
          t.equal(sc.readOnlyRootFilesystem, true, `${where}: read-only root filesystem`);
        }
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
  const clusterIP = RECORDED_ADDRESSES.clusterIP;
  const dir = mkdtempSync(join(tmpdir(), 'l7guard-deploy-'));
  // The sidecar's $(POD_NAME) sample is the first replica's name, its status.podIP the first replica's IP.
  // The pods name no node: each counts as this node's.
  const deathstar = [SAMPLE['status.podIP']!, '10.244.4.2'];
  writeFileSync(join(dir, 'cluster.yaml'), starWarsYaml({
    addresses: { deathstar, tiefighter: '10.244.1.2', xwing: '10.244.2.2', clusterIP },
    naming: RECORDED_NAMING, namespaceObject: true,
  }));
  writeFileSync(join(dir, 'policy.yaml'), starWarsPolicy(POLICIES.l7));
  const state = await loadPolicyState([dir], { clusterName: 'default', nodeIPs: [], allowLocalhost: 'always', previous: undefined, revision: 1, nodeName: SAMPLE['spec.nodeName'] });
  for (const g of guards) {
    t.doesNotThrow(() => checkInterception(state, g.interception), `${g.where}: --pod / --redirect match the cluster`);
    if (!g.managed) continue;
    // What --manage-iptables would redirect: the policy's deathstar pods and their Service, not the ships.
    const targets = planTargets(state, g.values.intercept === 'service' ? 'service' : 'pod').map((x) => `${x.ip}:${x.port}`).sort();
    t.same(targets, [...deathstar.map((ip) => `${ip}:80`), `${clusterIP}:80`].sort(), `${g.where}: redirects the deathstar pods and clusterIP, port 80`);
  }
  const ds = state.endpoints.find((e) => e.podLabels['class'] === 'deathstar');
  t.ok(ds?.identity.labels.includes('k8s:org=empire'), 'the protected pods have their labels');
});

t.test('no address is written in deploy/: every clusterIP and pod IP comes from the API server', async (t) => {
  // An IPv4 literal (a CIDR's too); 127.0.0.1 and 0.0.0.0 are listening addresses, not a cluster's.
  const IPV4 = /(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?!\.?\d)/g;
  const checked = [...files, ...SCRIPTS];
  t.ok(checked.includes('uninstall.sh') && checked.includes('daemonset.yaml'), 'deploy/*.yaml and deploy/*.sh are checked');
  for (const file of checked) {
    const text = readFileSync(join(DEPLOY, file), 'utf8');
    const found = [...text.matchAll(IPV4)].map((m) => m[1]!).filter((ip) => ip !== '127.0.0.1' && ip !== '0.0.0.0');
    t.same(found, [], `deploy/${file}: no IPv4 address but 127.0.0.1 and 0.0.0.0`);
  }
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
  // On every node, what a crashed instance may have left, from both iptables backends: the chain of
  // every --manage-iptables l7guard, and any chain a host-network init container creates (the
  // previous version's L7GUARD_REDIRECT among them).
  t.match(UNINSTALL, /\n\s*for backend in nft legacy; do\n/, 'on iptables-nft and iptables-legacy');
  t.match(UNINSTALL, /\n\s*if out=\$\(l7guard iptables cleanup --backend "\$backend" --chain "\$chain" 2>&1\); then\n/, 'runs l7guard iptables cleanup for each chain and backend');
  const chains = (/\n\s*for chain in ([^;\n]+); do\n/.exec(UNINSTALL)?.[1] ?? '').split(/\s+/);
  const wanted = new Set(['L7GUARD_REDIRECT']);
  for (const g of guards.filter((x) => x.managed && x.pod.hostNetwork === true)) wanted.add(g.values['iptables-chain'] ?? DEFAULT_CHAIN);
  for (const { o } of byKind('DaemonSet')) {
    const pod = ((o.spec as Obj).template as Obj).spec as Obj;
    for (const c of objs(pod.initContainers).filter(runsIptables)) {
      for (const m of arr(c.args).join('\n').matchAll(/-t nat -N (\S+)/g)) wanted.add(m[1]!);
    }
  }
  for (const chain of wanted) t.ok(chains.includes(chain), `chain ${chain} is cleaned up on every node`);
  t.match(UNINSTALL, /l7guard iptables show --backend "\$backend" --chain "\$chain".*\| grep -q '\^# no chain'/, 'and checked gone');
});
