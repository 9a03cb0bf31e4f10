/**
 * HTTP rule matching: docs/semantics.md#l7-http-matching, docs/semantics.md#header-match-actions and every
 * row of cilium/proxy tests/cilium_http_integration_test.cc (docs/semantics.md#upstream-tests-l7guard-follows).
 */
import t from 'tap';
import { compileCrdHttpRule } from '../../policy/compile.js';
import { compileHttpRule, type HeaderMatchSpec, makeHttpCheck } from '../../policy/http-rule.js';
import { compileFullMatch } from '../../policy/regex.js';
import type { CrdHttpRule } from '../../policy/schema.js';

const SECRET = 'd4ef0f5011f163ac';
const hm = (name: string, value: string | undefined, matchAction: HeaderMatchSpec['matchAction'], mismatchAction: HeaderMatchSpec['mismatchAction'], secret = false): HeaderMatchSpec =>
  ({ name, value, secret, matchAction, mismatchAction });

// The NPDS rules of remote 1 in cilium/proxy tests/cilium_http_integration_test.cc.
const remote1 = makeHttpCheck([
  compileHttpRule({ path: '/allowed', headerMatches: [hm('header42', '', 'FAIL', 'CONTINUE'), hm('bearer-token', SECRET, 'CONTINUE', 'REPLACE', true)] }),
  compileHttpRule({ path: '.*public$', headerMatches: [hm('user-agent', 'CuRL', 'CONTINUE', 'DELETE')] }),
  compileHttpRule({ host: 'allowedHOST', headerMatches: [hm('header2', 'value2', 'CONTINUE', 'ADD'), hm('header42', '', 'DELETE', 'CONTINUE')] }),
  compileHttpRule({ host: '.*REGEX.*', headerMatches: [hm('header42', '42', 'CONTINUE', 'DELETE')] }),
  compileHttpRule({ method: 'PUT', path: '/public/opinions' }),
]);

t.test('cilium/proxy tests/cilium_http_integration_test.cc, remote 1', async (t) => {
  const rows: {
    name: string; method: string; path: string; host: string; headers?: string[]; allowed: boolean;
    edits?: string[]; missing?: string[]; rejected?: string[];
  }[] = [
    { name: 'DeniedPathPrefix', method: 'GET', path: '/prefix', host: 'host', allowed: false, missing: [], rejected: [] },
    { name: 'AllowedPathPrefix', method: 'GET', path: '/allowed', host: 'host', headers: ['bearer-token', SECRET], allowed: true, edits: [], missing: ['header42='] },
    { name: 'AllowedPathPrefixWrongHeader', method: 'GET', path: '/allowed', host: 'host', headers: ['bearer-token', 'wrong-value'], allowed: true, edits: [`replace bearer-token=${SECRET}`], missing: ['header42=', 'bearer-token=[redacted]'], rejected: ['bearer-token=[redacted]'] },
    { name: 'AllowedPathRegex', method: 'GET', path: '/maybe/public', host: 'host', allowed: true },
    { name: 'AllowedPathRegexDeleteHeader', method: 'GET', path: '/maybe/public', host: 'host', headers: ['User-Agent', 'test'], allowed: true, edits: ['delete user-agent='], rejected: ['user-agent=test'] },
    { name: 'AllowedHostRegexDeleteHeader', method: 'GET', path: '/maybe/private', host: 'hostREGEXname', headers: ['header42', 'test'], allowed: true, edits: ['delete header42='], rejected: ['header42=test'] },
    { name: 'DeniedPath', method: 'GET', path: '/maybe/private', host: 'host', allowed: false },
    { name: 'AllowedHostString', method: 'GET', path: '/maybe/private', host: 'allowedHOST', allowed: true, edits: ['add header2=value2'] },
    { name: 'Denied42', method: 'GET', path: '/allowed', host: 'host', headers: ['header42', 'anything'], allowed: false },
    { name: 'AllowedReplacedAndDeleted', method: 'GET', path: '/allowed', host: 'allowedHOST', headers: ['header42', 'anything'], allowed: true, edits: [`replace bearer-token=${SECRET}`, 'add header2=value2', 'delete header42='] },
    { name: 'DeniedMethod', method: 'POST', path: '/maybe/private', host: 'host', allowed: false },
    { name: 'AcceptedMethod', method: 'PUT', path: '/public/opinions', host: 'host', allowed: true },
  ];
  for (const r of rows) {
    const res = remote1({ method: r.method, path: r.path, host: r.host, headers: r.headers ?? [] });
    t.equal(res.allowed, r.allowed, `${r.name}: allowed`);
    if (r.edits) t.same(res.edits.map((e) => `${e.op} ${e.name}=${e.value}`), r.edits, `${r.name}: edits`);
    if (r.missing) t.same(res.missing.map((m) => `${m.key}=${m.value}`), r.missing, `${r.name}: missing`);
    if (r.rejected) t.same(res.rejected.map((m) => `${m.key}=${m.value}`), r.rejected, `${r.name}: rejected`);
  }
});

