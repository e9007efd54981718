/**
 * The `chronobound` command: `now`, `watch`, `serve`, `demo`, `daemon`.
 *
 * Failures print one line to stderr and exit with a documented code (see
 * {@link ExitCode}); `--debug` adds the stack trace.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { runDaemon } from './daemon.js';
import { runDemo } from './demo.js';
import { describeError, ExitCode, exitCodeFor } from './errors.js';
import type { CliIo, Command } from './io.js';
import { runNow } from './now.js';
import { runServe } from './serve.js';
import { runWatch } from './watch.js';

const commands: Readonly<Record<string, Command>> = {
  now: runNow,
  watch: runWatch,
  serve: runServe,
  demo: runDemo,
  daemon: runDaemon,
};

const usage = `Usage: chronobound <command> [options]

Honest time: every reading is an interval [earliest, latest] that contains true time.

Commands:
  now     print one reading from NTP servers, chronyd or the system clock
  watch   live view of the uncertainty ε over time (the TrueTime sawtooth)
  serve   run a programmable loopback NTP server for tests
  demo    three skewed nodes writing to SQLite: wall-clock LWW vs HLC vs commit-wait;
          with --etcd, a lock on etcd, a paused holder and fencing tokens
  daemon  one clock per host: a ClockBound shared-memory segment and Prometheus metrics

Run \`chronobound <command> --help\` for a command's options.

Global options:
  --debug      print stack traces
  -h, --help   show this help
  --version    print the version

Exit codes: 0 ok, 1 not synchronized / no usable server, 2 usage error, 3 runtime error.
`;

function version(): string {
  // dist/cli/main.js and src/cli/main.ts both sit two levels below package.json.
  try {
    const pkg = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Runs the command line `argv` (without `node` and the script) and returns the
 * exit code. Never throws.
 * @internal
 */
async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.stderr.write(usage);
    return ExitCode.usage;
  }
  if (name === '-h' || name === '--help' || name === 'help') {
    io.stdout.write(usage);
    return ExitCode.ok;
  }
  if (name === '--version' || name === '-v') {
    io.stdout.write(`${version()}\n`);
    return ExitCode.ok;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (command === undefined) {
    io.stderr.write(
      `chronobound: unknown command ${JSON.stringify(name)}; expected one of: ${Object.keys(commands).join(', ')}. See \`chronobound --help\`.\n`,
    );
    return ExitCode.usage;
  }
  try {
    return await command(rest, io);
  } catch (error) {
    io.stderr.write(`chronobound ${name}: ${describeError(error)}\n`);
    if (io.debug && error instanceof Error && error.stack !== undefined) {
      io.stderr.write(`${error.stack}\n`);
    }
    return exitCodeFor(error);
  }
}

/** Wires the process to {@link main}: signals, streams, exit code. */
async function start(): Promise<void> {
  const all = process.argv.slice(2);
  const debug = all.includes('--debug');
  const argv = all.filter((a) => a !== '--debug');
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    // A second Ctrl-C means "now": skip the clean shutdown.
    if (signals > 1) process.exit(130);
    controller.abort(new Error(`received ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // stdout closed early (e.g. `chronobound watch --json | head`): stop quietly.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') controller.abort(error);
  });
  // Library timers and sockets are unref'd so they never hold a process open; the
  // CLI, though, must stay alive while a command awaits them.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  const code = await main(argv, {
    stdout: process.stdout,
    stderr: process.stderr,
    signal: controller.signal,
    debug,
    cwd: process.cwd(),
  });
  clearInterval(keepAlive);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.exitCode = code;
  // Everything is closed by now; if a stray handle lingers, do not hang the shell.
  setTimeout(() => process.exit(code), 1000).unref();
}

await start();
