import t from 'tap';
import { nearNames, orList } from '../../cli/near-name.js';

t.test('the nearest known names, within a distance that grows with the length', async (t) => {
  const flags = ['listen', 'listen-tls', 'admin', 'admin-readonly', 'log-level', 'file', 'flows', 'workers'];
  t.same(nearNames('listn', flags), ['listen'], 'a dropped letter');
  t.same(nearNames('log-levle', flags), ['log-level'], 'two letters swapped count as one edit');
  t.same(nearNames('admn', flags), ['admin']);
  t.same(nearNames('flow', flags), ['flows']);
  t.same(nearNames('fil', flags), ['file'], 'a 3-letter name: one edit');
  t.same(nearNames('xyz', flags), [], 'nothing near');
  t.same(nearNames('listen', flags), [], 'an exact name is not a suggestion');
  t.same(nearNames('worker', ['workers', 'worked']), ['workers', 'worked'], 'ties are all shown, in the given order');
  t.same(orList(['a']), 'a');
  t.same(orList(['a', 'b']), 'a or b');
  t.same(orList(['a', 'b', 'c']), 'a, b or c');
});
