/**
 * Decision semantics: docs/semantics.md (selection through the decision procedure, the upstream tests
 * cilium_network_policy_test.cc and pkg/policy/rule_test.go) and the Star Wars demo
 * (docs/semantics.md#the-star-wars-demo).
 * Each row cites its source.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { ALLOW } from '../../policy/compile.js';
import type { PolicyState, Source } from '../../policy/model.js';
import { build, CLUSTER, MANIFESTS, pod, req, verdict } from './helpers.js';

const cluster = readFileSync(CLUSTER, 'utf8');
const manifest = (f: string) => readFileSync(MANIFESTS + f, 'utf8');
const L34 = manifest('examples__minikube__sw_l3_l4_policy.yaml');
const L7 = manifest('examples__minikube__sw_l3_l4_l7_policy.yaml');
const DENY = manifest('examples__minikube__sw_deny_policy.yaml');

const from = (s: PolicyState, name: string): Source => {
  const e = s.endpoints.find((x) => x.name === name);
  if (!e) throw new Error(`no endpoint ${name}`);
  return s.identify(e.ips[0] as string);
};

t.test('Star Wars demo', async (t) => {
  const DS = 'deathstar-8c4c77fb7-b9qmw';
  const cases: { name: string; policies: string[]; src: string; port?: number; r?: ReturnType<typeof req>; want: string }[] = [
    // docs/semantics.md#default-deny: no policy selects the deathstar -> everything allowed ("before policy" state)
    { name: 'no policy: xwing lands', policies: [], src: 'xwing', want: 'allow' },
    // sw_l3_l4_policy.yaml rule1: empire on TCP 80, no L7
    { name: 'L3/L4: tiefighter allowed', policies: [L34], src: 'tiefighter', want: 'allow' },
    { name: 'L3/L4: xwing dropped POLICY_DENIED', policies: [L34], src: 'xwing', want: 'drop:POLICY_DENIED:INGRESS' },
    { name: 'L3/L4: tiefighter on port 8080 dropped', policies: [L34], src: 'tiefighter', port: 8080, want: 'drop:POLICY_DENIED:INGRESS' },
    // sw_l3_l4_l7_policy.yaml rule1 replaces the L3/L4 rule1 (same name): POST /v1/request-landing only
    { name: 'L7: landing allowed', policies: [L34, L7], src: 'tiefighter', r: req('POST', '/v1/request-landing'), want: '200' },
    { name: 'L7: exhaust-port 403', policies: [L34, L7], src: 'tiefighter', r: req('PUT', '/v1/exhaust-port'), want: '403' },
    { name: 'L7: the query string is part of the matched path', policies: [L34, L7], src: 'tiefighter', r: req('POST', '/v1/request-landing?x=1'), want: '403' },
    { name: 'L7: a lower-case method does not match POST', policies: [L34, L7], src: 'tiefighter', r: req('post', '/v1/request-landing'), want: '403' },
    { name: 'L7: a trailing slash does not match (full match)', policies: [L34, L7], src: 'tiefighter', r: req('POST', '/v1/request-landing/'), want: '403' },
    { name: 'L7: xwing still dropped', policies: [L34, L7], src: 'xwing', want: 'drop:POLICY_DENIED:INGRESS' },
    // sw_deny_policy.yaml: ingress: [{}] turns on default deny for every empire pod, allows nothing
    { name: 'deny policy alone: tiefighter dropped', policies: [DENY], src: 'tiefighter', want: 'drop:POLICY_DENIED:INGRESS' },
    { name: 'deny policy + rule1 L7: landing allowed', policies: [DENY, L7], src: 'tiefighter', r: req('POST', '/v1/request-landing'), want: '200' },
    // host (kubelet) always allowed: allow-localhost=always (docs/semantics.md#default-deny)
  ];
  for (const c of cases) {
    const s = build([cluster, ...c.policies]);
    const d = s.decide(from(s, c.src), pod(s, DS), c.port ?? 80);
    t.equal(verdict(d, c.r), c.want, c.name);
  }
  const s = build([cluster, L7]);
  t.equal(s.objects.filter((o) => o.kind === 'CiliumNetworkPolicy').length, 1, 'rule1 L7 replaced rule1 L3/L4 (same name)');
  // docs/semantics.md#default-deny: reserved:host allowed with allow-localhost=always, even with no rule for it; not with 'policy'
  t.equal(verdict(s.decide(s.identify('192.168.49.2'), pod(s, DS), 80)), 'allow', 'host allowed (always)');
  const sp = build([cluster, L7], { allowLocalhost: 'policy' });
  t.equal(verdict(sp.decide(sp.identify('192.168.49.2'), pod(sp, DS), 80)), 'drop:POLICY_DENIED:INGRESS', 'host dropped (policy)');
  // Decisions are precomputed: the same object comes back for the same identity and interval.
  t.equal(s.decide(from(s, 'tiefighter'), pod(s, DS), 80), s.decide(from(s, 'tiefighter'), pod(s, 'deathstar-8c4c77fb7-vhj8x'), 80), 'shared decision per destination identity');
});

const POD = (name: string, ns: string, labels: Record<string, string>, ip: string, sa = 'default') => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}, labels: ${JSON.stringify(labels)}}
spec: {serviceAccountName: ${sa}, containers: [{name: c, image: x}]}
status: {podIP: ${ip}}
`;
const NS = (name: string, labels: Record<string, string>) => `
apiVersion: v1
kind: Namespace
metadata: {name: ${name}, labels: ${JSON.stringify(labels)}}
`;
const WORLD = '203.0.113.7';
const base = [
  POD('server', 'default', { app: 'server' }, '10.0.0.1'),
  POD('a', 'default', { id: 'a' }, '10.0.0.2'),
  POD('b', 'default', { id: 'b' }, '10.0.0.3'),
  POD('other', 'ns2', { id: 'a' }, '10.0.0.4'),
  POD('sa-pod', 'default', { id: 'c' }, '10.0.0.5', 'luke'),
  NS('ns2', { team: 'blue' }),
].join('\n---\n');

function cnp(spec: string, name = 'p', kind = 'CiliumNetworkPolicy', ns = 'default'): string {
  return `apiVersion: cilium.io/v2\nkind: ${kind}\nmetadata:\n  name: ${name}\n${kind === 'CiliumNetworkPolicy' ? `  namespace: ${ns}\n` : ''}spec:\n${spec.replace(/^/gm, '  ')}`;
}

t.test('selection, peers, default deny, ports, rule union and deny precedence', async (t) => {
  const sel = 'endpointSelector: {matchLabels: {app: server}}\n';
  const rows: { name: string; policy: string[]; src: string; port?: number; r?: ReturnType<typeof req>; want: string }[] = [
    // docs/semantics.md#peer-selection: fromEndpoints ORed; CNP pins the peer namespace
    { name: 'fromEndpoints same ns', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{matchLabels: {id: a}}]}]')], src: 'a', want: 'allow' },
    { name: 'fromEndpoints other ns not selected (CNP pinning)', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{matchLabels: {id: a}}]}]')], src: 'other', want: 'drop:POLICY_DENIED:INGRESS' },
    { name: 'explicit k8s:io.kubernetes.pod.namespace', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{matchLabels: {id: a, k8s:io.kubernetes.pod.namespace: ns2}}]}]')], src: 'other', want: 'allow' },
    { name: 'fromEndpoints [{}] = same namespace, not world', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{}]}]')], src: WORLD, want: 'drop:POLICY_DENIED:INGRESS' },
    { name: 'fromEndpoints [{}] = same namespace pods', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{}]}]')], src: 'b', want: 'allow' },
    // docs/semantics.md#peer-selection: CCNP: namespace Exists instead of pinning
    { name: 'CCNP fromEndpoints any namespace', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{matchLabels: {id: a}}]}]', 'c', 'CiliumClusterwideNetworkPolicy')], src: 'other', want: 'allow' },
    { name: 'CCNP fromEndpoints [{}] excludes world', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{}]}]', 'c', 'CiliumClusterwideNetworkPolicy')], src: WORLD, want: 'drop:POLICY_DENIED:INGRESS' },
    { name: 'CCNP namespace labels honoured', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{matchLabels: {io.cilium.k8s.namespace.labels.team: blue}}]}]', 'c', 'CiliumClusterwideNetworkPolicy')], src: 'other', want: 'allow' },
    { name: 'CNP namespace labels ignored (pinned to own ns)', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{matchLabels: {io.cilium.k8s.namespace.labels.team: blue}}]}]')], src: 'other', want: 'drop:POLICY_DENIED:INGRESS' },
    // docs/semantics.md#which-endpoints-a-rule-selects: CNP endpointSelector only selects its own namespace
    { name: 'CNP in ns2 does not select default pods', policy: [cnp(sel + 'ingress: [{}]', 'p', 'CiliumNetworkPolicy', 'ns2')], src: 'a', want: 'allow' },
    // docs/semantics.md#peer-selection: matchExpressions; NotIn matches pods lacking the key
    { name: 'matchExpressions In', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{matchExpressions: [{key: id, operator: In, values: [a, x]}]}]}]')], src: 'a', want: 'allow' },
    { name: 'matchExpressions NotIn excludes', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{matchExpressions: [{key: id, operator: NotIn, values: [a]}]}]}]')], src: 'a', want: 'drop:POLICY_DENIED:INGRESS' },
    { name: 'matchExpressions DoesNotExist matches lacking key', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{matchExpressions: [{key: id, operator: DoesNotExist}]}]}]')], src: 'a', want: 'drop:POLICY_DENIED:INGRESS' },
    // serviceaccount-policy.yaml: io.cilium.k8s.policy.serviceaccount label
    { name: 'service account selector', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{matchLabels: {io.cilium.k8s.policy.serviceaccount: luke}}]}]')], src: 'sa-pod', want: 'allow' },
    // docs/semantics.md#peer-selection: entities
    { name: 'fromEntities world allows world', policy: [cnp(sel + 'ingress: [{fromEntities: [world]}]')], src: WORLD, want: 'allow' },
    { name: 'fromEntities world excludes pods', policy: [cnp(sel + 'ingress: [{fromEntities: [world]}]')], src: 'a', want: 'drop:POLICY_DENIED:INGRESS' },
    { name: 'fromEntities all allows world', policy: [cnp(sel + 'ingress: [{fromEntities: [all]}]')], src: WORLD, want: 'allow' },
    { name: 'fromEntities cluster allows pods of any ns', policy: [cnp(sel + 'ingress: [{fromEntities: [cluster]}]')], src: 'other', want: 'allow' },
    { name: 'fromEntities cluster allows host', policy: [cnp(sel + 'ingress: [{fromEntities: [cluster]}]')], src: '192.168.49.2', want: 'allow' },
    { name: 'fromEntities cluster excludes world', policy: [cnp(sel + 'ingress: [{fromEntities: [cluster]}]')], src: WORLD, want: 'drop:POLICY_DENIED:INGRESS' },
    { name: 'fromEntities none', policy: [cnp(sel + 'ingress: [{fromEntities: [none]}]')], src: 'a', want: 'drop:POLICY_DENIED:INGRESS' },
    { name: 'fromEntities world-ipv4 allows IPv4 world', policy: [cnp(sel + 'ingress: [{fromEntities: [world-ipv4]}]')], src: WORLD, want: 'allow' },
    { name: 'fromEntities world-ipv6 excludes IPv4 world', policy: [cnp(sel + 'ingress: [{fromEntities: [world-ipv6]}]')], src: WORLD, want: 'drop:POLICY_DENIED:INGRESS' },
    // docs/semantics.md#peer-selection: CIDR
    { name: 'fromCIDR allows contained address', policy: [cnp(sel + 'ingress: [{fromCIDR: [203.0.113.0/24]}]')], src: WORLD, want: 'allow' },
    { name: 'fromCIDR other address', policy: [cnp(sel + 'ingress: [{fromCIDR: [198.51.100.0/24]}]')], src: WORLD, want: 'drop:POLICY_DENIED:INGRESS' },
    { name: 'fromCIDRSet except', policy: [cnp(sel + 'ingress: [{fromCIDRSet: [{cidr: 203.0.113.0/24, except: [203.0.113.0/29]}]}]')], src: WORLD, want: 'drop:POLICY_DENIED:INGRESS' },
    { name: 'fromCIDR does not select pods', policy: [cnp(sel + 'ingress: [{fromCIDR: [10.0.0.0/8]}]')], src: 'a', want: 'drop:POLICY_DENIED:INGRESS' },
    // docs/semantics.md#peer-selection: L4-only rule allows every source incl. world
    { name: 'L4-only allows world', policy: [cnp(sel + 'ingress: [{toPorts: [{ports: [{port: "80", protocol: TCP}]}]}]')], src: WORLD, want: 'allow' },
    { name: 'L4-only other port', policy: [cnp(sel + 'ingress: [{toPorts: [{ports: [{port: "80", protocol: TCP}]}]}]')], src: WORLD, port: 81, want: 'drop:POLICY_DENIED:INGRESS' },
    // docs/semantics.md#ports: port "0" = all ports; endPort ranges; UDP-only does not cover TCP
    { name: 'port 0 = all ports', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{}], toPorts: [{ports: [{port: "0"}]}]}]')], src: 'a', port: 4242, want: 'allow' },
    { name: 'endPort inside', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{}], toPorts: [{ports: [{port: "80", endPort: 444, protocol: TCP}]}]}]')], src: 'a', port: 444, want: 'allow' },
    { name: 'endPort outside', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{}], toPorts: [{ports: [{port: "80", endPort: 444, protocol: TCP}]}]}]')], src: 'a', port: 445, want: 'drop:POLICY_DENIED:INGRESS' },
    { name: 'UDP-only rule does not cover TCP', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{}], toPorts: [{ports: [{port: "80", protocol: UDP}]}]}]')], src: 'a', want: 'drop:POLICY_DENIED:INGRESS' },
    { name: 'ANY covers TCP', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{}], toPorts: [{ports: [{port: "80", protocol: ANY}]}]}]')], src: 'a', want: 'allow' },
    // docs/semantics.md#default-deny: enableDefaultDeny
    { name: 'enableDefaultDeny.ingress false: unmatched peer allowed', policy: [cnp(sel + 'enableDefaultDeny: {ingress: false}\ningress: [{fromEndpoints: [{matchLabels: {id: b}}]}]')], src: 'a', want: 'allow' },
    { name: 'enableDefaultDeny false mixed with enforcing policy', policy: [cnp(sel + 'enableDefaultDeny: {ingress: false}\ningress: [{fromEndpoints: [{matchLabels: {id: b}}]}]'), cnp(sel + 'ingress: [{}]', 'q')], src: 'a', want: 'drop:POLICY_DENIED:INGRESS' },
    { name: 'egress-only policy does not affect ingress', policy: [cnp(sel + 'egress: [{toEntities: [world]}]')], src: 'a', want: 'allow' },
    // docs/semantics.md#default-deny: a deny-only policy enables default deny
    { name: 'deny-only policy enables default deny', policy: [cnp(sel + 'ingressDeny: [{fromEntities: [world]}]')], src: 'a', want: 'drop:POLICY_DENIED:INGRESS' },
    // docs/semantics.md#deny-precedence: deny wins over every allow
    { name: 'ingressDeny wins (from_world_deny.yaml)', policy: [manifest('examples__policies__l3__entities__from_world_deny.yaml')], src: WORLD, want: 'drop:POLICY_DENY:INGRESS' },
    { name: 'from_world_deny allows pods', policy: [manifest('examples__policies__l3__entities__from_world_deny.yaml')], src: 'a', want: 'allow' },
    { name: 'deny with toPorts only denies those ports', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{}]}]\ningressDeny: [{fromEndpoints: [{}], toPorts: [{ports: [{port: "81"}]}]}]')], src: 'a', port: 80, want: 'allow' },
    { name: 'deny with toPorts denies that port', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{}]}]\ningressDeny: [{fromEndpoints: [{}], toPorts: [{ports: [{port: "81"}]}]}]')], src: 'a', port: 81, want: 'drop:POLICY_DENY:INGRESS' },
    { name: 'deny wins over L7 allow', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{}], toPorts: [{ports: [{port: "80"}], rules: {http: [{}]}}]}]\ningressDeny: [{fromEndpoints: [{matchLabels: {id: a}}]}]')], src: 'a', want: 'drop:POLICY_DENY:INGRESS' },
    // docs/semantics.md#combining-http-rules: rules.http: [] and {} rule = allow all HTTP
    { name: 'http: [] allows all', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{}], toPorts: [{ports: [{port: "80"}], rules: {http: []}}]}]')], src: 'a', want: 'allow' },
    { name: 'http: [{}] allows all', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{}], toPorts: [{ports: [{port: "80"}], rules: {http: [{}, {path: /x}]}}]}]')], src: 'a', want: 'allow' },
    // docs/semantics.md#how-rules-combine / cilium_http_integration_test.cc L3DeniedPath: identity allowed on the port but the path belongs to another selector -> 403, not drop
    {
      name: 'per-selector L7 rule sets (L3DeniedPath)',
      policy: [cnp(sel + 'ingress:\n- fromEndpoints: [{matchLabels: {id: a}}]\n  toPorts: [{ports: [{port: "80"}], rules: {http: [{path: /allowed}]}}]\n- fromEndpoints: [{matchLabels: {id: b}}]\n  toPorts: [{ports: [{port: "80"}], rules: {http: [{path: /only-2-allowed}]}}]')],
      src: 'a', r: req('GET', '/only-2-allowed'), want: '403',
    },
    {
      name: 'per-selector L7 rule sets (other identity allowed)',
      policy: [cnp(sel + 'ingress:\n- fromEndpoints: [{matchLabels: {id: a}}]\n  toPorts: [{ports: [{port: "80"}], rules: {http: [{path: /allowed}]}}]\n- fromEndpoints: [{matchLabels: {id: b}}]\n  toPorts: [{ports: [{port: "80"}], rules: {http: [{path: /only-2-allowed}]}}]')],
      src: 'b', r: req('GET', '/only-2-allowed'), want: '200',
    },
    // docs/semantics.md#how-rules-combine: union across policies (order irrelevant) / DuplicatePortAllowedPath: both rule sets apply
    {
      name: 'union of L7 rules across two policies (DuplicatePortAllowedPath)',
      policy: [
        cnp(sel + 'ingress: [{fromEndpoints: [{}], toPorts: [{ports: [{port: "80"}], rules: {http: [{path: /one}]}}]}]', 'p1'),
        cnp(sel + 'ingress: [{fromEndpoints: [{}], toPorts: [{ports: [{port: "80"}], rules: {http: [{path: /two}]}}]}]', 'p2'),
      ],
      src: 'a', r: req('GET', '/two'), want: '200',
    },
    // docs/semantics.md#how-rules-combine: same port & type across toPorts merge (OR)
    {
      name: 'DuplicatePortAllowedPath2 (two port entries in one rule)',
      policy: [cnp(sel + 'ingress: [{fromEndpoints: [{}], toPorts: [{ports: [{port: "80"}], rules: {http: [{path: /one}]}}, {ports: [{port: "80"}], rules: {http: [{path: /two}]}}]}]')],
      src: 'a', r: req('GET', '/one'), want: '200',
    },
  ];
  for (const c of rows) {
    const s = build([base, ...c.policy]);
    const src = c.src.includes('.') ? s.identify(c.src) : from(s, c.src);
    t.equal(verdict(s.decide(src, pod(s, 'server'), c.port ?? 80), c.r), c.want, c.name);
  }
});

t.test('L7 rules shadowed by an L3/L4 allow (cilium/cilium pkg/policy/rule_test.go)', async (t) => {
  const sel = 'endpointSelector: {matchLabels: {app: server}}\n';
  const l7A = 'fromEndpoints: [{matchLabels: {id: a}}]\n  toPorts: [{ports: [{port: "80", protocol: TCP}], rules: {http: [{method: GET, path: /}]}}]';
  const rows: { name: string; policy: string; src: string; r: ReturnType<typeof req>; want: string }[] = [
    // TestL3RuleWithL7RulePartiallyShadowedByL3AllowAll (Case 7): GET / for A + wildcard L4-only port 80 -> allow all
    { name: 'TestL3RuleWithL7RulePartiallyShadowedByL3AllowAll', policy: cnp(sel + `ingress:\n- ${l7A}\n- toPorts: [{ports: [{port: "80", protocol: TCP}]}]`), src: 'a', r: req('PUT', '/x'), want: 'allow' },
    // TestMergeAllowAllL3AndShadowedL7: L3 allow-all peer + L7 rule for same peer -> allow all
    { name: 'TestMergeAllowAllL3AndShadowedL7', policy: cnp(sel + `ingress:\n- ${l7A}\n- fromEndpoints: [{}]`), src: 'a', r: req('PUT', '/x'), want: 'allow' },
    // TestMergeIdenticalAllowAllL3AndRestrictedL7HTTP: identical selector, one with L7 one without
    { name: 'TestMergeIdenticalAllowAllL3AndRestrictedL7HTTP', policy: cnp(sel + `ingress:\n- ${l7A}\n- fromEndpoints: [{matchLabels: {id: a}}]\n  toPorts: [{ports: [{port: "80", protocol: TCP}]}]`), src: 'a', r: req('PUT', '/x'), want: 'allow' },
    // TestL3RuleShadowedByL3AllowAll: L3 allow for A shadowed by L3 allow-all
    { name: 'TestL3RuleShadowedByL3AllowAll', policy: cnp(sel + 'ingress:\n- fromEndpoints: [{matchLabels: {id: a}}]\n- fromEndpoints: [{}]'), src: 'b', r: req('GET', '/'), want: 'allow' },
    // TestL3RuleWithL7RuleShadowedByL3AllowAll: L7 for A, L3 allow-all (all ports) -> allow all for A
    { name: 'TestL3RuleWithL7RuleShadowedByL3AllowAll', policy: cnp(sel + `ingress:\n- ${l7A}\n- fromEntities: [all]`), src: 'a', r: req('DELETE', '/y'), want: 'allow' },
    // TestL3Wildcarding: the L7 rule still applies to peers not covered by the L4-only rule's port... (other peer B on L7 port only has the L7 rule if no wildcard)
    { name: 'TestL3Wildcarding (no shadow for other port)', policy: cnp(sel + `ingress:\n- ${l7A}\n- toPorts: [{ports: [{port: "81", protocol: TCP}]}]`), src: 'a', r: req('PUT', '/x'), want: '403' },
  ];
  for (const c of rows) {
    const s = build([base, c.policy]);
    t.equal(verdict(s.decide(from(s, c.src), pod(s, 'server'), 80), c.r), c.want, c.name);
  }
});

t.test('cilium/proxy tests/cilium_network_policy_test.cc', async (t) => {
  // HttpPolicyUpdate: /allowed from the allowed peer on 80; not from another peer, not on 8080, not /notallowed;
  // egress .*public$: /public allowed, /publicz denied; adding deny 80-10000 denies /allowed.
  const ing = cnp('endpointSelector: {matchLabels: {app: server}}\ningress: [{fromEndpoints: [{matchLabels: {id: a}}], toPorts: [{ports: [{port: "80", protocol: TCP}], rules: {http: [{path: /allowed}]}}]}]', 'ing');
  const eg = cnp('endpointSelector: {matchLabels: {id: a}}\negress: [{toEndpoints: [{matchLabels: {app: server}}], toPorts: [{ports: [{port: "80"}], rules: {http: [{path: ".*public$"}]}}]}]', 'eg');
  const deny = cnp('endpointSelector: {matchLabels: {app: server}}\ningressDeny: [{fromEndpoints: [{matchLabels: {id: a}}], toPorts: [{ports: [{port: "80", endPort: 10000, protocol: TCP}]}]}]', 'deny');
  let s = build([base, ing]);
  const rows: [string, string, number, string, string][] = [
    ['HttpPolicyUpdate /allowed from allowed peer', 'a', 80, '/allowed', '200'],
    ['HttpPolicyUpdate from other peer', 'b', 80, '/allowed', 'drop:POLICY_DENIED:INGRESS'],
    ['HttpPolicyUpdate on 8080', 'a', 8080, '/allowed', 'drop:POLICY_DENIED:INGRESS'],
    ['HttpPolicyUpdate /notallowed', 'a', 80, '/notallowed', '403'],
  ];
  for (const [name, src, port, path, want] of rows) t.equal(verdict(s.decide(from(s, src), pod(s, 'server'), port), req('GET', path)), want, name);
  s = build([base, eg]);
  t.equal(verdict(s.decide(from(s, 'a'), pod(s, 'server'), 80), req('GET', '/public')), '200', 'HttpPolicyUpdate egress /public');
  t.equal(verdict(s.decide(from(s, 'a'), pod(s, 'server'), 80), req('GET', '/publicz')), '403', 'HttpPolicyUpdate egress /publicz');
  s = build([base, ing, deny]);
  t.equal(verdict(s.decide(from(s, 'a'), pod(s, 'server'), 80), req('GET', '/allowed')), 'drop:POLICY_DENY:INGRESS', 'HttpPolicyUpdate deny 80-10000 wins');
  t.equal(verdict(s.decide(from(s, 'a'), pod(s, 'server'), 10001), req('GET', '/allowed')), 'drop:POLICY_DENIED:INGRESS', 'deny range ends at 10000; no allow above');
  // EmptyRulesAllow: a port policy with no rules allows everything
  s = build([base, cnp('endpointSelector: {matchLabels: {app: server}}\ningress: [{fromEndpoints: [{}], toPorts: [{ports: [{port: "80"}]}]}]')]);
  t.equal(s.decide(from(s, 'a'), pod(s, 'server'), 80).kind, ALLOW.kind, 'EmptyRulesAllow');
});

t.test('egress (toEndpoints, toEntities, toCIDR, egressDeny, default deny)', async (t) => {
  const sel = 'endpointSelector: {matchLabels: {id: a}}\n';
  const rows: { name: string; policy: string[]; dst: string; port?: number; r?: ReturnType<typeof req>; want: string }[] = [
    { name: 'toEndpoints allows', policy: [cnp(sel + 'egress: [{toEndpoints: [{matchLabels: {app: server}}]}]')], dst: 'server', want: 'allow' },
    { name: 'egress default deny', policy: [cnp(sel + 'egress: [{toEndpoints: [{matchLabels: {app: server}}]}]')], dst: 'b', want: 'drop:POLICY_DENIED:EGRESS' },
    { name: 'toEndpoints pinned to own namespace', policy: [cnp(sel + 'egress: [{toEndpoints: [{matchLabels: {id: a}}]}]')], dst: 'other', want: 'drop:POLICY_DENIED:EGRESS' },
    { name: 'toEntities cluster', policy: [cnp(sel + 'egress: [{toEntities: [cluster]}]')], dst: 'other', want: 'allow' },
    { name: 'toCIDR does not select pods', policy: [cnp(sel + 'egress: [{toCIDR: [10.0.0.0/8]}]')], dst: 'server', want: 'drop:POLICY_DENIED:EGRESS' },
    { name: 'egressDeny wins', policy: [cnp(sel + 'egress: [{toEntities: [all]}]\negressDeny: [{toEndpoints: [{matchLabels: {app: server}}]}]')], dst: 'server', want: 'drop:POLICY_DENY:EGRESS' },
    { name: 'enableDefaultDeny.egress false', policy: [cnp(sel + 'enableDefaultDeny: {egress: false}\negress: [{toEndpoints: [{matchLabels: {app: server}}]}]')], dst: 'b', want: 'allow' },
    // egress L7 + ingress L7: both checks must pass
    {
      name: 'egress and ingress L7 both apply (egress denies)',
      policy: [cnp(sel + 'egress: [{toEndpoints: [{}], toPorts: [{ports: [{port: "80"}], rules: {http: [{method: GET}]}}]}]', 'e'), cnp('endpointSelector: {matchLabels: {app: server}}\ningress: [{fromEndpoints: [{}], toPorts: [{ports: [{port: "80"}], rules: {http: [{path: /x}]}}]}]', 'i')],
      dst: 'server', r: req('POST', '/x'), want: '403',
    },
    {
      name: 'egress and ingress L7 both apply (ingress denies)',
      policy: [cnp(sel + 'egress: [{toEndpoints: [{}], toPorts: [{ports: [{port: "80"}], rules: {http: [{method: GET}]}}]}]', 'e'), cnp('endpointSelector: {matchLabels: {app: server}}\ningress: [{fromEndpoints: [{}], toPorts: [{ports: [{port: "80"}], rules: {http: [{path: /x}]}}]}]', 'i')],
      dst: 'server', r: req('GET', '/y'), want: '403',
    },
    {
      name: 'egress and ingress L7 both pass',
      policy: [cnp(sel + 'egress: [{toEndpoints: [{}], toPorts: [{ports: [{port: "80"}], rules: {http: [{method: GET}]}}]}]', 'e'), cnp('endpointSelector: {matchLabels: {app: server}}\ningress: [{fromEndpoints: [{}], toPorts: [{ports: [{port: "80"}], rules: {http: [{path: /x}]}}]}]', 'i')],
      dst: 'server', r: req('GET', '/x'), want: '200',
    },
    { name: 'egress drop reported before ingress drop', policy: [cnp(sel + 'egress: [{}]', 'e'), cnp('endpointSelector: {matchLabels: {app: server}}\ningress: [{}]', 'i')], dst: 'server', want: 'drop:POLICY_DENIED:EGRESS' },
  ];
  for (const c of rows) {
    const s = build([base, ...c.policy]);
    t.equal(verdict(s.decide(from(s, 'a'), pod(s, c.dst, c.dst === 'other' ? 'ns2' : 'default'), c.port ?? 80), c.r), c.want, c.name);
  }
});

t.test('Kubernetes NetworkPolicy (L3/L4, unioned with Cilium allows)', async (t) => {
  const np = (spec: string) => `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np, namespace: default}\nspec:\n${spec.replace(/^/gm, '  ')}`;
  const rows: { name: string; policy: string[]; src: string; port?: number; want: string }[] = [
    { name: 'podSelector peer same ns', policy: [np('podSelector: {matchLabels: {app: server}}\ningress: [{from: [{podSelector: {matchLabels: {id: a}}}]}]')], src: 'a', want: 'allow' },
    { name: 'selected pod isolated', policy: [np('podSelector: {matchLabels: {app: server}}\ningress: [{from: [{podSelector: {matchLabels: {id: a}}}]}]')], src: 'b', want: 'drop:POLICY_DENIED:INGRESS' },
    { name: 'podSelector is namespace-local', policy: [np('podSelector: {matchLabels: {app: server}}\ningress: [{from: [{podSelector: {matchLabels: {id: a}}}]}]')], src: 'other', want: 'drop:POLICY_DENIED:INGRESS' },
    { name: 'namespaceSelector', policy: [np('podSelector: {}\ningress: [{from: [{namespaceSelector: {matchLabels: {team: blue}}}]}]')], src: 'other', want: 'allow' },
    { name: 'ipBlock with except', policy: [np('podSelector: {}\ningress: [{from: [{ipBlock: {cidr: 203.0.113.0/24, except: [203.0.113.0/30]}}]}]')], src: WORLD, want: 'allow' },
    { name: 'ports with endPort', policy: [np('podSelector: {}\ningress: [{ports: [{port: 8000, endPort: 8100}]}]')], src: WORLD, port: 8050, want: 'allow' },
    { name: 'ports outside', policy: [np('podSelector: {}\ningress: [{ports: [{port: 8000, endPort: 8100}]}]')], src: WORLD, port: 80, want: 'drop:POLICY_DENIED:INGRESS' },
    { name: 'policyTypes Egress only: ingress open', policy: [np('podSelector: {matchLabels: {app: server}}\npolicyTypes: [Egress]')], src: 'b', want: 'allow' },
    { name: 'empty ingress list = deny all', policy: [np('podSelector: {}\npolicyTypes: [Ingress]')], src: 'b', want: 'drop:POLICY_DENIED:INGRESS' },
    { name: 'union with a CNP allow', policy: [np('podSelector: {}\npolicyTypes: [Ingress]'), cnp('endpointSelector: {}\ningress: [{fromEndpoints: [{matchLabels: {id: b}}]}]')], src: 'b', want: 'allow' },
    { name: 'CNP deny wins over NP allow', policy: [np('podSelector: {}\ningress: [{}]'), cnp('endpointSelector: {}\ningressDeny: [{fromEndpoints: [{matchLabels: {id: b}}]}]')], src: 'b', want: 'drop:POLICY_DENY:INGRESS' },
  ];
  for (const c of rows) {
    const s = build([base, ...c.policy]);
    const src = c.src.includes('.') ? s.identify(c.src) : from(s, c.src);
    t.equal(verdict(s.decide(src, pod(s, 'server'), c.port ?? 80)), c.want, c.name);
  }
});

t.test('tables: intervals and lazy identities', async (t) => {
  const s = build([base, cnp('endpointSelector: {matchLabels: {app: server}}\ningress: [{fromEntities: [world], toPorts: [{ports: [{port: "80", endPort: 90}]}]}]')]);
  // An identity never seen at build time (e.g. from another state) is evaluated by its labels and cached.
  const foreign: Source = { identity: { id: 16777999, labels: ['cidr:198.18.0.0/15', 'reserved:world'] }, endpoint: undefined };
  const d1 = s.decide(foreign, pod(s, 'server'), 85);
  t.equal(verdict(d1), 'allow', 'foreign world identity allowed');
  t.equal(verdict(s.decide(foreign, pod(s, 'server'), 91)), 'drop:POLICY_DENIED:INGRESS', 'outside the interval');
  t.equal(verdict(s.decide(foreign, pod(s, 'server'), 79)), 'drop:POLICY_DENIED:INGRESS', 'below the interval');
  t.equal(verdict(s.decide(foreign, pod(s, 'server'), 90)), 'allow', 'interval end inclusive');
});

t.test('provenance: decisions name the rules that allowed or denied (by)', async (t) => {
  const sel = 'endpointSelector: {matchLabels: {app: server}}\n';
  const by = (d: { by?: readonly { kind: string; namespace: string | undefined; name: string; ruleIndex: number; direction: string; field: string }[] | undefined }) =>
    (d.by ?? []).map((r) => `${r.kind} ${r.namespace ?? '-'}/${r.name} #${r.ruleIndex} ${r.direction} ${r.field}`);
  const rows: { name: string; policy: string[]; src: string; port?: number; want: string; by: string[] }[] = [
    { name: 'no policy: allowed by nothing', policy: [], src: 'a', want: 'allow', by: [] },
    { name: 'L3 allow names its rule', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{matchLabels: {id: b}}]}, {fromEndpoints: [{matchLabels: {id: a}}]}]', 'allow-a')], src: 'a', want: 'allow', by: ['CiliumNetworkPolicy default/allow-a #0 INGRESS spec.ingress[1]'] },
    { name: 'default-deny drop: no rule selected this peer', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{matchLabels: {id: b}}]}]', 'allow-b')], src: 'a', want: 'drop:POLICY_DENIED:INGRESS', by: [] },
    { name: 'explicit deny names the deny rule (specs[1])', policy: ['apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: deny-a, namespace: default}\nspecs:\n- ' + sel + '  ingress: [{}]\n- ' + sel + '  ingressDeny: [{fromEndpoints: [{matchLabels: {id: a}}]}]'], src: 'a', want: 'drop:POLICY_DENY:INGRESS', by: ['CiliumNetworkPolicy default/deny-a #1 INGRESS specs[1].ingressDeny[0]'] },
    { name: 'L7 rules name every covering rule, across objects', policy: [
      cnp(sel + 'ingress: [{fromEndpoints: [{matchLabels: {id: a}}], toPorts: [{ports: [{port: "80"}], rules: {http: [{method: GET}]}}]}]', 'l7-get'),
      cnp(sel + 'ingress: [{fromEndpoints: [{}], toPorts: [{ports: [{port: "80"}], rules: {http: [{method: PUT}]}}]}]', 'l7-put'),
    ], src: 'a', want: 'l7', by: ['CiliumNetworkPolicy default/l7-get #0 INGRESS spec.ingress[0]', 'CiliumNetworkPolicy default/l7-put #0 INGRESS spec.ingress[0]'] },
    { name: 'an L3-only rule shadows L7 and alone is reported', policy: [
      cnp(sel + 'ingress: [{fromEndpoints: [{matchLabels: {id: a}}], toPorts: [{ports: [{port: "80"}], rules: {http: [{method: GET}]}}]}, {fromEndpoints: [{matchLabels: {id: a}}]}]', 'mixed'),
    ], src: 'a', want: 'allow', by: ['CiliumNetworkPolicy default/mixed #0 INGRESS spec.ingress[1]'] },
    { name: 'egress and ingress both reported, egress first', policy: [
      cnp('endpointSelector: {matchLabels: {id: a}}\negress: [{toEndpoints: [{matchLabels: {app: server}}]}]', 'a-out'),
      cnp(sel + 'ingress: [{fromEndpoints: [{matchLabels: {id: a}}]}]', 'server-in'),
    ], src: 'a', want: 'allow', by: ['CiliumNetworkPolicy default/a-out #0 EGRESS spec.egress[0]', 'CiliumNetworkPolicy default/server-in #0 INGRESS spec.ingress[0]'] },
    { name: 'CCNP has no namespace', policy: [cnp(sel + 'ingress: [{fromEndpoints: [{matchLabels: {id: a}}]}]', 'cw', 'CiliumClusterwideNetworkPolicy')], src: 'a', want: 'allow', by: ['CiliumClusterwideNetworkPolicy -/cw #0 INGRESS spec.ingress[0]'] },
  ];
  for (const c of rows) {
    const s = build([base, ...c.policy]);
    const d = s.decide(from(s, c.src), pod(s, 'server'), c.port ?? 80);
    t.equal(verdict(d), c.want, `${c.name}: verdict`);
    t.same(by(d), c.by, `${c.name}: by`);
  }
  // Precomputed and shared: asking twice gives the very same object (and the same by array).
  const s = build([base, rows[6]!.policy[0]!, rows[6]!.policy[1]!]);
  t.equal(s.decide(from(s, 'a'), pod(s, 'server'), 80), s.decide(from(s, 'a'), pod(s, 'server'), 80), 'combined decision cached');
});
