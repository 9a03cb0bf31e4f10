/**
 * Admin routes that change policy, kubectl-style:
 *
 *   PUT    /v1/{kind}/{namespace}/{name}   body: one object, YAML or JSON  → 201 created | 200 configured | 200 unchanged
 *   DELETE /v1/{kind}/{namespace}/{name}                                   → 200 deleted | 404
 *   POST   /reload                                                         → 200 (like SIGHUP) | 422
 *
 * `_` is the namespace of cluster-scoped kinds. Every answer is JSON; errors carry a stable `code`,
 * a `message` and the validation `problems` (file:line, object, field, reason). GET on these paths is
 * 405 (admin.ts), so a crawler or a browser prefetch can never change policy.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatProblem, parseText, type LoadProblem, type SourcedObject } from '../../policy/index.js';
import { sendJson, type AdminRoute } from './server.js';
import { ApplyError } from '../reload/errors.js';
import { displayName, lookupKind, type KindInfo } from '../reload/kinds.js';
import { API_SOURCE, type ReloadController } from '../reload/reload-controller.js';

/** 8 MiB: a 10,000-rule policy is ~2.5 MiB of YAML; anything much bigger is a mistake, not a policy. */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;

export const CLUSTER_SCOPE = '_';

/** A ReloadController, or (serve --workers) a wrapper that answers once every worker has the revision. */
export type ReloadTarget = Pick<ReloadController, 'apply' | 'remove' | 'reload'>;

export function reloadRoutes(ctl: ReloadTarget): AdminRoute[] {
  return [
    {
      method: 'PUT',
      path: '/v1/',
      handle: (req, res, url) =>
        answer(res, async () => {
          const target = parseTarget(url.pathname);
          const obj = objectFromBody(await readBody(req), target);
          const r = await ctl.apply(obj);
          return [r.result === 'created' ? 201 : 200, { ...r, object: displayName(target.info, target.name) }];
        }),
    },
    {
      method: 'DELETE',
      path: '/v1/',
      handle: (_req, res, url) =>
        answer(res, async () => {
          const target = parseTarget(url.pathname);
          const r = await ctl.remove(target.info.kind, target.namespace, target.name);
          return [200, { result: 'deleted', revision: r.revision, object: displayName(target.info, target.name) }];
        }),
    },
    {
      method: 'POST',
      path: '/reload',
      handle: (_req, res) =>
        answer(res, async () => {
          const out = await ctl.reload('admin', true);
          if (out.error !== undefined) throw new ApplyError('L7G_ERR_APPLY_INVALID', undefined, out.error.problems);
          return [200, { result: out.changed ? 'reloaded' : 'unchanged', revision: out.revision }];
        }),
    },
  ];
}

interface Target {
  readonly info: KindInfo;
  /** undefined for cluster-scoped kinds. */
  readonly namespace: string | undefined;
  readonly name: string;
}

export function parseTarget(pathname: string): Target {
  const parts = pathname.split('/');
  // ['', 'v1', kind, namespace, name]
  if (parts.length !== 5 || parts.slice(2).some((p) => p === '')) throw new ApplyError('L7G_ERR_APPLY_BAD_PATH');
  const [kind, ns, name] = parts.slice(2).map((p) => decodeURIComponent(p)) as [string, string, string];
  const info = lookupKind(kind);
  if (info === undefined) throw new ApplyError('L7G_ERR_APPLY_UNKNOWN_KIND', `"${kind}"`);
  if (info.namespaced && ns === CLUSTER_SCOPE) throw new ApplyError('L7G_ERR_APPLY_BAD_PATH', `${info.kind} is namespaced`);
  if (!info.namespaced && ns !== CLUSTER_SCOPE) throw new ApplyError('L7G_ERR_APPLY_BAD_PATH', `${info.kind} is cluster-scoped: use "${CLUSTER_SCOPE}" as namespace`);
  return { info, namespace: info.namespaced ? ns : undefined, name };
}

/** One object from a YAML or JSON body, checked against the URL; the namespace defaults to the URL's. */
export function objectFromBody(text: string, t: Target): SourcedObject {
  const problems: LoadProblem[] = [];
  const objs = parseText(API_SOURCE, text, problems);
  if (problems.length > 0) throw new ApplyError('L7G_ERR_APPLY_BAD_BODY', problems.map(formatProblem).join('; '), problems);
  if (objs.length !== 1) throw new ApplyError('L7G_ERR_APPLY_BAD_BODY', `found ${objs.length} objects; PUT takes exactly one`);
  const o = objs[0]!;
  if (o.kind !== t.info.kind) throw new ApplyError('L7G_ERR_APPLY_MISMATCH', `kind ${o.kind} in the body, ${t.info.kind} in the URL`);
  if (o.name !== t.name) throw new ApplyError('L7G_ERR_APPLY_MISMATCH', `metadata.name "${o.name}" in the body, "${t.name}" in the URL`);
  if (t.namespace !== undefined && o.namespace !== undefined && o.namespace !== t.namespace) {
    throw new ApplyError('L7G_ERR_APPLY_MISMATCH', `metadata.namespace "${o.namespace}" in the body, "${t.namespace}" in the URL`);
  }
  const meta = { ...(o.raw.metadata as Record<string, unknown>) };
  if (t.namespace === undefined) delete meta.namespace;
  else meta.namespace = t.namespace;
  return { ...o, namespace: t.namespace, raw: { ...o.raw, metadata: meta } };
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      // Past the limit the rest is read and dropped (node:http dumps it once we answer), not buffered.
      if (size > MAX_BODY_BYTES) reject(new ApplyError('L7G_ERR_APPLY_TOO_LARGE', `more than ${MAX_BODY_BYTES} bytes`));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function answer(res: ServerResponse, run: () => Promise<[number, unknown]>): Promise<void> {
  try {
    const [status, body] = await run();
    sendJson(res, status, body);
  } catch (err) {
    if (!(err instanceof ApplyError)) throw err;
    // `details`: the problems as data, so that `l7guard apply` can place each at its line and
    // column in the file it read (the object reached us as JSON: our positions would be the body's).
    sendJson(res, err.status, { code: err.code, message: err.message, problems: err.problems.map(formatProblem), details: err.problems });
  }
}
