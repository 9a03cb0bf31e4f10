import t from 'tap';
import { parseDuration } from '../../cli/duration.js';

t.test('--drain-timeout durations', async (t) => {
  const rows: [string, number | undefined][] = [['30', 30_000], ['30s', 30_000], ['1.5s', 1500], ['500ms', 500], ['2m', 120_000], ['', undefined], ['-1', undefined], ['5h', undefined]];
  for (const [text, want] of rows) t.equal(parseDuration(text), want, text);
});
