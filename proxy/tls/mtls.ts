/**
 * `--identity-from mtls`: a client certificate's SPIFFE URI SAN
 * `spiffe://<trust-domain>/ns/<namespace>/sa/<service account>` names the source: the identity of
 * the pods with that namespace and service account (their `io.kubernetes.pod.namespace` and
 * `io.cilium.k8s.policy.serviceaccount` labels), instead of the connection's address. The
 * certificate must chain to `--client-ca` (the handshake refuses it otherwise).
 */
import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls';
import type { PolicyState, Source } from '../../policy/model.js';

export interface MtlsIdentity {
  /** PEM of the CA client certificates must chain to. */
  readonly ca: string;
  /** undefined: no usable SPIFFE SAN, or a chain that does not reach `ca` (the connection is closed). */
  source(cert: DetailedPeerCertificate): ((state: PolicyState) => Source | undefined) | undefined;
}

/** Every certificate of a PEM bundle (a CA file may hold several roots). */
function parseBundle(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((c) => new X509Certificate(c));
}

/**
 * Whether the peer's chain (as the handshake received it) reaches one of `roots` by signature. The
 * handshake already verified the chain against every CA of the secure context; with a policy's
 * `terminatingTLS` `trustedCA` in that context too, only this says that `--client-ca` vouched for
 * the SPIFFE ID (a CA trusted for TLS must not mint pod identities).
 */
export function chainsTo(cert: DetailedPeerCertificate, roots: readonly X509Certificate[]): boolean {
  const seen = new Set<DetailedPeerCertificate>();
  for (let c: DetailedPeerCertificate | undefined = cert; c?.raw !== undefined && !seen.has(c); c = c.issuerCertificate) {
    seen.add(c);
    const x = new X509Certificate(c.raw);
    for (const r of roots) {
      if (x.checkIssued(r) && x.verify(r.publicKey)) return true;
    }
  }
  return false;
}

const SPIFFE = /^spiffe:\/\/([^/]+)\/ns\/([a-z0-9-]{1,63})\/sa\/([a-z0-9.-]{1,253})$/;

/** The SPIFFE IDs among a certificate's URI SANs (`subjectaltname`: "DNS:a, URI:spiffe://…"). */
export function spiffeIds(cert: PeerCertificate): { trustDomain: string; namespace: string; serviceAccount: string }[] {
  const out: { trustDomain: string; namespace: string; serviceAccount: string }[] = [];
  for (const part of (cert.subjectaltname ?? '').split(', ')) {
    if (!part.startsWith('URI:')) continue;
    const m = SPIFFE.exec(part.slice(4));
    if (m) out.push({ trustDomain: m[1] as string, namespace: m[2] as string, serviceAccount: m[3] as string });
  }
  return out;
}

/** `trustDomain` undefined: any. Exactly one SPIFFE ID is required (two would be ambiguous). */
export function mtlsSource(ca: string, trustDomain: string | undefined): MtlsIdentity {
  const roots = parseBundle(ca);
  return {
    ca,
    source(cert) {
      if (!chainsTo(cert, roots)) return undefined;
      const ids = spiffeIds(cert).filter((i) => trustDomain === undefined || i.trustDomain === trustDomain);
      if (ids.length !== 1) return undefined;
      const { namespace, serviceAccount } = ids[0]!;
      const nsLabel = `k8s:io.kubernetes.pod.namespace=${namespace}`;
      const saLabel = `k8s:io.cilium.k8s.policy.serviceaccount=${serviceAccount}`;
      return (state) => {
        // Pods of one service account can differ in labels: the first in (namespace, name) order
        // decides, so their policies should not differ (a SPIFFE ID names the account, not the pod).
        const ep = state.endpoints.find((e) => e.identity.labels.includes(nsLabel) && e.identity.labels.includes(saLabel));
        return ep === undefined ? undefined : { identity: ep.identity, endpoint: ep };
      };
    },
  };
}
