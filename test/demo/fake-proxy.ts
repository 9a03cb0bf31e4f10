/**
 * A stand-in for `l7guard serve`, used only to test the demo's orchestration while the real proxy is
 * being written. It honours the same command line (`serve -f ... --listen --admin --flows
 * --cluster-name`) and knows just enough Star Wars policy: a CNP selecting deathstar allows
 * `org=empire` on port 80, and its `rules.http` (if any) are method/path equalities.
 *
 * FAKE_PROXY_FAULT=allow-all   ignores every policy (the demo must report mismatches).
 * FAKE_PROXY_FAULT=bad-policy  exits 1 at start, like l7guard with an invalid policy.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { parseAllDocuments } from 'yaml';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const { values, positionals } = parseArgs({
  options: {
    file: { type: 'string', short: 'f', multiple: true },
    listen: { type: 'string' },
    admin: { type: 'string' },
    flows: { type: 'string' },
    'cluster-name': { type: 'string' },
  },
  allowPositionals: true,
});
if (positionals[0] !== 'serve') throw new Error('fake proxy: only "serve"');
const fault = process.env.FAKE_PROXY_FAULT ?? '';
if (fault === 'bad-policy') {
  process.stderr.write('l7guard serve: invalid policy (fake)\n');
  process.exit(1);
}

const pods: Obj[] = [];
const policies = new Map<string, Obj>();
let clusterIP = '';
for (const f of values.file ?? []) {
  for (const d of parseAllDocuments(readFileSync(f, 'utf8'))) {
    const o = d.toJS() as Obj | null;
    if (o === null) continue;
    if (o.kind === 'Pod') pods.push(o);
    if (o.kind === 'Service') clusterIP = o.spec.clusterIP;
    if (o.kind === 'CiliumNetworkPolicy') policies.set(o.metadata.name, o); // later -f wins
  }
}
const ids = new Map<string, number>();
const identity = (p: Obj | undefined) => {
  if (p === undefined) return 2;
  const key = JSON.stringify(Object.entries(p.metadata.labels).filter(([k]) => k !== 'pod-template-hash').sort());
  if (!ids.has(key)) ids.set(key, 10000 + ids.size);
  return ids.get(key)!;
};
const byIp = new Map(pods.map((p) => [p.status.podIP as string, p]));
const backends = pods.filter((p) => p.metadata.labels.class === 'deathstar');
let rr = 0;
const pick = () => backends[rr++ % backends.length]!;

let active: Obj[] = [];
let httpRules: Obj[] = [];
/** Recomputed after every admin PUT/DELETE, as l7guard swaps a new revision. */
function activate(): void {
  active = fault === 'allow-all' ? [] : [...policies.values()];
  httpRules = active.flatMap((p) => (p.spec.ingress ?? []).flatMap((i: Obj) => (i.toPorts ?? [])
    .flatMap((tp: Obj) => tp.rules?.http ?? [])));
}
activate();
const l3Allowed = (src: Obj | undefined) => active.length === 0 || src?.metadata.labels.org === 'empire';

function peer(p: Obj | undefined) {
  return p === undefined ? { identity: 2 } : {
    identity: identity(p), namespace: 'default', pod_name: p.metadata.name,
    labels: Object.entries(p.metadata.labels).map(([k, v]) => `k8s:${k}=${String(v)}`).sort(),
  };
}

function emit(flow: Obj): void {
  if (values.flows === undefined) return;
  const time = new Date().toISOString();
  appendFileSync(values.flows, JSON.stringify({ flow: { time, ...flow }, node_name: 'fake', time }) + '\n');
}

