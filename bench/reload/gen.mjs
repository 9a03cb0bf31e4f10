// A synthetic cluster for the reload benchmarks: `identities` pods with distinct label sets (one
// security identity each) and `rules` ingress rules spread over `identities / 1` CNPs, each rule
// naming a peer identity, a port and one HTTP rule.
export function bigPolicy({ identities = 1000, rules = 10_000 } = {}) {
  const docs = [];
  for (let i = 0; i < identities; i++) {
    const ip = `10.${(i >> 8) & 255}.${i & 255}.${1 + ((i >> 16) & 255)}`;
    docs.push(`apiVersion: v1
kind: Pod
metadata: {name: app-${i}, namespace: default, labels: {app: app-${i}, tier: t${i % 7}}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}
status: {podIP: ${ip}, podIPs: [{ip: ${ip}}]}`);
  }
  const perPolicy = Math.ceil(rules / identities);
  let made = 0;
  for (let i = 0; i < identities && made < rules; i++) {
    const ingress = [];
    for (let k = 0; k < perPolicy && made < rules; k++, made++) {
      ingress.push(`  - fromEndpoints: [{matchLabels: {app: app-${(i + k + 1) % identities}}}]
    toPorts:
    - ports: [{port: "${8080 + k}", protocol: TCP}]
      rules:
        http: [{method: GET, path: "/api/${k}/.*"}]`);
    }
    docs.push(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p-${i}, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: app-${i}}}
  ingress:
${ingress.join('\n')}`);
  }
  return docs.join('\n---\n') + '\n';
}
