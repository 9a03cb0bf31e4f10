/**
 * A Kubernetes `Secret` of type `kubernetes.io/tls` holding an issued certificate: `tls.crt`,
 * `tls.key` and `ca.crt`, the items Cilium's TLSContext reads by default
 * (cilium/cilium pkg/policy/api/l4.go TLSContext).
 */
import type { IssuedCert } from './ca.js';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export function tlsSecretYaml(name: string, namespace: string, c: IssuedCert): string {
  if (!DNS_SUBDOMAIN.test(name)) throw new Error(`secret name ${JSON.stringify(name)} is not a DNS subdomain`);
  if (!DNS_SUBDOMAIN.test(namespace)) throw new Error(`namespace ${JSON.stringify(namespace)} is not a DNS name`);
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  return [
    'apiVersion: v1',
    'kind: Secret',
    'metadata:',
    `  name: ${name}`,
    `  namespace: ${namespace}`,
    'type: kubernetes.io/tls',
    'data:',
    `  tls.crt: ${b64(c.cert)}`,
    `  tls.key: ${b64(c.key)}`,
    `  ca.crt: ${b64(c.ca)}`,
    '',
  ].join('\n');
}
