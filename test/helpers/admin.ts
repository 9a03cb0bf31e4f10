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
