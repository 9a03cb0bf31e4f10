/**
 * Before timing: every kind of request of the scenario is sent to the target a few times on fresh
 * connections, and both what the client got and what reached the backends are checked. A target
 * that answers 200 without forwarding, or forwards what it should deny, fails here.
 */
import net from 'node:net';
import { classify, DROP, LANDED, parseResponse } from './http-response.mjs';

const PROBES = 4;

/** One request on a fresh connection: 'landed' | 'denied' | 'drop' | 'other:<status>' | 'timeout'. */
export function probe(endpoint, localAddress, buf, timeoutMs = 5000) {
  return new Promise((resolve) => {
    const s = net.connect({ host: endpoint.host, port: endpoint.port, localAddress });
    let acc = null;
    let settled = false;
    const done = (outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(t);
      s.destroy();
      resolve(outcome);
    };
    const t = setTimeout(() => done('timeout'), timeoutMs);
    s.on('error', () => {});
    s.on('data', (chunk) => {
      acc = acc === null ? chunk : Buffer.concat([acc, chunk]);
      const r = parseResponse(acc);
      if (r !== null) done(classify(acc, r));
    });
    s.on('close', () => {
      if (acc === null) return done(DROP);
      const r = parseResponse(acc);
      done(r === null ? 'other:truncated' : classify(acc, r));
    });
    s.write(buf);
  });
}

const total = (hits) => hits.reduce((n, h) => n + Object.values(h).reduce((a, b) => a + b, 0), 0);

/**
 * @returns {Promise<{ ok: boolean, problems: string[], checks: object[] }>}
 */
export async function validate(target, scenarioKinds, addr, backends, { balanced = true } = {}) {
  const problems = [];
  const checks = [];
  for (const [name, kind] of scenarioKinds) {
    const before = await backends.hits();
    const outcomes = [];
    for (let i = 0; i < PROBES; i++) {
      outcomes.push(await probe(target.endpoints[i % target.endpoints.length], addr[kind.from], kind.buf));
    }
    // Give a forwarded request time to be counted before reading the counters.
    await new Promise((r) => setTimeout(r, 50));
    const after = await backends.hits();
    const reached = total(after) - total(before);
    const perBackend = after.map((h, i) => Object.values(h).reduce((a, b) => a + b, 0) - Object.values(before[i]).reduce((a, b) => a + b, 0));
    const wrong = outcomes.filter((o) => o !== kind.expect);
    if (wrong.length > 0) problems.push(`${name}: expected ${kind.expect}, got ${outcomes.join(', ')}`);
    if (kind.expect === LANDED) {
      if (reached !== PROBES) problems.push(`${name}: ${PROBES} requests landed but backends saw ${reached}`);
      else if (balanced && perBackend.some((n) => n === 0)) problems.push(`${name}: not balanced over both backends (${perBackend.join('/')})`);
    } else if (reached !== 0) {
      problems.push(`${name}: denied, yet ${reached} request(s) reached a backend`);
    }
    checks.push({ kind: name, expect: kind.expect, outcomes, reachedBackends: reached });
  }
  return { ok: problems.length === 0, problems, checks };
}
