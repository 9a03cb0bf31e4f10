/**
 * deploy/*.yaml, checked offline: structurally valid Kubernetes objects, every l7guard container's
 * args accepted by the real `serve` flag table, probes and container ports matching those args, the
 * init containers' iptables rules targeting exactly the ports l7guard listens on, and the mounted
 * policy loading (with the sidecar's pod manifest produced by running its init script).
 */
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { SERVE_OPTIONS } from '../../cli/serve.js';
import { checkInterception, parseInterception, type InterceptionOptions } from '../../proxy/listen/original-destination.js';
import { parseHostPort } from '../../proxy/admin/server.js';
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
};
const byKind = (kind: string) => docs.filter((d) => d.o.kind === kind);
const meta = (o: Obj) => o.metadata as Obj;

t.ok(files.includes('daemonset.yaml') && files.includes('sidecar-deathstar.yaml') && files.includes('policy-configmap.yaml'), 'deploy/ holds the three manifests');

t.test('every object is a structurally valid Kubernetes object', async (t) => {
  for (const { file, o } of docs) {
    const where = `${file} ${String(o.kind)}/${String(isObj(o.metadata) ? o.metadata.name : '?')}`;
    const k = KINDS[String(o.kind)];
    t.ok(k, `${where}: known kind`);
    if (k === undefined) continue;
    t.equal(o.apiVersion, k.apiVersion, `${where}: apiVersion`);
    t.ok(isObj(o.metadata) && DNS_SUBDOMAIN.test(String(meta(o).name)), `${where}: metadata.name`);
    if (k.namespaced) t.ok(DNS_LABEL.test(String(meta(o).namespace)), `${where}: metadata.namespace`);
    if (o.kind === 'ConfigMap') t.ok(Object.values(o.data as Obj).every((v) => typeof v === 'string'), `${where}: data values are strings`);
    if (o.kind === 'DaemonSet' || o.kind === 'Deployment') checkWorkload(t, where, o);
  }
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
      t.equal(m.subPath, undefined, `${where} ${String(c.name)}: no subPath (ConfigMap updates must reach the folder)`);
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
    t.ok(byKind('ConfigMap').some((d) => meta(d.o).name === name && meta(d.o).namespace === meta(o).namespace),
      `${where}: ConfigMap ${String(name)} is in deploy/, same namespace`);
  }
  if (o.kind === 'DaemonSet') {
    t.equal(pod.hostNetwork, true, `${where}: hostNetwork`);
    t.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet', `${where}: dnsPolicy`);
    t.ok(objs(pod.tolerations).some((x) => x.operator === 'Exists'), `${where}: tolerates every taint`);
    t.equal((spec.updateStrategy as Obj).type, 'RollingUpdate', `${where}: RollingUpdate`);
  }
}

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

