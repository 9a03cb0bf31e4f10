/** Authority resolution (model.ts PolicyState.resolve). */
import t from 'tap';
import type { Destination } from '../../policy/model.js';
import { build } from './helpers.js';

const text = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.1.1
  clusterIPs: [10.96.1.1, fd00::a]
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: alt, port: 8080, targetPort: 9090}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: x, ports: [{name: http, containerPort: 8000}]}]}
status: {podIP: 10.0.2.1, podIPs: [{ip: 10.0.2.1}, {ip: "fd00::21"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: x}]}
status: {podIP: 10.0.2.2}
`;
const s = build([text]);
const show = (d: Destination | undefined) =>
  d === undefined ? 'undefined' : d.kind === 'pod' ? `pod ${d.backend.endpoint.name} ${d.backend.ip}:${d.backend.port}` : `svc ${d.service.namespace}/${d.service.name}:${d.servicePort} -> ${d.backends.map((b) => `${b.endpoint.name}@${b.ip}:${b.port}`).join(',')}`;

t.test('resolve', async (t) => {
  const rows: [string, string | undefined, string][] = [
    ['web', 'shop', 'svc shop/web:80 -> web-1@10.0.2.1:8000'], // named targetPort resolved per pod; web-2 has no "http" port
    ['web', undefined, 'undefined'], // default namespace
    ['web.shop', undefined, 'svc shop/web:80 -> web-1@10.0.2.1:8000'],
    ['web.shop.svc', undefined, 'svc shop/web:80 -> web-1@10.0.2.1:8000'],
    ['web.shop.svc.cluster.local', undefined, 'svc shop/web:80 -> web-1@10.0.2.1:8000'],
    ['WEB.Shop.svc.cluster.local.', undefined, 'svc shop/web:80 -> web-1@10.0.2.1:8000'],
    ['web.shop:8080', undefined, 'svc shop/web:8080 -> web-1@10.0.2.1:9090,web-2@10.0.2.2:9090'],
    ['web.shop:81', undefined, 'undefined'], // no such Service port
    ['web.shop.svc.other.domain', undefined, 'undefined'],
    ['10.96.1.1', undefined, 'svc shop/web:80 -> web-1@10.0.2.1:8000'],
    ['10.96.1.1:8080', undefined, 'svc shop/web:8080 -> web-1@10.0.2.1:9090,web-2@10.0.2.2:9090'],
    ['[fd00::a]:80', undefined, 'svc shop/web:80 -> web-1@10.0.2.1:8000'],
    ['10.0.2.2:9999', undefined, 'pod web-2 10.0.2.2:9999'],
    ['10.0.2.2', undefined, 'pod web-2 10.0.2.2:80'],
    ['[fd00::21]:81', undefined, 'pod web-1 fd00::21:81'],
    ['10.9.9.9', undefined, 'undefined'],
    ['nope', 'shop', 'undefined'],
    ['web:notaport', 'shop', 'undefined'],
  ];
  for (const [auth, ns, want] of rows) t.equal(show(s.resolve(auth, ns)), want, `${auth} (${ns ?? '-'})`);
});
