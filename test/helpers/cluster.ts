import { mkdtempSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { starWarsYaml, type Labels, type StarWarsAddresses } from '../../fixtures/star-wars.js';
import { repoRoot } from './serve.js';

export { deathstarPolicy } from '../../fixtures/star-wars.js';

/**
 * The Star Wars cluster (fixtures/star-wars.ts) as `kubectl get -o yaml` would show it after the
 * Deployment rolled out: the Pod names of a run of the Star Wars demo on a Cilium 1.17.6 cluster, the given addresses, the deathstar containers on `podPort`.
 */
export function starWarsCluster(ips: StarWarsAddresses, podPort = 80, extraLabels?: Readonly<Record<string, Labels>>): string {
  return starWarsYaml({ addresses: ips, podPort, extraLabels });
}

/** A fresh folder holding cluster.yaml and, optionally, copies of shared fixture manifests. */
export function clusterDir(clusterYaml: string, extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'l7guard-test-'));
  writeFileSync(join(dir, '00-cluster.yaml'), clusterYaml);
  for (const [name, content] of Object.entries(extra)) writeFileSync(join(dir, name), content);
  return dir;
}

export function fixture(name: string): string {
  return join(repoRoot, 'test', 'fixtures', 'manifests', name);
}

export function copyFixture(name: string, dir: string, as = name): string {
  const to = join(dir, as);
  copyFileSync(fixture(name), to);
  return to;
}
