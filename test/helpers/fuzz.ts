/**
 * The seed and run count of every fast-check property in the repository: a fixed seed and a short
 * run by default (every `npm test`), L7GUARD_FUZZ_SEED and L7GUARD_FUZZ_RUNS for a longer one
 * (docs/hardening.md#fuzzing-the-parsers).
 */
export function fuzzParameters(defaultRuns: number, defaultSeed = 0x17_9a4d): { seed: number; numRuns: number } {
  const runs = Number(process.env['L7GUARD_FUZZ_RUNS']);
  const seed = Number(process.env['L7GUARD_FUZZ_SEED']);
  return {
    seed: process.env['L7GUARD_FUZZ_SEED'] !== undefined && Number.isInteger(seed) ? seed : defaultSeed,
    numRuns: Number.isInteger(runs) && runs > 0 ? runs : defaultRuns,
  };
}
