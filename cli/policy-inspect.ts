/**
 * `l7guard policy get` (cilium-dbg policy get: the loaded rules as JSON, then `Revision: N`) and
 * `l7guard policy trace` (cilium policy trace: the verdict for a source, destination, port and
 * optionally an HTTP request, and the rule that decided it). Both ask a running proxy (`--server`);
 * `policy trace -f PATH` builds the state in-process instead.
 */
import { formatProblem, loadPolicyState, locateInFiles, PolicyLoadError, type PolicyRuleSource, type RuleRef } from '../policy/index.js';
import {
  trace, TraceError, traceQuery, traceService, type DirectionTrace, type ServiceTraceResult, type TraceEnd, type TraceOptions, type TraceResult,
} from '../policy/trace.js';
import type { PolicyView } from '../observe/operator-views.js';
import { adminGet, DEFAULT_ADMIN } from './admin-get.js';
import { CliError } from './cli-error.js';
import { parseFlags } from './flags.js';
import { UsageError } from './usage-error.js';

export const GET_USAGE = `Usage: l7guard policy get [--server HOST:PORT|unix:PATH] [-o json]

Prints the loaded policy rules as JSON (one entry per spec / specs[] rule, with Cilium's
io.cilium.k8s.policy.* labels naming the object) followed by "Revision: N", like cilium-dbg policy get.
--server defaults to ${DEFAULT_ADMIN}.
`;

export const TRACE_USAGE = `Usage: l7guard policy trace (-s LABELS | --src-pod NS/NAME) (-d LABELS | --dst-pod NS/NAME | --dst-service NS/NAME) --dport PORT
                            [--http-method M] [--http-path P] [--http-host H] [--http-header "Name: value" ...]
                            [--server HOST:PORT|unix:PATH | -f PATH ...] [-o json]

Traces a policy decision like cilium policy trace: whether the source may reach the destination on
the port (and, given --http-*, whether that request passes the L7 rules), and which rule decided.
  -s, --src-labels LABELS   source labels, source:key=value, comma-separated or repeated (k8s:org=empire,...)
  -d, --dst-labels LABELS   destination labels
      --src-pod, --dst-pod  a Pod of the loaded cluster instead (NAMESPACE/NAME)
      --dst-service NS/NAME every backend pod of a Service instead; --dport is then the Service
                            port, and each pod is traced at its target port
      --dport PORT          destination (pod) port, e.g. 80
      --http-method, --http-path, --http-host, --http-header   the request to trace at L7
                            (method default GET, path default /)
      --server ADDR         ask a running proxy (default ${DEFAULT_ADMIN})
  -f, --file PATH           build the state from these files instead, in-process (repeatable)
      --cluster-name NAME, --allow-localhost always|policy   as serve, with -f
  -o json                   the trace as JSON
`;

// ---- policy get -------------------------------------------------------------------------------

/** api.Rule's field order (cilium/cilium pkg/policy/api/rule.go), for keys the rule has. */
const RULE_FIELDS = ['endpointSelector', 'nodeSelector', 'ingress', 'ingressDeny', 'egress', 'egressDeny', 'labels', 'enableDefaultDeny', 'description', 'log'];

/**
 * One rule as cilium-dbg shows it: the spec as written (selectors are not rewritten into Cilium's
 * `any:`-prefixed, namespace-pinned form) with the labels the agent adds to say where it came from
 * (pkg/k8s/apis/cilium.io/utils/utils.go GetPolicyLabels: derived-from, name, namespace; no uid here).
 */
export function ciliumRule(r: PolicyRuleSource): Record<string, unknown> {
  const spec = (typeof r.spec === 'object' && r.spec !== null ? r.spec : {}) as Record<string, unknown>;
  const own = Array.isArray(spec['labels']) ? (spec['labels'] as unknown[]) : [];
  const k8s = (key: string, value: string) => ({ key, value, source: 'k8s' });
  const labels = [
    ...own,
    k8s('io.cilium.k8s.policy.derived-from', r.kind),
    k8s('io.cilium.k8s.policy.name', r.name),
    ...(r.namespace === undefined ? [] : [k8s('io.cilium.k8s.policy.namespace', r.namespace)]),
  ];
  const out: Record<string, unknown> = {};
  const withLabels: Record<string, unknown> = { ...spec, labels };
  for (const k of RULE_FIELDS) if (withLabels[k] !== undefined) out[k] = withLabels[k];
  for (const [k, v] of Object.entries(spec)) if (!(k in out)) out[k] = v;
  return out;
}

