/**
 * CNP `terminatingTLS` / `originatingTLS` / `serverNames` (cilium/cilium pkg/policy/api/l4.go
 * PortRule, TLSContext; docs.cilium.io security/tls-visibility): Secrets resolved at load time, and
 * the per-(source, destination, port) TLS decision the TLS listener asks for once per handshake.
 */
import { createSecureContext } from 'node:tls';
import { coversPort, type Contribution, type DirectionPolicy, type PeerMatcher } from './compile.js';
import { type LoadProblem, ProblemCodes } from './errors.js';
import type { PortTls, TlsDecision, TlsMaterial } from './model.js';
import { objectLabel, type PolicySpec, type PortRuleSpec, type TlsContextSpec } from './schema.js';
import type { PeerIdentity } from './selector.js';

type SecretData = ReadonlyMap<string, ReadonlyMap<string, string>>;

/** Cilium's default items of a TLSContext Secret (used when the field is omitted and the item exists). */
const DEFAULT_ITEMS = { certificate: 'tls.crt', privateKey: 'tls.key', trustedCA: 'ca.crt' } as const;

const hasTls = (r: PolicySpec['rules'][number]): boolean =>
  [r.ingress, r.egress].some((list) => list.some((pr) => pr.toPorts?.some((tp) => tp.tls !== undefined) === true));

/**
 * Resolves every TLS context of the parsed policies against the Secrets given with `-f`. A missing
 * Secret, a named item that is absent, a context without what it needs or PEM that Node's TLS cannot
 * load is a load problem, so a broken policy never reaches the data path.
 */
export function resolveTls(policies: readonly PolicySpec[], secrets: SecretData, problems: LoadProblem[]): Map<PortRuleSpec, PortTls> {
  const out = new Map<PortRuleSpec, PortTls>();
  for (const p of policies) {
    if (!p.rules.some(hasTls)) continue;
    const object = objectLabel(p.kind, p.namespace, p.name);
    const problem = (field: string, message: string) =>
      problems.push({ code: ProblemCodes.L7G_ERR_POLICY_VALUE, file: p.file, object, field, line: undefined, message });
    for (const r of p.rules) {
      for (const pr of r.ingress.length === 0 ? r.egress : r.egress.length === 0 ? r.ingress : [...r.ingress, ...r.egress]) {
        for (const tp of pr.toPorts ?? []) {
          if (tp.tls === undefined) continue;
          const terminating = tp.tls.terminating && material(tp.tls.terminating, 'terminating', secrets, problem);
          const originating = tp.tls.originating && material(tp.tls.originating, 'originating', secrets, problem);
          out.set(tp, Object.freeze({ terminating, originating, serverNames: Object.freeze([...tp.tls.serverNames]) }));
        }
      }
    }
  }
  return out;
}

function material(
  spec: TlsContextSpec,
  role: 'terminating' | 'originating',
  secrets: SecretData,
  problem: (field: string, message: string) => void,
): TlsMaterial | undefined {
  const ref = `${spec.secret.namespace}/${spec.secret.name}`;
  const data = secrets.get(ref);
  if (data === undefined) {
    problem(`${spec.field}.secret`, `Secret ${ref} not found in the loaded files`);
    return undefined;
  }
  let ok = true;
  const item = (k: keyof typeof DEFAULT_ITEMS): string | undefined => {
    const named = spec[k];
    if (named === undefined) return data.get(DEFAULT_ITEMS[k]);
    const v = data.get(named);
    if (v === undefined) {
      problem(`${spec.field}.${k}`, `Secret ${ref} has no item ${JSON.stringify(named)}`);
      ok = false;
    }
    return v;
  };
  const cert = item('certificate');
  const key = item('privateKey');
  // Terminating: a CA means "require and verify client certificates", so only an explicitly named
  // trustedCA turns that on (the ca.crt of a kubernetes.io/tls Secret would otherwise lock out
  // every client without a certificate). Originating: the backend is always verified.
  const ca = role === 'originating' || spec.trustedCA !== undefined ? item('trustedCA') : undefined;
  if (!ok) return undefined;
  if (role === 'terminating' && (cert === undefined || key === undefined)) {
    problem(spec.field, `Secret ${ref} needs a certificate and a private key (items tls.crt and tls.key, or certificate/privateKey)`);
    return undefined;
  }
  if (role === 'originating' && ca === undefined) {
    problem(spec.field, `Secret ${ref} needs a trusted CA to verify the backend (item ca.crt, or trustedCA)`);
    return undefined;
  }
  if ((cert === undefined) !== (key === undefined)) {
    problem(spec.field, `Secret ${ref}: a certificate needs its private key and the other way round`);
    return undefined;
  }
  try {
    createSecureContext({ cert, key, ca });
  } catch (err) {
    problem(spec.field, `Secret ${ref}: unusable TLS material: ${(err as Error).message}`);
    return undefined;
  }
  return Object.freeze({ secret: ref, cert, key, ca });
}

/** `*.example.com` matches exactly one more label; anything else is an exact, case-insensitive match. */
export function serverNameMatches(pattern: string, sni: string): boolean {
  if (!pattern.startsWith('*.')) return pattern === sni;
  const dot = sni.indexOf('.');
  return dot > 0 && sni.slice(dot + 1) === pattern.slice(2);
}

interface Side {
  readonly terminating: TlsMaterial | undefined;
  readonly originating: TlsMaterial | undefined;
  /** undefined = any SNI. */
  readonly names: readonly string[] | undefined;
}

const ANY_SIDE: Side = { terminating: undefined, originating: undefined, names: undefined };

/**
 * The covering allow contributions of one direction for (peer, port), in rule order. A covering
 * rule without serverNames lets any SNI through (as it would let any plain connection through);
 * only when every covering rule lists names must the SNI be one of them. Denies are decide()'s.
 */
function side(dp: DirectionPolicy | undefined, peer: PeerIdentity, port: number, matches: PeerMatcher): Side {
  if (dp === undefined) return ANY_SIDE;
  const covering: Contribution[] = dp.allows.filter((c) => coversPort(c, port) && matches(c, peer));
  if (covering.length === 0) return ANY_SIDE;
  let terminating: TlsMaterial | undefined;
  let originating: TlsMaterial | undefined;
  let names: string[] | undefined = [];
  for (const c of covering) {
    terminating ??= c.tls?.terminating;
    originating ??= c.tls?.originating;
    if (c.tls === undefined || c.tls.serverNames.length === 0) names = undefined;
    else names?.push(...c.tls.serverNames);
  }
  return { terminating, originating, names };
}

/**
 * Ingress (the destination's own rules) first, then egress (the source's): the certificate a
 * destination presents is the one its own policy names; either side's serverNames can refuse.
 */
export function tlsDecision(
  ingress: DirectionPolicy | undefined,
  egress: DirectionPolicy | undefined,
  src: PeerIdentity,
  dst: PeerIdentity,
  port: number,
  matches: PeerMatcher,
  gate: boolean,
): TlsDecision {
  const i = side(ingress, src, port, matches);
  const e = side(egress, dst, port, matches);
  const lists = gate ? [i.names, e.names].filter((n): n is readonly string[] => n !== undefined) : [];
  return Object.freeze({
    terminating: i.terminating ?? e.terminating,
    originating: i.originating ?? e.originating,
    serverNameAllowed(sni: string): boolean {
      const s = sni.toLowerCase().replace(/\.$/, '');
      return lists.every((l) => l.some((p) => serverNameMatches(p, s)));
    },
  });
}
