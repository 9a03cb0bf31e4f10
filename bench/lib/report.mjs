/** Summaries, the text table, and a hand-written SVG bar chart. */

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

const fmt = (n, d = 0) => (n === undefined || n === null || Number.isNaN(n) ? '–' : n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }));
const ratio = (n) => (n === undefined || n === null || !Number.isFinite(n) ? '–' : `${n.toFixed(2)}×`);

/** Adds vsDirect and vsL7guard to every run of a scenario (throughput ratios, same run). */
export function addRatios(runs) {
  const by = new Map();
  for (const r of runs) {
    if (!by.has(r.scenario)) by.set(r.scenario, []);
    by.get(r.scenario).push(r);
  }
  const directAllowed = runs.find((r) => r.scenario === 'allowed' && r.target === 'direct');
  for (const list of by.values()) {
    const direct = list.find((r) => r.target === 'direct') ?? directAllowed;
    const l7 = list.find((r) => r.target === 'l7guard');
    for (const r of list) {
      if (r.rps === undefined) continue;
      r.vsDirect = direct?.rps ? r.rps / direct.rps : undefined;
      r.vsDirectFrom = direct === undefined ? undefined : direct.scenario;
      r.vsL7guard = l7?.rps ? r.rps / l7.rps : undefined;
    }
  }
}

export function table(runs) {
  const head = ['scenario', 'target', 'req/s', 'p50 ms', 'p97.5 ms', 'p99 ms', 'errors', 'non-2xx exp/unexp', 'RSS MB', 'CPU µs/req', 'vs direct', 'vs l7guard', 'checked'];
  const rows = runs.map((r) =>
    r.idle
      ? [r.scenario, r.target, `${fmt(r.idleOpen)} open`, '', '', '', fmt(r.idleFailed), '', fmt(r.rssMB, 1), '', '', '', r.valid ? 'ok' : 'FAILED']
      : [
          r.scenario, r.target, fmt(r.rps), fmt(r.p50, 2), fmt(r.p975, 2), fmt(r.p99, 2), fmt(r.errors),
          `${fmt(r.non2xxExpected)}/${fmt(r.non2xxUnexpected + r.wrongBody)}`, fmt(r.rssMB, 1), fmt(r.cpuPerReqUs, 1),
          ratio(r.vsDirect), ratio(r.vsL7guard), r.valid ? 'ok' : 'FAILED',
        ],
  );
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

const COLORS = { direct: '#8c8c8c', l7guard: '#1f77b4', 'l7guard-big': '#6baed6', 'l7guard-base': '#aec7e8', haproxy: '#2ca02c', nginx: '#ff7f0e', undici: '#9467bd', 'http-proxy': '#d62728' };

/** Grouped bars: req/s per scenario and target (idle: RSS MB on its own scale). */
export function svg(runs, title) {
  const load = runs.filter((r) => !r.idle && r.rps !== undefined);
  const scenarios = [...new Set(load.map((r) => r.scenario))];
  const targets = [...new Set(load.map((r) => r.target))];
  const W = 120 + scenarios.length * (targets.length * 16 + 30);
  const H = 360;
  const top = 50;
  const bottom = H - 70;
  const max = Math.max(1, ...load.map((r) => r.rps));
  const y = (v) => bottom - ((bottom - top) * v) / max;
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14">${esc(title)}</text>`,
    `<line x1="80" y1="${bottom}" x2="${W - 10}" y2="${bottom}" stroke="#333"/>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    parts.push(`<line x1="80" y1="${y(v)}" x2="${W - 10}" y2="${y(v)}" stroke="#eee"/>`, `<text x="75" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`);
  }
  parts.push(`<text x="12" y="${(top + bottom) / 2}" transform="rotate(-90 12 ${(top + bottom) / 2})" text-anchor="middle">req/s</text>`);
  scenarios.forEach((s, si) => {
    const x0 = 100 + si * (targets.length * 16 + 30);
    targets.forEach((t, ti) => {
      const r = load.find((x) => x.scenario === s && x.target === t);
      if (r === undefined) return;
      const x = x0 + ti * 16;
      parts.push(`<rect x="${x}" y="${y(r.rps)}" width="14" height="${bottom - y(r.rps)}" fill="${COLORS[t] ?? '#333'}"><title>${esc(`${t} ${s}: ${fmt(r.rps)} req/s`)}</title></rect>`);
    });
    parts.push(`<text x="${x0 + (targets.length * 16) / 2}" y="${bottom + 15}" text-anchor="middle">${esc(s)}</text>`);
  });
  targets.forEach((t, ti) => {
    const x = 100 + (ti % 4) * 150;
    const yy = H - 35 + Math.floor(ti / 4) * 15;
    parts.push(`<rect x="${x}" y="${yy - 9}" width="10" height="10" fill="${COLORS[t] ?? '#333'}"/>`, `<text x="${x + 14}" y="${yy}">${esc(t)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
