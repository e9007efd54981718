/**
 * The package as users get it: build it (with declarations), `npm pack` it,
 * install the tarball into fresh projects without the network, and use every
 * subpath from ESM `import`, CommonJS `require`, and TypeScript under every
 * resolver: `node10` (`module: commonjs` with no resolution setting), `node16`,
 * `bundler`, and a browser project without `@types/node` that checks the
 * package's declarations (`skipLibCheck: false`). Errors thrown by one build are
 * recognized by the other's `isChronoboundError`.
 *
 * The build runs in a copy of the sources, so the repository's dist/ (which other
 * tests use concurrently) is never cleaned under their feet.
 */
import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  readFileSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const repoModules = join(root, 'node_modules');
const tsc = join(repoModules, 'typescript/bin/tsc');
const SUBPATHS = [
  'chronobound',
  'chronobound/ntp',
  'chronobound/node',
  'chronobound/testing',
  'chronobound/testing/fast-check',
  'chronobound/testing/node',
  'chronobound/luxon',
  'chronobound/etcd',
];

let work: string;
let tarball: string;

/** npm without the network, audit or funding noise; the build's env flag must not leak in. */
async function npm(cwd: string, args: string[]): Promise<string> {
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_update_notifier: 'false' };
  delete env['CHRONOBOUND_TEST_BUILD'];
  const { stdout } = await run('npm', args, { cwd, env, maxBuffer: 64 << 20 });
  return stdout;
}

async function node(cwd: string, file: string): Promise<string> {
  const { stdout } = await run(process.execPath, [file], { cwd, timeout: 30_000 });
  return stdout;
}

