import { renameSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { adminRequest, type AdminAnswer } from '../../../proxy/admin/client.js';

export { deathstarPolicy } from '../../helpers/cluster.js';

/** What an editor does: write a temp file next to it, then rename over the original. */
export function atomicWrite(path: string, text: string): void {
  const tmp = `${path.replace(/[^/]+$/, '')}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export async function adminGet(admin: string, path: string): Promise<AdminAnswer> {
  return adminRequest(admin, 'GET', path);
}

/** Polls `check` every 25 ms until it returns a value other than undefined, or throws after `ms`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export interface ReloadDump {
  readonly revision: number;
  readonly reloads: number;
  readonly failures: number;
  readonly lastError?: { message: string; trigger: string };
  readonly overlay: number;
}

export async function reloadStats(admin: string): Promise<ReloadDump & { objects: { kind: string; name: string; source: string }[]; sources: { file: string; sha256: string }[] }> {
  const a = await adminGet(admin, '/config_dump');
  const b = a.body as { reload: ReloadDump; objects: { kind: string; name: string; source: string }[]; sources: { file: string; sha256: string }[] };
  return { ...b.reload, objects: b.objects, sources: b.sources };
}
