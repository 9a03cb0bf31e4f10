// What `l7guard serve` loads: a real child process whose module loads are recorded by a loader hook.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loopbackBlock } from '../helpers/net.js';
import { serve } from '../helpers/serve.js';
import { starWarsCluster, clusterDir } from '../helpers/cluster.js';

const ip = loopbackBlock();
const ips = { tiefighter: ip(11), xwing: ip(12), deathstar: [ip(21), ip(22)] as const, clusterIP: ip(10) };

/** Node flags that make the child append every module URL it loads to the returned file. */
function recordLoads(dir: string): { nodeArgs: string[]; loaded: () => string[] } {
  const log = join(dir, 'loaded.txt');
  writeFileSync(log, '');
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(hooks, `import { appendFileSync } from 'node:fs';
export async function load(url, ctx, next) { appendFileSync(${JSON.stringify(log)}, url + '\\n'); return next(url, ctx); }
`);
  const register = join(dir, 'register.mjs');
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  return { nodeArgs: ['--import', pathToFileURL(register).href], loaded: () => readFileSync(log, 'utf8').split('\n').filter(Boolean) };
}

t.test('serve -f does not load the Kubernetes client (only --kubernetes needs it)', async (t) => {
  const rec = recordLoads(t.testdir());
  const s = await serve(['-f', clusterDir(starWarsCluster(ips)), '--listen', `${ip(1)}:0`, '--admin', '127.0.0.1:0'], 20_000, rec.nodeArgs);
  t.teardown(() => s.stop());
  const loaded = rec.loaded();
  t.ok(loaded.some((u) => u.endsWith('/proxy/control-plane.js')), 'the hook saw the control plane load');
  t.same(loaded.filter((u) => u.includes('/@kubernetes/client-node/')), [], 'no module of @kubernetes/client-node');
  t.equal(await s.stop(), 0, 'serve exits cleanly');
});
