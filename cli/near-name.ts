import { editDistance } from '../policy/suggest.js';

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
    if (Math.abs(name.length - k.length) > max) continue;
    const d = editDistance(name, k);
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
