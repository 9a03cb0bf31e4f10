/**
 * What the operator commands share: `--server HOST:PORT|unix:PATH` (default the admin default, like
 * `cilium` finding its agent's socket), one GET for JSON, and the error when it fails.
 */
import { adminRequest, DEFAULT_ADMIN } from '../proxy/admin/client.js';
import { CliError } from './cli-error.js';
import { systemReason } from './report-error.js';

export { DEFAULT_ADMIN };

/** The admin API could not be reached, or answered with an error: exit 1, `l7guard <command>: …`. */
export class AdminGetError extends CliError {
  override readonly code = 'L7G_ERR_ADMIN_GET';
}

/** `cannot reach ADDR: why`, for every command that talks to a running proxy. */
export function unreachable(where: string, err: unknown): AdminGetError {
  const refused = (err as NodeJS.ErrnoException).code === 'ECONNREFUSED' || (err as NodeJS.ErrnoException).code === 'ENOENT';
  return new AdminGetError(`cannot reach the admin API at ${where}: ${systemReason(err)}`, {
    hint: refused ? `Is l7guard serve running? --server names its --admin address (default ${DEFAULT_ADMIN}).` : undefined,
  });
}

export function adminGet<T>(server: string | undefined, path: string): Promise<T> {
  return adminCall<T>(server, 'GET', path);
}

/** One request with an optional JSON body; anything but 200 is an AdminGetError with the server's message. */
export async function adminCall<T>(server: string | undefined, method: string, path: string, body?: string): Promise<T> {
  const where = server ?? DEFAULT_ADMIN;
  let a;
  try {
    a = await adminRequest(where, method, path, body);
  } catch (err) {
    throw unreachable(where, err);
  }
  if (a.status !== 200) throw new AdminGetError(`${where}${path.replace(/\?.*/, '')}: HTTP ${a.status}: ${String(a.body['message'] ?? '')}`);
  return a.body as T;
}
