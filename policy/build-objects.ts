/**
 * The objects of a build: deduplicated (load.ts dedupe), each read once per object (what it is,
 * its parsed form, its LoadedObject), and compared with the previous build's objects: which came
 * and which went (a changed object is both; policy/build.ts rebuilds from those).
 *
 * Objects are never changed once made: the Kubernetes source keeps one SourcedObject per API object
 * version, file snapshots one per parsed document. What is read of one is therefore kept by object
 * (weakly: an object nobody holds takes its entry with it).
 */
import type { LoadProblem } from './errors.js';
import { addToCluster, type Cluster, type ClusterItem, clusterItem, emptyCluster, type PodInfo } from './kube.js';
import { dedupe, type SourcedObject } from './load.js';
import type { LoadedObject } from './model.js';

/**
 * A cluster object's parsed form, or kind undefined for what the rules side reads. Flat (one object
 * per object, sharing the empty problem list): an info object holding a ClusterItem and a list of
 * its own held ~55 bytes more an object, ~6 MiB for 100,000 pods.
 */
type ObjectInfo = (ClusterItem | { readonly kind: undefined; readonly value: undefined }) & {
  readonly loaded: LoadedObject;
  readonly problems: readonly LoadProblem[];
  /** Scratch for diff(), which sets and reads it in one synchronous pass. */
  mark: number;
};

const infos = new WeakMap<SourcedObject, ObjectInfo>();
const NO_PROBLEMS: readonly LoadProblem[] = Object.freeze([]);

function infoOf(o: SourcedObject): ObjectInfo {
  let info = infos.get(o);
  if (info === undefined) {
    const problems: LoadProblem[] = [];
    const item = clusterItem(o, problems) ?? { kind: undefined, value: undefined };
    const namespace = o.kind === 'CiliumClusterwideNetworkPolicy' || o.kind === 'Namespace' ? undefined : (o.namespace ?? 'default');
    const loaded: LoadedObject = Object.freeze({ kind: o.kind, namespace, name: o.name, file: o.file });
    info = { kind: item.kind, value: item.value, loaded, problems: problems.length === 0 ? NO_PROBLEMS : problems, mark: 0 } as ObjectInfo;
    infos.set(o, info);
  }
  return info;
}

export interface BuildObjects {
  /** Deduplicated, in order: what a next build compares its objects with. */
  readonly objects: readonly SourcedObject[];
  readonly warnings: readonly string[];
  /** Against the previous build's objects; undefined without one. */
  readonly added: readonly SourcedObject[] | undefined;
  readonly removed: readonly SourcedObject[] | undefined;
}

const sameKey = (a: SourcedObject, b: SourcedObject) => a.kind === b.kind && a.namespace === b.namespace && a.name === b.name;

/**
 * Deduplicates `input` as dedupe() does. When it has the keys of the previous build's objects (which
 * dedupe() left distinct) at the same places, as the Kubernetes source lists objects updated in
 * place, it has no duplicate: only the changed places are looked at (dedupe() of 13,000 objects
 * took ~2 ms).
 */
export function buildObjects(input: readonly SourcedObject[], previous: readonly SourcedObject[] | undefined): BuildObjects {
  if (previous !== undefined && input.length === previous.length) {
    const added: SourcedObject[] = [];
    const removed: SourcedObject[] = [];
    let aligned = true;
    for (let i = 0; i < input.length; i++) {
      const o = input[i] as SourcedObject;
      const p = previous[i] as SourcedObject;
      if (o === p) continue;
      if (!sameKey(o, p)) {
        aligned = false;
        break;
      }
      added.push(o);
      removed.push(p);
    }
    if (aligned) return { objects: input.slice(), warnings: [], added, removed };
  }
  const warnings: string[] = [];
  const objects = dedupe(input, warnings);
  const d = previous === undefined ? undefined : diff(previous, objects);
  return { objects, warnings, added: d?.added, removed: d?.removed };
}

let marks = 0;

/** Objects of `now` not in `before`, and of `before` not in `now` (neither has one object twice). */
function diff(before: readonly SourcedObject[], now: readonly SourcedObject[]): { added: SourcedObject[]; removed: SourcedObject[] } {
  // Synchronous from the first mark to the last read: no other build runs in between.
  const was = ++marks;
  const is = ++marks;
  for (const o of before) infoOf(o).mark = was;
  const added: SourcedObject[] = [];
  for (const o of now) {
    const info = infoOf(o);
    if (info.mark !== was) added.push(o);
    info.mark = is;
  }
  const removed = before.filter((o) => infoOf(o).mark === was);
  return { added, removed };
}

/** What a build reads of its objects. */
export interface ObjectScan {
  readonly loaded: LoadedObject[];
  /** The objects the rules side reads (policies, kind errors, skipped kinds), and the Secrets. */
  readonly ruleObjects: SourcedObject[];
  readonly secretObjects: SourcedObject[];
  readonly cluster: Cluster;
  /** The cluster objects' problems, in object order. */
  readonly problems: LoadProblem[];
}

export function scanObjects(objects: readonly SourcedObject[]): ObjectScan {
  const s: ObjectScan = { loaded: [], ruleObjects: [], secretObjects: [], cluster: emptyCluster(), problems: [] };
  for (const o of objects) {
    const info = infoOf(o);
    s.loaded.push(info.loaded);
    for (const p of info.problems) s.problems.push(p);
    if (info.kind === undefined) s.ruleObjects.push(o);
    else {
      if (info.kind === 'Secret') s.secretObjects.push(o);
      addToCluster(s.cluster, o, info);
    }
  }
  return s;
}

/** The Pods among some objects, parsed. */
export function podsOf(objects: readonly SourcedObject[]): PodInfo[] {
  const pods: PodInfo[] = [];
  for (const o of objects) {
    const info = infoOf(o);
    if (info.kind === 'Pod') pods.push(info.value);
  }
  return pods;
}

/** Some of `objects` is a cluster object of this kind. */
export function hasKind(objects: readonly SourcedObject[], kind: ClusterItem['kind']): boolean {
  return objects.some((o) => infoOf(o).kind === kind);
}
