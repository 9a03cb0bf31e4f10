/**
 * The on-disk layout of `l7guard certs`: `DIR/ca.crt` + `DIR/ca.key` (init), `DIR/NAME.crt` +
 * `DIR/NAME.key` (issue). Keys are written 0600 and never overwritten unless asked.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PemPair } from './ca.js';

export const DEFAULT_CERTS_DIR = 'l7guard-certs';

export async function writePair(dir: string, base: string, pair: PemPair, force: boolean): Promise<{ cert: string; key: string }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const cert = join(dir, `${base}.crt`);
  const key = join(dir, `${base}.key`);
  const flag = force ? 'w' : 'wx';
  await writeFile(key, pair.key, { mode: 0o600, flag });
  await writeFile(cert, pair.cert, { mode: 0o644, flag });
  return { cert, key };
}

/** The certificate first, then its key: a folder with neither names `ca.crt`, every time. */
export async function readCA(dir: string): Promise<PemPair> {
  const cert = await readFile(join(dir, 'ca.crt'), 'utf8');
  const key = await readFile(join(dir, 'ca.key'), 'utf8');
  return { cert, key };
}
