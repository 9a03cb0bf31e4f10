/**
 * The client side of the admin object API: what `l7guard apply/delete` and the demo use, the way
 * kubectl talks to an API server. Objects are split client-side so each gets its own PUT and its own
 * answer line, and sent as JSON (the server takes YAML too).
 */
import http from 'node:http';
import { formatProblem, locateProblems, parseText, type LoadProblem, type SourcedObject } from '../../policy/index.js';
import { API_SOURCE } from '../sources/api-source.js';
import { parseHostPort } from './server.js';
import { CLUSTER_SCOPE } from './reload-routes.js';
import { lookupKind } from '../reload/kinds.js';

export const DEFAULT_ADMIN = '127.0.0.1:9901';

export interface AdminAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** One request to the admin API at `HOST:PORT` or `unix:PATH`. */
export function adminRequest(server: string, method: string, path: string, body?: string, timeoutMs = 30_000): Promise<AdminAnswer> {
  const where = server.startsWith('unix:') ? { socketPath: server.slice(5) } : (({ host, port }) => ({ host, port }))(parseHostPort(server));
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    const req = http.request({ ...where, method, path, headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(text) as Record<string, unknown>;
        } catch {
          parsed = { message: text.trim() };
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${server} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

export interface ApplyLine {
  readonly ok: boolean;
  /** kubectl's line: `ciliumnetworkpolicy.cilium.io/rule1 configured`, or the error. */
  readonly text: string;
  readonly revision: number | undefined;
}

/** `kubectl apply -f`: every object of a (multi-document) YAML/JSON text, in order. */
export async function applyText(server: string, text: string, file: string, defaultNamespace = 'default'): Promise<ApplyLine[]> {
  const problems: LoadProblem[] = [];
  const objects = parseText(file, text, problems);
  if (problems.length > 0) return problems.map((p) => ({ ok: false, text: `error: ${formatProblem(p)}`, revision: undefined }));
  const lines: ApplyLine[] = [];
  for (const o of objects) {
    const info = lookupKind(o.kind);
    if (info === undefined) {
      lines.push({ ok: false, text: `error: resource mapping not found for kind "${o.kind}" in ${file}`, revision: undefined });
      continue;
    }
    const ns = info.namespaced ? (o.namespace ?? defaultNamespace) : CLUSTER_SCOPE;
    const a = await adminRequest(server, 'PUT', objectPath(info.resource, ns, o.name), JSON.stringify(o.raw));
    lines.push(answerLine(a, (r) => `${String(a.body['object'])} ${r}`, (d) => placeInFile(d, o, file, text)));
  }
  return lines;
}

/** `kubectl delete KIND NAME [-n NS]`. */
export async function deleteObject(server: string, kind: string, name: string, namespace = 'default'): Promise<ApplyLine> {
  const info = lookupKind(kind);
  if (info === undefined) return { ok: false, text: `error: the server doesn't have a resource type "${kind}"`, revision: undefined };
  const a = await adminRequest(server, 'DELETE', objectPath(info.resource, info.namespaced ? namespace : CLUSTER_SCOPE, name));
  const type = info.group === '' ? info.kind.toLowerCase() : `${info.kind.toLowerCase()}.${info.group}`;
  return answerLine(a, () => `${type} "${name}" deleted`);
}

function objectPath(resource: string, ns: string, name: string): string {
  return `/v1/${resource}/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
}

/**
 * A problem the server found in the object we sent (it names it "api", where the JSON we sent
 * begins), placed in the file we read it from: the file's name, the field's line and column.
 * Problems of other objects stay as the server named them.
 */
function placeInFile(d: LoadProblem, o: SourcedObject, file: string, text: string): string {
  const label = d.object ?? '';
  const mine = d.file === API_SOURCE && label.startsWith(`${o.kind} `) && (label.endsWith(`/${o.name}`) || label === `${o.kind} ${o.name}`);
  if (!mine) return formatProblem(d);
  return formatProblem(locateProblems([{ ...d, file, line: o.line }], (f) => (f === file ? text : undefined))[0] as LoadProblem);
}

function answerLine(a: AdminAnswer, ok: (result: string) => string, place?: (d: LoadProblem) => string): ApplyLine {
  const revision = typeof a.body['revision'] === 'number' ? a.body['revision'] : undefined;
  if (a.status === 200 || a.status === 201) return { ok: true, text: ok(String(a.body['result'])), revision };
  const details = Array.isArray(a.body['details']) ? (a.body['details'] as LoadProblem[]) : undefined;
  const problems = place !== undefined && details !== undefined ? details.map(place) : Array.isArray(a.body['problems']) ? (a.body['problems'] as string[]) : [];
  const head = `Error from server (${String(a.body['code'] ?? a.status)}): ${String(a.body['message'] ?? '')}`;
  return { ok: false, text: [head, ...problems.map((p) => `  ${p}`)].join('\n'), revision };
}
