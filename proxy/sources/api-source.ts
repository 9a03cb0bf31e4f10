/**
 * Objects applied through the admin API (`PUT`/`DELETE /v1/...`, `l7guard apply`): an overlay that
 * wins over every other source and survives file reloads and SIGHUP until deleted through the API.
 */
import { objectKey, type SourcedObject } from '../../policy/index.js';
import type { PolicySource } from './source.js';

/** `file` of objects applied through the admin API (what LoadProblem and LoadedObject show). */
export const API_SOURCE = 'api';

export class ApiSource implements PolicySource {
  readonly name = 'api' as const;
  #overlay: ReadonlyMap<string, SourcedObject> = new Map();
  #objects: readonly SourcedObject[] = [];

  get objects(): readonly SourcedObject[] {
    return this.#objects;
  }

  get size(): number {
    return this.#overlay.size;
  }

  get(key: string): SourcedObject | undefined {
    return this.#overlay.get(key);
  }

  /** The overlay with `obj` added or replaced (nothing changes until accept()). */
  with(obj: SourcedObject): ReadonlyMap<string, SourcedObject> {
    return new Map(this.#overlay).set(objectKey(obj), obj);
  }

  /** The overlay without `key` (nothing changes until accept()). */
  without(key: string): ReadonlyMap<string, SourcedObject> {
    const next = new Map(this.#overlay);
    next.delete(key);
    return next;
  }

  accept(next: ReadonlyMap<string, SourcedObject>): void {
    this.#overlay = next;
    this.#objects = [...next.values()];
  }
}
