/**
 * parse -> validate -> identities -> select -> compile -> immutable PolicyState.
 *
 * With `serve --kubernetes` every API change rebuilds the state. From scratch, one pod's new IP in a
 * 10,000-pod, 1,000-Service, 1,000-CNP cluster cost ~60-120 ms of CPU a revision (median, with the
 * machine more or less busy; bench/reload/cluster.mjs --pods 10000 --change pod), ~9 ms now. A
 * rebuild starts from what the build of the state in force (`opts.previous`) kept (BuildMemo): each
 * stage takes the previous build's result where its inputs are the same objects, and is otherwise
 * derived from what changed (build-endpoints.ts, build-services.ts) or from scratch. The state is the
 * one a build from scratch with the same `previous` gives (test/policy/incremental-build.test.ts).
 */
import { buildObjects, hasKind, podsOf, scanObjects } from './build-objects.js';
import { endpointsAfter, endpointsFromScratch, type EndpointsMemo, type EndpointsStage } from './build-endpoints.js';
import { compileRulesSide, readRulesSteps, type RulesSide } from './build-rules.js';
import { buildServices, endpointChanges, type ServicesMemo } from './build-services.js';
import { policiesSelectingNothing, podsWithoutIP, servicesWithoutPods } from './build-warnings.js';
import { PolicyLoadError } from './errors.js';
import { type IdentityEntry, previousIdentities, reservedIdentities } from './identity.js';
import type { SourcedObject } from './load.js';
import type { Identity, PolicyState, StagedPolicy } from './model.js';
import { splitStaged, stagedPolicy } from './staged.js';
import { Resolver } from './resolve.js';
import { sameItems } from './same-items.js';
import { CompiledPolicyState } from './state.js';
import { drain, runSliced, type Steps } from './steps.js';

export { parseObjects, type ParsedObjects } from './build-rules.js';

export interface BuildOptions {
  clusterName: string;
  nodeIPs: readonly string[];
  allowLocalhost: 'always' | 'policy';
  previous?: PolicyState | undefined;
  revision: number;
  /**
   * This node's name (the proxy's `--node-name`): pods whose spec.nodeName differs run elsewhere.
   * They stay identities (their labels decide verdicts) but get endpoint ID 0, and the IPs of
   * their hostNetwork pods are `remote-node`. Unset (or a pod without spec.nodeName): local.
   */
  nodeName?: string | undefined;
}

/** What a build keeps of its work for the next one, by state (weakly: it goes with its state). */
interface BuildMemo {
  readonly clusterName: string;
  readonly nodeName: string | undefined;
  /** The objects, deduplicated. */
  readonly objects: readonly SourcedObject[];
  readonly rules: RulesSide;
  readonly endpoints: EndpointsMemo;
  readonly services: ServicesMemo;
  readonly reserved: readonly IdentityEntry[];
  readonly identities: ReadonlyMap<number, IdentityEntry>;
  /** policiesSelectingNothing's warnings: the same while the rules and the set of pod identities are. */
  readonly idle: readonly string[];
}

const memos = new WeakMap<PolicyState, BuildMemo>();

export function buildPolicyState(input: SourcedObject[], opts: BuildOptions): PolicyState {
  return drain(stagedBuildSteps(input, opts));
}

/**
 * buildPolicyState returning to the event loop every `sliceMs`: a reload of a 10,000-rule policy
 * (~60 ms of work) must not hold up requests served meanwhile. Same result, a little later.
 */
export function buildPolicyStateSliced(input: SourcedObject[], opts: BuildOptions, sliceMs = 4): Promise<PolicyState> {
  return runSliced(stagedBuildSteps(input, opts), sliceMs);
}

/**
 * The enforced state of the objects without the staged policies (policy/staged.ts), then one
 * candidate per staged policy: the enforced objects plus it, built from the enforced state (so with
 * its numbering, and incrementally: one object more). Without staged policies, the build as before.
 */
function* stagedBuildSteps(input: SourcedObject[], opts: BuildOptions): Steps<PolicyState> {
  const split = splitStaged(input);
  if (split.problems.length > 0) throw new PolicyLoadError(split.problems);
  if (split.staged.length === 0) return yield* buildSteps(input, opts);
  const state = yield* buildSteps(split.enforced, opts);
  const staged: StagedPolicy[] = [];
  for (const o of split.staged) {
    const candidate = yield* buildSteps([...split.enforced, o], { ...opts, previous: state });
    staged.push(stagedPolicy(o, candidate));
  }
  (state as CompiledPolicyState).attachStaged(Object.freeze(staged));
  return state;
}

