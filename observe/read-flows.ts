/**
 * Read an NDJSON flow file (FlowSink's `--flows FILE`, or `hubble observe -o jsonpb` output)
 * back into flow responses. A writer may be mid-line when we read, so an unterminated last line
 * that does not parse is reported as `partial`, not as an error; malformed complete lines are
 * skipped and listed in `errors`.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { HubbleFlowResponse } from './flow.js';

export interface FlowLineError {
  /** 1-based line number. */
  readonly line: number;
  readonly message: string;
}

export interface ReadFlowsResult {
  readonly flows: HubbleFlowResponse[];
  /** Text of an unterminated, unparseable last line (a write in progress), if any. */
  readonly partial: string | undefined;
  readonly errors: FlowLineError[];
}

/** Parse one line; throws with a reason when it is not a GetFlowsResponse carrying a flow. */
export function parseFlowLine(line: string): HubbleFlowResponse {
  const v: unknown = JSON.parse(line);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
  const flow = (v as { flow?: unknown }).flow;
  if (typeof flow !== 'object' || flow === null || Array.isArray(flow)) throw new Error('no "flow" object');
  return v as HubbleFlowResponse;
}

/** Parse NDJSON text. */
export function parseFlows(text: string): ReadFlowsResult {
  const flows: HubbleFlowResponse[] = [];
  const errors: FlowLineError[] = [];
  let partial: string | undefined;
  let start = 0;
  let lineNo = 0;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    const terminated = nl >= 0;
    const end = terminated ? nl : text.length;
    lineNo++;
    const line = text.slice(start, end > start && text.charCodeAt(end - 1) === 13 ? end - 1 : end);
    start = end + 1;
    if (line.trim() === '') continue;
    try {
      flows.push(parseFlowLine(line));
    } catch (err) {
      if (!terminated) partial = line;
      else errors.push({ line: lineNo, message: err instanceof Error ? err.message : String(err) });
    }
  }
  return { flows, partial, errors };
}

/** Read and parse a whole flow file. */
export async function readFlows(file: string): Promise<ReadFlowsResult> {
  return parseFlows(await readFile(file, 'utf8'));
}

/**
 * Stream a flow file line by line (large files, `l7guard observe --input-file`). Malformed lines
 * are passed to `onError` (default: ignored), except the last line, which may be a write in
 * progress and is skipped silently when it does not parse.
 */
export async function* streamFlows(
  file: string,
  onError?: (e: FlowLineError) => void,
): AsyncGenerator<HubbleFlowResponse, void, undefined> {
  const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let lineNo = 0;
  let held: { line: string; no: number; err: unknown } | undefined;
  for await (const line of rl) {
    // readline cannot tell us whether this line had a newline; hold back the error of the most
    // recent line until we know another one follows.
    if (held !== undefined) {
      onError?.({ line: held.no, message: held.err instanceof Error ? held.err.message : String(held.err) });
      held = undefined;
    }
    lineNo++;
    if (line.trim() === '') continue;
    try {
      yield parseFlowLine(line);
    } catch (err) {
      held = { line, no: lineNo, err };
    }
  }
}
