/**
 * FlowSink: where the proxy hands its FlowEvents. Keeps the last N flow responses (Hubble's
 * ring buffer, default 4096 like Hubble's default `hubble-event-buffer-capacity`), fans them out
 * to subscribers (the future NDJSON stream on the admin port), and optionally appends them as
 * NDJSON to a file (`--flows FILE`) in the exact `hubble observe -o jsonpb` line format, so
 * `hubble observe --input-file FILE` can filter it.
 *
 * Hot path: record() copies a decision into the ring (observe/flow-ring.ts) and converts nothing;
 * Hubble JSON is built when /flows is read, or at once when a follower or the file needs it
 * (`enabled` tells the proxy whether anyone does). Serialisation and I/O for the file are
 * deferred to one setImmediate per event-loop turn, which hands the whole batch, pre-serialised by
 * fast-json-stringify, as one string to pino's destination (sonic-boom, async, with none of pino's
 * own fields). sonic-boom's `maxLength` bounds what may wait for the disk: past it a batch is
 * dropped and counted, so a full disk or a slow device never grows memory or slows proxying.
 * A line waits at most FLUSH_MS in sonic-boom's buffer (`minLength` batches small writes).
 */
import { openSync } from 'node:fs';
import { createRequire } from 'node:module';
import type fastJson from 'fast-json-stringify';
import pino from 'pino';
import type { FlowEvent, FlowRecord } from './flow-event.js';
import { toFlowEvent } from './flow-event.js';
import { flowCount as toFlowsCount, toFlows, type FlowOptions, type HubbleFlowResponse } from './flow.js';
import { FlowRing } from './flow-ring.js';
import { flowResponseSchema } from './flow-schema.js';

export type FlowSubscriber = (res: HubbleFlowResponse) => void;

export interface FlowSinkOptions {
  /** Ring buffer size (default 4096; 0 = no ring buffer: `--flow-buffer 0`). */
  readonly capacity?: number | undefined;
  /** Append NDJSON flow lines to this file. */
  readonly file?: string | undefined;
  /** Endpoint.cluster_name for pod endpoints. */
  readonly clusterName?: string | undefined;
  /** UUID source (tests). */
  readonly uuid?: (() => string) | undefined;
  /** Write or subscriber errors; the sink never throws into the proxy. */
  readonly onError?: ((err: Error) => void) | undefined;
  /**
   * Once this many bytes are queued in the file stream (the disk is not keeping up), new lines are
   * dropped and counted instead of growing memory without bound. Default 16 MiB.
   */
  readonly maxBufferedBytes?: number | undefined;
}

export interface FlowSinkStats {
  /** Flow responses produced since construction. */
  readonly seen: number;
  /** Lines handed to the file stream. */
  readonly written: number;
  /** Lines dropped because the file stream was over maxBufferedBytes or had failed. */
  readonly dropped: number;
}

export const DEFAULT_CAPACITY = 4096;
const DEFAULT_MAX_BUFFERED = 16 * 1024 * 1024;
/** sonic-boom writes once this much is buffered... */
const MIN_WRITE = 4096;
/** ...or after this long: `tail -f` / `observe --input-file` never lag by more. */
const FLUSH_MS = 100;

type Destination = ReturnType<typeof pino.destination>;

let serializer: ((doc: HubbleFlowResponse) => string) | undefined;

/**
 * One flow response as a JSON line body (no newline), via fast-json-stringify compiled once
 * (first FlowSink with a file, or first call) from flowResponseSchema.
 */
export function serializeFlow(res: HubbleFlowResponse): string {
  serializer ??= compileSerializer();
  return serializer(res);
}

/**
 * fast-json-stringify and the schema tooling under it are ~2 MB of heap and ~10 MB of RSS once
 * loaded: required here, when a flow is first serialised, not by every `serve` that never does.
 */
function compileSerializer(): (doc: HubbleFlowResponse) => string {
  const build = createRequire(import.meta.url)('fast-json-stringify') as typeof fastJson;
  return build(flowResponseSchema) as (doc: HubbleFlowResponse) => string;
}

export class FlowSink {
  readonly #ring: FlowRing;
  #seen = 0;
  #written = 0;
  #dropped = 0;
  readonly #subscribers = new Set<FlowSubscriber>();
  readonly #flowOpts: FlowOptions;
  readonly #onError: ((err: Error) => void) | undefined;
  readonly #maxBuffered: number;

  #dest: Destination | undefined;
  /** A file was configured and could not be opened: lines for it are counted as dropped. */
  #fileFailed = false;
  #pending: HubbleFlowResponse[] = [];
  #scheduled = false;
  /** Lines in the batch being handed to sonic-boom (its 'drop' event is synchronous). */
  #batchLines = 0;
  #flushTimer: NodeJS.Timeout | undefined;
  #closed: Promise<void> | undefined;

