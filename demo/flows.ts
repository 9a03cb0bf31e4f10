/**
 * The proxy's `--flows` file (Hubble flow JSON lines, `hubble observe -o json` shape), read and
 * rendered in Hubble's compact form by observe/.
 */
import { renderCompact } from '../observe/compact.js';
import type { HubbleFlowResponse } from '../observe/flow.js';
import { readFlows } from '../observe/read-flows.js';

/**
 * All complete flows in `path`, in order; an absent file (the proxy has written nothing yet) has none.
 * A line the proxy is still writing is left for the next read.
 */
export async function readFlowFile(path: string): Promise<readonly HubbleFlowResponse[]> {
  try {
    return (await readFlows(path)).flows;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** One `hubble observe` compact line (time in UTC, like Hubble). */
export function compactLine(flow: HubbleFlowResponse): string {
  return renderCompact(flow);
}
