/** Typed errors of the Kubernetes source: callers branch on `code` (and `statusCode` for API answers). */
import { ProxyError } from '../../errors.js';

export const KUBE_ERRORS = {
  L7G_ERR_KUBE_CONFIG: 'no usable Kubernetes configuration',
  L7G_ERR_KUBE_STATUS: 'the API server refused the request',
  L7G_ERR_KUBE_TIMEOUT: 'the API server did not answer in time',
  L7G_ERR_KUBE_DECODE: 'the API server sent something that is not JSON',
} as const;

export type KubeErrorCode = keyof typeof KUBE_ERRORS;

export class KubeError extends ProxyError {
  constructor(
    code: KubeErrorCode,
    message: string = KUBE_ERRORS[code],
    /** The HTTP status of an API answer (410: history compacted, relist; ListWatch reads this name). */
    readonly statusCode?: number,
  ) {
    super(code, message);
  }
}
