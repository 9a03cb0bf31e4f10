/**
 * A local certificate authority for tests, the demo and users: ECDSA P-256 keys, a self-signed CA,
 * and leaf certificates it signs (DNS / IP / SPIFFE URI SANs). @peculiar/x509 builds and signs the
 * certificates over node:crypto's WebCrypto; node:crypto alone can parse X.509 but not issue it.
 * 1.14.x on purpose: 2.x throws at import without `reflect-metadata`.
 */
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

// The DOM `Crypto` type is not in our lib (ES2023 + node): node's webcrypto is the same object.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
/** notBefore is backdated so that a peer whose clock is a little behind still accepts a fresh cert. */
const BACKDATE_MS = 5 * 60_000;

export interface PemPair {
  /** PEM "CERTIFICATE". */
  readonly cert: string;
  /** PEM "PRIVATE KEY" (PKCS#8). */
  readonly key: string;
}

export interface IssuedCert extends PemPair {
  /** The issuing CA's certificate (PEM), for `ca.crt`. */
  readonly ca: string;
}

export interface CaOptions {
  readonly commonName?: string;
  readonly days?: number;
}

export interface LeafOptions {
  /** Subject common name (also the first DNS SAN when `dns` is empty and it looks like a name). */
  readonly name: string;
  readonly dns?: readonly string[];
  readonly ips?: readonly string[];
  /** A URI SAN, e.g. `spiffe://cluster.local/ns/default/sa/tiefighter`. */
  readonly spiffe?: string | undefined;
  readonly days?: number;
}

/** Thrown for bad input (an invalid IP or URI, a key that is not the CA's). */
export class CertsError extends Error {
  readonly code = 'L7G_ERR_CERTS';
}

/** Positive 128-bit serial (RFC 5280 §4.1.2.2: at most 20 octets, non-negative). */
function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] as number) & 0x7f;
  return b.toString('hex');
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
}

async function importKey(pem: string): Promise<CryptoKey> {
  let der: Buffer;
  try {
    der = createPrivateKey(pem).export({ format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw new CertsError(`cannot read the CA private key: ${(err as Error).message}`);
  }
  return webcrypto.subtle.importKey('pkcs8', der, ALG, true, ['sign']);
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + days * DAY_MS) };
}

/** A self-signed CA: basicConstraints CA:true pathlen 0, keyCertSign + cRLSign, 10 years by default. */
export async function createCA(opts: CaOptions = {}): Promise<PemPair> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${escapeRdn(opts.commonName ?? 'l7guard local CA')}`,
    ...validity(opts.days ?? 3650),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: await keyPem(keys.privateKey) };
}

/** A leaf for TLS servers and clients (serverAuth + clientAuth), signed by `ca`. */
export async function issueCert(ca: PemPair, opts: LeafOptions): Promise<IssuedCert> {
  const caCert = new x509.X509Certificate(ca.cert);
  const caKey = await importKey(ca.key);
  const names: x509.JsonGeneralName[] = [];
  for (const d of opts.dns ?? []) names.push({ type: 'dns', value: d });
  for (const ip of opts.ips ?? []) {
    if (isIP(ip) === 0) throw new CertsError(`--ip ${JSON.stringify(ip)} is not an IP address`);
    names.push({ type: 'ip', value: ip });
  }
  if (opts.spiffe !== undefined) {
    if (!/^spiffe:\/\/[^/\s]+\/\S*$/.test(opts.spiffe)) throw new CertsError(`--spiffe ${JSON.stringify(opts.spiffe)} must be spiffe://TRUST-DOMAIN/PATH`);
    names.push({ type: 'url', value: opts.spiffe });
  }
  if (names.length === 0) throw new CertsError('a certificate needs at least one --dns, --ip or --spiffe name');
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${escapeRdn(opts.name)}`,
    issuer: caCert.subject,
    ...validity(opts.days ?? 365),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  // The leaf must verify against the CA it claims: catches a ca.key that is not ca.crt's key.
  if (!(await cert.verify({ publicKey: await caCert.publicKey.export(), signatureOnly: true }))) {
    throw new CertsError('the CA private key does not match the CA certificate');
  }
  return { cert: cert.toString('pem') + '\n', key: await keyPem(keys.privateKey), ca: ca.cert };
}

/** RFC 4514 escaping of an attribute value (a name with `,` or `+` must not add RDNs). */
function escapeRdn(v: string): string {
  return v.replace(/([,+"\\<>;=#])/g, '\\$1');
}
