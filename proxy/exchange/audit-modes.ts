/**
 * Policy audit mode, as Cilium's agent has it: `--policy-audit-mode` for every endpoint, and the
 * per-endpoint `PolicyAuditMode` option (`cilium endpoint config ID PolicyAuditMode=Enabled`) that
 * overrides it. An audited endpoint's would-be denials are forwarded and flowed with verdict AUDIT
 * (docs/audit.md; docs.cilium.io security/policy-creation, "Policy Audit Mode").
 *
 * The option belongs to the endpoint, not to a revision: it is kept by the pod's namespace/name, so
 * it survives every reload while the pod exists (and ends when it leaves), and is indexed by endpoint ID for the revision in force whenever either
 * changes (`index`). Only a request that policy denies asks (exchange.ts): one field read when no
 * endpoint is in audit mode, else one typed-array read, never a map lookup.
 */
import type { Endpoint, RuleRef } from '../../policy/model.js';

/** What crosses to `--workers` workers: the flag and every per-endpoint option set. */
export interface AuditSnapshot {
  readonly global: boolean;
  /** ["namespace/name", enabled]. */
  readonly endpoints: readonly (readonly [string, boolean])[];
}

export class AuditModes {
  #global: boolean;
  readonly #overrides = new Map<string, boolean>();
  /** By endpoint ID (IDs are below 65536, policy/model.ts): -1 no option (the flag decides), 0 Disabled, 1 Enabled. */
  readonly #byId = new Int8Array(65536).fill(-1);
  #endpoints: readonly Endpoint[] = [];
  /** False when no endpoint can be audited: the deny path then reads only this. */
  #any: boolean;
  readonly #listeners: ((s: AuditSnapshot) => void)[] = [];

  constructor(global = false) {
    this.#global = global;
    this.#any = global;
  }

  get global(): boolean {
    return this.#global;
  }

  /** Whether policy for `ep` (the endpoint whose ingress or egress denies) is audited, not enforced. */
  enabled(ep: Endpoint | undefined): boolean {
    if (!this.#any) return false;
    // Another node's pods (ID 0) take no option: `endpoint config` addresses this node's.
    const v = ep === undefined || ep.id === 0 ? -1 : this.#byId[ep.id]!;
    return v === -1 ? this.#global : v === 1;
  }

  /** The endpoints of the revision now in force (StateRef.onSwap): the options follow their pods. */
  index(endpoints: readonly Endpoint[]): void {
    this.#endpoints = endpoints;
    if (this.#overrides.size > 0) {
      // The option dies with its endpoint, as Cilium's does: a pod recreated under the same name
      // (a StatefulSet's web-0) starts from the flag, never in an audit mode nobody set for it.
      const present = new Set<string>();
      for (const ep of endpoints) if (ep.id !== 0) present.add(`${ep.namespace}/${ep.name}`);
      let gone = false;
      for (const key of this.#overrides.keys()) if (!present.has(key)) gone = this.#overrides.delete(key) || gone;
      if (gone) {
        this.#changed();
        return;
      }
    }
    this.#reindex();
  }

  #reindex(): void {
    this.#byId.fill(-1);
    if (this.#overrides.size === 0) return;
    for (const ep of this.#endpoints) {
      const on = ep.id === 0 ? undefined : this.#overrides.get(`${ep.namespace}/${ep.name}`);
      if (on !== undefined) this.#byId[ep.id] = on ? 1 : 0;
    }
  }

  /**
   * An L7 denial is audited when the endpoint of every direction whose rules judged it is: the
   * destination's for ingress rules, the source's for egress rules (`by` empty: ingress). A request
   * both directions judge is forwarded only when neither endpoint enforces.
   */
  l7Audited(src: Endpoint | undefined, dst: Endpoint, by: readonly RuleRef[] | undefined): boolean {
    if (!this.#any) return false;
    let ingress = by === undefined || by.length === 0;
    let egress = false;
    if (by !== undefined) for (const r of by) if (r.direction === 'EGRESS') egress = true; else ingress = true;
    return (!ingress || this.enabled(dst)) && (!egress || this.enabled(src));
  }

  /** The endpoint's own option, if one was set (`endpoint config`); undefined: it follows the flag. */
  option(ep: { readonly namespace: string; readonly name: string }): boolean | undefined {
    return this.#overrides.get(`${ep.namespace}/${ep.name}`);
  }

  set(ep: { readonly namespace: string; readonly name: string }, enabled: boolean): void {
    this.#overrides.set(`${ep.namespace}/${ep.name}`, enabled);
    this.#changed();
  }

  snapshot(): AuditSnapshot {
    return { global: this.#global, endpoints: [...this.#overrides] };
  }

  /** A worker takes the primary's settings whole. */
  restore(s: AuditSnapshot): void {
    this.#global = s.global;
    this.#overrides.clear();
    for (const [k, v] of s.endpoints) this.#overrides.set(k, v);
    this.#changed();
  }

  onChange(l: (s: AuditSnapshot) => void): void {
    this.#listeners.push(l);
  }

  #changed(): void {
    this.#reindex();
    this.#any = this.#global || [...this.#overrides.values()].some((v) => v);
    if (this.#listeners.length === 0) return;
    const s = this.snapshot();
    for (const l of this.#listeners) l(s);
  }
}