const server = http.createServer((req, res) => {
  const src = byIp.get(req.socket.remoteAddress ?? '');
  const dst = pick();
  const l4 = { TCP: { source_port: req.socket.remotePort, destination_port: 80 } };
  const ip = { source: req.socket.remoteAddress, destination: dst.status.podIP, ipVersion: 'IPv4' };
  const url = `http://${req.headers.host ?? ''}${req.url ?? ''}`;
  const l7 = (type: string, verdict: string, code?: number, isReply = false) => emit({
    verdict, IP: isReply ? { ...ip, source: ip.destination, destination: ip.source } : ip,
    l4: isReply ? { TCP: { source_port: 80, destination_port: l4.TCP.source_port } } : l4,
    source: peer(isReply ? dst : src), destination: peer(isReply ? src : dst), Type: 'L7', is_reply: isReply,
    traffic_direction: 'INGRESS', l7: { type, http: { method: req.method, url, protocol: 'HTTP/1.1', code } },
    Summary: code === undefined ? `HTTP/1.1 ${req.method} ${url}` : `HTTP/1.1 ${code} 0ms (${req.method} ${url})`,
  });
  if (httpRules.length > 0) {
    const ok = httpRules.some((r: Obj) => (r.method ?? req.method) === req.method && (r.path ?? req.url) === req.url);
    if (!ok) {
      l7('REQUEST', 'DROPPED');
      res.writeHead(403, { 'content-length': '15', 'content-type': 'text/plain', server: 'envoy' });
      res.end('Access denied\r\n');
      l7('RESPONSE', 'FORWARDED', 403, true);
      return;
    }
    l7('REQUEST', 'FORWARDED');
  }
  const up = http.request({ host: dst.status.podIP, port: 80, method: req.method, path: req.url, headers: req.headers, agent: false },
    (ures) => {
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      ures.pipe(res);
      if (httpRules.length > 0) l7('RESPONSE', 'FORWARDED', ures.statusCode, true);
    });
  up.on('error', () => res.destroy());
  req.pipe(up);
});
server.on('connection', (sock: net.Socket) => {
  const src = byIp.get(sock.remoteAddress ?? '');
  if (l3Allowed(src)) return;
  const dst = pick();
  emit({
    verdict: 'DROPPED', drop_reason_desc: 'POLICY_DENIED', Type: 'L3_L4', traffic_direction: 'INGRESS',
    IP: { source: sock.remoteAddress, destination: dst.status.podIP, ipVersion: 'IPv4' },
    l4: { TCP: { source_port: sock.remotePort, destination_port: 80, flags: { SYN: true } } },
    source: peer(src), destination: peer(dst), Summary: 'TCP Flags: SYN', event_type: { type: 1, sub_type: 133 },
  });
  sock.destroy();
});

const [lhost, lport] = (values.listen ?? `${clusterIP}:80`).split(':') as [string, string];
const [ahost, aport] = (values.admin ?? '127.0.0.1:9901').split(':') as [string, string];
let ready = false;
let revision = 1;
const admin = http.createServer((req, res) => {
  // The admin object API, CiliumNetworkPolicies only: PUT/DELETE /v1/ciliumnetworkpolicies/{ns}/{name}.
  const m = /^\/v1\/ciliumnetworkpolicies\/[^/]+\/([^/]+)$/.exec(req.url ?? '');
  if (m !== null && (req.method === 'PUT' || req.method === 'DELETE')) {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      const name = m[1]!;
      const object = `ciliumnetworkpolicy.cilium.io/${name}`;
      const existed = policies.has(name);
      if (req.method === 'DELETE' && !existed) return void res.writeHead(404).end(JSON.stringify({ code: 'L7G_ERR_APPLY_NOT_FOUND', message: 'not found' }));
      if (req.method === 'DELETE') policies.delete(name);
      else policies.set(name, JSON.parse(body) as Obj);
      activate();
      const result = req.method === 'DELETE' ? 'deleted' : existed ? 'configured' : 'created';
      res.writeHead(result === 'created' ? 201 : 200).end(JSON.stringify({ result, object, revision: ++revision }));
    });
    return;
  }
  res.writeHead(req.url === '/ready' && ready ? 200 : 503).end();
});
admin.listen(Number(aport), ahost);
server.listen(Number(lport), lhost, () => {
  ready = true;
});
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  admin.close(() => process.exit(0));
});
