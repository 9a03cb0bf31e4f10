/**
 * Staged policies on the request path (docs/audit.md): each is judged beside the enforced decision,
 * and a request it would decide differently gets an extra flow, verdict AUDIT and `staged`, naming
 * it. Enforcement never reads the result. A revision with no staged policy never gets here.
 */
import type { L7Request, StagedPolicy } from '../../policy/model.js';
import { emitStaged, type HttpFlowSubject } from './flow-emit.js';

/** The request being judged (exchange.ts's Exchange). */
export interface StagedSubject extends HttpFlowSubject {
  /** An absolute-form target's authority: the host the L7 rules see (else the Host field). */
  readonly targetAuthority: string | undefined;
}

/** `denied`: what the policy in force decided (an audited denial counts as denied). */
export function judgeStaged(ex: StagedSubject, staged: readonly StagedPolicy[], denied: boolean): void {
  let l7: L7Request | undefined;
  const backend = ex.backend;
  for (const s of staged) {
    const d = s.state.decide(ex.src, backend.endpoint, backend.port);
    let deny: boolean;
    let direction: 'INGRESS' | 'EGRESS' = 'INGRESS';
    if (d.kind === 'drop') {
      deny = true;
      direction = d.direction;
    } else if (d.kind === 'l7') {
      l7 ??= { method: ex.req.method, path: ex.path, host: ex.targetAuthority ?? ex.req.host, headers: ex.req.headers };
      deny = !d.check(l7).allowed;
    } else {
      deny = false;
    }
    if (deny !== denied) emitStaged(ex, s.key, deny ? 'deny' : 'allow', s.own(d.by, direction));
  }
}
