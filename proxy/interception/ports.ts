/**
 * Redirect listener ports from `--redirect-ports FIRST-LAST`, one per intercepted destination. A
 * destination keeps its port for as long as it is intercepted (its rule and listener never move
 * under live connections); a freed port is reused last, so a connection still draining on it is
 * not handed to a new destination at once.
 */
export class PortPool {
  readonly first: number;
  readonly last: number;
  readonly #byKey = new Map<string, number>();
  readonly #free: number[] = [];

  constructor(first: number, last: number) {
    if (!(Number.isInteger(first) && Number.isInteger(last) && first >= 1 && last <= 65535 && first <= last)) {
      throw new RangeError(`invalid port range ${first}-${last}`);
    }
    this.first = first;
    this.last = last;
    for (let p = first; p <= last; p++) this.#free.push(p);
  }

  /** `FIRST-LAST` as the flag takes it. */
  static parse(text: string): PortPool {
    const m = /^(\d{1,5})-(\d{1,5})$/.exec(text.trim());
    if (m === null) throw new RangeError(`--redirect-ports must be FIRST-LAST (e.g. 15000-15999), not "${text}"`);
    return new PortPool(Number(m[1]), Number(m[2]));
  }

  get(key: string): number | undefined {
    return this.#byKey.get(key);
  }

  /** The port of `key`, taking a free one if it has none; undefined when the range is used up. */
  take(key: string): number | undefined {
    const had = this.#byKey.get(key);
    if (had !== undefined) return had;
    const p = this.#free.shift();
    if (p !== undefined) this.#byKey.set(key, p);
    return p;
  }

  release(key: string): void {
    const p = this.#byKey.get(key);
    if (p === undefined) return;
    this.#byKey.delete(key);
    this.#free.push(p);
  }

  /** A port that could not be bound (something else holds it): never handed out again. */
  retire(key: string): void {
    this.#byKey.delete(key);
  }

  get used(): number {
    return this.#byKey.size;
  }
}
