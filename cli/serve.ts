import { parseArgs } from 'node:util';
import { startProxy, type RunningProxy } from '../proxy/proxy.js';
import { createLogger } from '../observe/log.js';
import { UsageError } from './usage-error.js';
import { version } from './main.js';

export const SERVE_USAGE = `Usage: l7guard serve -f PATH [-f PATH ...] [options]

  -f, --file PATH          policy/cluster YAML or JSON: a file, or a folder (not recursive); repeatable,
                           later ones win
      --listen HOST:PORT   data-plane listener (repeatable; default 0.0.0.0:80)
      --admin HOST:PORT|unix:PATH
                           admin API (default 127.0.0.1:9901)
      --node-ip IP         an address of this node: traffic from it is the "host" identity (repeatable)
      --cluster-name NAME  Cilium cluster name (default "default")
      --allow-localhost always|policy
                           traffic from the host identity: always allowed (Cilium's default) or judged by policy
      --flows FILE         append every decision as a Hubble flow (JSON lines, hubble observe --input-file)
      --node-name NAME     node name in flows (default: the hostname)
      --log-level LEVEL    trace|debug|info|warn|error (default info)
`;

export async function runServe(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        file: { type: 'string', short: 'f', multiple: true },
        listen: { type: 'string', multiple: true },
        admin: { type: 'string' },
        'node-ip': { type: 'string', multiple: true },
        'cluster-name': { type: 'string' },
        'allow-localhost': { type: 'string' },
        flows: { type: 'string' },
        'node-name': { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${SERVE_USAGE}`);
  }
  if (values.help) {
    process.stdout.write(SERVE_USAGE);
    return 0;
  }
  const paths = values.file ?? [];
  if (paths.length === 0) throw new UsageError(`serve needs at least one -f PATH\n\n${SERVE_USAGE}`);
  const allowLocalhost = values['allow-localhost'] ?? 'always';
  if (allowLocalhost !== 'always' && allowLocalhost !== 'policy') {
    throw new UsageError(`--allow-localhost must be "always" or "policy", not "${allowLocalhost}"`);
  }
  const log = createLogger(values['log-level']);
  let proxy: RunningProxy;
  try {
    proxy = await startProxy({
      paths,
      listen: values.listen ?? ['0.0.0.0:80'],
      admin: values.admin ?? '127.0.0.1:9901',
      nodeIPs: values['node-ip'] ?? [],
      clusterName: values['cluster-name'] ?? 'default',
      allowLocalhost,
      flowsFile: values.flows,
      nodeName: values['node-name'],
      version: version(),
      commandLine: ['l7guard', 'serve', ...argv],
      log,
    });
  } catch (err) {
    process.stderr.write(`l7guard serve: ${(err as Error).message}\n`);
    return 1;
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      proxy.close().then(
        () => resolve(0),
        (err: unknown) => {
          log.error({ err: (err as Error).message }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
