/**
 * However the demo ends — a signal (Ctrl-C, SIGTERM, a closed terminal's SIGHUP), its reader going
 * away (`l7guard demo | head`: EPIPE on stdout), an exception nobody caught — the processes it
 * started must end with it and its work folder must go: a proxy left bound to the Service address
 * makes the next demo fail. `onDemoEnd` reports the first of these once; the ones after it are
 * absorbed (a second Ctrl-C must not cut the clean-up short) until `release()`.
 */
import { constants as osConstants } from 'node:os';

export type DemoEnd =
  | { readonly kind: 'signal'; readonly signal: NodeJS.Signals }
  | { readonly kind: 'output-closed' }
  | { readonly kind: 'exception'; readonly error: unknown };

const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** The shell's convention: 128 + the signal's number; SIGPIPE's for a reader that went away. */
export function endExitCode(end: DemoEnd): number {
  if (end.kind === 'exception') return 1;
  return 128 + osConstants.signals[end.kind === 'signal' ? end.signal : 'SIGPIPE'];
}

/** Calls `onEnd` at the first way of ending; returns `release`, which removes every handler. */
export function onDemoEnd(out: NodeJS.WritableStream, onEnd: (end: DemoEnd) => void): () => void {
  let ended = false;
  const first = (end: DemoEnd) => {
    if (ended) return;
    ended = true;
    onEnd(end);
  };
  const onSignal = (signal: NodeJS.Signals) => first({ kind: 'signal', signal });
  // Any error of the output stream means nobody reads what the demo says any more.
  const onOutError = () => first({ kind: 'output-closed' });
  const onException = (error: unknown) => {
    if (ended) process.stderr.write(`l7guard demo: while cleaning up: ${(error as Error)?.stack ?? String(error)}\n`);
    first({ kind: 'exception', error });
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  out.on('error', onOutError);
  process.on('uncaughtException', onException);
  return () => {
    for (const s of SIGNALS) process.off(s, onSignal);
    out.off('error', onOutError);
    // The transcript is complete: a reader that goes away now (its error comes a tick later) changes nothing.
    out.on('error', () => undefined);
    process.off('uncaughtException', onException);
  };
}
