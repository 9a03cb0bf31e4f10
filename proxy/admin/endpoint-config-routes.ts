/**
 * `/v1/endpoint/{id}/config`: an endpoint's options, as Cilium's API has them
 * (`GET`/`PATCH /endpoint/{id}/config`, body `{"options": {"PolicyAuditMode": "Enabled"}}`, what
 * `cilium endpoint config ID PolicyAuditMode=Enabled` sends). The one option is PolicyAuditMode
 * (proxy/exchange/audit-modes.ts). PATCH changes enforcement, so like every mutation it is refused
 * on the read-only listener (server.ts).
 */
import type { ServerResponse } from 'node:http';
import type { Endpoint } from '../../policy/model.js';
import type { AuditModes } from '../exchange/audit-modes.js';
import type { StateRef } from '../state-ref.js';
import { readBody } from './reload-routes.js';
import { sendJson, sendText, type AdminRoute } from './server.js';

const PREFIX = '/v1/endpoint/';

/** Cilium's option values (pkg/option: "Enabled"/"Disabled"); booleans too, as its CLI accepts. */
const VALUES: ReadonlyMap<string, boolean> = new Map([['enabled', true], ['disabled', false], ['true', true], ['false', false], ['on', true], ['off', false]]);

export interface EndpointConfigView {
  readonly id: number;
  readonly namespace: string;
  readonly name: string;
  /** Realized values: the endpoint's own setting, else `--policy-audit-mode`. */
  readonly options: { readonly PolicyAuditMode: 'Enabled' | 'Disabled' };
}

function refuse(res: ServerResponse, status: number, code: string, message: string): void {
  sendJson(res, status, { code, message });
}

export function endpointConfigRoutes(ref: StateRef, audit: AuditModes): AdminRoute[] {
  /** The endpoint the path names, or undefined once an error answered. */
  const endpointOf = (res: ServerResponse, url: URL): Endpoint | undefined => {
    const m = /^\/v1\/endpoint\/(\d{1,5})\/config$/.exec(url.pathname);
    if (m === null) {
      sendText(res, 404, 'not found\n');
      return undefined;
    }
    const state = ref.current;
    if (state === undefined) {
      sendText(res, 503, 'no policy loaded yet\n');
      return undefined;
    }
    const id = Number(m[1]);
    // Only this node's pods are endpoints (ID 0: another node's).
    const ep = id === 0 ? undefined : state.endpoints.find((e) => e.id === id);
    if (ep === undefined) refuse(res, 404, 'L7G_ERR_ENDPOINT_NOT_FOUND', `endpoint ${id} not found`);
    return ep;
  };
  const view = (ep: Endpoint): EndpointConfigView => ({
    id: ep.id, namespace: ep.namespace, name: ep.name,
    options: { PolicyAuditMode: audit.enabled(ep) ? 'Enabled' : 'Disabled' },
  });
  return [
    {
      method: 'GET',
      path: PREFIX,
      handle(_req, res, url) {
        const ep = endpointOf(res, url);
        if (ep !== undefined) sendJson(res, 200, view(ep));
      },
    },
    {
      method: 'PATCH',
      path: PREFIX,
      async handle(req, res, url) {
        const ep = endpointOf(res, url);
        if (ep === undefined) return;
        let options: Record<string, unknown>;
        try {
          const body = JSON.parse(await readBody(req)) as unknown;
          const o = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)['options'] : undefined;
          if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error('expected {"options": {"PolicyAuditMode": "Enabled"|"Disabled"}}');
          options = o as Record<string, unknown>;
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code === 'L7G_ERR_APPLY_TOO_LARGE') refuse(res, 413, code, (err as Error).message);
          else refuse(res, 400, 'L7G_ERR_ENDPOINT_CONFIG', `invalid body: ${(err as Error).message}`);
          return;
        }
        // All or nothing: every option is checked before any is set.
        let auditMode: boolean | undefined;
        for (const [k, v] of Object.entries(options)) {
          const on = typeof v === 'string' ? VALUES.get(v.toLowerCase()) : undefined;
          if (k !== 'PolicyAuditMode') return refuse(res, 400, 'L7G_ERR_ENDPOINT_CONFIG', `unknown option ${JSON.stringify(k)}: the one option is PolicyAuditMode`);
          if (on === undefined) return refuse(res, 400, 'L7G_ERR_ENDPOINT_CONFIG', `PolicyAuditMode must be Enabled or Disabled, not ${JSON.stringify(v)}`);
          auditMode = on;
        }
        if (auditMode !== undefined) audit.set(ep, auditMode);
        sendJson(res, 200, view(ep));
      },
    },
  ];
}