const crd = (r: Partial<Omit<CrdHttpRule, 'method' | 'path' | 'host'>> & { method?: string; path?: string; host?: string }): CrdHttpRule => ({
  method: r.method !== undefined ? compileFullMatch(r.method) : undefined,
  path: r.path !== undefined ? compileFullMatch(r.path) : undefined,
  host: r.host !== undefined ? compileFullMatch(r.host) : undefined,
  headers: r.headers ?? [],
  headerMatches: r.headerMatches ?? [],
});
const noSecrets = () => undefined;

t.test('CNP HTTP rule fields: anchoring, method, host, headers', async (t) => {
  const rows: { name: string; rule: CrdHttpRule; method?: string; path?: string; host?: string | undefined; headers?: string[]; allowed: boolean }[] = [
    // Anchoring: full match
    { name: 'path exact', rule: crd({ path: '/v1/request-landing' }), path: '/v1/request-landing', allowed: true },
    { name: 'path no prefix match', rule: crd({ path: '/v1/request-landing' }), path: '/prefix/v1/request-landing', allowed: false },
    { name: 'path no suffix match', rule: crd({ path: '/v1/request-landing' }), path: '/v1/request-landingX', allowed: false },
    { name: 'path includes query', rule: crd({ path: '/v1/request-landing' }), path: '/v1/request-landing?x=1', allowed: false },
    { name: 'path with optional query regex', rule: crd({ path: '/v1/request-landing(\\?.*)?' }), path: '/v1/request-landing?x=1', allowed: true },
    { name: 'prefix via .*', rule: crd({ path: '/v1/.*' }), path: '/v1/anything/deep', allowed: true },
    { name: 'explicit $ harmless', rule: crd({ path: '/public$' }), path: '/public', allowed: true },
    { name: '.*public$ vs /publicz (HttpPolicyUpdate)', rule: crd({ path: '.*public$' }), path: '/publicz', allowed: false },
    // Method: case-sensitive, alternation
    { name: 'method case-sensitive', rule: crd({ method: 'GET' }), method: 'get', allowed: false },
    { name: 'method alternation', rule: crd({ method: 'GET|HEAD' }), method: 'HEAD', allowed: true },
    { name: 'method alternation no partial', rule: crd({ method: 'GET|HEAD' }), method: 'GETX', allowed: false },
    { name: '(?i) flag (RE2 dialect)', rule: crd({ method: '(?i)get' }), method: 'GeT', allowed: true },
    // Host: includes :port, absent never matches
    { name: 'host with port not matched by bare name', rule: crd({ host: 'deathstar' }), host: 'deathstar:80', allowed: false },
    { name: 'host regex with port', rule: crd({ host: 'deathstar(:80)?' }), host: 'deathstar:80', allowed: true },
    { name: 'absent host never matches a host rule', rule: crd({ host: '.*' }), host: undefined, allowed: false },
    { name: 'host case-sensitive (multi_l7 ^…$)', rule: crd({ host: '^external-service.org$' }), host: 'External-service.org', allowed: false },
    // headers[]: split at first space, trailing ':' removed, value exact; name case-insensitive
    { name: 'headers "X-My-Header: true"', rule: crd({ headers: [{ name: 'X-My-Header', value: 'true' }] }), headers: ['x-my-header', 'true'], allowed: true },
    { name: 'headers value case-sensitive', rule: crd({ headers: [{ name: 'X-My-Header', value: 'true' }] }), headers: ['X-My-Header', 'True'], allowed: false },
    { name: 'headers multi-valued joined (true,false)', rule: crd({ headers: [{ name: 'X-My-Header', value: 'true' }] }), headers: ['X-My-Header', 'true', 'X-My-Header', 'false'], allowed: false },
    { name: 'headers presence', rule: crd({ headers: [{ name: 'X-Present', value: '' }] }), headers: ['X-Present', ''], allowed: true },
    { name: 'headers presence missing', rule: crd({ headers: [{ name: 'X-Present', value: '' }] }), headers: [], allowed: false },
    // headerMatches with empty mismatch = FAIL
    { name: 'headerMatches FAIL match', rule: crd({ headerMatches: [{ name: 'X-Token', value: 'abc', secret: undefined, mismatch: '' }] }), headers: ['x-token', 'abc'], allowed: true },
    { name: 'headerMatches FAIL mismatch', rule: crd({ headerMatches: [{ name: 'X-Token', value: 'abc', secret: undefined, mismatch: '' }] }), headers: ['x-token', 'abd'], allowed: false },
    { name: 'unresolvable secret, no value: never matches', rule: crd({ headerMatches: [{ name: 'X-Token', value: undefined, secret: { namespace: 'default', name: 'nope' }, mismatch: '' }] }), headers: ['x-token', ''], allowed: false },
    { name: 'unresolvable secret falls back to value', rule: crd({ headerMatches: [{ name: 'X-Token', value: 'v', secret: { namespace: 'default', name: 'nope' }, mismatch: '' }] }), headers: ['x-token', 'v'], allowed: true },
    { name: 'LOG mismatch still allows', rule: crd({ headerMatches: [{ name: 'X-Token', value: 'v', secret: undefined, mismatch: 'LOG' }] }), headers: [], allowed: true },
    // AND within a rule
    { name: 'AND: method ok path wrong', rule: crd({ method: 'GET', path: '/a' }), method: 'GET', path: '/b', allowed: false },
  ];
  for (const r of rows) {
    const check = makeHttpCheck([compileCrdHttpRule(r.rule, noSecrets)]);
    const res = check({ method: r.method ?? 'GET', path: r.path ?? '/', host: 'host' in r ? r.host : 'h', headers: r.headers ?? [] });
    t.equal(res.allowed, r.allowed, r.name);
  }
  // OR between rules (layer7.rst)
  const or = makeHttpCheck([crd({ path: '/a' }), crd({ path: '/b' })].map((r) => compileCrdHttpRule(r, noSecrets)));
  t.ok(or({ method: 'GET', path: '/b', host: 'h', headers: [] }).allowed, 'OR between rules');
  t.notOk(or({ method: 'GET', path: '/c', host: 'h', headers: [] }).allowed, 'OR between rules: neither');
});

