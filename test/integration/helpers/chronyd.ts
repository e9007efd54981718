/**
 * A throwaway chronyd for integration tests: run in the foreground (`-d`)
 * without touching the system clock (`-x`), on free loopback ports, with a
 * private configuration, pid file, drift file and log directory in a temp
 * directory that {@link ChronydHandle.stop} removes. {@link superviseChronyd}
 * is the one supervisor (spawn, kill on exit, poll until ready, stop) that the
 * NTS server in nts-server.ts runs on too.
 *
 * Where chronyd is missing the suites skip locally, but under CI
 * (`process.env.CI`) {@link locateChronyd} throws: a missing chronyd is a
 * failure there, never a silent skip.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readChronyTracking } from '../../../src/ntp/chrony.js';

const run = promisify(execFile);

const CHRONYD_CANDIDATES = ['/usr/sbin/chronyd', '/usr/local/sbin/chronyd', '/sbin/chronyd'];
const CHRONYC_CANDIDATES = ['/usr/bin/chronyc', '/usr/local/bin/chronyc', '/bin/chronyc'];

/**
 * The first of `$envVar` and `candidates` that exists, or `undefined` where none
 * does (local runs skip); under CI (`process.env.CI`) it throws instead, saying
 * which tests need it and how to install it.
 *
 * @throws Error under CI when the tool is missing.
 */
export function locateTool(
  name: string,
  envVar: string,
  candidates: readonly string[],
  install: string,
): string | undefined {
  const fromEnv = process.env[envVar];
  const all = fromEnv ? [fromEnv, ...candidates] : candidates;
  const found = all.find((path) => existsSync(path));
  if (found !== undefined) return found;
  if (process.env['CI']) {
    throw new Error(
      `${name} not found in ${all.join(', ')}; CI must run the tests that need it (${install}, or set ${envVar}).`,
    );
  }
  return undefined;
}

/**
 * Path of chronyd, or `undefined` when it is not installed (local runs skip).
 * Under CI it throws instead.
 */
export function locateChronyd(): string | undefined {
  return locateTool('chronyd', 'CHRONYD', CHRONYD_CANDIDATES, 'apt-get install -y chrony');
}

/** Path of chronyc, or `undefined` (throws under CI), like {@link locateChronyd}. */
export function locateChronyc(): string | undefined {
  return locateTool('chronyc', 'CHRONYC', CHRONYC_CANDIDATES, 'apt-get install -y chrony');
}

/** chronyd refuses to start as non-root unless told (-U); as root it drops to _chrony unless told (-u root). */
function privilegeArgs(): string[] {
  return process.getuid?.() === 0 ? ['-u', 'root'] : ['-U'];
}

/** Options of {@link startChronyd}. */
export interface StartChronydOptions {
  /** Extra chrony.conf lines, e.g. `server 127.0.0.1 port 11123 iburst minpoll -2 maxpoll -2`. */
  readonly extraConfig?: readonly string[];
  /** `local stratum N` so chronyd serves its own clock; default 8; `false` to leave it out. */
  readonly localStratum?: number | false;
  /** Serve NTP on a free loopback port (default true); otherwise `port 0`. */
  readonly serveNtp?: boolean;
  /** Extra command-line arguments. */
  readonly args?: readonly string[];
  /** How long to wait for chronyd to answer (ms); default 10000. */
  readonly startTimeoutMs?: number;
}

/** A running chronyd as the tests use it, whichever way it serves. */
export interface ChronydProcess extends SupervisedChronyd {
  /** The temp directory holding chrony.conf, pid, logs and the rest. */
  readonly dir: string;
  /** Runs chronyc against this chronyd's command port or socket and returns its stdout. */
  chronyc(...args: string[]): Promise<string>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A running chronyd with a UDP command port. */
export interface ChronydHandle extends ChronydProcess {
  /** UDP port serving NTP on 127.0.0.1 (0 when `serveNtp: false`). */
  readonly ntpPort: number;
  /** UDP cmdmon port on 127.0.0.1 (what `chronyc -h 127.0.0.1 -p` and `chronySource` talk to). */
  readonly cmdPort: number;
}

/** A UDP port on 127.0.0.1 that was free a moment ago. */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** Whether something answers an NTP client packet on 127.0.0.1:port within `timeoutMs`. */
export async function ntpAnswers(port: number, timeoutMs: number = 300): Promise<boolean> {
  const socket = createSocket('udp4');
  try {
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      socket.on('message', (message, remote) => {
        if (remote.port !== port || message.length < 48) return;
        clearTimeout(timer);
        resolve(true);
      });
      socket.on('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
      // LI 0, version 4, mode 3 (client); the transmit timestamp must be non-zero.
      const request = new Uint8Array(48);
      request[0] = 0x23;
      request[47] = 1;
      socket.send(request, port, '127.0.0.1');
    });
  } finally {
    socket.close();
  }
}

