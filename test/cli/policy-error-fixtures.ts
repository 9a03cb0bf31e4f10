/** The policy with two problems that test/cli/policy-errors.test.ts and apply-errors.test.ts load. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';

export const BAD = `# a comment line
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: fine
spec:
  endpointSelector: {}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web
  namespace: prod
spec:
  endpointSelector:
    matchLabels:
      app.kubernetes.io/name: web
  ingress:
  - toPorts:
    - ports: [{port: "80"}]
      rules:
        http:
        - methd: GET
          path: "/a(b"
`;
// methd: line 23, column 11; the regex value: line 24, column 17.
export const METHD = ':23:11 ';
export const REGEX = ':24:17 ';

export function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'l7guard-policy-errors-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
