/**
 * Which API server, with which credentials: kubectl's resolution, through @kubernetes/client-node.
 *
 *   1. `--kubeconfig PATH`: an explicit flag always wins;
 *   2. in a pod (`KUBERNETES_SERVICE_HOST` set): the service account (token re-read from its
 *      projected file, CA from ca.crt);
 *   3. `$KUBECONFIG` (the first file of the list), else `~/.kube/config`.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeError } from './errors.js';

export interface ResolvedKubeConfig {
  readonly kc: KubeConfig;
  /** How it was found, for logs and /config_dump: `--kubeconfig PATH`, `in-cluster`, `$KUBECONFIG PATH`, `~/.kube/config`. */
  readonly from: string;
  readonly server: string;
}

export function resolveKubeConfig(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): ResolvedKubeConfig {
  const kc = new KubeConfig();
  let from: string;
  try {
    if (flag !== undefined) {
      kc.loadFromFile(flag);
      from = `--kubeconfig ${flag}`;
    } else if (env['KUBERNETES_SERVICE_HOST'] !== undefined && env['KUBERNETES_SERVICE_HOST'] !== '') {
      kc.loadFromCluster();
      from = 'in-cluster';
    } else {
      const listed = (env['KUBECONFIG'] ?? '').split(delimiter).filter((p) => p !== '');
      const file = listed[0] ?? join(homedir(), '.kube', 'config');
      if (!existsSync(file)) {
        throw new Error(`no kubeconfig: --kubeconfig not given, not in a pod (KUBERNETES_SERVICE_HOST unset), and ${listed.length > 0 ? `$KUBECONFIG ${file}` : file} does not exist`);
      }
      kc.loadFromFile(file);
      from = listed.length > 0 ? `$KUBECONFIG ${file}` : '~/.kube/config';
    }
  } catch (err) {
    throw new KubeError('L7G_ERR_KUBE_CONFIG', `kubernetes: ${(err as Error).message}`);
  }
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new KubeError('L7G_ERR_KUBE_CONFIG', `kubernetes: ${from} has no current context/cluster`);
  if (cluster.server.startsWith('http:') && cluster.skipTLSVerify !== true) {
    // kubectl talks to an http:// server as told; the client refuses unless TLS checks are off,
    // and there is no TLS to check on plain HTTP.
    kc.clusters = kc.clusters.map((c) => (c === cluster ? { ...c, skipTLSVerify: true } : c));
  }
  return { kc, from, server: cluster.server };
}
