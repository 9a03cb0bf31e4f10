/**
 * One consistent read of the `-f` paths: every file's bytes are read once, hashed and parsed from
 * the same buffer, so the sha256 that /config_dump shows is the content that was compiled.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { expandPaths, parseText, type LoadProblem, type SourcedObject } from '../../policy/index.js';
import { ProblemCodes } from '../../policy/index.js';

export interface SourceFile {
  readonly file: string;
  readonly sha256: string;
}

export interface FileSnapshot {
  readonly files: readonly SourceFile[];
  readonly objects: readonly SourcedObject[];
  readonly problems: readonly LoadProblem[];
  /** Paths that yield nothing (a folder without manifests). */
  readonly warnings: readonly string[];
  /** Equal signatures mean byte-identical inputs (same files, same contents, same read problems). */
  readonly signature: string;
}

export const EMPTY_SNAPSHOT: FileSnapshot = Object.freeze({ files: [], objects: [], problems: [], warnings: [], signature: '' });

/**
 * Parsed objects per file, keyed by content hash: a reload re-parses only the files that changed, so
 * editing one small policy next to a large cluster-state file costs that policy's parse, not both.
 * Parsed objects are never mutated downstream, so sharing them between snapshots is safe. Entries
 * for files that are gone are dropped at the next read.
 */
const parsed = new Map<string, { sha256: string; objects: readonly SourcedObject[]; problems: readonly LoadProblem[] }>();

export async function readSnapshot(paths: readonly string[]): Promise<FileSnapshot> {
  const problems: LoadProblem[] = [];
  const files: SourceFile[] = [];
  const objects: SourcedObject[] = [];
  const warnings: string[] = [];
  for (const file of await expandPaths(paths, problems, warnings)) {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (e) {
      // Vanished between the folder listing and the read (an editor's rename, a ConfigMap swap):
      // reported like any unreadable file; the next watch event reads again.
      problems.push({ code: ProblemCodes.L7G_ERR_POLICY_READ, file, object: undefined, field: undefined, line: undefined, message: `cannot read: ${(e as Error).message}` });
      continue;
    }
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    files.push({ file, sha256 });
    let entry = parsed.get(file);
    if (entry === undefined || entry.sha256 !== sha256) {
      const fileProblems: LoadProblem[] = [];
      entry = { sha256, objects: parseText(file, bytes.toString('utf8'), fileProblems), problems: fileProblems };
      parsed.set(file, entry);
    }
    objects.push(...entry.objects);
    problems.push(...entry.problems);
  }
  const present = new Set(files.map((f) => f.file));
  for (const f of parsed.keys()) if (!present.has(f)) parsed.delete(f);
  const signature = JSON.stringify([files, problems.map((p) => `${p.file}:${p.message}`)]);
  return { files, objects, problems, warnings, signature };
}

/**
 * The texts the parsed objects of `files` came from, for placing a reported problem at its line and
 * column (policy/locate.ts). Kept nowhere (a big cluster file would double its memory): read again,
 * and used only when the bytes still hash to what was parsed, so an edit since never misplaces one.
 */
export async function parsedTexts(files: Iterable<string>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const file of files) {
    const entry = parsed.get(file);
    if (entry === undefined) continue;
    const bytes = await readFile(file).catch(() => undefined);
    if (bytes !== undefined && createHash('sha256').update(bytes).digest('hex') === entry.sha256) out.set(file, bytes.toString('utf8'));
  }
  return out;
}
