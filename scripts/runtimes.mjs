#!/usr/bin/env node
// Installs the JavaScript runtimes the integration tests run chronobound on — Deno, Bun and
// workerd (the runtime of Cloudflare Workers) — from the npm registry into a cache directory,
// once per version. They are not devDependencies: together they unpack to about 350 MB, which
// `npm ci` would then download for everyone who installs the project. `npm test` runs this
// first (package.json "pretest"); test/integration/runtimes.test.ts asks it where they are.
//
//   node scripts/runtimes.mjs          install what is missing (silent when all are there)
//   node scripts/runtimes.mjs --json   print {"deno":"/…/deno",…} for what is installed; installs nothing
//
// Cache: $CHRONOBOUND_RUNTIMES_DIR, else $XDG_CACHE_HOME/chronobound-runtimes, else
// ~/.cache/chronobound-runtimes (keep it between CI runs to skip the download). One directory
// per runtime and version, so a version bump installs beside the old one.
//
// npm picks the platform's binary package (an optional dependency of `deno`, `bun` and
// `workerd`); install scripts are not run (--ignore-scripts): the binary is taken from the
// platform package itself and checked by running it once. In CI (CI set) a runtime that cannot
// be installed or does not run is an error; elsewhere a warning, and its tests are skipped.
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Pinned versions; the binary's path inside the platform package npm chooses. */
const RUNTIMES = [
  { name: 'deno', version: '2.9.6', scope: '@deno', binary: 'deno' },
  { name: 'bun', version: '1.4.5', scope: '@oven', binary: 'bin/bun' },
  { name: 'workerd', version: '1.20261117.1', scope: '@cloudflare', binary: 'bin/workerd' },
];

const cacheDir =
  process.env.CHRONOBOUND_RUNTIMES_DIR ??
  join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'chronobound-runtimes');

const dirOf = (runtime) => join(cacheDir, `${runtime.name}-${runtime.version}`);

/** The verified binary of an installed runtime, or undefined. */
function installed(runtime) {
  const marker = join(dirOf(runtime), 'installed.json');
  if (!existsSync(marker)) return undefined;
  const { binary } = JSON.parse(readFileSync(marker, 'utf8'));
  return existsSync(binary) ? binary : undefined;
}

async function install(runtime) {
  // Installed beside the final directory and renamed into place once it runs, so an
  // interrupted install never looks complete and two concurrent runs cannot mix files.
  const staging = `${dirOf(runtime)}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    writeFileSync(join(staging, 'package.json'), '{ "private": true }\n');
    await run(
      'npm',
      [
        'install',
        '--prefix',
        staging,
        '--no-save',
        '--no-package-lock',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        `${runtime.name}@${runtime.version}`,
      ],
      { shell: process.platform === 'win32', maxBuffer: 16 << 20 },
    );
    const scopeDir = join(staging, 'node_modules', runtime.scope);
    const platformPackage = existsSync(scopeDir)
      ? readdirSync(scopeDir).find((p) => existsSync(join(scopeDir, p, runtime.binary)))
      : undefined;
    if (platformPackage === undefined) {
      throw new Error(
        `npm installed no ${runtime.scope} binary package for ${process.platform}-${process.arch}`,
      );
    }
    const relative = join('node_modules', runtime.scope, platformPackage, runtime.binary);
    const { stdout } = await run(join(staging, relative), ['--version']);
    const final = dirOf(runtime);
    const binary = join(final, relative);
    writeFileSync(
      join(staging, 'installed.json'),
      `${JSON.stringify({ name: runtime.name, version: runtime.version, binary, reports: stdout.trim() }, null, 2)}\n`,
    );
    rmSync(final, { recursive: true, force: true });
    try {
      renameSync(staging, final);
    } catch (e) {
      if (installed(runtime) === undefined) throw e; // another run finished first: keep its copy
    }
    return { runtime, reports: stdout.trim().split('\n')[0] };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

if (process.argv.includes('--json')) {
  const found = {};
  for (const runtime of RUNTIMES) {
    const binary = installed(runtime);
    if (binary !== undefined) found[runtime.name] = binary;
  }
  console.log(JSON.stringify(found));
  process.exit(0);
}

const missing = RUNTIMES.filter((runtime) => installed(runtime) === undefined);
if (missing.length === 0) process.exit(0);

const names = missing.map((r) => `${r.name}@${r.version}`).join(', ');
console.error(`Installing ${names} from npm into ${cacheDir} ...`);
mkdirSync(cacheDir, { recursive: true });
const started = performance.now();
const results = await Promise.allSettled(missing.map(install));
const seconds = ((performance.now() - started) / 1000).toFixed(1);
let failed = false;
for (const [i, result] of results.entries()) {
  const runtime = missing[i];
  if (result.status === 'fulfilled') {
    console.error(`  ${runtime.name}@${runtime.version}: ${result.value.reports}`);
  } else {
    failed = true;
    const reason = result.reason instanceof Error ? result.reason.message : String(result.reason);
    console.error(`  ${runtime.name}@${runtime.version} FAILED: ${reason.trim()}`);
  }
}
console.error(`Runtimes done in ${seconds} s.`);
if (failed) {
  console.error(
    'chronobound tests need Deno, Bun and workerd' +
      (process.env.CI ? '.' : ' (tests that need a missing one are skipped outside CI).'),
  );
  process.exit(process.env.CI ? 1 : 0);
}
