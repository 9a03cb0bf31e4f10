/** `--listen-tls`, `--identity-from`, `--client-ca`, `--trust-domain` as startProxy takes them. */
import { parseHostPort } from '../admin/server.js';

export interface TlsListenSpec {
  readonly raw: string;
  readonly host: string;
  readonly port: number;
  /** The Service port the SNI names (default 443: the SNI carries no port, as Host without one means 80). */
  readonly servicePort: number;
}

export interface TlsServeOptions {
  readonly listeners: readonly TlsListenSpec[];
  /** `--identity-from mtls`: client certificates must chain to `ca` (PEM); `trustDomain` undefined = any. */
  readonly mtls?: { readonly ca: string; readonly trustDomain: string | undefined } | undefined;
}

export const DEFAULT_TLS_SERVICE_PORT = 443;

/** `HOST:PORT` or `HOST:PORT=SERVICE_PORT`. Throws an Error with a usage message. */
export function parseListenTls(raw: string): TlsListenSpec {
  const eq = raw.lastIndexOf('=');
  let servicePort = DEFAULT_TLS_SERVICE_PORT;
  let hostPort = raw;
  if (eq >= 0) {
    const p = raw.slice(eq + 1);
    if (!/^\d{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535) throw new Error(`--listen-tls "${raw}": SERVICE_PORT must be 1..65535`);
    servicePort = Number(p);
    hostPort = raw.slice(0, eq);
  }
  let hp;
  try {
    hp = parseHostPort(hostPort);
  } catch (err) {
    throw new Error(`--listen-tls "${raw}": ${(err as Error).message}`);
  }
  return { raw, host: hp.host, port: hp.port, servicePort };
}
