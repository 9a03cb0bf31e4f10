/**
 * Policy audit mode, as Cilium's agent has it: `--policy-audit-mode` for every endpoint, and the
 * per-endpoint `PolicyAuditMode` option (`cilium endpoint config ID PolicyAuditMode=Enabled`) that
 * overrides it. An audited endpoint's would-be denials are forwarded and flowed with verdict AUDIT
 * (docs/audit.md; docs.cilium.io security/policy-creation, "Policy Audit Mode").
 *
 * The option belongs to the endpoint, not to a revision: it is kept by the pod's namespace/name, so
 * it survives every reload, and a revision's Endpoint objects find theirs on first use. Only a
 * request that policy denies asks (exchange.ts), and with no endpoint in audit mode that costs one
 * field read; otherwise one WeakMap lookup per (revision's) endpoint object.
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
  #byEndpoint = new WeakMap<Endpoint, boolean>();
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
    if (ep === undefined || this.#overrides.size === 0) return this.#global;
    let on = this.#byEndpoint.get(ep);
    if (on === undefined) {
      on = this.#overrides.get(`${ep.namespace}/${ep.name}`) ?? this.#global;
      this.#byEndpoint.set(ep, on);
    }
    return on;
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
    this.#byEndpoint = new WeakMap();
    this.#any = this.#global || [...this.#overrides.values()].some((v) => v);
    if (this.#listeners.length === 0) return;
    const s = this.snapshot();
    for (const l of this.#listeners) l(s);
  }
}
