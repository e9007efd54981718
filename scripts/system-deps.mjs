#!/usr/bin/env node
// Makes sure the real components the integration tests start are installed:
// chronyd, Chromium, PostgreSQL's initdb/pg_ctl and etcd (etcd-server: a 3-member
// cluster on loopback for chronobound/etcd), promtool (Debian's `prometheus`: checks
// the metrics exposition) and gcc (builds the C ClockBound reader). On Debian as root it installs
// what is missing with apt-get; elsewhere it says what to install. Runs before `npm test`.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

function onPath(command) {
  return (process.env.PATH ?? '').split(':').some((dir) => dir && existsSync(`${dir}/${command}`));
}

function postgresPresent() {
  if (onPath('initdb') && onPath('pg_ctl')) return true;
  if (!existsSync('/usr/lib/postgresql')) return false;
  return readdirSync('/usr/lib/postgresql').some((v) =>
    existsSync(`/usr/lib/postgresql/${v}/bin/initdb`),
  );
}

const wanted = [
  { pkg: 'chrony', present: () => existsSync('/usr/sbin/chronyd') || onPath('chronyd') },
  { pkg: 'chromium', present: () => existsSync('/usr/bin/chromium') },
  { pkg: 'postgresql', present: postgresPresent },
  { pkg: 'etcd-server', present: () => existsSync('/usr/bin/etcd') || onPath('etcd') },
  { pkg: 'prometheus', present: () => existsSync('/usr/bin/promtool') || onPath('promtool') },
  { pkg: 'gcc', present: () => existsSync('/usr/bin/gcc') || onPath('gcc') },
];
const missing = wanted.filter((w) => !w.present()).map((w) => w.pkg);
if (missing.length === 0) process.exit(0);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot || !onPath('apt-get')) {
  console.error(
    `chronobound tests need: ${missing.join(', ')}. Install with: sudo apt-get install -y ${missing.join(' ')}` +
      (process.env.CI ? '' : ' (tests that need them are skipped outside CI)'),
  );
  process.exit(process.env.CI ? 1 : 0);
}
console.error(`Installing ${missing.join(', ')} with apt-get ...`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
  stdio: 'inherit',
  env,
});
