#!/usr/bin/env node
/**
 * Runs the unit tests on the other Node versions users run (22 and 24), next to
 * the machine's Node that `npm test` uses.
 *
 * The Node binaries come from the npm registry (`node-<platform>-<arch>`, the
 * packages the `node` package installs) into a cache outside the repository, so
 * `npm ci` never downloads them and a second run is offline. The JavaScript
 * under test is the dist/ that the main run built (the build is not what
 * differs between Node versions), so vitest starts with CHRONOBOUND_SKIP_BUILD.
 *
 *   node scripts/node-versions.mjs                 # Node 22 and 24, the representative set
 *   node scripts/node-versions.mjs --all           # Node 22 and 24, every unit test
 *   node scripts/node-versions.mjs 24 -- test/ntp  # one version, these files
 *
 * Environment: CHRONOBOUND_NODE_CACHE (default ~/.cache/chronobound/node).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * What differs between Node versions is the runtime under the library — sockets,
 * TLS and crypto, HTTP and fetch, the file system, timers, child processes,
 * ESM/CJS loading — not the arithmetic. The default run is the unit tests that
 * exercise those (every test/clock, test/node and test/sources file, the NTP
 * client, transport and NTS, TrueClock, the CLI commands as subprocesses, the
 * loopback NTP server, the etcd gateway and the BigInt codecs); `--all` runs
 * every unit test instead. Integration tests (real chronyd, PostgreSQL, etcd),
 * the browser, packed-package and documentation tests are never run here, nor
 * the tests that load better-sqlite3, whose native build in node_modules is for
 * the machine's Node ABI only.
 */
const REPRESENTATIVE = [
  'test/clock/',
  'test/node/',
  'test/sources/',
  'test/ntp/client.test.ts',
  'test/ntp/transport.test.ts',
  'test/ntp/packet.test.ts',
  'test/ntp/nts/',
  'test/ntp/nts-source.test.ts',
  'test/truetime/true-clock.test.ts',
  'test/cli/args.test.ts',
  'test/cli/main.test.ts',
  'test/cli/now.test.ts',
  'test/cli/serve.test.ts',
  'test/cli/watch.test.ts',
  'test/testing/ntp-server.test.ts',
  'test/testing/simulated-clock.test.ts',
  'test/etcd/gateway.test.ts',
  'test/logical/hlc-codec.test.ts',
];
const NOT_UNIT = [
  'test/integration/**',
  'test/browser/**',
  'test/consumer/**',
  'test/docs/**',
  'test/cli/demo.test.ts',
  'test/safety/fencing.test.ts',
];

const args = process.argv.slice(2);
const split = args.indexOf('--');
const own = split === -1 ? args : args.slice(0, split);
const majors = own.filter((a) => /^\d+$/.test(a));
const files =
  split !== -1
    ? args.slice(split + 1)
    : own.includes('--all')
      ? NOT_UNIT.flatMap((glob) => ['--exclude', glob])
      : REPRESENTATIVE;
const versions = majors.length > 0 ? majors : ['22', '24'];
const cache =
  process.env['CHRONOBOUND_NODE_CACHE'] ?? join(homedir(), '.cache', 'chronobound', 'node');

/** The cached binary of Node `major`, installed from the npm registry on first use. */
function nodeBinary(major) {
  const platform = process.platform === 'win32' ? 'win' : process.platform;
  const pkg = `node-${platform}-${process.arch}`;
  const prefix = join(cache, major);
  const bin = join(
    prefix,
    'node_modules',
    pkg,
    'bin',
    process.platform === 'win32' ? 'node.exe' : 'node',
  );
  if (!existsSync(bin)) {
    mkdirSync(prefix, { recursive: true });
    console.log(`::: installing ${pkg}@${major} into ${prefix}`);
    execFileSync(
      'npm',
      [
        'install',
        '--prefix',
        prefix,
        '--no-save',
        '--no-package-lock',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        `${pkg}@${major}`,
      ],
      { stdio: 'inherit', env: { ...process.env, npm_config_update_notifier: 'false' } },
    );
  }
  return bin;
}

if (
  !existsSync(join(root, 'dist', 'index.js')) ||
  !existsSync(join(root, 'dist', 'cli', 'main.js'))
) {
  console.log('::: building dist/ (JavaScript only)');
  execFileSync('npm', ['run', 'build:js'], { cwd: root, stdio: 'inherit' });
}

const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const failed = [];
for (const major of versions) {
  const node = nodeBinary(major);
  const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  console.log(`::: unit tests on Node ${version}`);
  const started = Date.now();
  const result = spawnSync(node, [vitest, 'run', ...files], {
    cwd: root,
    stdio: 'inherit',
    // The child processes the tests spawn (the CLI) run on the same Node.
    env: {
      ...process.env,
      CHRONOBOUND_SKIP_BUILD: '1',
      PATH: `${dirname(node)}:${process.env['PATH'] ?? ''}`,
    },
  });
  console.log(`::: Node ${version}: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (result.status !== 0) failed.push(version);
}
if (failed.length > 0) {
  console.error(`::: failed on Node ${failed.join(', ')}`);
  process.exit(1);
}
