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
  /** Equal signatures mean byte-identical inputs (same files, same contents, same read problems). */
  readonly signature: string;
}

export const EMPTY_SNAPSHOT: FileSnapshot = Object.freeze({ files: [], objects: [], problems: [], signature: '' });

export async function readSnapshot(paths: readonly string[]): Promise<FileSnapshot> {
  const problems: LoadProblem[] = [];
  const files: SourceFile[] = [];
  const objects: SourcedObject[] = [];
  for (const file of await expandPaths(paths, problems)) {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (e) {
      // Vanished between the folder listing and the read (an editor's rename, a ConfigMap swap):
      // reported like any unreadable file; the next watch event reads again.
      problems.push({ code: ProblemCodes.L7G_ERR_POLICY_READ, file, object: undefined, field: undefined, line: undefined, message: `cannot read: ${(e as Error).message}` });
      continue;
    }
    files.push({ file, sha256: createHash('sha256').update(bytes).digest('hex') });
    objects.push(...parseText(file, bytes.toString('utf8'), problems));
  }
  const signature = JSON.stringify([files, problems.map((p) => `${p.file}:${p.message}`)]);
  return { files, objects, problems, signature };
}
