import t from 'tap';
import { OutlierDetector } from '../../../proxy/upstream/outlier.js';
import type { Backend } from '../../../policy/model.js';

const b = { ip: '10.0.0.1', port: 80 } as Backend;

t.test('ejects after N consecutive failures, a success resets, ejection expires', async (t) => {
  const o = new OutlierDetector({ maxFailures: 3, ejectionMs: 50 });
  o.failure(b);
  o.failure(b);
  t.notOk(o.isEjected(b));
  o.success(b);
  o.failure(b);
  o.failure(b);
  t.notOk(o.isEjected(b), 'the success reset the count');
  o.failure(b);
  t.ok(o.isEjected(b));
  t.equal(o.snapshot()[0]?.consecutive_failures, 3);
  await new Promise((r) => setTimeout(r, 80));
  t.notOk(o.isEjected(b), 'recovers after the ejection time');
  o.failure(b);
  t.ok(o.isEjected(b), 'one more failure ejects again at once');
});
