import { mkdtempSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './serve.js';

export interface StarWarsIPs {
  readonly tiefighter: string;
  readonly xwing: string;
  readonly deathstar: readonly [string, string];
  readonly clusterIP: string;
}

/**
 * The Star Wars cluster as `kubectl get -o yaml` would show it after the Deployment rolled out:
 * the real http-sw-app.yaml's objects with Pod IPs from the given loopback block.
 */
export function starWarsCluster(ips: StarWarsIPs, podPort = 80): string {
  const pod = (name: string, ip: string, labels: Record<string, string>) => `---
apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: default
  labels:
${Object.entries(labels).map(([k, v]) => `    ${k}: ${v}`).join('\n')}
spec:
  containers:
  - name: c
    image: x
    ports:
    - containerPort: ${podPort}
status:
  podIP: ${ip}
  podIPs:
  - ip: ${ip}
`;
  const ds = { org: 'empire', class: 'deathstar', 'app.kubernetes.io/name': 'deathstar', 'pod-template-hash': '8c4c77fb7' };
  return [
    `---
apiVersion: v1
kind: Service
metadata:
  name: deathstar
  namespace: default
spec:
  type: ClusterIP
  clusterIP: ${ips.clusterIP}
  ports:
  - port: 80
    targetPort: ${podPort}
  selector:
    org: empire
    class: deathstar
`,
    pod('deathstar-8c4c77fb7-b9qmw', ips.deathstar[0], ds),
    pod('deathstar-8c4c77fb7-vhj8x', ips.deathstar[1], ds),
    pod('tiefighter', ips.tiefighter, { org: 'empire', class: 'tiefighter', 'app.kubernetes.io/name': 'tiefighter' }),
    pod('xwing', ips.xwing, { org: 'alliance', class: 'xwing', 'app.kubernetes.io/name': 'xwing' }),
  ].join('');
}

/** A fresh folder holding cluster.yaml and, optionally, copies of shared fixture manifests. */
export function clusterDir(clusterYaml: string, extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'l7guard-test-'));
  writeFileSync(join(dir, '00-cluster.yaml'), clusterYaml);
  for (const [name, content] of Object.entries(extra)) writeFileSync(join(dir, name), content);
  return dir;
}

/** YAML single-quoted scalar: no escapes, so RE2 patterns with backslashes go through unchanged. */
const sq = (s: string) => `'${s.replace(/'/g, "''")}'`;

/**
 * A CNP for the Star Wars deathstar on `port`: empire ships allowed at L3/L4, restricted to `http`
 * rules when given (none: L7 wildcard, everything allowed).
 */
export function deathstarPolicy(port: number, http?: readonly { method: string; path: string }[], name = 'rule1'): string {
  const rules = http === undefined ? '' : `
      rules:
        http:
${http.map((r) => `        - method: ${sq(r.method)}\n          path: ${sq(r.path)}`).join('\n')}`;
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: ${name}
  namespace: default
spec:
  endpointSelector:
    matchLabels: {org: empire, class: deathstar}
  ingress:
  - fromEndpoints:
    - matchLabels: {org: empire}
    toPorts:
    - ports:
      - port: "${port}"
        protocol: TCP${rules}
`;
}

export function fixture(name: string): string {
  return join(repoRoot, 'test', 'fixtures', 'manifests', name);
}

export function copyFixture(name: string, dir: string, as = name): string {
  const to = join(dir, as);
  copyFileSync(fixture(name), to);
  return to;
}
