/**
 * `--manage-iptables`: l7guard owns its interception, the way Cilium's agent owns its proxy
 * redirects. After every revision it works out which destinations must pass through it
 * (plan.ts), gives each a redirect listener from `--redirect-ports` (ports.ts), and reconciles
 * its own nat chain in one iptables-restore (iptables.ts). Pods and Services coming and going
 * change the rules without a restart.
 *
 * Order matters for live traffic: listeners for new destinations open before the rules that send
 * traffic to them, and listeners of dropped destinations close only after their rules are gone (so
 * a connection is never redirected to a closed port). On stop the chain goes first: traffic flows
 * straight to the pods again while the listeners drain.
 */
import type { Logger } from 'pino';
import type { PolicyState } from '../../policy/index.js';
import type { DataPlane } from '../data-plane.js';
import { planTargets, targetKey, type InterceptMode, type InterceptTarget } from './plan.js';
import type { PortPool } from './ports.js';

export interface RedirectRule {
  readonly ip: string;
  readonly port: number;
  readonly toPort: number;
  readonly comment: string;
}

/** What writes the rules (iptables.ts IptablesManager). */
export interface RuleWriter {
  apply(rules: readonly RedirectRule[]): Promise<unknown>;
  cleanup(): Promise<unknown>;
}

export interface InterceptionStatus {
  readonly mode: InterceptMode;
  readonly ports: string;
  readonly redirects: readonly { readonly destination: string; readonly what: string; readonly listener: number }[];
  /** Destinations that must be intercepted but got no listener (range used up, port taken). */
  readonly unprotected: readonly string[];
  readonly lastError: string | undefined;
  readonly revision: number;
}

/** Backoff of a failed reconcile: 500 ms doubling to 30 s. */
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

export class InterceptionController {
  readonly #data: DataPlane;
  readonly #rules: RuleWriter;
  readonly #ports: PortPool;
  readonly #mode: InterceptMode;
  readonly #log: Logger;
  /** key -> the destination and its listener port, as installed. */
  #installed = new Map<string, InterceptTarget & { toPort: number }>();
  #unprotected: string[] = [];
  #lastError: string | undefined;
  #revision = 0;
  #tail: Promise<void> = Promise.resolve();
  #stopped = false;
  #latest: PolicyState | undefined;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;

  constructor(opts: { data: DataPlane; rules: RuleWriter; ports: PortPool; mode: InterceptMode; log: Logger }) {
    this.#data = opts.data;
    this.#rules = opts.rules;
    this.#ports = opts.ports;
    this.#mode = opts.mode;
    this.#log = opts.log;
  }

  /**
   * Serialised: revisions reconcile one after the other, the newest state last. A failed reconcile
   * (iptables busy or failing) is tried again with backoff, with the newest state by then, until one
   * succeeds: until then the rules in force stay.
   */
  reconcile(state: PolicyState): Promise<void> {
    this.#latest = state;
    clearTimeout(this.#retry);
    const run = this.#tail.then(() => (this.#stopped ? undefined : this.#reconcile(state)));
    this.#tail = run.then(() => { this.#failures = 0; }, (err: unknown) => {
      this.#lastError = (err as Error).message;
      const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(this.#failures++, 10));
      this.#log.error({ err: (err as Error).message, revision: state.revision, retryInMs: delay }, 'interception: reconcile failed; the rules in force stay');
      if (this.#stopped || this.#latest !== state) return;
      this.#retry = setTimeout(() => void this.reconcile(this.#latest!).catch(() => undefined), delay);
      this.#retry.unref();
    });
    return run;
  }

  /** Removes the chain and its jumps, then closes every redirect listener (after the reconciles in flight). */
  stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    const done = this.#tail.then(async () => {
      await this.#rules.cleanup();
      const ports = [...this.#installed.values()].map((t) => t.toPort);
      this.#installed = new Map();
      await Promise.all(ports.map((p) => this.#data.removeRedirect(p)));
    });
    this.#tail = done.catch(() => undefined);
    return done;
  }

  status(): InterceptionStatus {
    return {
      mode: this.#mode,
      ports: `${this.#ports.first}-${this.#ports.last}`,
      redirects: [...this.#installed.values()].map((t) => ({ destination: targetKey(t), what: t.what, listener: t.toPort })),
      unprotected: this.#unprotected,
      lastError: this.#lastError,
      revision: this.#revision,
    };
  }

  async #reconcile(state: PolicyState): Promise<void> {
    const wanted = new Map(planTargets(state, this.#mode).map((t) => [targetKey(t), t]));
    const next = new Map<string, InterceptTarget & { toPort: number }>();
    const unprotected: string[] = [];
    /** Listeners this reconcile opened: if it fails, they close and give their ports back. */
    const opened: [string, number][] = [];
    try {
      for (const [key, t] of wanted) {
        const had = this.#installed.get(key);
        if (had !== undefined) {
          next.set(key, { ...t, toPort: had.toPort });
          continue;
        }
        const toPort = await this.#open(key, t);
        if (toPort === undefined) unprotected.push(key);
        else {
          opened.push([key, toPort]);
          next.set(key, { ...t, toPort });
        }
      }
      await this.#rules.apply([...next.values()].map((t) => ({ ip: t.ip, port: t.port, toPort: t.toPort, comment: `l7guard ${t.what}` })));
    } catch (err) {
      // Nothing of this revision is in force: a retry starts from the rules and listeners that are.
      for (const [key, toPort] of opened) {
        this.#ports.release(key);
        await this.#data.removeRedirect(toPort);
      }
      throw err;
    }
    const gone = [...this.#installed].filter(([key]) => !next.has(key));
    const added = [...next.keys()].filter((key) => !this.#installed.has(key)).length;
    this.#installed = next;
    this.#unprotected = unprotected;
    this.#revision = state.revision;
    this.#lastError = undefined;
    for (const [key, t] of gone) {
      this.#ports.release(key);
      await this.#data.removeRedirect(t.toPort);
    }
    if (unprotected.length > 0) {
      this.#log.error({ destinations: unprotected.slice(0, 20), count: unprotected.length, ports: `${this.#ports.first}-${this.#ports.last}` },
        'interception: destinations left unprotected (no free redirect port): widen --redirect-ports');
    }
    if (added > 0 || gone.length > 0) {
      this.#log.info({ revision: state.revision, redirects: next.size, added, removed: gone.length }, 'interception reconciled');
    }
  }

  /** A listener for `t` on a port of the pool; a port something else holds is retired and the next tried. */
  async #open(key: string, t: InterceptTarget): Promise<number | undefined> {
    for (;;) {
      const toPort = this.#ports.take(key);
      if (toPort === undefined) return undefined;
      try {
        await this.#data.addRedirect('0.0.0.0', toPort, { ip: t.ip, port: t.port });
        return toPort;
      } catch (err) {
        const code = (err as { code?: string }).code;
        // Only a port someone else holds is given up for good; anything else (out of file
        // descriptors, say) fails this reconcile, which is retried, and keeps the pool whole.
        if (code !== 'EADDRINUSE' && code !== 'EACCES') {
          this.#ports.release(key);
          throw err;
        }
        this.#log.warn({ port: toPort, err: (err as Error).message }, 'interception: redirect port unavailable; trying the next');
        this.#ports.retire(key);
      }
    }
  }
}
