/**
 * "did you mean …?" for unknown field names: the known name nearest by edit distance (optimal string
 * alignment, so a swapped pair like `mehtod` counts as one edit). Only run when a problem is
 * reported, never on a valid policy's path.
 */

/**
 * Optimal string alignment distance (Levenshtein plus the swap of two neighbours, the commonest
 * typo), case-sensitive: three rows of the matrix, the one before last for transpositions. The CLI's
 * flag suggestions (cli/near-name.ts) use it too.
 */
export function editDistance(a: string, b: string): number {
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

/**
 * The candidate nearest to `name`, if it is near enough to be a typo: at most a third of the
 * name's length in edits (at least 1), so `methd` finds `method` but `foo` finds nothing. Ties go to
 * the first candidate.
 */
export function nearest(name: string, candidates: Iterable<string>): string | undefined {
  const budget = Math.max(1, Math.floor(name.length / 3));
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestD = budget + 1;
  for (const c of candidates) {
    // Field names differ from a typo in case too (`EndpointSelector`): compared case-insensitively.
    const d = editDistance(lower, c.toLowerCase());
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best;
}

/** `unknown field "methd"; did you mean "method"?` (the question only when a name is near). */
export function unknownField(name: string, known: Iterable<string>): string {
  const near = nearest(name, known);
  return `unknown field "${name}"${near === undefined ? '' : `; did you mean "${near}"?`}`;
}