function* buildSteps(input: SourcedObject[], opts: BuildOptions): Steps<PolicyState> {
  const nodeName = opts.nodeName === '' ? undefined : opts.nodeName;
  let memo = opts.previous === undefined ? undefined : memos.get(opts.previous);
  if (memo !== undefined && (memo.clusterName !== opts.clusterName || memo.nodeName !== nodeName)) memo = undefined;
  const objs = buildObjects(input, memo?.objects);
  const added = objs.added ?? [];
  const removed = objs.removed ?? [];
  // Past a quarter of the objects (a relist gives every object anew), from scratch is as cheap.
  if ((added.length + removed.length) * 4 > objs.objects.length) memo = undefined;
  const warnings = [...objs.warnings];
  const scan = scanObjects(objs.objects);
  const cluster = scan.cluster;
  yield;

  // The rules side reads the policy objects and the Secrets only.
  let rules = memo !== undefined && sameItems(memo.rules.objects, scan.ruleObjects) && sameItems(memo.rules.secretObjects, scan.secretObjects) ? memo.rules : undefined;
  const read = rules === undefined ? yield* readRulesSteps(scan.ruleObjects, cluster.secrets) : undefined;
  const problems = [...(read?.parsed.problems ?? []), ...scan.problems, ...(read?.tlsProblems ?? [])];
  if (problems.length > 0) throw new PolicyLoadError(problems);
  yield;
  let prevIds: ReadonlyMap<string, Identity> | undefined;
  const previousIds = () => (prevIds ??= previousIdentities(opts.previous));
  if (rules === undefined) rules = yield* compileRulesSide(read as NonNullable<typeof read>, scan.ruleObjects, scan.secretObjects, cluster.secrets, previousIds());
  warnings.push(...rules.warnings);

  // Endpoints: running pods with an IP of their own. Identities: reserved, then one cluster
  // identity per distinct pod label set (in order of first endpoint), then CIDR identities.
  const ctx = { clusterName: opts.clusterName, nodeName, namespaces: cluster.namespaces };
  let eps: EndpointsStage | undefined;
  // A Namespace's labels are every one of its pods' identity labels: from scratch when one changes.
  if (memo !== undefined && !hasKind(added, 'Namespace') && !hasKind(removed, 'Namespace')) {
    eps = endpointsAfter(memo.endpoints, podsOf(removed), podsOf(added), ctx);
  }
  eps ??= yield* endpointsFromScratch(cluster.pods, ctx, opts.previous, previousIds());
  warnings.push(...eps.warnings);
  const reserved = memo?.reserved ?? reservedIdentities();
  const identities =
    memo !== undefined && eps.memo.identities === memo.endpoints.identities && sameItems(rules.cidrIdentities, memo.rules.cidrIdentities)
      ? memo.identities
      : new Map([...reserved, ...eps.memo.identities, ...rules.cidrIdentities].map((i) => [i.id, i]));

  podsWithoutIP(cluster.pods, warnings);
  // ~5 ms for 1,000 rules over 2,000 pod identities: redone only when the rules or the set of pod
  // identities (byKey is kept exactly when that set is) changed, not for a pod's new IP.
  const idle = memo !== undefined && rules === memo.rules && eps.memo.byKey === memo.endpoints.byKey ? memo.idle : [];
  if (idle !== memo?.idle) policiesSelectingNothing(rules.rules, eps.memo.identities, idle as string[]);
  warnings.push(...idle);

  yield;
  const changes = memo !== undefined && eps.removed !== undefined && eps.added !== undefined ? endpointChanges(eps.removed, eps.added) : undefined;
  const svc = buildServices(cluster.services, cluster.slices, eps.memo.endpoints, eps.memo.byIP, memo && changes && { memo: memo.services, changes });
  servicesWithoutPods(cluster.services, svc.services, warnings);

  yield;
  const state = new CompiledPolicyState({
    revision: opts.revision, clusterName: opts.clusterName, objects: scan.loaded, endpoints: eps.memo.endpoints, services: svc.services, identities, warnings,
    rules: rules.rules, nodeIPs: [...opts.nodeIPs, ...eps.memo.hostIPs], remoteNodeIPs: eps.memo.remoteNodeIPs, allowLocalhost: opts.allowLocalhost,
    cidrIdentities: rules.cidrIdentities, resolver: new Resolver(svc.services, eps.memo.endpoints, eps.memo.byIP), policyRules: rules.policyRules,
    follows: opts.previous && { state: opts.previous, removed: memo && eps.removed, added: memo && eps.added },
  });
  memos.set(state, {
    clusterName: opts.clusterName, nodeName, objects: objs.objects, rules, endpoints: eps.memo, services: svc, reserved, identities, idle,
  });
  return state;
}
