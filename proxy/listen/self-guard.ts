import { networkInterfaces } from 'node:os';
import { isIPv4 } from 'node:net';

/**
 * The proxy must never forward to itself (its data-plane listeners, plain or TLS, or its admin port): that would
 * loop, or expose the admin API through the data path. Wildcard listeners (0.0.0.0, ::) claim their
 * port on every local address, including the whole 127.0.0.0/8 block.
 */
export class SelfGuard {
  readonly #exact = new Set<string>();
  readonly #wildcardPorts = new Set<number>();
  readonly #localIPs: Set<string>;

  constructor(addresses: readonly { host: string; port: number }[]) {
    this.#localIPs = new Set<string>();
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) this.#localIPs.add(a.address);
    }
    for (const { host, port } of addresses) this.add(host, port);
  }

  /** A listener's address as bound (port 0 resolved), TLS listeners included. */
  add(host: string, port: number): void {
    if (host === '0.0.0.0' || host === '::' || host === '') this.#wildcardPorts.add(port);
    else this.#exact.add(`${host.startsWith('::ffff:') && host.includes('.') ? host.slice(7) : host}|${port}`);
  }

  isSelf(ip: string, port: number): boolean {
    if (this.#exact.has(`${ip}|${port}`)) return true;
    if (!this.#wildcardPorts.has(port)) return false;
    return this.#localIPs.has(ip) || (isIPv4(ip) && ip.startsWith('127.'));
  }
}