function configuration(
  dir: string,
  ntpPort: number,
  cmdPort: number,
  options: StartChronydOptions,
): string[] {
  const lines = [
    `port ${ntpPort}`,
    `cmdport ${cmdPort}`,
    'bindaddress 127.0.0.1',
    'bindcmdaddress 127.0.0.1',
    // No Unix command socket: parallel chronyds would fight over /run/chrony/chronyd.sock.
    'bindcmdaddress /',
    'allow 127.0.0.1',
    'cmdallow 127.0.0.1',
    `pidfile ${join(dir, 'chronyd.pid')}`,
    `driftfile ${join(dir, 'drift')}`,
    `logdir ${dir}`,
    `dumpdir ${dir}`,
  ];
  const stratum = options.localStratum ?? 8;
  if (stratum !== false) lines.push(`local stratum ${stratum}`);
  lines.push(...(options.extraConfig ?? []));
  return lines;
}

/** Running chronyds, killed if the test process exits without stopping them. */
const live = new Map<ChildProcess, string>();
let exitHookInstalled = false;

function track(child: ChildProcess, dir: string): void {
  live.set(child, dir);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const [orphan, orphanDir] of live) {
      orphan.kill('SIGKILL');
      rmSync(orphanDir, { recursive: true, force: true });
    }
  });
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** How {@link superviseChronyd} runs one chronyd. */
export interface ChronydLaunch {
  /** A fresh temp directory: chrony.conf goes there, and stopping removes it. */
  readonly dir: string;
  /** The lines of chrony.conf. */
  readonly config: readonly string[];
  /** Arguments after those every test chronyd gets (`-d -x`, the privilege flag, `-f chrony.conf`). */
  readonly args?: readonly string[];
  /** Whether chronyd serves what the test needs yet; asked every 50 ms until it says yes. */
  ready(): Promise<boolean>;
  /** `Date.now()` past which it gives up waiting for `ready`. */
  readonly deadline: number;
  /** What was not ready, for the error, e.g. `cmdport 4711`. */
  readonly what: string;
}

/** A chronyd that {@link superviseChronyd} started and watches. */
export interface SupervisedChronyd {
  readonly pid: number;
  /** chronyd's stderr/stdout so far, for failure messages. */
  readonly log: () => string;
  /** SIGTERM, then SIGKILL after 2 s; removes the directory. Idempotent. */
  readonly stop: () => Promise<void>;
}

/**
 * Runs `binary` in the foreground (`-d`) without touching the system clock
 * (`-x`) on `launch.config`, kills it if the test process exits first, and
 * waits until `launch.ready()` holds.
 *
 * @throws Error with chronyd's output when it exits during start or is not ready by the deadline (it is stopped then).
 */
