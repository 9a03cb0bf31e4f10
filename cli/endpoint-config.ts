/**
 * `l7guard endpoint config ID [PolicyAuditMode=Enabled|Disabled]`, as `cilium endpoint config`:
 * without an option it prints the endpoint's realized options (cilium-dbg's dumpConfig layout,
 * "%-24s %s"); with options it PATCHes /v1/endpoint/{id}/config, which only the writable admin
 * listener accepts.
 */
import type { EndpointConfigView } from '../proxy/admin/endpoint-config-routes.js';
import { adminCall, DEFAULT_ADMIN } from './admin-get.js';
import { parseFlags } from './flags.js';
import { UsageError } from './usage-error.js';

export const ENDPOINT_CONFIG_USAGE = `Usage: l7guard endpoint config ID [OPTION=VALUE ...] [--server HOST:PORT|unix:PATH]

Shows an endpoint's options, or sets them, like cilium endpoint config. The option:
  PolicyAuditMode=Enabled|Disabled   forward what policy would deny and flow it as AUDIT
                                     (default: serve --policy-audit-mode)
The setting belongs to the pod (namespace/name) and survives policy reloads.
--server defaults to ${DEFAULT_ADMIN}; setting needs the writable admin listener.
`;

export async function runEndpointConfig(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const { values, positionals } = parseFlags('endpoint config', {
    args: argv,
    options: { server: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
  if (values.help === true) {
    out.write(ENDPOINT_CONFIG_USAGE);
    return 0;
  }
  const [id, ...settings] = positionals;
  if (id === undefined || !/^\d{1,5}$/.test(id)) throw new UsageError(`endpoint config needs an endpoint ID, not ${JSON.stringify(id ?? '')}`);
  const options: Record<string, string> = {};
  for (const s of settings) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new UsageError(`"${s}": expected OPTION=VALUE`);
    options[s.slice(0, eq)] = s.slice(eq + 1);
  }
  const path = `/v1/endpoint/${Number(id)}/config`;
  if (settings.length === 0) {
    const cfg = await adminCall<EndpointConfigView>(values.server, 'GET', path);
    for (const [k, v] of Object.entries(cfg.options).sort(([a], [b]) => (a < b ? -1 : 1))) out.write(`${k.padEnd(24)} ${v}\n`);
    return 0;
  }
  await adminCall<EndpointConfigView>(values.server, 'PATCH', path, JSON.stringify({ options }));
  out.write(`Endpoint ${Number(id)} configuration updated successfully\n`);
  return 0;
}