/** Go's json.MarshalIndent(v, "", "  "): HTML-escaped like encoding/json; an empty list is `null`, as the agent's nil slice. */
export function goJson(v: readonly unknown[]): string {
  if (v.length === 0) return 'null';
  return JSON.stringify(v, null, 2).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function renderPolicyGet(view: PolicyView): string {
  const rejected = view.rejected ?? [];
  const tail = rejected.length === 0 ? '' : [
    `Rejected API objects (${rejected.length}; each keeps the version in force, if any):`,
    ...rejected.map((r) => `  ${r.kind} ${r.namespace === undefined ? r.name : `${r.namespace}/${r.name}`} (${r.source}): ${r.problems.join('; ')}; in force: ${r.inForce ?? 'none'}`),
  ].join('\n') + '\n';
  return `${goJson(view.rules.map(ciliumRule))}\nRevision: ${view.revision}\n${tail}`;
}

export async function runPolicyGet(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const { values } = parseFlags('policy get', { args: argv, options: { server: { type: 'string' }, output: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: false });
  if (values.help === true) {
    out.write(GET_USAGE);
    return 0;
  }
  if (values.output !== undefined && values.output !== 'json') throw new UsageError('-o must be json');
  const view = await adminGet<PolicyView>(values.server, '/v1/policy');
  // -o json: Cilium's models.Policy, {policy: <the JSON text>, revision}.
  const json = { policy: goJson(view.rules.map(ciliumRule)), revision: view.revision, ...(view.rejected === undefined ? {} : { rejected: view.rejected }) };
  out.write(values.output === 'json' ? JSON.stringify(json, null, 2) + '\n' : renderPolicyGet(view));
  return 0;
}

// ---- policy trace -----------------------------------------------------------------------------

const DROP_DESC = { POLICY_DENIED: 'Policy denied', POLICY_DENY: 'Policy denied by denylist' } as const;

export const ruleText = (r: RuleRef): string => `${r.kind} ${r.namespace === undefined ? r.name : `${r.namespace}/${r.name}`} rule ${r.ruleIndex} (${r.field})`;
const rulesText = (rs: readonly RuleRef[]) => rs.map(ruleText).join(', ');
const cap = (d: string) => d[0] + d.slice(1).toLowerCase();
const endText = (e: TraceEnd) => (e.identity === undefined ? '(labels of no known identity)' : `${e.pod ?? 'identity'} (ID:${e.identity})`);
/** A label context without a namespace is selected by no CiliumNetworkPolicy (they pin their namespace): say so. */
const nsHint = (e: TraceEnd, side: string) =>
  e.isPod || e.labels.some((l) => l.startsWith('reserved:') || l.startsWith('cidr:'))
    ? []
    : [`Note: the ${side} labels have no k8s:io.kubernetes.pod.namespace: namespaced policies neither select nor allow them`];

function directionLines(d: DirectionTrace, r: TraceResult, subject: TraceEnd): string[] {
  const name = cap(d.direction);
  const out = [`Resolving ${d.direction.toLowerCase()} policy for [${subject.labels.join(' ')}]`];
  if (!d.applies) return [...out, `${name} policy not applied: the source is not a pod`];
  for (const s of d.selected) out.push(`* ${s.kind} ${s.namespace === undefined ? s.name : `${s.namespace}/${s.name}`} rule ${s.ruleIndex}: selected`);
  out.push(`${d.selected.length}/${r.rules} rules selected`, `${name} enforcement: ${d.enforced ? 'Enabled' : 'Disabled'}`);
  const who = d.direction === 'INGRESS' ? 'destination' : 'source';
  if (d.decision === 'drop') {
    out.push(d.by.length > 0 ? `${name} verdict: denied (${d.reason}) by ${rulesText(d.by)}` : `${name} verdict: denied (${d.reason}): no rule selected this peer`);
  } else if (d.decision === 'l7') out.push(`${name} verdict: allowed at L3/L4; HTTP rules of ${rulesText(d.by)} judge each request`);
  else if (d.by.length > 0) out.push(`${name} verdict: allowed by ${rulesText(d.by)}`);
  else out.push(`${name} verdict: allowed (${d.selected.length === 0 ? `no rule selects the ${who}` : 'no selecting rule enables default deny'})`);
  return out;
}

/** The trace as text: Cilium's `Tracing From: … => To: …`, per-direction resolution, the final verdict. */
export function renderTrace(r: TraceResult): string {
  const lines = [
    '----------------------------------------------------------------',
    `Tracing From: [${r.src.labels.join(', ')}] => To: [${r.dst.labels.join(', ')}] Ports: [${r.port}/${r.protocol}]`,
    `From: ${endText(r.src)} => To: ${endText(r.dst)} (policy revision ${r.revision})`,
  ];
  lines.push(...nsHint(r.src, 'source'), ...nsHint(r.dst, 'destination'));
  if (r.http !== undefined) lines.push(`HTTP: ${r.http.method} ${r.http.path}${r.http.host === undefined ? '' : ` (Host: ${r.http.host})`}`);
  lines.push('', ...directionLines(r.egress, r, r.src), '', ...directionLines(r.ingress, r, r.dst), '');
  const req = r.http === undefined ? '' : `${r.http.method} ${r.http.path}`;
  if (r.allowLocalhost) lines.push('Final verdict: ALLOWED (allow-localhost=always: the host is let through before any policy)');
  else if (r.verdict === 'DENIED' && r.layer === 'L3/L4') {
    const head = `Final verdict: DENIED at L3/L4 (${DROP_DESC[r.reason as keyof typeof DROP_DESC]}, ${r.direction})`;
    lines.push(r.by.length > 0 ? `${head} by ${rulesText(r.by)}` : `${head}: no rule selected this peer`);
  } else if (r.verdict === 'DENIED') lines.push(`Final verdict: DENIED at L7 (403 Access denied, ${r.direction}): ${req} matches no HTTP rule of ${rulesText(r.by)}`);
  else if (r.l7Pending) lines.push(`Final verdict: ALLOWED at L3/L4; HTTP requests must match an HTTP rule of ${rulesText(r.by)} (trace one with --http-method/--http-path)`);
  else if (r.http !== undefined && r.by.length > 0 && [r.egress, r.ingress].some((d) => d.decision === 'l7')) lines.push(`Final verdict: ALLOWED (${req} matches an HTTP rule) by ${rulesText(r.by)}`);
  else lines.push(r.by.length > 0 ? `Final verdict: ALLOWED by ${rulesText(r.by)}` : 'Final verdict: ALLOWED (no policy enforces either direction)');
  return lines.join('\n') + '\n';
}

/** One trace per backend, then how many backends the request reaches. */
export function renderServiceTrace(r: ServiceTraceResult): string {
  const parts = [`Service ${r.service} port ${r.servicePort}/TCP: ${r.backends.length} backend(s); a connection may reach any of them`, ''];
  for (const b of r.backends) parts.push(`Backend ${b.pod} (${b.ip}:${b.port}):`, renderTrace(b.trace));
  const allowed = r.backends.filter((b) => b.trace.verdict === 'ALLOWED').length;
  parts.push(`Service verdict: ${allowed === r.backends.length ? 'ALLOWED' : allowed === 0 ? 'DENIED' : 'MIXED'} (allowed to ${allowed}/${r.backends.length} backends)\n`);
  return parts.join('\n');
}

export async function runPolicyTrace(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const { values } = parseFlags('policy trace', {
      args: argv,
      options: {
        'src-labels': { type: 'string', short: 's', multiple: true }, 'dst-labels': { type: 'string', short: 'd', multiple: true },
        'src-pod': { type: 'string' }, 'dst-pod': { type: 'string' }, 'dst-service': { type: 'string' }, dport: { type: 'string' },
        'http-method': { type: 'string' }, 'http-path': { type: 'string' }, 'http-host': { type: 'string' }, 'http-header': { type: 'string', multiple: true },
        server: { type: 'string' }, file: { type: 'string', short: 'f', multiple: true }, 'cluster-name': { type: 'string' }, 'allow-localhost': { type: 'string' },
        output: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
  });
  if (values.help === true) {
    out.write(TRACE_USAGE);
    return 0;
  }
  if (values.output !== undefined && values.output !== 'json') throw new UsageError('-o must be json');
  if (values.file !== undefined && values.server !== undefined) throw new UsageError('give --server or -f, not both');
  const allowLocalhost = values['allow-localhost'] ?? 'always';
  if (allowLocalhost !== 'always' && allowLocalhost !== 'policy') throw new UsageError('--allow-localhost must be always or policy');
  const opts: TraceOptions = {
    srcLabels: values['src-labels'], srcPod: values['src-pod'], dstLabels: values['dst-labels'], dstPod: values['dst-pod'], dport: values.dport,
    httpMethod: values['http-method'], httpPath: values['http-path'], httpHost: values['http-host'], httpHeaders: values['http-header'],
  };
  const service = values['dst-service'];
  const print = (r: TraceResult | ServiceTraceResult) => {
    out.write(values.output === 'json' ? JSON.stringify(r, null, 2) + '\n' : 'backends' in r ? renderServiceTrace(r) : renderTrace(r));
    return 0;
  };
  if (values.file !== undefined) {
    try {
      const state = await loadPolicyState(values.file, { clusterName: values['cluster-name'] ?? 'default', nodeIPs: [], allowLocalhost, revision: 1 });
      return print(service === undefined ? trace(state, traceQuery(state, opts)) : traceService(state, { ...opts, dstService: service }));
    } catch (e) {
      if (e instanceof TraceError) throw new UsageError(e.message);
      if (!(e instanceof PolicyLoadError)) throw e;
      throw new CliError(`the policy does not load:\n${(await locateInFiles(e.problems)).map((p) => `  ${formatProblem(p)}`).join('\n')}`);
    }
  }
  const q = new URLSearchParams();
  const add = (k: string, v: string | readonly string[] | undefined) => {
    for (const x of v === undefined ? [] : typeof v === 'string' ? [v] : v) q.append(k, x);
  };
  add('src-labels', opts.srcLabels); add('src-pod', opts.srcPod); add('dst-labels', opts.dstLabels); add('dst-pod', opts.dstPod);
  add('dst-service', service); add('dport', opts.dport); add('http-method', opts.httpMethod); add('http-path', opts.httpPath); add('http-host', opts.httpHost); add('http-header', opts.httpHeaders);
  return print(await adminGet<TraceResult | ServiceTraceResult>(values.server, `/v1/policy/trace?${q.toString()}`));
}
