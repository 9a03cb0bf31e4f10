import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ParseArgsConfig } from 'node:util';
import { startProxy, type ProxyOptions, type RunningProxy } from '../proxy/proxy.js';
import { startCluster } from '../proxy/cluster/primary.js';
import { createLogger } from '../observe/log.js';
import { UsageError } from './usage-error.js';
import { CliError } from './cli-error.js';
import { parseFlags } from './flags.js';
import { checkAddresses, checkFlowsFile, checkLogLevel, explainStartFailure } from './serve-checks.js';
import { parseInterception, type InterceptionOptions } from '../proxy/listen/original-destination.js';
import { version } from './version.js';
import { parseDuration } from './duration.js';
import { DEFAULT_DRAIN_TIMEOUT_MS } from '../proxy/listen/drain.js';
import { HARDENING_PARSE_OPTIONS, parseHardening, type Hardening } from '../proxy/hardening.js';
import { trustedPeers } from '../proxy/listen/proxy-protocol.js';
import { parseListenTls, type TlsServeOptions } from '../proxy/tls/options.js';
import { PortPool } from '../proxy/interception/ports.js';
import type { ManagedInterception } from '../proxy/proxy.js';

export const SERVE_USAGE = `Usage: l7guard serve -f PATH [-f PATH ...] [options]
       l7guard serve --kubernetes [--kubeconfig PATH] [-f PATH ...] [options]

  -f, --file PATH          policy/cluster YAML or JSON: a file, or a folder (not recursive); repeatable,
                           later ones win
      --kubernetes         take Pods, Services, EndpointSlices, Namespaces, NetworkPolicies, CNPs, CCNPs
                           and the Secrets policies reference from the API server (list+watch); -f
                           objects win over API objects of the same kind/namespace/name
      --kubeconfig PATH    the API server and credentials (default: in a pod its service account, else
                           $KUBECONFIG, else ~/.kube/config)
      --kube-api-timeout DURATION
                           deadline of a list, and of a watch's first answer (default 30s)
      --manage-iptables    l7guard installs and reconciles its own nat chain on every revision: each
                           destination whose verdict could differ from allow-all gets a redirect
                           listener from --redirect-ports (docs/interception.md); SIGTERM removes it
      --intercept pod|service
                           pod (default, needs --node-name): this node's enforced pods, on their pod
                           IP; service: enforced Services' clusterIP:port, for this node's clients
      --redirect-ports FIRST-LAST
                           the redirect listeners' ports (default 15000-15999)
      --iptables-chain NAME
                           the nat chain l7guard owns (default L7GUARD)
      --listen HOST:PORT   data-plane listener (repeatable; default 0.0.0.0:80 unless --redirect is given)
      --redirect LISTEN_HOST:PORT=DEST_IP:DEST_PORT
                           a listener whose every connection's original destination is DEST (a Service
                           clusterIP:port or a Pod IP:port), for an iptables REDIRECT of DEST to that
                           port; in sidecar mode DEST may be just PORT (repeatable)
      --mode node|sidecar  node (default): the destination comes from --redirect, else the request's
                           authority/Host; sidecar: every connection goes to the --pod
      --pod NAMESPACE/NAME the pod a sidecar protects (required by --mode sidecar)
      --admin HOST:PORT|unix:PATH
                           admin API (default 127.0.0.1:9901); a unix socket is created owner-only (0600)
      --admin-readonly HOST:PORT|unix:PATH
                           a second admin listener that answers GET and HEAD only (probes, /metrics,
                           /flows, the operator views); everything else gets 403
      --node-ip IP         an address of this node: traffic from it is the "host" identity (repeatable)
      --cluster-name NAME  Cilium cluster name (default "default")
      --allow-localhost always|policy
                           traffic from the host identity: always allowed (Cilium's default) or judged by policy
      --flows FILE         append every decision as a Hubble flow (JSON lines, hubble observe --input-file)
      --policy-audit-mode  forward what policy would deny, flowed with verdict AUDIT (Cilium's agent flag;
                           per endpoint: l7guard endpoint config ID PolicyAuditMode=Enabled|Disabled)
      --flow-buffer N      flows kept in memory for /flows and \`observe\` (default 4096; 0 = none)
      --node-name NAME     node name in flows (default: the hostname)
      --server-name NAME   Envoy's server_name: every reply l7guard writes says "server: NAME" and the
                           pods' "server" is overwritten with it; "envoy" makes the 403 byte-identical to
                           cilium-envoy's (default: "server: l7guard" on the 403 only, the pods' passes)
      --log-level LEVEL    trace|debug|info|warn|error (default info)
      --workers N          data-plane processes sharing the listeners (default 1: this process serves);
                           N > 1: a primary keeps the admin API, reload and metrics, N workers serve
      --drain-timeout DURATION
                           on SIGTERM/SIGINT: how long in-flight requests may take before the remaining
                           connections are reset (default 25s; e.g. 30, 30s, 500ms)

  Timeouts and limits (docs/hardening.md; durations: 30, 30s, 500ms; sizes: 8192, 8k):
      --header-timeout D   --idle-timeout D   --connect-timeout D   --response-timeout D
      --body-timeout D     --outlier-ejection-time D                --outlier-failures N
      --max-header-bytes N --max-headers N    --max-target-length N --max-pipelined-bytes N
      --max-connections N  --upstream-connections N
      --request-timeout D  --client-body-timeout D                  --send-timeout D
      --health-check-interval D (default 0 = off)  --health-check-timeout D
      --health-check-path PATH (default: TCP connect only)
      --health-check-unhealthy-threshold N         --health-check-healthy-threshold N
      --upstream-client native|undici
                           the client that speaks plain HTTP to the pods: native (default; our own
                           HTTP/1.1 client on node:net) or undici (selectable for one release); TLS
                           origination always uses undici (docs/architecture.md#upstream-clients)
      --listen-tls HOST:PORT[=SERVICE_PORT]
                           TLS listener (repeatable): the SNI names the destination Service (its port
                           SERVICE_PORT, default 443); TLS is terminated with the policy's terminatingTLS
                           certificate and the HTTP inside is judged as on --listen (docs/tls.md)
      --identity-from address|mtls
                           source identity on --listen-tls listeners: the peer address (default), or the
                           client certificate's SPIFFE ID spiffe://TD/ns/NS/sa/SA (needs --client-ca)
      --client-ca FILE     PEM CA that client certificates must chain to (--identity-from mtls)
      --trust-domain NAME  only SPIFFE IDs of this trust domain name an identity (default: any)
      --proxy-protocol-from CIDR
                           peers that must start with a PROXY v1/v2 header, whose address is then the
                           source identity (repeatable); from anyone else a PROXY header is a 400

  Files and folders given with -f are watched and reloaded on change; SIGHUP re-reads them.
`;

