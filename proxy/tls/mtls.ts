/**
 * `--identity-from mtls`: a client certificate's SPIFFE URI SAN
 * `spiffe://<trust-domain>/ns/<namespace>/sa/<service account>` names the source: the identity of
 * the pods with that namespace and service account (their `io.kubernetes.pod.namespace` and
 * `io.cilium.k8s.policy.serviceaccount` labels), instead of the connection's address. The
 * certificate must chain to `--client-ca` (the handshake refuses it otherwise).
 */
import type { PeerCertificate } from 'node:tls';
import type { PolicyState, Source } from '../../policy/model.js';

export interface MtlsIdentity {
  /** PEM of the CA client certificates must chain to. */
  readonly ca: string;
  /** undefined: no usable SPIFFE SAN (the connection is closed). */
  source(cert: PeerCertificate): ((state: PolicyState) => Source | undefined) | undefined;
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
  return {
    ca,
    source(cert) {
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
