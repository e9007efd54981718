/**
 * A throwaway single-member etcd for `chronobound demo --etcd` without a URL:
 * the `etcd` found on PATH, on free loopback ports, with its data in a
 * temporary directory that is removed when it stops.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  constants,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { sleep } from './io.js';

/** How to start an etcd by hand, for messages. @internal */
export const ETCD_INSTALL: string =
  'install etcd (Debian/Ubuntu: apt install etcd-server; or a release from ' +
  'https://github.com/etcd-io/etcd/releases) and run `etcd`, which serves http://127.0.0.1:2379';

/**
 * The `etcd` executable on `PATH`, if any.
 * @internal
 */
export function findEtcdOnPath(path: string | undefined = process.env['PATH']): string | undefined {
  for (const dir of (path ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, process.platform === 'win32' ? 'etcd.exe' : 'etcd');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/** A running temporary etcd. @internal */
export interface LocalEtcd {
  /** Its client URL, `http://127.0.0.1:PORT`. */
  readonly endpoint: string;
  /** The server version it reports. */
  readonly version: string;
  /** Stops it (SIGTERM, then SIGKILL) and removes its data. Idempotent. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `binary` as a one-member cluster on loopback and waits (at most
 * `timeoutMs`) until it answers a read.
 * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Error | Error} When it exits or does not serve in time (with the end of its log).
 * @internal
 */
export async function startLocalEtcd(
  binary: string,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<LocalEtcd> {
  const dir = mkdtempSync(join(tmpdir(), 'chronobound-demo-etcd-'));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const logFile = join(dir, 'etcd.log');
  const log = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(
      binary,
      [
        ...['--name', 'demo', '--data-dir', join(dir, 'data')],
        ...['--listen-client-urls', endpoint, '--advertise-client-urls', endpoint],
        ...['--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer],
        ...['--initial-cluster', `demo=${peer}`, '--initial-cluster-state', 'new'],
        ...['--logger', 'zap', '--log-outputs', 'stderr'],
      ],
      { stdio: ['ignore', log, log] },
    );
  } finally {
    closeSync(log);
  }
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  child.once('error', () => undefined); // reported as an exit below
  // A second Ctrl-C exits at once: do not leave etcd behind.
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.off('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const version = await waitServing(endpoint, child, timeoutMs, signal);
    return { endpoint, version, stop };
  } catch (error) {
    const tail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-3).join(' | ');
    await stop();
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(`could not start ${binary}: ${why}${tail === '' ? '' : `; its log: ${tail}`}`, {
      cause: error,
    });
  }
}

/** Polls until the member answers a linearizable read (it has elected itself); returns its version. */
async function waitServing(
  endpoint: string,
  child: ChildProcess,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (signal.aborted) throw new Error('interrupted');
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`it exited (${child.exitCode ?? child.signalCode})`);
    }
    try {
      const read = await fetch(`${endpoint}/v3/kv/range`, {
        method: 'POST',
        body: JSON.stringify({ key: btoa('chronobound-demo') }),
        signal: AbortSignal.timeout(1000),
      });
      const body = (await read.json()) as { header?: unknown; error?: unknown };
      if (read.ok && body.header !== undefined && body.error === undefined) {
        const version = await fetch(`${endpoint}/version`, { signal: AbortSignal.timeout(1000) });
        const { etcdserver } = (await version.json()) as { etcdserver?: unknown };
        return typeof etcdserver === 'string' ? etcdserver : '?';
      }
    } catch {
      // Not serving yet.
    }
    if (performance.now() > deadline) throw new Error(`it did not serve within ${timeoutMs} ms`);
    await sleep(100, signal);
  }
}