/** The `serve` flag table, exported so deploy/ manifests are checked against the real flags. */
export const SERVE_OPTIONS = {
  file: { type: 'string', short: 'f', multiple: true },
  listen: { type: 'string', multiple: true },
  redirect: { type: 'string', multiple: true },
  mode: { type: 'string' },
  pod: { type: 'string' },
  admin: { type: 'string' },
  'admin-readonly': { type: 'string' },
  'node-ip': { type: 'string', multiple: true },
  'cluster-name': { type: 'string' },
  'allow-localhost': { type: 'string' },
  flows: { type: 'string' },
  'policy-audit-mode': { type: 'boolean' },
  'flow-buffer': { type: 'string' },
  'node-name': { type: 'string' },
  'server-name': { type: 'string' },
  kubernetes: { type: 'boolean' },
  'manage-iptables': { type: 'boolean' },
  intercept: { type: 'string' },
  'redirect-ports': { type: 'string' },
  'iptables-chain': { type: 'string' },
  kubeconfig: { type: 'string' },
  'kube-api-timeout': { type: 'string' },
  'log-level': { type: 'string' },
  'drain-timeout': { type: 'string' },
  workers: { type: 'string' },
  ...HARDENING_PARSE_OPTIONS,
  'proxy-protocol-from': { type: 'string', multiple: true },
  'listen-tls': { type: 'string', multiple: true },
  'identity-from': { type: 'string' },
  'client-ca': { type: 'string' },
  'trust-domain': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export async function runServe(argv: string[]): Promise<number> {
  const { values } = parseFlags('serve', { args: argv, options: SERVE_OPTIONS, allowPositionals: false });
  if (values.help) {
    process.stdout.write(SERVE_USAGE);
    return 0;
  }
  const paths = values.file ?? [];
  if (paths.length === 0 && values.kubernetes !== true) throw new UsageError('serve needs at least one -f PATH, or --kubernetes');
  if (values.kubernetes !== true && (values.kubeconfig !== undefined || values['kube-api-timeout'] !== undefined)) {
    throw new UsageError('--kubeconfig and --kube-api-timeout need --kubernetes');
  }
  const kubeTimeout = values['kube-api-timeout'] === undefined ? undefined : parseDuration(values['kube-api-timeout']);
  if (values['kube-api-timeout'] !== undefined && (kubeTimeout === undefined || kubeTimeout <= 0)) {
    throw new UsageError(`--kube-api-timeout must be a positive duration (30, 30s, 500ms), not "${values['kube-api-timeout']}"`);
  }
  const allowLocalhost = values['allow-localhost'] ?? 'always';
  if (allowLocalhost !== 'always' && allowLocalhost !== 'policy') {
    throw new UsageError(`--allow-localhost must be "always" or "policy", not "${allowLocalhost}"`);
  }
  let interception: InterceptionOptions;
  try {
    interception = parseInterception({ mode: values.mode, pod: values.pod, redirect: values.redirect });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const drainMs = values['drain-timeout'] === undefined ? DEFAULT_DRAIN_TIMEOUT_MS : parseDuration(values['drain-timeout']);
  if (drainMs === undefined) throw new UsageError(`--drain-timeout must be a duration (30, 30s, 500ms), not "${values['drain-timeout']}"`);
  let hardening: Hardening;
  try {
    hardening = parseHardening(values);
    trustedPeers(values['proxy-protocol-from'] ?? []);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const flowBuffer = values['flow-buffer'] === undefined ? undefined : Number(values['flow-buffer']);
  if (flowBuffer !== undefined && !(Number.isInteger(flowBuffer) && flowBuffer >= 0 && flowBuffer <= 1_000_000)) {
    throw new UsageError(`--flow-buffer must be an integer from 0 to 1000000, not "${values['flow-buffer']}"`);
  }
  const serverName = values['server-name'];
  // RFC 9110 §10.2.4: a product token and comments, visible ASCII and spaces; nothing that could end the field.
  if (serverName !== undefined && !/^[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?$/.test(serverName)) {
    throw new UsageError(`--server-name must be 1 to 128 visible ASCII characters (spaces inside), not ${JSON.stringify(serverName)}`);
  }
  const workers = values.workers === undefined ? 1 : Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) throw new UsageError(`--workers must be an integer from 1 to 256, not "${values.workers}"`);
  const tls = await parseTlsFlags(values);
  const managed = parseManagedInterception(values, workers);
  // With --manage-iptables every listener is a redirect listener that l7guard opens itself.
  const listen = values.listen ?? (interception.redirects.length > 0 || tls.listeners.length > 0 || managed !== undefined ? [] : ['0.0.0.0:80']);
  const admin = values.admin ?? '127.0.0.1:9901';
  checkLogLevel(values['log-level']);
  checkAddresses(values, listen, interception);
  checkFlowsFile(values.flows);
  const log = createLogger(values['log-level']);
  let proxy: RunningProxy;
  try {
    const start = workers > 1
      ? (o: ProxyOptions) => startCluster({ ...o, workers, logLevel: values['log-level'] })
      : startProxy;
    proxy = await start({
      paths,
      listen,
      tls,
      interception,
      hardening,
      proxyProtocolFrom: values['proxy-protocol-from'] ?? [],
      admin,
      adminReadOnly: values['admin-readonly'],
      nodeIPs: values['node-ip'] ?? [],
      clusterName: values['cluster-name'] ?? 'default',
      allowLocalhost,
      flowsFile: values.flows,
      flowBuffer,
      policyAuditMode: values['policy-audit-mode'] === true,
      nodeName: values['node-name'],
      serverName,
      managedInterception: managed,
      kubernetes: values.kubernetes === true ? { kubeconfig: values.kubeconfig, requestTimeoutMs: kubeTimeout } : undefined,
      version: version(),
      commandLine: ['l7guard', 'serve', ...argv],
      log,
    });
  } catch (err) {
    throw new CliError(explainStartFailure((err as Error).message, values, admin));
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      process.off('SIGHUP', onHup);
      proxy.drain(drainMs).then(
        () => resolve(0),
        (err: unknown) => {
          log.error({ err: (err as Error).message }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    // SIGHUP re-reads every -f input and swaps even when nothing changed (a forced reload).
    const onHup = () => void proxy.reload.reload('SIGHUP', true);
    process.on('SIGHUP', onHup);
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/** `--listen-tls`, `--identity-from`, `--client-ca`, `--trust-domain` (proxy/tls/). */
async function parseTlsFlags(values: { 'listen-tls'?: string[]; 'identity-from'?: string; 'client-ca'?: string; 'trust-domain'?: string }): Promise<TlsServeOptions> {
  let listeners;
  try {
    listeners = (values['listen-tls'] ?? []).map(parseListenTls);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const from = values['identity-from'] ?? 'address';
  if (from !== 'address' && from !== 'mtls') throw new UsageError(`--identity-from must be "address" or "mtls", not "${from}"`);
  if (from === 'address') {
    if (values['client-ca'] !== undefined || values['trust-domain'] !== undefined) throw new UsageError('--client-ca and --trust-domain need --identity-from mtls');
    return { listeners };
  }
  if (listeners.length === 0) throw new UsageError('--identity-from mtls needs a --listen-tls listener');
  const file = values['client-ca'];
  if (file === undefined) throw new UsageError('--identity-from mtls needs --client-ca FILE');
  let ca: string;
  try {
    ca = await readFile(file, 'utf8');
    new X509Certificate(ca);
  } catch (err) {
    throw new UsageError(`--client-ca ${file}: ${(err as Error).message}`);
  }
  return { listeners, mtls: { ca, trustDomain: values['trust-domain'] } };
}

/** `--manage-iptables`, `--intercept`, `--redirect-ports`, `--iptables-chain` (proxy/interception/). */
function parseManagedInterception(
  values: { 'manage-iptables'?: boolean; intercept?: string; 'redirect-ports'?: string; 'iptables-chain'?: string; 'node-name'?: string },
  workers: number,
): ManagedInterception | undefined {
  if (values['manage-iptables'] !== true) {
    if (values.intercept !== undefined || values['redirect-ports'] !== undefined || values['iptables-chain'] !== undefined) {
      throw new UsageError('--intercept, --redirect-ports and --iptables-chain need --manage-iptables');
    }
    return undefined;
  }
  const mode = values.intercept ?? 'pod';
  if (mode !== 'pod' && mode !== 'service') throw new UsageError(`--intercept must be "pod" or "service", not "${mode}"`);
  if (mode === 'pod' && values['node-name'] === undefined) throw new UsageError('--manage-iptables --intercept pod needs --node-name: only this node\'s pods are intercepted');
  // Redirect listeners come and go with the policy; --workers shares only listeners bound at start.
  if (workers > 1) throw new UsageError('--manage-iptables needs --workers 1: its listeners change with every revision');
  const ports = values['redirect-ports'] ?? '15000-15999';
  try {
    PortPool.parse(ports);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const chain = values['iptables-chain'] ?? 'L7GUARD';
  if (!/^[A-Za-z0-9_][A-Za-z0-9_-]{0,27}$/.test(chain)) throw new UsageError(`--iptables-chain must be 1-28 letters, digits, _ or -, not "${chain}"`);
  return { mode, ports, chain };
}
