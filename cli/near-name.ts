/**
 * "did you mean --listen?": the known names nearest to a mistyped one by optimal-string-alignment
 * distance (Levenshtein plus the swap of two neighbours, the commonest typo: `--log-levle`). Like
 * cobra's `SuggestionsMinimumDistance` (2), with the allowance scaled to the name's length so a
 * 3-letter typo does not suggest an unrelated 3-letter name.
 */
export function nearNames(name: string, known: Iterable<string>): string[] {
  const max = name.length <= 3 ? 1 : name.length <= 7 ? 2 : 3;
  let best = max + 1;
  let found: string[] = [];
  for (const k of known) {
    const d = distance(name, k);
    if (d > max) continue;
    if (d < best) {
      best = d;
      found = [k];
    } else if (d === best) found.push(k);
  }
  return best === 0 ? [] : found.slice(0, 3);
}

/** `a`, `b` or `c` / `a or b` / `a`. */
export function orList(names: readonly string[]): string {
  return names.length <= 2 ? names.join(' or ') : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
}

function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return 4;
  // Three rows of the OSA matrix: the one before last is needed for transpositions.
  let prev2 = new Array<number>(b.length + 1).fill(0);
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  let cur = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
      cur[j] = d;
    }
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[b.length]!;
}
