/**
 * "did you mean …?" for unknown field names: the known name nearest by edit distance (optimal string
 * alignment, so a swapped pair like `mehtod` counts as one edit). Only run when a problem is
 * reported, never on a valid policy's path.
 */

/** Optimal string alignment distance between a and b, case-insensitive. */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  const rows: number[][] = [];
  for (let i = 0; i <= s.length; i++) rows.push([i, ...new Array<number>(t.length).fill(0)]);
  const d = (i: number, j: number) => (rows[i] as number[])[j] as number;
  for (let j = 0; j <= t.length; j++) (rows[0] as number[])[j] = j;
  for (let i = 1; i <= s.length; i++) {
    const row = rows[i] as number[];
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let v = Math.min(d(i - 1, j) + 1, row[j - 1]! + 1, d(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) v = Math.min(v, d(i - 2, j - 2) + 1);
      row[j] = v;
    }
  }
  return d(s.length, t.length);
}

/**
 * The candidate nearest to `name`, if it is near enough to be a typo: at most a third of the
 * name's length in edits (at least 1), so `methd` finds `method` but `foo` finds nothing. Ties go to
 * the first candidate.
 */
export function nearest(name: string, candidates: Iterable<string>): string | undefined {
  const budget = Math.max(1, Math.floor(name.length / 3));
  let best: string | undefined;
  let bestD = budget + 1;
  for (const c of candidates) {
    const d = editDistance(name, c);
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
