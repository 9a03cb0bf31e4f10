import t from 'tap';
import { secretRefs } from '../../../../proxy/sources/kubernetes/secret-refs.js';

t.test('every Secret a CNP names, with the namespace Cilium defaults to', async (t) => {
  const cnp = {
    spec: {
      ingress: [{
        toPorts: [{
          terminatingTLS: { secret: { name: 'tls' } },
          originatingTLS: { secret: { namespace: 'certs', name: 'ca' } },
          rules: { http: [{ headerMatches: [{ name: 'x-token', secret: { name: 'token' } }, { name: 'plain', value: 'v' }] }] },
        }],
      }],
    },
    specs: [{ egress: [{ toPorts: [{ rules: { http: [{ headerMatches: [{ name: 'a', secret: { namespace: 'other', name: 'b' } }] }] } }] }] }],
  };
  const out = new Set<string>();
  secretRefs(cnp, 'empire', out);
  t.same([...out].sort(), ['certs/ca', 'empire/tls', 'empire/token', 'other/b']);
  const ccnp = new Set<string>();
  secretRefs({ spec: { ingressDeny: [{ toPorts: [{ terminatingTLS: { secret: { name: 'x' } } }] }] } }, undefined, ccnp);
  t.same([...ccnp], ['default/x'], 'a CCNP names Secrets in default unless it says otherwise');
  const none = new Set<string>();
  secretRefs({ spec: { ingress: [{ toPorts: 'bogus' }] }, specs: 'nope' }, 'ns', none);
  t.equal(none.size, 0, 'malformed policies name nothing (validation reports them)');
});
