// .ci/import-cycles.mjs (run by `npm run lint` and .ci/run): planted cycles in temporary trees, an
// acyclic tree, and the repository itself, which must stay free of import cycles.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../../.ci/import-cycles.mjs', import.meta.url));

interface Run { code: number | null; stdout: string; stderr: string }

function check(root?: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, root === undefined ? [SCRIPT] : [SCRIPT, root], (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

/** A temporary tree of files (path -> content), removed after the test. */
function tree(t: Test, files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'l7guard-cycles-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

t.test('a planted two-file cycle: exit 1, the cycle printed', async (t) => {
  const root = tree(t, {
    'lib/a.ts': "import { b } from './b.js';\nexport const a = () => b();\n",
    // type-only imports count: the two files are still coupled
    'lib/b.ts': "import type { A } from './a.js';\nexport type B = A;\nexport const b = () => 1;\n",
    'lib/c.ts': "import { a } from './a.js';\nexport const c = a;\n",
  });
  const r = await check(root);
  t.equal(r.code, 1, r.stderr);
  t.equal(r.stdout, 'lib/a.ts -> lib/b.ts -> lib/a.ts\n');
});

t.test('three files through re-exports and a dynamic import, across folders', async (t) => {
  const root = tree(t, {
    'x/one.ts': "export * from '../y/two.js';\n",
    'y/two.ts': "export { three } from './three.js';\n",
    'y/three.ts': "export const three = () => import('../x/one.js');\n",
  });
  const r = await check(root);
  t.equal(r.code, 1, r.stderr);
  t.equal(r.stdout, 'x/one.ts -> y/two.ts -> y/three.ts -> x/one.ts\n');
});

t.test('an acyclic tree: exit 0 with the file count', async (t) => {
  const root = tree(t, {
    'lib/a.ts': "import { b } from './b.js';\nimport { c } from './sub/c.js';\nexport const a = () => b() + c;\n",
    'lib/b.ts': "import { c } from './sub/c.js';\nexport const b = () => c;\n",
    'lib/sub/c.ts': [
      '// import { a } from \'../a.js\'; (a comment, not an import)',
      "import { readFileSync } from 'node:fs';",
      "export const text = `import { a } from '../a.js'`;",
      "export const re = /from '..\\/a.js'/;",
      'export const c = readFileSync.length;',
      '',
    ].join('\n'),
    // skipped folders: their imports never count
    'node_modules/m/index.ts': "import '../../lib/a.js';\n",
    'dist/lib/b.ts': "import '../../lib/a.js';\n",
    'bench/x.ts': "import '../lib/a.js';\n",
  });
  const r = await check(root);
  t.equal(r.code, 0, r.stdout + r.stderr);
  t.equal(r.stdout, 'no import cycles (3 files)\n');
});

t.test('the repository has no import cycles', async (t) => {
  const r = await check();
  t.equal(r.code, 0, r.stdout + r.stderr);
  t.match(r.stdout, /^no import cycles \(\d+ files\)\n$/);
});
