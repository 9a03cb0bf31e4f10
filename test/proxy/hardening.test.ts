import t from 'tap';
import { parseHardening, hardeningDump, SETTINGS } from '../../proxy/hardening.js';

t.test('flags parse to numbers; defaults otherwise; bad values name the flag', async (t) => {
  const h = parseHardening({ 'header-timeout': '500ms', 'max-header-bytes': '8k', 'max-headers': '7', 'idle-timeout': '2' });
  t.equal(h.headersTimeoutMs, 500);
  t.equal(h.keepAliveTimeoutMs, 2000, 'a bare number is seconds');
  t.equal(h.maxHeaderBytes, 8192);
  t.equal(h.maxHeaderCount, 7);
  t.equal(h.connectTimeoutMs, SETTINGS.connectTimeoutMs.default);
  t.throws(() => parseHardening({ 'max-headers': '-1' }), /--max-headers/);
  t.throws(() => parseHardening({ 'response-timeout': 'soon' }), /--response-timeout/);
  const dump = hardeningDump(h);
  t.same(dump.timeouts['header-timeout'], { ms: 500, default_ms: 60_000, source: SETTINGS.headersTimeoutMs.source });
  t.same((dump.limits['max-headers'] as { value: number }).value, 7);
});