t.test('l7guard containers', async (t) => {
  t.equal(guards.length, 2, 'one in the DaemonSet, one sidecar');
  t.same(guards.map((g) => g.interception.mode.kind).sort(), ['node', 'sidecar'], 'both modes are shown');
  for (const g of guards) {
    t.equal(g.sidecar, g.interception.mode.kind === 'sidecar', `${g.where}: --mode sidecar iff a native sidecar (init container, restartPolicy Always)`);
    const admin = parseHostPort(g.values.admin ?? '127.0.0.1:9901');
    for (const [probe, path] of [['readinessProbe', '/ready'], ['livenessProbe', '/healthz']] as const) {
      const get = (g.container[probe] as Obj | undefined)?.httpGet as Obj | undefined;
      t.equal(get?.path, path, `${g.where}: ${probe} GET ${path}`);
      t.equal(get?.port, admin.port, `${g.where}: ${probe} on the --admin port`);
      // The kubelet probes the pod IP (or, on the host network, the node): a loopback admin needs both.
      if (admin.host.startsWith('127.')) {
        t.equal(g.pod.hostNetwork, true, `${g.where}: loopback --admin only works for probes on the host network`);
        t.equal(get?.host, admin.host, `${g.where}: ${probe} host is the --admin address`);
      }
    }
    const listenPorts = [
      ...(g.values.listen ?? (g.interception.redirects.length > 0 ? [] : ['0.0.0.0:80'])).map((l) => parseHostPort(l).port),
      ...g.interception.redirects.map((r) => r.listen.port),
    ];
    const declared = objs(g.container.ports).map((p) => Number(p.containerPort)).sort();
    t.same(declared, [...listenPorts, admin.port].sort(), `${g.where}: containerPorts are exactly the listeners and the admin port`);
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

function configMapDir(name: string, namespace: string): string {
  const cm = byKind('ConfigMap').find((d) => meta(d.o).name === name && meta(d.o).namespace === namespace)!;
  const dir = mkdtempSync(join(tmpdir(), 'l7guard-deploy-'));
  for (const [k, v] of Object.entries(cm.o.data as Obj)) writeFileSync(join(dir, k), String(v));
  return dir;
}

t.test('the mounted policy loads and satisfies the interception flags', async (t) => {
  const demoRule = parse(readFileSync(join(repoRoot, 'demo', 'manifests', 'sw_l3_l4_l7_policy.yaml'), 'utf8')) as Obj;
  for (const g of guards) {
    const pod = g.pod;
    const cmName = String((objs(pod.volumes).find((v) => isObj(v.configMap))!.configMap as Obj).name);
    const paths = [configMapDir(cmName, String(meta(g.workload).namespace))];
    const cm = byKind('ConfigMap').find((d) => meta(d.o).name === cmName)!;
    const rule = parse(String((cm.o.data as Obj)['policy.yaml'])) as Obj;
    t.same(rule.spec, demoRule.spec, `${g.where}: the ConfigMap's rule1 is the seed's L7 policy`);
    if (g.interception.mode.kind === 'sidecar') paths.push(runPodManifestInit(t, g));
    const state = await loadPolicyState(paths, { clusterName: 'default', nodeIPs: [], allowLocalhost: 'always', previous: undefined, revision: 1 });
    t.doesNotThrow(() => checkInterception(state, g.interception), `${g.where}: --pod / --redirect match the loaded state`);
    const ds = state.endpoints.find((e) => e.podLabels['class'] === 'deathstar');
    t.ok(ds?.identity.labels.includes('k8s:org=empire'), `${g.where}: the protected pod has its labels`);
  }
});

/** Runs the sidecar's `pod-manifest` script with its mounts in a temp folder; returns the folder it wrote. */
function runPodManifestInit(t: Test, g: Guard): string {
  const c = objs(g.pod.initContainers).find((x) => x.name === 'pod-manifest')!;
  let script = String(arr(c.args)[0]);
  const root = mkdtempSync(join(tmpdir(), 'l7guard-podinfo-'));
  let out = '';
  for (const m of objs(c.volumeMounts)) {
    const local = join(root, String(m.name));
    mkdirSync(local);
    script = script.split(String(m.mountPath)).join(local);
    if (m.name === 'podinfo') {
      const labels = ((g.workload.spec as Obj).template as Obj).metadata as Obj;
      // The downward API's format: key="value", one per line, sorted, no final newline.
      writeFileSync(join(local, 'labels'), Object.entries(labels.labels as Obj).sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}=${JSON.stringify(String(v))}`).join('\n'));
    } else {
      out = local;
    }
  }
  const env = Object.fromEntries(objs(c.env).map((e) => [String(e.name), SAMPLE[String(((e.valueFrom as Obj).fieldRef as Obj).fieldPath)]!]));
  const r = spawnSync('/bin/sh', ['-c', script], { env: { ...process.env, ...env }, encoding: 'utf8' });
  t.equal(r.status, 0, `${g.where}: pod-manifest script runs (${r.stderr})`);
  return out;
}
