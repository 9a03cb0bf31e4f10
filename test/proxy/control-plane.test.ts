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

/**
 * Node flags that make the child list the modules it loaded in a file: ES modules as they load (a
 * loader hook), CommonJS ones (`require`, createRequire) from the require cache when it exits.
 */
function recordLoads(dir: string): { nodeArgs: string[]; loaded: () => string[] } {
  const log = join(dir, 'loaded.txt');
  writeFileSync(log, '');
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(hooks, `import { appendFileSync } from 'node:fs';
export async function load(url, ctx, next) { appendFileSync(${JSON.stringify(log)}, url + '\\n'); return next(url, ctx); }
`);
  const register = join(dir, 'register.mjs');
  writeFileSync(register, `import { appendFileSync } from 'node:fs';
import Module, { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(hooks).href)});
process.on('exit', () => appendFileSync(${JSON.stringify(log)}, Object.keys(Module._cache).join('\\n') + '\\n'));
`);
  return { nodeArgs: ['--import', pathToFileURL(register).href], loaded: () => readFileSync(log, 'utf8').split('\n').filter(Boolean) };
}

const ofPackage = (loaded: readonly string[], name: string): string[] => loaded.filter((u) => u.includes(`/node_modules/${name}/`));

t.test('serve -f loads neither the Kubernetes client, nor undici, nor the flow serialiser until they are used', async (t) => {
  const rec = recordLoads(t.testdir());
  const s = await serve(['-f', clusterDir(starWarsCluster(ips)), '--listen', `${ip(1)}:0`, '--admin', '127.0.0.1:0'], 20_000, rec.nodeArgs);
  t.teardown(() => s.stop());
  t.equal(await s.stop(), 0, 'serve exits cleanly');
  const loaded = rec.loaded();
  t.ok(loaded.some((u) => u.endsWith('/proxy/control-plane.js')), 'the hook saw the control plane load');
  t.ok(ofPackage(loaded, 'pino').length > 0, 'and CommonJS packages loaded by require (pino)');
  t.same(ofPackage(loaded, '@kubernetes/client-node'), [], 'no module of @kubernetes/client-node (only --kubernetes needs it)');
  t.same(ofPackage(loaded, 'undici'), [], 'no undici (the native client speaks plain HTTP)');
  t.same(ofPackage(loaded, 'fast-json-stringify'), [], 'no fast-json-stringify (no --flows file, nothing serialised yet)');
});

t.test('serve --flows FILE loads the flow serialiser at startup', async (t) => {
  const dir = t.testdir();
  const rec = recordLoads(dir);
  const s = await serve(['-f', clusterDir(starWarsCluster(ips)), '--listen', `${ip(1)}:0`, '--admin', '127.0.0.1:0', '--flows', join(dir, 'flows.json')], 20_000, rec.nodeArgs);
  t.teardown(() => s.stop());
  t.equal(await s.stop(), 0);
  t.not(ofPackage(rec.loaded(), 'fast-json-stringify').length, 0, 'compiled before the first request, as before');
});
