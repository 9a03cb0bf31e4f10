// URL and body checks of the admin object API (admin-routes.ts) and the kind table (kinds.ts),
// table-driven: each row is a request the API must accept or refuse with one stable code.
import t from 'tap';
import { objectFromBody, parseTarget } from '../../../proxy/admin/reload-routes.js';
import { ApplyError } from '../../../proxy/reload/errors.js';
import { displayName, lookupKind } from '../../../proxy/reload/kinds.js';

t.test('kind names as kubectl accepts them', async (t) => {
  for (const n of ['ciliumnetworkpolicies', 'ciliumnetworkpolicy', 'cnp', 'CiliumNetworkPolicy', 'ciliumnetworkpolicies.cilium.io']) {
    t.equal(lookupKind(n)?.kind, 'CiliumNetworkPolicy', n);
  }
  t.equal(lookupKind('ccnp')?.namespaced, false);
  t.equal(lookupKind('svc')?.kind, 'Service');
  t.equal(lookupKind('deployments'), undefined, 'kinds serve skips are not accepted');
  t.equal(displayName(lookupKind('cnp')!, 'rule1'), 'ciliumnetworkpolicy.cilium.io/rule1');
  t.equal(displayName(lookupKind('pods')!, 'xwing'), 'pod/xwing');
});

const code = (f: () => unknown): string => {
  try {
    f();
    return 'ok';
  } catch (err) {
    return err instanceof ApplyError ? err.code : String(err);
  }
};

t.test('URLs', async (t) => {
  const rows: [string, string][] = [
    ['/v1/ciliumnetworkpolicies/default/rule1', 'ok'],
    ['/v1/ciliumclusterwidenetworkpolicies/_/wide', 'ok'],
    ['/v1/namespaces/_/default', 'ok'],
    ['/v1/ciliumclusterwidenetworkpolicies/default/wide', 'L7G_ERR_APPLY_BAD_PATH'],
    ['/v1/pods/_/xwing', 'L7G_ERR_APPLY_BAD_PATH'],
    ['/v1/pods/default', 'L7G_ERR_APPLY_BAD_PATH'],
    ['/v1/pods/default/a/b', 'L7G_ERR_APPLY_BAD_PATH'],
    ['/v1/deployments/default/x', 'L7G_ERR_APPLY_UNKNOWN_KIND'],
  ];
  for (const [url, want] of rows) t.equal(code(() => parseTarget(url)), want, url);
  t.same(parseTarget('/v1/namespaces/_/default').namespace, undefined, 'cluster-scoped: no namespace');
});

t.test('bodies', async (t) => {
  const target = parseTarget('/v1/pods/prod/xwing');
  const pod = (meta: string) => `apiVersion: v1\nkind: Pod\nmetadata: {${meta}}\n`;
  t.equal(objectFromBody(pod('name: xwing'), target).namespace, 'prod', 'the namespace defaults to the URL');
  t.equal((objectFromBody(pod('name: xwing'), target).raw.metadata as { namespace: string }).namespace, 'prod');
  t.equal(objectFromBody('{"apiVersion":"v1","kind":"Pod","metadata":{"name":"xwing","namespace":"prod"}}', target).name, 'xwing', 'JSON');
  const rows: [string, string][] = [
    [pod('name: tiefighter'), 'L7G_ERR_APPLY_MISMATCH'],
    [pod('name: xwing, namespace: default'), 'L7G_ERR_APPLY_MISMATCH'],
    ['apiVersion: v1\nkind: Service\nmetadata: {name: xwing}\n', 'L7G_ERR_APPLY_MISMATCH'],
    [`${pod('name: xwing')}---\n${pod('name: xwing')}`, 'L7G_ERR_APPLY_BAD_BODY'],
    ['kind: [', 'L7G_ERR_APPLY_BAD_BODY'],
    ['', 'L7G_ERR_APPLY_BAD_BODY'],
  ];
  for (const [body, want] of rows) t.equal(code(() => objectFromBody(body, target)), want, JSON.stringify(body));
});
