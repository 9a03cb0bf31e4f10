/**
 * The `-f` paths: read as one consistent snapshot (file-snapshot.ts), watched (file-watcher.ts),
 * re-read on SIGHUP and `POST /reload`. A change is all or nothing: the operator fixes the file.
 */
import type { SourcedObject } from '../../policy/index.js';
import { DEFAULT_WATCH, FileWatcher, type WatchOptions } from './file-watcher.js';
import { EMPTY_SNAPSHOT, readSnapshot, type FileSnapshot } from './file-snapshot.js';
import type { PolicySource } from './source.js';

export class FileSource implements PolicySource {
  readonly name = 'file' as const;
  readonly paths: readonly string[];
  #snapshot: FileSnapshot = EMPTY_SNAPSHOT;
  /** Inputs that failed last time: the poll does not count the same failure every 5 s. */
  failedSignature: string | undefined;
  #watcher: FileWatcher | undefined;

  constructor(paths: readonly string[]) {
    this.paths = paths;
  }

  get objects(): readonly SourcedObject[] {
    return this.#snapshot.objects;
  }

  /** The snapshot in force. */
  get snapshot(): FileSnapshot {
    return this.#snapshot;
  }

  read(): Promise<FileSnapshot> {
    return readSnapshot(this.paths);
  }

  accept(snap: FileSnapshot): void {
    this.#snapshot = snap;
    this.failedSignature = undefined;
  }

  /** Watches the paths (debounced) with a content-hash poll as fallback. */
  async watch(onChange: (why: 'file' | 'poll') => void, opts: WatchOptions | undefined, onError: (err: Error, path: string) => void): Promise<void> {
    const w = new FileWatcher(onChange, { ...DEFAULT_WATCH, ...opts, onError });
    this.#watcher = w;
    await w.start(this.paths);
  }

  close(): void {
    this.#watcher?.close();
  }
}
