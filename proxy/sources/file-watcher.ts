/**
 * Tells the reload controller that a `-f` input may have changed. It only says "look again": the
 * controller re-reads and compares content hashes, so spurious events cost one read, never a swap.
 *
 * - A folder is watched itself, every entry included: a ConfigMap volume swaps its `..data` symlink
 *   atomically (reported as a rename of `..data`, not as a change of `name.yaml`; see
 *   jimmidyson/configmap-reload#190), and editors save through a temp file + rename.
 * - A file is watched through its parent folder, so a rename over it (which replaces the inode a
 *   file watch would hold) or its deletion and re-creation is still seen.
 * - Bursts are debounced: an editor's save is 2-4 events within a few ms, `kubectl` updating a
 *   ConfigMap is several renames; one read after the burst settles.
 * - A slow poll is the fallback for what inotify misses (network filesystems, a watched folder that
 *   was deleted and re-created, watch limits); it also re-creates watchers that died.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

export interface WatchOptions {
  /** 150 ms: above the ~10-50 ms an editor's save or a ConfigMap swap takes, well under the 1 s the issue allows. */
  readonly debounceMs: number;
  /** 5 s: a content-hash poll of small policy files costs well under 1 ms; 0 disables it. */
  readonly pollMs: number;
  onError?(err: Error, path: string): void;
}

export const DEFAULT_WATCH: WatchOptions = Object.freeze({ debounceMs: 150, pollMs: 5000 });

interface Watch {
  /** The folder the OS watch is on. */
  readonly dir: string;
  /** Entry names that matter in `dir`; undefined = all of them. */
  readonly names: ReadonlySet<string> | undefined;
  handle: FSWatcher | undefined;
}

export class FileWatcher {
  readonly #opts: WatchOptions;
  readonly #onChange: (why: 'file' | 'poll') => void;
  readonly #watches: Watch[] = [];
  #debounce: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(onChange: (why: 'file' | 'poll') => void, opts: WatchOptions = DEFAULT_WATCH) {
    this.#onChange = onChange;
    this.#opts = opts;
  }

  async start(paths: readonly string[]): Promise<void> {
    const byDir = new Map<string, Set<string> | undefined>();
    for (const p of paths) {
      const isDir = await stat(p).then((s) => s.isDirectory(), () => false);
      if (isDir) {
        byDir.set(p, undefined);
        continue;
      }
      const dir = dirname(p);
      if (byDir.has(dir) && byDir.get(dir) === undefined) continue;
      // `..data` and other dot-dot entries: a file given as `-f` may be a ConfigMap key symlink.
      const names = byDir.get(dir) ?? new Set<string>(['..data']);
      names.add(basename(p));
      byDir.set(dir, names);
    }
    for (const [dir, names] of byDir) this.#watches.push({ dir, names, handle: undefined });
    for (const w of this.#watches) this.#open(w);
    if (this.#opts.pollMs > 0) {
      this.#poll = setInterval(() => {
        for (const w of this.#watches) if (w.handle === undefined) this.#open(w);
        this.#onChange('poll');
      }, this.#opts.pollMs);
      this.#poll.unref();
    }
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#debounce);
    clearInterval(this.#poll);
    for (const w of this.#watches) {
      w.handle?.close();
      w.handle = undefined;
    }
  }

  #open(w: Watch): void {
    if (this.#closed) return;
    try {
      const h = watch(w.dir, { persistent: false }, (_event, name) => {
        if (w.names === undefined || name === null || w.names.has(String(name))) this.#changed();
      });
      h.on('error', (err) => {
        // The folder itself went away: the poll re-creates the watch once it is back.
        this.#opts.onError?.(err, w.dir);
        h.close();
        if (w.handle === h) w.handle = undefined;
        this.#changed();
      });
      w.handle = h;
    } catch (err) {
      this.#opts.onError?.(err as Error, w.dir);
    }
  }

  #changed(): void {
    if (this.#closed) return;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => this.#onChange('file'), this.#opts.debounceMs);
    this.#debounce.unref();
  }
}
