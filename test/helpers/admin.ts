import http from 'node:http';

/** GET an admin endpoint (`host:port` + path) and return its body as text. */
export function adminText(admin: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(`http://${admin}${path}`, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve(body));
    }).on('error', reject);
  });
}

/** The flows of `/flows`, parsed (the caller says which fields it reads). */
export async function adminFlows<F>(admin: string): Promise<F[]> {
  const text = (await adminText(admin, '/flows')).trim();
  return text === '' ? [] : text.split('\n').map((l) => JSON.parse(l) as F);
}

/** The value of one `/metrics` sample ("name{labels} value"), 0 when absent. */
export async function metricSample(admin: string, series: string): Promise<number> {
  const line = (await adminText(admin, '/metrics')).split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}
