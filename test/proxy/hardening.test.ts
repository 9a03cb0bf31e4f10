import t from 'tap';
import { parseHardening, hardeningDump, SETTINGS, upstreamOptions } from '../../proxy/hardening.js';
import { createUpstreamClient } from '../../proxy/upstream/pools.js';
import { Http1Upstream } from '../../proxy/upstream/http1-client.js';
import { Upstream } from '../../proxy/upstream/upstream.js';

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

t.test('--upstream-client: native by default, undici when asked (and always for TLS origination), anything else named', async (t) => {
  const native = createUpstreamClient(upstreamOptions(parseHardening({})));
  const undici = createUpstreamClient(upstreamOptions(parseHardening({ 'upstream-client': 'undici' })));
  const tls = createUpstreamClient({ ...upstreamOptions(parseHardening({})), tls: { ca: '', servername: 'x' } });
  t.ok(native instanceof Http1Upstream, 'default: native');
  t.ok(undici instanceof Upstream, 'undici');
  t.ok(tls instanceof Upstream, 'TLS origination: undici');
  await Promise.all([native.close(), undici.close(), tls.close()]);
  t.throws(() => parseHardening({ 'upstream-client': 'curl' }), /--upstream-client must be native or undici, not "curl"/);
});
