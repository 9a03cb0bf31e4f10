/**
 * The cluster state the bench hands to `l7guard serve -f DIR`: the Star Wars app (Service + two
 * deathstar Pods + tiefighter + xwing) with Pod IPs on loopback, and the real
 * `sw_l3_l4_l7_policy.yaml` (only its port rewritten to the pods' port, so no root is needed).
 *
 * Identities come from source addresses. tiefighter's Pod IP is 127.0.0.1 — the address any
 * loopback client uses when it binds nothing — so autocannon or curl run by hand land as tiefighter
 * too; xwing gets its own address, bound by the load generator (`localAddress`).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** Addresses of one bench run: a random 127.x.y.0/24 so parallel runs (and tests) do not collide. */
export function addressPlan(podPort) {
  const o2 = 200 + Math.floor(Math.random() * 50);
  const o3 = 1 + Math.floor(Math.random() * 250);
  const net = `127.${o2}.${o3}`;
  return {
    tiefighter: '127.0.0.1',
    xwing: `${net}.3`,
    deathstar: [`${net}.11`, `${net}.12`],
    clusterIP: `${net}.10`,
    /** Each target listens on its own address, same port. */
    listen: (i) => `${net}.${21 + i}`,
    podPort,
    authority: 'deathstar.default.svc.cluster.local',
  };
}

function pod(name, ip, labels, port) {
  return `---
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
    - containerPort: ${port}
status:
  podIP: ${ip}
  podIPs:
  - ip: ${ip}
`;
}

export function starWarsClusterYaml(a) {
  const ds = { org: 'empire', class: 'deathstar', 'app.kubernetes.io/name': 'deathstar' };
  return [
    `---
apiVersion: v1
kind: Service
metadata:
  name: deathstar
  namespace: default
spec:
  type: ClusterIP
  clusterIP: ${a.clusterIP}
  ports:
  - port: 80
    targetPort: ${a.podPort}
  selector:
    org: empire
    class: deathstar
`,
    pod('deathstar-8c4c77fb7-b9qmw', a.deathstar[0], ds, a.podPort),
    pod('deathstar-8c4c77fb7-vhj8x', a.deathstar[1], ds, a.podPort),
    pod('tiefighter', a.tiefighter, { org: 'empire', class: 'tiefighter' }, a.podPort),
    pod('xwing', a.xwing, { org: 'alliance', class: 'xwing' }, a.podPort),
  ].join('');
}

/** The demo's L7 policy, verbatim except `port: "80"` -> the pods' port. */
export function starWarsPolicyYaml(a) {
  const text = readFileSync(join(repoRoot, 'demo', 'manifests', 'sw_l3_l4_l7_policy.yaml'), 'utf8');
  const out = text.replace(/port: "80"/g, `port: "${a.podPort}"`);
  if (out === text && a.podPort !== 80) throw new Error('sw_l3_l4_l7_policy.yaml no longer has `port: "80"`');
  return out;
}

/**
 * A big policy on top of the demo's: `identities` client pods (each its own identity, Pod IPs in
 * 10.0.0.0/8 — they never send traffic, they only make the tables big) and one CNP per client with
 * `rulesPer` ingress rules to deathstar, each with its own HTTP rule. 1,000 × 10 = 10,000 rules.
 */
export function bigPolicyYaml(a, identities = 1000, rulesPer = 10) {
  const docs = [];
  for (let i = 0; i < identities; i++) {
    const ip = `10.77.${i >> 8}.${i & 255}`;
    docs.push(pod(`client-${i}`, ip, { app: `client-${i}`, tier: `t${i % 7}` }, a.podPort));
    const rules = [];
    for (let k = 0; k < rulesPer; k++) {
      rules.push(`  - fromEndpoints:
    - matchLabels:
        app: client-${i}
    toPorts:
    - ports:
      - port: "${a.podPort}"
        protocol: TCP
      rules:
        http:
        - method: "${k % 2 === 0 ? 'GET' : 'POST'}"
          path: "/v1/client-${i}/r${k}(/.*)?"
`);
    }
    docs.push(`---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: client-${i}
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      org: empire
      class: deathstar
  ingress:
${rules.join('')}`);
  }
  return docs.join('');
}

/** A fresh folder for `serve -f`: cluster, demo policy and, for the big scenario, the big policy. */
export function clusterDir(a, { big = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'l7guard-bench-'));
  writeFileSync(join(dir, '00-cluster.yaml'), starWarsClusterYaml(a));
  writeFileSync(join(dir, '10-sw_l3_l4_l7_policy.yaml'), starWarsPolicyYaml(a));
  if (big) writeFileSync(join(dir, '20-big-policy.yaml'), bigPolicyYaml(a));
  return dir;
}