  constructor(opts: FlowSinkOptions = {}) {
    const capacity = opts.capacity ?? DEFAULT_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`FlowSink capacity must be a non-negative integer, got ${capacity}`);
    this.#ring = new FlowRing(capacity);
    this.#flowOpts = { clusterName: opts.clusterName, uuid: opts.uuid };
    this.#onError = opts.onError;
    this.#maxBuffered = opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED;
    if (opts.file !== undefined) {
      // Compile now (a few ms) rather than on the first request's batch.
      serializer ??= compileSerializer();
      // sonic-boom treats maxLength 0 as "unbounded": keep a non-positive bound meaning "drop all".
      const max = this.#maxBuffered <= 0 ? -1 : this.#maxBuffered;
      // Opened here, synchronously, once at startup: an unopenable file is reported at once, and
      // sonic-boom never sits in its "not ready" state (which pino's exit hook would throw on).
      let fd: number;
      try {
        fd = openSync(opts.file, 'a');
      } catch (err) {
        this.#fileFailed = true;
        this.#report(err);
        return;
      }
      const dest = pino.destination({ dest: fd, sync: false, minLength: MIN_WRITE, maxLength: max });
      dest.on('drop', () => { this.#dropped += this.#batchLines; this.#written -= this.#batchLines; });
      let last: unknown;
      dest.on('error', (err: Error) => {
        // pino's wrapper re-emits the first error: report each error once.
        if (err === last) return;
        last = err;
        this.#report(err);
      });
      this.#dest = dest;
    }
  }

  /** Whether anyone keeps flows (ring buffer, file, follower): when false the proxy records nothing. */
  get enabled(): boolean {
    return this.#ring.capacity > 0 || this.#dest !== undefined || this.#fileFailed || this.#subscribers.size > 0;
  }
  get capacity(): number { return this.#ring.capacity; }
  get size(): number { return this.#ring.size; }
  get stats(): FlowSinkStats { return { seen: this.#seen, written: this.#written, dropped: this.#dropped }; }

  /**
   * Hot path: called by the proxy per decision, with a scratch record it reuses (read synchronously,
   * never kept). Only the ring wants it: stored as is, converted on read. Otherwise as emit().
   */
  record(r: FlowRecord): void {
    if (this.#dest === undefined && !this.#fileFailed && this.#subscribers.size === 0) {
      if (this.#ring.capacity === 0) return;
      this.#ring.record(r);
      this.#seen += toFlowsCount(r);
      return;
    }
    this.emit(toFlowEvent(r));
  }

  /** One decision as a FlowEvent: converted now when a follower or the file wants it, else kept raw. */
  emit(ev: FlowEvent): void {
    if (this.#dest === undefined && !this.#fileFailed && this.#subscribers.size === 0) {
      if (this.#ring.capacity > 0) this.#ring.push(ev);
      this.#seen += toFlowsCount(ev);
      return;
    }
    const responses = toFlows(ev, this.#flowOpts);
    for (let i = 0; i < responses.length; i++) this.#push(responses[i] as HubbleFlowResponse);
  }

  /** Receive every flow response from now on. Returns the unsubscribe function. */
  subscribe(fn: FlowSubscriber): () => void {
    this.#subscribers.add(fn);
    return () => { this.#subscribers.delete(fn); };
  }

  /** The most recent flow responses, oldest first (at most `limit`). */
  recent(limit: number = this.#ring.size): HubbleFlowResponse[] {
    return this.#ring.recent(limit, this.#flowOpts);
  }

  /** Resolves once every flow emitted so far has been handed to the OS. */
  async flush(): Promise<void> {
    this.#writeBatch();
    const dest = this.#dest;
    if (dest === undefined) return;
    await new Promise<void>((resolve) => {
      try {
        dest.flush(() => resolve());
      } catch {
        resolve(); // destroyed meanwhile
      }
    });
  }

  /** Flush and close the file. Idempotent; emit() afterwards still feeds the ring and subscribers. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#writeBatch();
      if (this.#flushTimer !== undefined) clearTimeout(this.#flushTimer);
      const dest = this.#dest;
      this.#dest = undefined;
      if (dest === undefined) return;
      await new Promise<void>((resolve) => {
        dest.once('close', () => resolve());
        dest.once('error', () => resolve());
        dest.end();
      });
    })();
    return this.#closed;
  }

  #push(res: HubbleFlowResponse): void {
    if (this.#ring.capacity > 0) this.#ring.pushFlow(res);
    this.#seen++;
    if (this.#subscribers.size > 0) {
      for (const fn of this.#subscribers) {
        try { fn(res); } catch (err) { this.#report(err); }
      }
    }
    if (this.#dest !== undefined) {
      this.#pending.push(res);
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#writeBatch());
      }
    } else if (this.#fileFailed) {
      this.#dropped++;
    }
  }

  #writeBatch(): void {
    this.#scheduled = false;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    const dest = this.#dest;
    if (dest === undefined) {
      this.#dropped += batch.length;
      return;
    }
    let chunk = '';
    for (let i = 0; i < batch.length; i++) chunk += serializeFlow(batch[i] as HubbleFlowResponse) + '\n';
    this.#written += batch.length;
    this.#batchLines = batch.length;
    dest.write(chunk); // over maxLength: 'drop' fires synchronously and moves the batch to #dropped
    this.#batchLines = 0;
    this.#flushTimer ??= setTimeout(() => {
      this.#flushTimer = undefined;
      if (this.#dest !== undefined) this.#dest.flush();
    }, FLUSH_MS).unref();
  }

  #report(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    if (this.#onError !== undefined) {
      try { this.#onError(e); } catch { /* a broken error handler must not reach the proxy */ }
    }
  }
}
