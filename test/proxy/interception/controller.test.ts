/**
 * InterceptionController's bookkeeping when the kernel or the sockets refuse: a failed iptables
 * apply leaves no listener or port behind and is tried again; only a port someone else holds is
 * given up. The rules and listeners are recorded by small doubles of our own two interfaces (the
 * real iptables and listeners are exercised by test/e2e/managed-iptables.test.ts).
 */
import t from 'tap';
import pino from 'pino';
import { buildPolicyState } from '../../../policy/index.js';
import { parseText } from '../../../policy/load.js';
import { deathstarPolicy, starWarsYaml } from '../../../fixtures/star-wars.js';
import { InterceptionController, type RedirectRule, type RuleWriter } from '../../../proxy/interception/controller.js';
import { PortPool } from '../../../proxy/interception/ports.js';
import type { DataPlane } from '../../../proxy/data-plane.js';
import { until } from '../../helpers/poll.js';

const ADDRESSES = { deathstar: ['10.0.0.4', '10.0.0.5'], tiefighter: '10.0.0.2', xwing: '10.0.0.3', clusterIP: '10.96.0.10' };
const state = buildPolicyState(parseText('c.yaml', starWarsYaml({ addresses: ADDRESSES }) + '---\n' + deathstarPolicy(80), []), {
  clusterName: 'default', nodeIPs: [], allowLocalhost: 'always', revision: 1,
});

function listeners(failWith?: () => string | undefined) {
  const open = new Map<number, string>();
  const data = {
    async addRedirect(_host: string, port: number, dest: { ip: string; port: number }) {
      const code = failWith?.();
      if (code !== undefined) throw Object.assign(new Error(code), { code });
      open.set(port, `${dest.ip}:${dest.port}`);
    },
    async removeRedirect(port: number) {
      open.delete(port);
    },
  } as unknown as DataPlane;
  return { data, open };
}

class Rules implements RuleWriter {
  applied: RedirectRule[][] = [];
  failures = 0;
  async apply(rules: readonly RedirectRule[]) {
    if (this.failures > 0) {
      this.failures--;
      throw Object.assign(new Error('iptables-restore: Another app is currently holding the xtables lock'), { code: 'L7G_ERR_IPTABLES' });
    }
    this.applied.push([...rules]);
  }
  async cleanup() {
    this.applied.push([]);
  }
}

t.test('a failed apply closes the listeners it opened, gives the ports back, and is retried', async (t) => {
  const { data, open } = listeners();
  const rules = new Rules();
  rules.failures = 1;
  const ports = new PortPool(15000, 15009);
  const c = new InterceptionController({ data, rules, ports, mode: 'pod', log: pino({ level: 'silent' }) });
  await t.rejects(c.reconcile(state), /xtables lock/);
  t.equal(open.size, 0, 'no listener left open');
  t.equal(ports.used, 0, 'every port back in the pool');
  await until(() => rules.applied.length, (n) => n === 1, 'the retry applied the rules', { timeoutMs: 5000 });
  t.same(rules.applied[0]!.map((r) => `${r.ip}:${r.port}`).sort(), ['10.0.0.4:80', '10.0.0.5:80', '10.96.0.10:80'], 'the deathstar pods and their Service');
  t.equal(open.size, 3, 'one listener each');
  t.same([...open.keys()].sort(), rules.applied[0]!.map((r) => r.toPort).sort(), 'the rules point at the listeners');
  await c.stop();
  t.equal(open.size, 0, 'stop closes them');
  t.same(rules.applied.at(-1), [], 'and removes the rules');
});

t.test('only a port someone else holds is given up', async (t) => {
  let calls = 0;
  const { data, open } = listeners(() => (++calls === 1 ? 'EADDRINUSE' : calls === 3 ? 'EMFILE' : undefined));
  const rules = new Rules();
  const ports = new PortPool(15000, 15009);
  const c = new InterceptionController({ data, rules, ports, mode: 'pod', log: pino({ level: 'silent' }) });
  await t.rejects(c.reconcile(state), /EMFILE/, 'out of descriptors fails the reconcile');
  t.equal(open.size, 0, 'what it opened is closed again');
  t.equal(ports.used, 0);
  await until(() => rules.applied.length, (n) => n === 1, 'retried', { timeoutMs: 5000 });
  t.notOk([...open.keys()].includes(15000), 'the port in use elsewhere (15000) is never handed out again');
  t.equal(open.size, 3, 'every destination has its listener');
  await c.stop();
});