/** A fresh project with the tarball installed offline, plus the optional peers it uses. */
async function project(name: string, manifest: Record<string, unknown>): Promise<string> {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: `consumer-${name}`, version: '1.0.0', private: true, ...manifest }),
  );
  await npm(dir, ['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock', tarball]);
  // Optional peers (luxon, fast-check) and typings come from the repository, not the network.
  for (const dep of [
    'luxon',
    'fast-check',
    'pure-rand',
    '@types/luxon',
    '@types/node',
    'undici-types',
  ]) {
    const target = join(dir, 'node_modules', dep);
    mkdirSync(dirname(target), { recursive: true });
    if (!existsSync(target)) symlinkSync(join(repoModules, dep), target, 'dir');
  }
  return dir;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'chronobound-consumer-'));
  const pkg = join(work, 'pkg');
  mkdirSync(pkg);
  for (const entry of [
    'package.json',
    'tsconfig.json',
    'tsconfig.build.json',
    'tsup.config.ts',
    'src',
    'LICENSE',
    'README.md',
  ]) {
    if (existsSync(join(root, entry)))
      cpSync(join(root, entry), join(pkg, entry), { recursive: true });
  }
  symlinkSync(repoModules, join(pkg, 'node_modules'), 'dir');
  await npm(pkg, ['run', 'build']);
  const packed = JSON.parse(await npm(pkg, ['pack', '--json', '--pack-destination', work])) as {
    filename: string;
    files: { path: string }[];
  }[];
  const info = packed[0];
  if (info === undefined) throw new Error('npm pack reported nothing');
  tarball = join(work, info.filename);
  const files = info.files.map((f) => f.path);
  // Every subpath ships ESM, CJS and both declaration flavours.
  for (const sub of SUBPATHS.map((s) => s.replace(/^chronobound\/?/, '').replace(/(.)$/, '$1/'))) {
    for (const ext of ['.js', '.cjs', '.d.ts', '.d.cts'])
      expect(files).toContain(`dist/${sub}index${ext}`);
  }
  expect(files.some((f) => f.startsWith('src/') || f.startsWith('test/'))).toBe(false);
  // No source maps: the output is readable as it is, and maps were most of the size.
  expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
  // The Node-only builds keep the `node:` prefix of Node's own modules.
  expect(readFileSync(join(pkg, 'dist/ntp/index.js'), 'utf8')).toMatch(/from ['"]node:dgram['"]/);
  expect(readFileSync(join(pkg, 'dist/cli/main.js'), 'utf8')).not.toMatch(
    /from ['"](dgram|fs|net|http)['"]/,
  );
}, 240_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Exercises every subpath; the same code in both module systems. */
const usage = (load: string): string => `
${load}
const clock = new core.TrueClock({ source: core.systemClockSource({ assumedErrorMs: 5, trusted: true }) });
await clock.ready({ timeoutMs: 5000 });
// A server and a client of the HTTP time protocol, through the installed package.
const server = http.createServer(node.timeEndpoint(clock));
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const client = new core.TrueClock({
  source: core.httpTimeSource({ url: 'http://127.0.0.1:' + server.address().port + '/time', samples: 8 }),
});
await client.ready({ timeoutMs: 5000 });
// The first exchange of a cold process can be slow (ε over 50 ms); the rest of the burst
// tightens the bound, and whenTrusted resolves on that event.
const synced = await client.whenTrusted({ timeoutMs: 10000 });
const sim = new testing.SimulatedClock();
sim.advance(1000);
// An error of the other build (CJS from ESM, ESM from CJS): instanceof fails, the brand does not.
const foreign = new other.HttpTimeError('u', 'status', 'x');
const out = {
  core: Object.keys(core).length,
  ntp: typeof ntp.ntpSource,
  node: typeof node.timeEndpoint + ',' + typeof node.filePersistence,
  testing: typeof testing.SimulatedClock,
  testingNode: typeof testingNode.createNtpServer,
  fastCheck: typeof fastCheck.hlcTimestamp().generate,
  luxon: luxon.toDateTime(synced.estimate).isValid,
  synced: synced.status,
  contains: core.intervalContains(client.now(), clock.now().estimate),
  errorClass: new core.HttpTimeError('u', 'status', 'x') instanceof core.ChronoboundError,
  crossBuild: [
    foreign instanceof core.ChronoboundError,
    core.isChronoboundError(foreign),
    core.isChronoboundError(foreign, core.HttpTimeError),
    core.isChronoboundError(foreign, 'HTTP_TIME'),
    core.isChronoboundError(foreign, core.InvalidArgumentError),
    other.isChronoboundError(new core.InvalidArgumentError('a', 1, 'b'), other.InvalidArgumentError),
  ],
  version: pkg.version,
};
await client.close();
await clock.close();
server.close();
console.log(JSON.stringify(out));
`;

function expectUsage(stdout: string): void {
  const out = JSON.parse(stdout.trim().split('\n').pop() as string) as Record<string, unknown>;
  expect(out).toEqual({
    core: expect.any(Number) as number,
    ntp: 'function',
    node: 'function,function',
    testing: 'function',
    testingNode: 'function',
    fastCheck: 'function',
    luxon: true,
    synced: 'synchronized',
    contains: true,
    errorClass: true,
    crossBuild: [false, true, true, true, false, true],
    version: '0.1.0',
  });
  expect(out['core'] as number).toBeGreaterThan(20);
}

describe('the packed package in a fresh project', () => {
  it('works from ESM import', async () => {
    const dir = await project('esm', { type: 'module' });
    writeFileSync(
      join(dir, 'main.js'),
      usage(`
import http from 'node:http';
import { createRequire } from 'node:module';
import * as core from 'chronobound';
import * as ntp from 'chronobound/ntp';
import * as node from 'chronobound/node';
import * as testing from 'chronobound/testing';
import * as testingNode from 'chronobound/testing/node';
import * as fastCheck from 'chronobound/testing/fast-check';
import * as luxon from 'chronobound/luxon';
const pkg = createRequire(import.meta.url)('chronobound/package.json');
const other = createRequire(import.meta.url)('chronobound');
`),
    );
    expectUsage(await node(dir, 'main.js'));
  });

  it('works from CommonJS require', async () => {
    const dir = await project('cjs', { type: 'commonjs' });
    writeFileSync(
      join(dir, 'main.js'),
      `(async () => {${usage(`
const http = require('node:http');
const core = require('chronobound');
const ntp = require('chronobound/ntp');
const node = require('chronobound/node');
const testing = require('chronobound/testing');
const testingNode = require('chronobound/testing/node');
const fastCheck = require('chronobound/testing/fast-check');
const luxon = require('chronobound/luxon');
const pkg = require('chronobound/package.json');
const other = await import('chronobound');
`)}})().catch((e) => { console.error(e); process.exit(1); });`,
    );
    expectUsage(await node(dir, 'main.js'));
  });

  it('type-checks from TypeScript under node10, node16 (ESM and CJS files), bundler, and in a DOM-only project', async () => {
    const dir = await project('ts', { type: 'module' });
    // Types must be real: the @ts-expect-error lines fail the build if anything resolved to `any`.
    const browserBody = `
const source: TimeSource = httpTimeSource({ url: 'http://127.0.0.1:1/time', samples: 2 });
const clock = new TrueClock({ source, maxDriftPpm: 200 });
const reading: TimeReading = clock.now();
const earliest: number = reading.earliest;
// @ts-expect-error earliest is a number
const notAString: string = reading.earliest;
// AsyncDisposable, even where the lib has no esnext.disposable.
const dispose: () => Promise<void> = () => clock[Symbol.asyncDispose]();
const sim = new SimulatedClock({ driftPpm: 50 });
// @ts-expect-error advance takes milliseconds
sim.advance('1s');
const manual = manualSource();
const stamps = hlcTimestamp({ maxCounter: 10 });
const dt: DateTime = toDateTime(earliest);
// @ts-expect-error toDateTime returns a luxon DateTime
const notADate: Date = toDateTime(earliest);
const caught: unknown = new Error('x');
if (isChronoboundError(caught, ClockUnsynchronizedError)) {
  const status: string = caught.status;
  console.log(status);
}
if (isChronoboundError(caught, 'CLOCK_UNSYNCHRONIZED')) {
  const code: string = caught.code;
  // @ts-expect-error a code narrows to ChronoboundError, which has no status
  console.log(code, caught.status);
}
export { dispose, dt, notAString, notADate, manual, stamps };
`;
    const nodeBody = `
const handler: TimeEndpointHandler = timeEndpoint(clock, { path: '/time' });
// @ts-expect-error path must be a string
timeEndpoint(clock, { path: 1 });
const ntp: TimeSource = ntpSource({ servers: ['127.0.0.1:123'] });
const startServer: (options?: { offsetMs?: number }) => Promise<LoopbackNtpServer> = createNtpServer;
const election: typeof etcdElection = etcdElection;
export { handler, ntp, startServer, election };
`;
    const browserImports = `
import {
  ClockUnsynchronizedError,
  TrueClock,
  httpTimeSource,
  isChronoboundError,
  type TimeReading,
  type TimeSource,
} from 'chronobound';
import { SimulatedClock, manualSource } from 'chronobound/testing';
import { hlcTimestamp } from 'chronobound/testing/fast-check';
import { toDateTime } from 'chronobound/luxon';
import type { DateTime } from 'luxon';
`;
    const nodeImports = `
import { ntpSource } from 'chronobound/ntp';
import { timeEndpoint, type TimeEndpointHandler } from 'chronobound/node';
import { createNtpServer, type LoopbackNtpServer } from 'chronobound/testing/node';
import { etcdElection } from 'chronobound/etcd';
`;
    const everything = browserImports + nodeImports + browserBody + nodeBody;
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src/esm.ts'), everything);
    // A .cts file is CommonJS under node16: it resolves the "require" conditions (.d.cts).
    writeFileSync(join(dir, 'src/cjs.cts'), everything);
    // Under node10 a .ts file in a `module: commonjs` project (NestJS's default).
    // Without the arbitraries: fast-check 4's own declarations import pure-rand
    // subpaths that only exports-aware resolution finds (its limit, not ours).
    writeFileSync(
      join(dir, 'src/node10.ts'),
      everything
        .replace("import { hlcTimestamp } from 'chronobound/testing/fast-check';", '')
        .replace('const stamps = hlcTimestamp({ maxCounter: 10 });', 'const stamps = 0;'),
    );
    writeFileSync(join(dir, 'src/browser.ts'), browserImports + browserBody);
    const compilerOptions = {
      strict: true,
      noEmit: true,
      target: 'ES2022',
      lib: ['ES2022'],
      types: ['node'],
      skipLibCheck: false,
      exactOptionalPropertyTypes: true,
      noUncheckedIndexedAccess: true,
      verbatimModuleSyntax: false,
    };
    const configs: Record<string, { options: Record<string, unknown>; files: string[] }> = {
      // No moduleResolution: under `module: commonjs` TypeScript uses node10, which
      // ignores "exports" and finds the subpaths through "typesVersions".
      'tsconfig.node10.json': { options: { module: 'commonjs' }, files: ['src/node10.ts'] },
      'tsconfig.node16.json': {
        options: { module: 'node16', moduleResolution: 'node16' },
        files: ['src/esm.ts', 'src/cjs.cts'],
      },
      'tsconfig.bundler.json': {
        options: { module: 'esnext', moduleResolution: 'bundler', lib: ['ES2022', 'DOM'] },
        files: ['src/esm.ts'],
      },
      // A browser app: DOM, no @types/node, and the package's own declarations checked.
      'tsconfig.dom.json': {
        options: {
          module: 'esnext',
          moduleResolution: 'bundler',
          lib: ['ES2022', 'DOM'],
          types: [],
        },
        files: ['src/browser.ts'],
      },
    };
    for (const [config, { options, files }] of Object.entries(configs)) {
      writeFileSync(
        join(dir, config),
        JSON.stringify({ compilerOptions: { ...compilerOptions, ...options }, files }),
      );
      const result = await run(process.execPath, [tsc, '-p', config, '--traceResolution'], {
        cwd: dir,
        maxBuffer: 256 << 20,
      }).catch((e: { stdout?: string; stderr?: string }) => {
        throw new Error(
          `tsc -p ${config} failed:\n${(e.stdout ?? '')
            .split('\n')
            .filter((l) => /error TS/.test(l))
            .join('\n')}${e.stderr ?? ''}`,
        );
      });
      // Each subpath resolved to the package's own declarations.
      const subpaths =
        config === 'tsconfig.node10.json'
          ? SUBPATHS.filter((sub) => sub !== 'chronobound/testing/fast-check')
          : config === 'tsconfig.dom.json'
            ? [
                'chronobound',
                'chronobound/testing',
                'chronobound/testing/fast-check',
                'chronobound/luxon',
              ]
            : SUBPATHS;
      for (const sub of subpaths) {
        expect(result.stdout).toMatch(
          new RegExp(
            `Module name '${sub}' was successfully resolved to '[^']*/node_modules/chronobound/dist/[^']*\\.d\\.c?ts'`,
          ),
        );
      }
      if (config === 'tsconfig.dom.json') {
        // Nothing of Node's typings was needed (none were loaded).
        expect(result.stdout).not.toMatch(/@types\/node\/[^']*\.d\.ts' was successfully/);
      }
      if (config === 'tsconfig.node16.json') {
        // The CommonJS file got the .d.cts flavour.
        expect(result.stdout).toMatch(
          /successfully resolved to '[^']*chronobound\/dist\/index\.d\.cts'/,
        );
        expect(result.stdout).toMatch(
          /successfully resolved to '[^']*chronobound\/dist\/index\.d\.ts'/,
        );
      }
    }
    // Four full tsc runs: under a CPU-heavy neighbour on 2 cores they took over 60 s.
  }, 300_000);
});
