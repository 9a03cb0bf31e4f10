/**
 * What the operator commands share: `--server HOST:PORT|unix:PATH` (default the admin default, like
 * `cilium` finding its agent's socket), one GET for JSON, and the error line when it fails.
 */
import { adminRequest, DEFAULT_ADMIN } from '../proxy/admin/client.js';

export { DEFAULT_ADMIN };

/** A failure to print as `Error: …` with exit code 1 (the server answered, or could not be reached). */
export class AdminGetError extends Error {}

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
    throw new AdminGetError(`cannot reach ${where}: ${(err as Error).message}`);
  }
  if (a.status !== 200) throw new AdminGetError(`${where}${path.replace(/\?.*/, '')}: HTTP ${a.status}: ${String(a.body['message'] ?? '')}`);
  return a.body as T;
}

/** Runs a command body; AdminGetError becomes `Error: …` on stderr and exit code 1. */
export async function reportingAdminErrors(run: () => Promise<number>, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  try {
    return await run();
  } catch (e) {
    if (!(e instanceof AdminGetError)) throw e;
    err.write(`Error: ${e.message}\n`);
    return 1;
  }
}