export async function superviseChronyd(
  binary: string,
  launch: ChronydLaunch,
): Promise<SupervisedChronyd> {
  const conf = join(launch.dir, 'chrony.conf');
  writeFileSync(conf, `${launch.config.join('\n')}\n`);
  const child = spawn(
    binary,
    ['-d', '-x', ...privilegeArgs(), '-f', conf, ...(launch.args ?? [])],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let spawnError: Error | undefined;
  child.once('error', (error) => (spawnError = error));
  track(child, launch.dir);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    child.kill('SIGTERM');
    if (!(await waitForExit(child, 2000))) {
      child.kill('SIGKILL');
      await waitForExit(child, 2000);
    }
    live.delete(child);
    rmSync(launch.dir, { recursive: true, force: true });
  };
  for (;;) {
    if (spawnError !== undefined || child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(
        `chronyd exited during start (${spawnError?.message ?? `code ${child.exitCode}`}):\n${output}`,
      );
    }
    if (await launch.ready()) return { pid: child.pid ?? -1, log: () => output, stop };
    if (Date.now() > launch.deadline) {
      await stop();
      throw new Error(`chronyd is not ready (${launch.what}):\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function start(
  binary: string,
  options: StartChronydOptions,
  deadline: number,
): Promise<ChronydHandle> {
  const serveNtp = options.serveNtp ?? true;
  const ntpPort = serveNtp ? await freeUdpPort() : 0;
  let cmdPort = await freeUdpPort();
  while (cmdPort === ntpPort) cmdPort = await freeUdpPort();
  const dir = mkdtempSync(join(tmpdir(), 'chronobound-chronyd-'));
  // Ready when cmdmon answers and, if it serves NTP, the NTP port does too.
  const ready = async (): Promise<boolean> =>
    (await readChronyTracking({ port: cmdPort, timeoutMs: 200 }).then(
      () => true,
      () => false,
    )) &&
    (!serveNtp || (await ntpAnswers(ntpPort)));
  const chronyd = await superviseChronyd(binary, {
    dir,
    config: configuration(dir, ntpPort, cmdPort, options),
    args: options.args ?? [],
    ready,
    deadline,
    what: `cmdport ${cmdPort} / port ${ntpPort}`,
  });
  return {
    ntpPort,
    cmdPort,
    dir,
    pid: chronyd.pid,
    log: chronyd.log,
    chronyc: async (...args: string[]) => {
      const chronyc = locateChronyc();
      if (chronyc === undefined) throw new Error('chronyc is not installed');
      const { stdout } = await run(chronyc, ['-h', '127.0.0.1', '-p', String(cmdPort), ...args], {
        timeout: 5000,
      });
      return stdout;
    },
    stop: chronyd.stop,
    [Symbol.asyncDispose]: chronyd.stop,
  };
}

/**
 * Starts chronyd as a foreground process on free loopback ports and waits
 * until its command port (and NTP port) answer.
 *
 * @throws Error when chronyd is not installed, exits, or does not answer in time.
 */
export async function startChronyd(options: StartChronydOptions = {}): Promise<ChronydHandle> {
  const binary = locateChronyd();
  if (binary === undefined) throw new Error('chronyd is not installed');
  return start(binary, options, Date.now() + (options.startTimeoutMs ?? 10_000));
}

/**
 * Polls chronyd's tracking report until `accept` says yes.
 *
 * @throws Error naming the last report when `timeoutMs` passes first.
 */
export async function waitForTracking(
  cmdPort: number,
  accept: (tracking: Awaited<ReturnType<typeof readChronyTracking>>) => boolean,
  timeoutMs: number = 10_000,
): Promise<Awaited<ReturnType<typeof readChronyTracking>>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const tracking = await readChronyTracking({ port: cmdPort, timeoutMs: 500 });
      if (accept(tracking)) return tracking;
      last = tracking;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `chronyd tracking never reached the expected state; last: ${String(JSON.stringify(last))}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The fields of `chronyc tracking` text output, in seconds and chrony's signs. */
export interface ChronycTracking {
  readonly refIdHex: string;
  readonly stratum: number;
  /** Signed like chrony's current correction: > 0 when the system clock is slow. */
  readonly systemTimeS: number;
  readonly lastOffsetS: number;
  readonly rmsOffsetS: number;
  readonly rootDelayS: number;
  readonly rootDispersionS: number;
  readonly updateIntervalS: number;
  readonly leapStatus: string;
}

/**
 * Parses `chronyc tracking` (text form). "System time : X seconds slow of NTP
 * time" means the correction is +X; "fast" means −X.
 *
 * @throws Error naming the line that is missing or malformed.
 */
export function parseChronycTracking(text: string): ChronycTracking {
  const field = (label: string): string => {
    const match = new RegExp(`^${label}\\s*:\\s*(.+)$`, 'm').exec(text);
    if (!match?.[1]) throw new Error(`chronyc output has no "${label}" line:\n${text}`);
    return match[1].trim();
  };
  const seconds = (label: string): number => {
    const match = /^([+-]?\d+(?:\.\d+)?) seconds/.exec(field(label));
    if (!match?.[1]) throw new Error(`chronyc "${label}" is not in seconds:\n${text}`);
    return Number(match[1]);
  };
  const system = /^(\d+(?:\.\d+)?) seconds (slow|fast) of NTP time$/.exec(field('System time'));
  if (!system?.[1]) throw new Error(`chronyc "System time" is malformed:\n${text}`);
  const refId = /^([0-9A-Fa-f]{8})/.exec(field('Reference ID'));
  if (!refId?.[1]) throw new Error(`chronyc "Reference ID" is malformed:\n${text}`);
  return {
    refIdHex: refId[1].toUpperCase(),
    stratum: Number(field('Stratum')),
    systemTimeS: Number(system[1]) * (system[2] === 'slow' ? 1 : -1),
    lastOffsetS: seconds('Last offset'),
    rmsOffsetS: seconds('RMS offset'),
    rootDelayS: seconds('Root delay'),
    rootDispersionS: seconds('Root dispersion'),
    updateIntervalS: seconds('Update interval'),
    leapStatus: field('Leap status'),
  };
}

/** One NTP measurement chronyd logged (measurements.log), in seconds. */
export interface ChronydMeasurement {
  readonly offsetS: number;
  readonly delayS: number;
  readonly dispersionS: number;
}

/** What {@link chronydMeasureOffset} returns. */
export interface ChronydOffsetReport {
  /** "System clock wrong by X seconds": > 0 when the system clock is behind the servers. */
  readonly offsetS: number;
  /** The measurements chronyd based it on. */
  readonly measurements: readonly ChronydMeasurement[];
  /**
   * chronyd's own error bound for the result: the largest delay/2 + dispersion of
   * its measurements (each measurement's offset is off by at most that).
   */
  readonly errorS: number;
  /** chronyd's output, for failure messages. */
  readonly output: string;
}

/**
 * Runs `chronyd -Q` (measure, print, do not touch the clock) with the given
 * directives, logging its measurements to a temp directory, and returns the
 * offset it reports and its own error bound.
 *
 * @throws Error with chronyd's output when no "System clock wrong by" line appears.
 */
export async function chronydMeasureOffset(
  directives: readonly string[],
  timeoutS: number = 10,
): Promise<ChronydOffsetReport> {
  const binary = locateChronyd();
  if (binary === undefined) throw new Error('chronyd is not installed');
  const logDir = mkdtempSync(join(tmpdir(), 'chronobound-chronyd-q-'));
  try {
    const args = ['-Q', '-f', '/dev/null', '-t', String(timeoutS)];
    if (process.getuid?.() === 0) args.push('-u', 'root');
    const logging = [`logdir ${logDir}`, 'log measurements'];
    const result = await run(binary, [...args, ...directives, ...logging], {
      timeout: (timeoutS + 5) * 1000,
    }).catch((error: { stdout?: string; stderr?: string; message: string }) => ({
      stdout: error.stdout ?? '',
      stderr: `${error.stderr ?? ''}\n${error.message}`,
    }));
    const output = `${result.stdout}${result.stderr}`;
    const match = /System clock wrong by ([+-]?\d+(?:\.\d+)?) seconds/.exec(output);
    if (!match?.[1]) throw new Error(`chronyd -Q reported no offset:\n${output}`);
    const measurements = parseMeasurementsLog(join(logDir, 'measurements.log'));
    if (measurements.length === 0) throw new Error(`chronyd -Q logged no measurements:\n${output}`);
    const errorS = Math.max(...measurements.map((m) => m.delayS / 2 + m.dispersionS));
    return { offsetS: Number(match[1]), measurements, errorS, output };
  } finally {
    rmSync(logDir, { recursive: true, force: true });
  }
}

/**
 * Rows of chronyd's measurements.log: date, time, address, leap, stratum, tests
 * (3 columns), poll, score, then offset, peer delay, peer dispersion, …
 */
function parseMeasurementsLog(path: string): ChronydMeasurement[] {
  if (!existsSync(path)) return [];
  const rows: ChronydMeasurement[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!/^\d{4}-\d{2}-\d{2} /.test(line)) continue;
    const columns = line.trim().split(/\s+/);
    const [offsetS, delayS, dispersionS] = [11, 12, 13].map((i) => Number(columns[i]));
    if (![offsetS, delayS, dispersionS].every((x) => Number.isFinite(x))) {
      throw new Error(`unexpected measurements.log line: ${line}`);
    }
    rows.push({ offsetS: offsetS!, delayS: delayS!, dispersionS: dispersionS! });
  }
  return rows;
}
