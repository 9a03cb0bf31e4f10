import net from 'node:net';
import tls from 'node:tls';

/** The first TLS record a real Node client sends for `servername` (its ClientHello), captured locally. */
export function captureClientHello(servername: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((s) => {
      s.once('data', (b: Buffer) => {
        resolve(b);
        s.destroy();
        server.close();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      const c = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
      c.on('error', () => {});
    });
    server.on('error', reject);
  });
}

export interface TlsResult {
  readonly secure: boolean;
  readonly text: string;
  readonly error: string | undefined;
}

/** One TLS connection from `from`: handshake (verifying with `ca` for `servername`), send `data`, read until `until` or close. */
export function tlsExchange(opts: {
  from: string; to: string; port: number; servername: string; ca: string; data: string;
  cert?: string; key?: string; idleMs?: number; until?: (text: string) => boolean;
}): Promise<TlsResult> {
  return new Promise((resolve) => {
    let text = '';
    let secure = false;
    let error: string | undefined;
    let timer: NodeJS.Timeout | undefined;
    const s = tls.connect({
      host: opts.to, port: opts.port, localAddress: opts.from, servername: opts.servername, ca: opts.ca,
      ...(opts.cert !== undefined && { cert: opts.cert, key: opts.key }),
    } as tls.ConnectionOptions);
    const finish = () => {
      if (timer) clearTimeout(timer);
      s.destroy();
      resolve({ secure, text, error });
    };
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(finish, opts.idleMs ?? 3000);
    };
    s.on('secureConnect', () => {
      secure = true;
      s.write(opts.data);
      arm();
    });
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      text += d;
      if (opts.until?.(text)) finish();
      else arm();
    });
    s.on('error', (e) => (error = e.message));
    s.on('close', finish);
    arm();
  });
}

/** A Service `deathstar-tls` (port 443 -> `port`) selecting the deathstar pods, at `clusterIP`. */
export function tlsService(clusterIP: string, port: number): string {
  return `---
apiVersion: v1
kind: Service
metadata:
  name: deathstar-tls
  namespace: default
spec:
  clusterIP: ${clusterIP}
  ports:
  - port: 443
    targetPort: ${port}
  selector:
    org: empire
    class: deathstar
`;
}

/** The Star Wars L7 rule behind terminatingTLS `deathstar-tls` (and originatingTLS `originating`, when given). */
export function tlsPolicy(port: number, sni: string, originating: string | undefined): string {
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: rule1
  namespace: default
spec:
  endpointSelector:
    matchLabels: {org: empire, class: deathstar}
  ingress:
  - fromEndpoints:
    - matchLabels: {org: empire}
    toPorts:
    - ports:
      - port: "${port}"
        protocol: TCP
      terminatingTLS:
        secret: {name: deathstar-tls}
${originating === undefined ? '' : `      originatingTLS:\n        secret: {name: ${originating}}\n`}      serverNames: [${sni}, deathstar-tls]
      rules:
        http:
        - method: POST
          path: /v1/request-landing
`;
}
