/**
 * Type-checking snippets (code blocks of the docs, TSDoc examples) as a user
 * would compile them: each is a module in a scratch folder inside the
 * repository, and the package's entry points resolve to src/ by `paths`.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL('../..', import.meta.url));

/** The package's entry points and the source file each is built from (from the root). */
export const PACKAGE_ENTRIES: readonly { readonly specifier: string; readonly file: string }[] = [
  { specifier: 'chronobound', file: 'src/index.ts' },
  { specifier: 'chronobound/ntp', file: 'src/ntp/index.ts' },
  { specifier: 'chronobound/node', file: 'src/node/index.ts' },
  { specifier: 'chronobound/testing', file: 'src/testing/index.ts' },
  { specifier: 'chronobound/testing/fast-check', file: 'src/testing/fast-check/index.ts' },
  { specifier: 'chronobound/testing/node', file: 'src/testing/node/index.ts' },
  { specifier: 'chronobound/luxon', file: 'src/luxon/index.ts' },
  { specifier: 'chronobound/etcd', file: 'src/etcd/index.ts' },
];

/**
 * Runs tsc over the `*.ts` files of `dir` — a folder inside the repository, so
 * that node_modules (luxon, pg, fast-check types…) resolve — strict, with
 * exactOptionalPropertyTypes, ES2022 and DOM (as the core compiles), Node's
 * types, the package's entry points mapped onto src/, and `compilerOptions` on
 * top. Returns what tsc printed (`file.ts(line,col): error TS…` lines): empty
 * when everything type-checks.
 *
 * @example
 * ```ts
 * const output = await typeCheckFolder(work, { noUncheckedIndexedAccess: true });
 * ```
 */
export async function typeCheckFolder(
  dir: string,
  compilerOptions: Readonly<Record<string, unknown>> = {},
): Promise<string> {
  const toRoot = relative(dir, ROOT);
  const paths = Object.fromEntries(
    PACKAGE_ENTRIES.map(({ specifier, file }) => [specifier, [join(toRoot, file)]]),
  );
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2022', 'DOM', 'ESNext.Disposable'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          exactOptionalPropertyTypes: true,
          skipLibCheck: true,
          types: ['node'],
          noEmit: true,
          ...compilerOptions,
          paths,
        },
        include: ['*.ts'],
      },
      null,
      2,
    ),
  );
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  return promisify(execFile)(process.execPath, [tsc, '-p', dir, '--pretty', 'false'], {
    cwd: dir,
    maxBuffer: 32 * 1024 * 1024,
  }).then(
    () => '',
    (error: { stdout?: string; stderr?: string }) => `${error.stdout ?? ''}${error.stderr ?? ''}`,
  );
}
