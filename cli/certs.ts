import { createCA, CertsError, DEFAULT_CERTS_DIR, issueCert, readCA, tlsSecretYaml, writePair } from '../certs/index.js';
import { UsageError } from './usage-error.js';
import { CliError } from './cli-error.js';
import { parseFlags, unknownSubcommand } from './flags.js';

export const CERTS_USAGE = `Usage:
  l7guard certs init  [--dir DIR] [--cn NAME] [--days N] [--force]
  l7guard certs issue NAME (--dns NAME | --ip IP | --spiffe URI)... [--dir DIR] [--days N] [--force]
                      [-o files|secret] [-n NAMESPACE]

  init    a local CA: DIR/ca.crt and DIR/ca.key (ECDSA P-256, self-signed, 10 years)
  issue   a leaf signed by DIR's CA, for TLS servers and clients (serverAuth + clientAuth):
          -o files (default) writes DIR/NAME.crt and DIR/NAME.key;
          -o secret prints a Secret NAME of type kubernetes.io/tls (tls.crt, tls.key, ca.crt) in -n NAMESPACE
          (default "default") for terminatingTLS/originatingTLS, writing nothing

  --dir DIR       where the CA lives (default ./${DEFAULT_CERTS_DIR})
  --dns NAME      a DNS SAN (repeatable), e.g. deathstar.default.svc.cluster.local
  --ip IP         an IP SAN (repeatable)
  --spiffe URI    a URI SAN: spiffe://TRUST-DOMAIN/ns/NAMESPACE/sa/SERVICEACCOUNT
  --days N        validity (init: 3650, issue: 365)
  --force         overwrite existing files
`;

const OPTIONS = {
  dir: { type: 'string' },
  cn: { type: 'string' },
  days: { type: 'string' },
  force: { type: 'boolean' },
  dns: { type: 'string', multiple: true },
  ip: { type: 'string', multiple: true },
  spiffe: { type: 'string' },
  output: { type: 'string', short: 'o' },
  namespace: { type: 'string', short: 'n' },
  help: { type: 'boolean', short: 'h' },
} as const;

function days(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,5}$/.test(v) || Number(v) < 1) throw new UsageError(`--days must be a positive number of days, not "${v}"`);
  return Number(v);
}

export async function runCerts(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseFlags(sub === 'init' || sub === 'issue' ? `certs ${sub}` : 'certs', { args: rest, options: OPTIONS, allowPositionals: true });
  if (values.help || sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
    process.stdout.write(CERTS_USAGE);
    return 0;
  }
  const dir = values.dir ?? DEFAULT_CERTS_DIR;
  try {
    if (sub === 'init') {
      if (positionals.length > 0) throw new UsageError(`certs init takes no arguments, not ${JSON.stringify(positionals[0])}`);
      const ca = await createCA({ commonName: values.cn, days: days(values.days) });
      const files = await writePair(dir, 'ca', ca, values.force === true);
      process.stdout.write(`${files.cert}\n${files.key}\n`);
      return 0;
    }
    if (sub === 'issue') {
      if (positionals.length !== 1) throw new UsageError(`certs issue needs exactly one NAME, not ${positionals.length}`);
      const name = positionals[0] as string;
      const output = values.output ?? 'files';
      if (output !== 'files' && output !== 'secret') throw new UsageError(`-o must be "files" or "secret", not "${output}"`);
      if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(name)) throw new UsageError(`NAME must be a DNS subdomain (lower case), not "${name}"`);
      const ca = await readCA(dir);
      const leaf = await issueCert(ca, { name, dns: values.dns, ips: values.ip, spiffe: values.spiffe, days: days(values.days) });
      if (output === 'secret') {
        process.stdout.write(tlsSecretYaml(name, values.namespace ?? 'default', leaf));
        return 0;
      }
      const files = await writePair(dir, name, leaf, values.force === true);
      process.stdout.write(`${files.cert}\n${files.key}\n`);
      return 0;
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const e = err as NodeJS.ErrnoException;
    const msg = e.code === 'EEXIST' ? `${e.path ?? 'file'} exists (use --force to overwrite)`
      : e.code === 'ENOENT' ? `${e.path ?? 'file'} not found (run "l7guard certs init --dir ${dir}" first)`
      : err instanceof CertsError ? err.message : e.message;
    throw new CliError(msg);
  }
  throw unknownSubcommand(sub, ['init', 'issue']);
}
