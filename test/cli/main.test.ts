import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, endsWithOneLineError, isOneLineError, runCli } from './run-cli.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

describe('chronobound (built CLI)', () => {
  it('starts with a node shebang', () => {
    expect(readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('prints usage with --help and exits 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: chronobound <command>/);
    for (const command of ['now', 'watch', 'serve', 'demo']) expect(r.stdout).toContain(command);
    // The demo line names both of its modes.
    expect(r.stdout).toMatch(/ {2}demo .*commit-wait;\n +with --etcd, /);
    expect(r.stdout).toContain('Exit codes: 0 ok, 1 not synchronized');
  });

  it('prints the package version', async () => {
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('exits 2 with usage on stderr when no command is given', async () => {
    const r = await runCli([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^Usage: chronobound/);
  });

  it('rejects an unknown command in one line, exit 2', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(isOneLineError(r.stderr)).toBe(true);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });

  it.each([
    [['now', '--samples', '0'], /Invalid --samples: "0"; expected an integer from 1 to 64/],
    [['now', '--bogus'], /Invalid option: "--bogus"; expected one of --server, --chrony/],
    [['now', 'extra'], /Invalid argument: "extra"; .*no positional arguments/],
    [
      ['now', '--server'],
      /^chronobound now: --server needs a value \(see `chronobound now --help`\)$/m,
    ],
    [['now', '--server', '[::1'], /Invalid --server: "\[::1"; expected host\[:port\]/],
    [['now', '--server', '::1]:123'], /Invalid --server: "::1\]:123"/],
    // A negative number is the flag's value, judged by the flag's own range.
    [
      ['now', '--max-uncertainty-ms', '-1'],
      /Invalid --max-uncertainty-ms: "-1"; expected a number ≥ 0/,
    ],
    [['now', '--server', '-x'], /Invalid --server: "-x"; expected --server=-x/],
    [['now', '--server', 'host:99999'], /Invalid --server port: "99999"/],
    [['now', '--json=yes'], /Invalid --json/],
    [['watch', '--interval-ms', 'abc'], /Invalid --interval-ms: "abc"/],
    [['watch', '--count', '-1'], /Invalid --count/],
    [['serve', '--delay-ms', '1/2/3'], /Invalid --delay-ms: "1\/2\/3"/],
    [
      ['serve', '--host', 'localhost'],
      /Invalid --host: "localhost"; expected an IPv4 or IPv6 address/,
    ],
    [['serve', '--port', '70000'], /Invalid --port: "70000"/],
    [['demo', '--skew-ms', '1,2'], /Invalid --skew-ms: "1,2"/],
    [['demo', '--rounds', '2.5'], /Invalid --rounds: "2.5"/],
  ])('%j is a usage error: exit 2, one line, no stack', async (args, message) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(isOneLineError(r.stderr)).toBe(true);
    expect(r.stderr).toMatch(message);
  });

  it.each(['now', 'watch', 'serve', 'demo'])(
    '%s --help documents its flags and exits 0',
    async (command) => {
      const r = await runCli([command, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: chronobound ${command} \\[options\\]`));
      expect(r.stdout).toContain('-h, --help');
    },
  );
});

describe('the CLI without optional packages', () => {
  // A copy of the bundle outside the package: no node_modules, so neither
  // better-sqlite3, pg nor luxon can be found.
  const dir = mkdtempSync(join(tmpdir(), 'chronobound-cli-bare-'));
  const script = join(dir, 'main.js');
  copyFileSync(CLI, script);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs `now` (the CLI does not need luxon)', async () => {
    const r = await runCli(['now', '--chrony', '127.0.0.1:9', '--timeout-ms', '200', '--json'], {
      script,
      cwd: dir,
    });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'unsynchronized' });
  });

  it('says how to install better-sqlite3 for the demo: exit 3, one line', async () => {
    const r = await runCli(['demo', '--no-plot'], { script, cwd: dir });
    expect(r.code).toBe(3);
    expect(endsWithOneLineError(r.stderr)).toBe(true);
    expect(r.stderr).toContain('npm install better-sqlite3');
  });

  it('says how to install pg for --postgres: exit 3, one line', async () => {
    const r = await runCli(['demo', '--no-plot', '--postgres', 'postgres://127.0.0.1:1/x'], {
      script,
      cwd: dir,
    });
    expect(r.code).toBe(3);
    expect(endsWithOneLineError(r.stderr)).toBe(true);
    expect(r.stderr).toContain('npm install pg');
  });

  it('adds the stack trace only with --debug', async () => {
    const r = await runCli(['demo', '--no-plot', '--debug'], { script, cwd: dir });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('npm install better-sqlite3');
    expect(r.stderr).toMatch(/\n\s+at /);
  });
});
