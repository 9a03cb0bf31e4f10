/**
 * `l7guard endpoint list` and `l7guard identity list`: Cilium's tables from a running proxy's
 * `/v1/endpoints` and `/v1/identities`, laid out by the same tabwriter settings as
 * cilium/cilium cilium-dbg/cmd/endpoint_list.go (minwidth 5, padding 3, every cell tab-terminated,
 * one label per line) and the agent's identity list (minwidth 2, padding 3, labels as trailing text).
 */
import type { EndpointView, IdentityView } from '../observe/operator-views.js';
import { adminGet, DEFAULT_ADMIN } from './admin-get.js';
import { parseFlags, unknownSubcommand } from './flags.js';
import { tabwrite } from './tabwriter.js';
import { UsageError } from './usage-error.js';
import { runEndpointConfig } from './endpoint-config.js';

const ENDPOINT_USAGE = `Usage: l7guard endpoint list [--server HOST:PORT|unix:PATH] [-o json] [--no-headers]
       l7guard endpoint config ID [PolicyAuditMode=Enabled|Disabled] [--server HOST:PORT|unix:PATH]

Lists the endpoints the proxy knows (every Pod with an IP, and the node itself as reserved:host) like
cilium endpoint list: ID, ingress/egress policy enforcement ("Disabled (Audit)" in policy audit mode),
identity, security labels, IPs, status. config shows or sets an endpoint's options.
--server defaults to ${DEFAULT_ADMIN}.
`;

const IDENTITY_USAGE = `Usage: l7guard identity list [--server HOST:PORT|unix:PATH] [-o json]

Lists every security identity (reserved, pod, CIDR) with its labels, like cilium identity list.
--server defaults to ${DEFAULT_ADMIN}.
`;

function parse(argv: string[], command: string, extra: Record<string, { type: 'boolean' }> = {}) {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h') return { help: true, values: {} as Record<string, string | boolean | undefined> };
  if (sub === undefined) throw new UsageError('needs a subcommand: list');
  if (sub !== 'list' && sub !== 'ls') throw unknownSubcommand(sub, ['list']);
  const { values } = parseFlags(`${command} list`, {
    args: rest,
    options: { server: { type: 'string' }, output: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h' }, ...extra },
    allowPositionals: false,
  });
  if (values.output !== undefined && values.output !== 'json') throw new UsageError(`-o must be json, not ${JSON.stringify(values.output)}`);
  return { help: values.help === true, values: values as Record<string, string | boolean | undefined> };
}

/** cilium-dbg's endpoint list: an enforcing endpoint in audit mode shows "Disabled (Audit)". */
const enforcement = (on: boolean, audit: boolean) => (on ? (audit ? 'Disabled (Audit)' : 'Enabled') : 'Disabled');

/** cilium-dbg/cmd/endpoint_list.go printEndpointList, byte for byte. */
export function renderEndpointList(eps: readonly EndpointView[], headers = true): string {
  let s = '';
  if (headers) {
    s += 'ENDPOINT\tPOLICY (ingress)\tPOLICY (egress)\tIDENTITY\tLABELS (source:key[=value])\tIPv6\tIPv4\tSTATUS\t\n';
    s += '\tENFORCEMENT\tENFORCEMENT\t\t\t\t\t\n';
  }
  for (const ep of [...eps].sort((a, b) => a.id - b.id)) {
    const labels = ep.labels.length === 0 ? ['no labels'] : [...ep.labels].sort();
    labels.forEach((l, i) => {
      if (i === 0) {
        const audit = ep.policyAuditMode === true;
        s += `${ep.id}\t${enforcement(ep.ingressEnforcement, audit)}\t${enforcement(ep.egressEnforcement, audit)}\t${ep.identity}\t${l}\t${ep.ipv6[0] ?? ''}\t${ep.ipv4[0] ?? ''}\t${ep.status}\t\n`;
      } else s += `\t\t\t\t${l}\t\t\t\t\n`;
    });
  }
  return tabwrite(s, { minwidth: 5, padding: 3 });
}

/** `cilium identity list`: ID, then one label per line. */
export function renderIdentityList(ids: readonly IdentityView[]): string {
  let s = 'ID\tLABELS\n';
  for (const id of [...ids].sort((a, b) => a.id - b.id)) {
    [...id.labels].sort().forEach((l, i) => (s += i === 0 ? `${id.id}\t${l}\n` : `\t${l}\n`));
  }
  return tabwrite(s, { minwidth: 2, padding: 3 });
}

export async function runEndpoint(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  if (argv[0] === 'config') return runEndpointConfig(argv.slice(1), out);
  const { help, values } = parse(argv, 'endpoint', { 'no-headers': { type: 'boolean' } });
  if (help) {
    out.write(ENDPOINT_USAGE);
    return 0;
  }
  const eps = await adminGet<EndpointView[]>(values['server'] as string | undefined, '/v1/endpoints');
  out.write(values['output'] === 'json' ? JSON.stringify(eps, null, 2) + '\n' : renderEndpointList(eps, values['no-headers'] !== true));
  return 0;
}

export async function runIdentity(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const { help, values } = parse(argv, 'identity');
  if (help) {
    out.write(IDENTITY_USAGE);
    return 0;
  }
  const ids = await adminGet<IdentityView[]>(values['server'] as string | undefined, '/v1/identities');
  out.write(values['output'] === 'json' ? JSON.stringify(ids, null, 2) + '\n' : renderIdentityList(ids));
  return 0;
}
