import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveKubeConfig } from '../../../../proxy/sources/kubernetes/config.js';
import { kubeconfigText } from '../../../helpers/kube-api-server.js';

const dir = mkdtempSync(join(tmpdir(), 'l7guard-kubeconfig-'));
const file = (name: string, server: string) => {
  const p = join(dir, name);
  writeFileSync(p, kubeconfigText(server, 't'));
  return p;
};

t.test("kubectl's order: --kubeconfig, in-cluster, $KUBECONFIG, ~/.kube/config", async (t) => {
  const flag = file('flag', 'https://flag.example:6443');
  const env = file('env', 'https://env.example:6443');
  t.equal(resolveKubeConfig(flag, { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBECONFIG: env }).server, 'https://flag.example:6443', 'an explicit flag wins');
  t.equal(resolveKubeConfig(undefined, { KUBECONFIG: `${env}:${flag}` }).from, `$KUBECONFIG ${env}`, 'the first file of $KUBECONFIG');
  const home = mkdtempSync(join(tmpdir(), 'l7guard-home-'));
  t.throws(() => resolveKubeConfig(undefined, { HOME: home }), { code: 'L7G_ERR_KUBE_CONFIG', message: /does not exist/ }, 'nothing to find: a typed error');
  // In a pod: the service account (the client reads the address from the process environment).
  const saved = { host: process.env['KUBERNETES_SERVICE_HOST'], port: process.env['KUBERNETES_SERVICE_PORT'] };
  process.env['KUBERNETES_SERVICE_HOST'] = '10.96.0.1';
  process.env['KUBERNETES_SERVICE_PORT'] = '443';
  try {
    const r = resolveKubeConfig(undefined, { ...process.env, KUBECONFIG: env });
    t.equal(r.from, 'in-cluster', 'in a pod, before $KUBECONFIG');
    t.equal(r.server, 'https://10.96.0.1:443');
  } finally {
    for (const [k, v] of [['KUBERNETES_SERVICE_HOST', saved.host], ['KUBERNETES_SERVICE_PORT', saved.port]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

t.test('a plain http:// server is used as written, as kubectl does', async (t) => {
  const r = resolveKubeConfig(file('http', 'http://127.0.0.1:8001'), {});
  t.equal(r.kc.getCurrentCluster()?.skipTLSVerify, true, 'no TLS to verify: the client is told so');
  const s = resolveKubeConfig(file('https', 'https://127.0.0.1:6443'), {});
  t.not(s.kc.getCurrentCluster()?.skipTLSVerify, true, 'https keeps verification');
});
