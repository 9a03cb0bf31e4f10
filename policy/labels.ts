/**
 * Cilium label strings ("source:key=value"), the security-relevant label filter, and the labels
 * Cilium adds to every pod. Selector matching works on a LabelSet built once per identity.
 */

/** Label sources Cilium knows; a selector key "x:y" is split only when "x" is one of these. */
const SOURCES = new Set(['k8s', 'any', 'reserved', 'cidr', 'container', 'unspec', 'cilium-generated', 'fqdn', 'kvstore', 'cilium']);

export const POD_NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';
export const SERVICE_ACCOUNT_LABEL = 'io.cilium.k8s.policy.serviceaccount';
export const CLUSTER_LABEL = 'io.cilium.k8s.policy.cluster';
export const NAMESPACE_LABELS_PREFIX = 'io.cilium.k8s.namespace.labels.';
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export interface ParsedKey {
  /** undefined = any source. */
  readonly source: string | undefined;
  readonly key: string;
}

/** Splits a selector key ("k8s:org", "any:org", "org", "reserved:host"). */
export function parseSelectorKey(raw: string): ParsedKey {
  const i = raw.indexOf(':');
  if (i > 0) {
    const src = raw.slice(0, i);
    if (SOURCES.has(src)) return { source: src === 'any' ? undefined : src, key: raw.slice(i + 1) };
  }
  return { source: undefined, key: raw };
}

/** Formats one label as Cilium prints it: "k8s:org=empire", "reserved:host" (empty value). */
export function formatLabel(source: string, key: string, value: string): string {
  return value === '' ? `${source}:${key}` : `${source}:${key}=${value}`;
}

/** Parses "source:key=value" (value optional). */
export function parseLabel(s: string): { source: string; key: string; value: string } {
  const i = s.indexOf(':');
  const source = i > 0 ? s.slice(0, i) : 'unspec';
  const rest = i > 0 ? s.slice(i + 1) : s;
  const j = rest.indexOf('=');
  return j < 0 ? { source, key: rest, value: '' } : { source, key: rest.slice(0, j), value: rest.slice(j + 1) };
}

/** An identity's labels indexed for selector evaluation. Built at load time, never per request. */
export class LabelSet {
  readonly labels: readonly string[];
  /** "source:key" -> value */
  readonly #bySourceKey = new Map<string, string>();
  /** key -> values over all sources */
  readonly #byKey = new Map<string, string[]>();

  constructor(labels: readonly string[]) {
    this.labels = labels;
    for (const l of labels) {
      const { source, key, value } = parseLabel(l);
      this.#bySourceKey.set(`${source}:${key}`, value);
      const list = this.#byKey.get(key);
      if (list) list.push(value);
      else this.#byKey.set(key, [value]);
    }
  }

  /** Values of `key` for the given source (undefined source = any); empty when absent. */
  values(source: string | undefined, key: string): readonly string[] {
    if (source === undefined) return this.#byKey.get(key) ?? [];
    const v = this.#bySourceKey.get(`${source}:${key}`);
    return v === undefined ? [] : [v];
  }

  has(source: string | undefined, key: string): boolean {
    return source === undefined ? this.#byKey.has(key) : this.#bySourceKey.has(`${source}:${key}`);
  }
}

/**
 * Cilium's default identity-relevant label filter.
 * Source: cilium/cilium pkg/labelsfilter/filter.go `defaultLabelPrefixCfg` (include/ignore prefixes,
 * matched at the start of the key; a label is kept when no ignore matches, or when the longest
 * include match is longer than the shortest ignore match). These are our own fixed patterns, not
 * user input, so a JS RegExp is fine here.
 */
const FILTER: readonly { ignore: boolean; source: string | undefined; re: RegExp }[] = [
  { ignore: false, source: 'reserved', re: /^.*/ },
  { ignore: false, source: undefined, re: /^io\.kubernetes\.pod\.namespace/ },
  { ignore: false, source: undefined, re: /^io\.cilium\.k8s\.namespace\.labels/ },
  { ignore: false, source: undefined, re: /^app\.kubernetes\.io/ },
  { ignore: false, source: undefined, re: /^io\.cilium\.k8s\.policy\.cluster/ },
  { ignore: true, source: undefined, re: /^io\.kubernetes/ },
  { ignore: true, source: undefined, re: /^kubernetes\.io/ },
  { ignore: true, source: undefined, re: /^statefulset\.kubernetes\.io\/pod-name/ },
  { ignore: true, source: undefined, re: /^apps\.kubernetes\.io\/pod-index/ },
  { ignore: true, source: undefined, re: /^batch\.kubernetes\.io\/job-completion-index/ },
  { ignore: true, source: undefined, re: /^.*beta\.kubernetes\.io/ },
  { ignore: true, source: undefined, re: /^k8s\.io/ },
  { ignore: true, source: undefined, re: /^pod-template-generation/ },
  { ignore: true, source: undefined, re: /^pod-template-hash/ },
  { ignore: true, source: undefined, re: /^controller-revision-hash/ },
  { ignore: true, source: undefined, re: /^annotation.*/ },
  { ignore: true, source: undefined, re: /^etcd_node/ },
];

/**
 * Verdicts of the filter for `k8s` keys: a cluster uses few distinct label keys, and every pod's
 * labels are filtered on each reload. Bounded; cleared when full.
 */
const relevantK8sKeys = new Map<string, boolean>();

/** True when Cilium's default filter keeps this label for identity purposes. */
export function isIdentityRelevant(source: string, key: string): boolean {
  if (source !== 'k8s') return filterKeeps(source, key);
  let v = relevantK8sKeys.get(key);
  if (v === undefined) {
    v = filterKeeps(source, key);
    if (relevantK8sKeys.size >= 4096) relevantK8sKeys.clear();
    relevantK8sKeys.set(key, v);
  }
  return v;
}

function filterKeeps(source: string, key: string): boolean {
  let included = 0;
  let ignored = 0;
  for (const p of FILTER) {
    if (p.source !== undefined && p.source !== source) continue;
    const m = p.re.exec(key);
    if (m === null) continue;
    const len = m[0].length;
    if (p.ignore) {
      if (ignored === 0 || len < ignored) ignored = len;
    } else if (len > included) included = len;
  }
  return ignored === 0 || included > ignored;
}

export interface PodLabelInput {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly clusterName: string;
  readonly podLabels: Readonly<Record<string, string>>;
  /** Labels of the pod's Namespace object (kubernetes.io/metadata.name is always added). */
  readonly namespaceLabels: Readonly<Record<string, string>>;
}

/** The sorted security-relevant label strings of a pod, as `cilium identity get` shows them. */
export function podIdentityLabels(p: PodLabelInput): string[] {
  const m = new Map<string, string>();
  for (const k in p.podLabels) m.set(k, p.podLabels[k] as string);
  for (const k in p.namespaceLabels) if (k !== NAMESPACE_NAME_LABEL) m.set(NAMESPACE_LABELS_PREFIX + k, p.namespaceLabels[k] as string);
  m.set(NAMESPACE_LABELS_PREFIX + NAMESPACE_NAME_LABEL, p.namespace);
  // Labels Cilium derives itself win over same-named pod labels.
  m.set(POD_NAMESPACE_LABEL, p.namespace);
  m.set(SERVICE_ACCOUNT_LABEL, p.serviceAccount);
  m.set(CLUSTER_LABEL, p.clusterName);
  const out: string[] = [];
  for (const [k, v] of m) if (isIdentityRelevant('k8s', k)) out.push(`k8s:${k}=${v}`);
  return out.sort();
}
