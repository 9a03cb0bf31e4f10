/**
 * Scenarios: which requests, from which identities, over how many connections. Every target runs a
 * scenario with the same connections and duration. Targets without the Star Wars policy (`direct`,
 * `undici`) only run scenarios where every request is meant to reach a backend.
 */
import { DENIED, DROP, LANDED } from './http-response.mjs';

function request(method, path, authority, body) {
  const head = `${method} ${path} HTTP/1.1\r\nHost: ${authority}\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n` +
    (body === undefined ? '' : `Content-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n`) + '\r\n';
  return body === undefined ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/** The request kinds of a run; the load generator cycles through them by index. */
export function kinds(addr) {
  const a = addr.authority;
  return {
    landing: { buf: request('POST', '/v1/request-landing', a), expect: LANDED, from: 'tiefighter' },
    exhaust: { buf: request('PUT', '/v1/exhaust-port', a), expect: DENIED, from: 'tiefighter' },
    xwing: { buf: request('POST', '/v1/request-landing', a), expect: DROP, from: 'xwing' },
    landing1k: { buf: request('POST', '/v1/request-landing', a, Buffer.alloc(1024, 0x61)), expect: LANDED, from: 'tiefighter' },
    landing1m: { buf: request('POST', '/v1/request-landing', a, Buffer.alloc(1024 * 1024, 0x61)), expect: LANDED, from: 'tiefighter' },
  };
}

/**
 * name -> { what, policyOnly, groups: [{ share, from, cycle: [kind...] }], targets? }
 * `share` is the fraction of the connections a group gets (rounded, at least 1).
 */
export const SCENARIOS = {
  allowed: { what: 'tiefighter POST /v1/request-landing (L7 allowed)', policyOnly: false, groups: [{ share: 1, cycle: ['landing'] }] },
  denied: { what: 'tiefighter PUT /v1/exhaust-port (L7 denied: 403)', policyOnly: true, groups: [{ share: 1, cycle: ['exhaust'] }] },
  xwing: { what: 'xwing POST /v1/request-landing (L3/L4 denied: drop; one connection per request)', policyOnly: true, groups: [{ share: 1, cycle: ['xwing'] }] },
  mix: {
    what: '90% of connections tiefighter (3 allowed : 1 denied), 10% xwing',
    policyOnly: true,
    groups: [{ share: 0.9, cycle: ['landing', 'landing', 'landing', 'exhaust'] }, { share: 0.1, cycle: ['xwing'] }],
  },
  bigpolicy: {
    what: 'allowed, demo policy vs 10,000 rules over 1,000 identities (l7guard only)',
    policyOnly: true,
    groups: [{ share: 1, cycle: ['landing'] }],
    targets: ['l7guard', 'l7guard-big'],
  },
  body1k: { what: 'allowed, 1 KiB request body', policyOnly: false, groups: [{ share: 1, cycle: ['landing1k'] }] },
  // The hand-written Node peers stall intermittently with 50 concurrent 1 MiB uploads (0 to ~140
  // req/s from one run to the next, some runs completing nothing): a bug in those peers, not in what
  // is measured, so they sit this scenario out rather than show a meaningless row.
  body1m: { what: 'allowed, 1 MiB request body', policyOnly: false, skip: ['undici', 'http-proxy'], groups: [{ share: 1, cycle: ['landing1m'] }] },
  reload: {
    what: 'allowed under a POST /reload every 100 ms (l7guard only; skipped when the admin API has no /reload)',
    policyOnly: true,
    groups: [{ share: 1, cycle: ['landing'] }],
    targets: ['l7guard'],
  },
  idle: { what: 'N idle keep-alive connections (one allowed request each): RSS', policyOnly: true, idle: true, groups: [{ share: 1, cycle: ['landing'] }] },
};

export const DEFAULT_SCENARIOS = ['allowed', 'denied', 'xwing', 'mix', 'bigpolicy', 'body1k', 'body1m', 'idle', 'reload'];

/** Per-connection plans for the load worker: { kinds: [...], conns: [{ localAddress, cycle: [index...] }] }. */
export function plan(scenario, allKinds, addr, connections) {
  const names = [...new Set(scenario.groups.flatMap((g) => g.cycle))];
  const list = names.map((n) => allKinds[n]);
  const conns = [];
  scenario.groups.forEach((g, gi) => {
    const last = gi === scenario.groups.length - 1;
    const n = last ? Math.max(1, connections - conns.length) : Math.max(1, Math.round(connections * g.share));
    const from = allKinds[g.cycle[0]].from;
    for (let i = 0; i < n; i++) conns.push({ localAddress: addr[from], cycle: g.cycle.map((k) => names.indexOf(k)) });
  });
  return { names, kinds: list.map((k) => ({ buf: k.buf, expect: k.expect })), conns };
}
