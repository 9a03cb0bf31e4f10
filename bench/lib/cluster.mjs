/**
 * The cluster state the bench hands to `l7guard serve -f DIR`: the Star Wars app (Service + two
 * deathstar Pods + tiefighter + xwing, fixtures/star-wars.ts) with Pod IPs on loopback, and the real
 * `sw_l3_l4_l7_policy.yaml` (only its port rewritten to the pods' port, so no root is needed).
 *
 * Identities come from source addresses. tiefighter's Pod IP is 127.0.0.1 — the address any
 * loopback client uses when it binds nothing — so autocannon or curl run by hand land as tiefighter
 * too; xwing gets its own address, bound by the load generator (`localAddress`).
 *
 * The fixtures come from the repository's dist/, which bench.mjs builds when it is missing: they are
 * imported on first use, not when this module loads.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

const dist = new URL('../../dist/', import.meta.url);
let fixtures;
async function load() {
  fixtures ??= {
    ...(await import(new URL('fixtures/star-wars.js', dist))),
    ...(await import(new URL('fixtures/big-policy.js', dist))),
  };
  return fixtures;
}

/** Addresses of one bench run: a random 127.x.y.0/24 so parallel runs (and tests) do not collide. */
export async function addressPlan(podPort) {
  const { SERVICE_HOST } = await load();
  const o2 = 200 + Math.floor(Math.random() * 50);
  const o3 = 1 + Math.floor(Math.random() * 250);
  const net = `127.${o2}.${o3}`;
  return {
    tiefighter: '127.0.0.1',
    xwing: `${net}.3`,
    deathstar: [`${net}.11`, `${net}.12`],
    clusterIP: `${net}.10`,
    /** Each target listens on its own address, same port. */
    listen: (i) => `${net}.${21 + i}`,
    podPort,
    authority: SERVICE_HOST,
  };
}

/**
 * A fresh folder for `serve -f`: cluster, demo policy and, for the big scenario, a big policy on top of
 * the demo's (1,000 client identities × 10 rules to deathstar = 10,000 rules).
 */
export async function clusterDir(a, { big = false } = {}) {
  const { bigDeathstarPolicy, POLICIES, starWarsPolicy, starWarsYaml } = await load();
  const dir = mkdtempSync(join(tmpdir(), 'l7guard-bench-'));
  writeFileSync(join(dir, '00-cluster.yaml'), starWarsYaml({ addresses: a, podPort: a.podPort }));
  writeFileSync(join(dir, '10-sw_l3_l4_l7_policy.yaml'), starWarsPolicy(POLICIES.l7, { port: a.podPort }));
  if (big) writeFileSync(join(dir, '20-big-policy.yaml'), bigDeathstarPolicy({ port: a.podPort }));
  return dir;
}
