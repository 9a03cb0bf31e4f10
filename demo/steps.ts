/**
 * Cilium's Star Wars demo walk-through as data: which policy files are applied, which ship sends what, and what the
 * recorded run of the demo on a Cilium cluster shows. run.ts only interprets this table.
 */
import { POLICIES, SERVICE_HOST } from '../fixtures/star-wars.js';
import { LANDED_BODY, PANIC_BODY } from './deathstar.js';

/**
 * - landed:  200 `Ship landed\n`, exactly one `POST /v1/request-landing` reached a deathstar replica.
 * - panic:   503 with the backtrace; the request reached deathstar (1 to 4 times: Envoy retries 5xx up
 *            to 3 times, docs/semantics.md#what-the-proxy-answers); every replica it reached crashes ~2 s later.
 * - denied:  403 `Access denied\r\n` from the proxy; nothing reached deathstar.
 * - dropped: the client got no HTTP bytes at all and the connection was closed; nothing reached deathstar.
 */
export type Outcome = 'landed' | 'panic' | 'denied' | 'dropped';

export type Ship = 'tiefighter' | 'xwing';

export interface ShipCommand {
  readonly ship: Ship;
  readonly method: 'POST' | 'PUT';
  readonly path: string;
  readonly expect: Outcome;
  /**
   * Substrings that must appear in one compact Hubble line each, among this command's flows. The
   * `<ship>` prefix check is added by run.ts (`default/<ship>:`).
   */
  readonly flows?: readonly string[];
}

export interface DemoStep {
  readonly title: string;
  /** The demo's apply command and kubectl's answer, printed before the step's commands. */
  readonly apply?: { readonly file: string; readonly output: string };
  /**
   * Policy files (under demo/manifests/) the proxy must be serving for this step, after the cluster.
   * Later files win on a name clash, like `kubectl apply` of a CNP with the same name.
   */
  readonly policies: readonly string[];
  readonly commands: readonly ShipCommand[];
}

const LANDING = { method: 'POST', path: '/v1/request-landing' } as const;
const EXHAUST = { method: 'PUT', path: '/v1/exhaust-port' } as const;

const L3L4 = POLICIES.l3l4;
const L7 = POLICIES.l7;

const SYN_DROP = 'Policy denied DROPPED (TCP Flags: SYN)';
const httpSummary = (verdict: 'FORWARDED' | 'DROPPED', m: { method: string; path: string }) =>
  `http-request ${verdict} (HTTP/1.1 ${m.method} http://${SERVICE_HOST}${m.path})`;

export const STEPS: readonly DemoStep[] = [
  {
    title: '1. Check current access: no policy, every ship may land',
    policies: [],
    commands: [
      { ship: 'xwing', ...LANDING, expect: 'landed' },
      { ship: 'tiefighter', ...LANDING, expect: 'landed' },
    ],
  },
  {
    title: '2. L3/L4 policy: only empire ships (org=empire) may reach deathstar on TCP 80',
    apply: { file: L3L4, output: 'ciliumnetworkpolicy.cilium.io/rule1 created' },
    policies: [L3L4],
    commands: [
      { ship: 'tiefighter', ...LANDING, expect: 'landed' },
      { ship: 'xwing', ...LANDING, expect: 'dropped', flows: [SYN_DROP] },
    ],
  },
  {
    title: '3. Under the L3/L4 policy, tiefighter can still reach the sensitive exhaust port',
    policies: [L3L4],
    commands: [{ ship: 'tiefighter', ...EXHAUST, expect: 'panic' }],
  },
  {
    title: '4. L7 policy: tiefighter may only POST /v1/request-landing',
    apply: { file: L7, output: 'ciliumnetworkpolicy.cilium.io/rule1 configured' },
    policies: [L3L4, L7],
    commands: [
      { ship: 'tiefighter', ...LANDING, expect: 'landed', flows: [httpSummary('FORWARDED', LANDING)] },
      { ship: 'tiefighter', ...EXHAUST, expect: 'denied', flows: [httpSummary('DROPPED', EXHAUST)] },
      { ship: 'xwing', ...LANDING, expect: 'dropped', flows: [SYN_DROP] },
    ],
  },
];

/** What `curl -s` prints in Cilium's demo, per outcome (undefined: nothing, curl fails). */
export const SEED_OUTPUT: Readonly<Record<Outcome, { status: number; body: string } | undefined>> = {
  landed: { status: 200, body: LANDED_BODY },
  panic: { status: 503, body: PANIC_BODY },
  denied: { status: 403, body: 'Access denied\r\n' },
  dropped: undefined,
};

/** Allowed number of requests reaching deathstar, and the one request line they must be. */
export function expectedHits(c: ShipCommand): { min: number; max: number } {
  switch (c.expect) {
    case 'landed':
      return { min: 1, max: 1 };
    case 'panic':
      return { min: 1, max: 4 };
    case 'denied':
    case 'dropped':
      return { min: 0, max: 0 };
  }
}

export function curlCommandLine(c: ShipCommand): string {
  return `kubectl exec ${c.ship} -- curl -s -X${c.method} ${SERVICE_HOST}${c.path}`;
}