t.test('headerMatches actions from the CRD mismatch field, secret resolution', async (t) => {
  const secrets = (ns: string, name: string) => (ns === 'default' && name === 'header-match' ? 'Bearer s3cr3t' : undefined);
  // client-egress-l7-http-matchheader-secret.yaml: Authorization REPLACE from a secret
  const check = makeHttpCheck([
    compileCrdHttpRule(crd({ method: 'POST', path: '/auth-header-required$', headerMatches: [{ name: 'Authorization', value: undefined, secret: { namespace: 'default', name: 'header-match' }, mismatch: 'REPLACE' }] }), secrets),
  ]);
  const ok = check({ method: 'POST', path: '/auth-header-required', host: 'h', headers: ['Authorization', 'Bearer s3cr3t'] });
  t.same([ok.allowed, ok.edits.length], [true, 0], 'correct secret: no edit');
  const replaced = check({ method: 'POST', path: '/auth-header-required', host: 'h', headers: [] });
  t.same(replaced.edits, [{ op: 'replace', name: 'authorization', value: 'Bearer s3cr3t' }], 'missing header replaced with secret');
  t.same(replaced.missing, [{ key: 'authorization', value: '[redacted]' }], 'secret logged redacted');
  // ADD appends even when a wrong value exists (multi-valued)
  const add = makeHttpCheck([compileCrdHttpRule(crd({ headerMatches: [{ name: 'X-A', value: 'good', secret: undefined, mismatch: 'ADD' }] }), noSecrets)]);
  t.same(add({ method: 'GET', path: '/', host: 'h', headers: ['X-A', 'bad'] }).edits, [{ op: 'add', name: 'x-a', value: 'good' }], 'ADD appends');
  // DELETE does nothing when absent
  const del = makeHttpCheck([compileCrdHttpRule(crd({ headerMatches: [{ name: 'X-D', value: 'good', secret: undefined, mismatch: 'DELETE' }] }), noSecrets)]);
  const delRes = del({ method: 'GET', path: '/', host: 'h', headers: [] });
  t.same([delRes.allowed, delRes.edits.length], [true, 0], 'DELETE absent: no edit');
  // Several matching rules with actions: all run (docs/semantics.md#header-match-actions)
  const multi = makeHttpCheck([
    compileCrdHttpRule(crd({ headerMatches: [{ name: 'X-1', value: 'a', secret: undefined, mismatch: 'ADD' }] }), noSecrets),
    compileCrdHttpRule(crd({ headerMatches: [{ name: 'X-2', value: 'b', secret: undefined, mismatch: 'ADD' }] }), noSecrets),
  ]);
  t.same(multi({ method: 'GET', path: '/', host: 'h', headers: [] }).edits.map((e) => e.name), ['x-1', 'x-2'], 'all matching rules run their actions');
  // no allocation in the common path: the same frozen result object is returned
  const plain = makeHttpCheck([compileCrdHttpRule(crd({ path: '/a' }), noSecrets)]);
  t.equal(plain({ method: 'GET', path: '/a', host: 'h', headers: [] }), plain({ method: 'GET', path: '/a', host: 'h', headers: [] }), 'shared result object');
});
