/**
 * A throwaway chronyd NTS server for integration tests: a self-signed
 * certificate made with `openssl` (CN 127.0.0.1, SANs IP:127.0.0.1 and
 * DNS:localhost) in a temp directory, and chronyd in the foreground (`-d`)
 * without touching the clock (`-x`), IPv4 only (`-4`), with a private
 * configuration: NTS-KE and NTP on free loopback ports, the command socket a
 * Unix socket in the temp directory (for `chronyc serverstats`, which the UDP
 * command port refuses) and no UDP command port. Readiness is polled (the
 * NTS-KE port accepts, NTP answers, the command socket answers), never slept.
 *
 * Where chronyd or openssl is missing the suites skip locally; under CI
 * (`process.env.CI`) a missing one throws.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  freeUdpPort,
  locateChronyc,
  locateChronyd,
  locateTool,
  ntpAnswers,
  superviseChronyd,
  type ChronydProcess,
} from './chronyd.js';

const run = promisify(execFile);

const OPENSSL_CANDIDATES = ['/usr/bin/openssl', '/usr/local/bin/openssl', '/bin/openssl'];

/** Path of openssl, or `undefined` when it is not installed; under CI it throws instead. */
export function locateOpenssl(): string | undefined {
  return locateTool('openssl', 'OPENSSL', OPENSSL_CANDIDATES, 'apt-get install -y openssl');
}

/** A certificate and its key, as files and as PEM text. */
export interface Certificate {
  readonly certPath: string;
  readonly keyPath: string;
  /** The certificate in PEM: what a client passes as `ca` to trust it. */
  readonly certPem: string;
}

/** Options of {@link makeCertificate}. */
export interface MakeCertificateOptions {
  /** Subject common name; default `127.0.0.1`. */
  readonly commonName?: string;
  /** subjectAltName entries; default `['IP:127.0.0.1', 'DNS:localhost']`. */
  readonly altNames?: readonly string[];
  /** File name stem inside `dir`; default `server`. */
  readonly name?: string;
}

/**
 * Makes a self-signed ECDSA P-256 certificate valid for two days with openssl.
 *
 * @throws Error with openssl's output when it fails or is not installed.
 */
export async function makeCertificate(
  dir: string,
  options: MakeCertificateOptions = {},
): Promise<Certificate> {
  const openssl = locateOpenssl();
  if (openssl === undefined) throw new Error('openssl is not installed');
  const name = options.name ?? 'server';
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  const altNames = options.altNames ?? ['IP:127.0.0.1', 'DNS:localhost'];
  await run(
    openssl,
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${options.commonName ?? '127.0.0.1'}`,
      '-addext',
      `subjectAltName=${altNames.join(',')}`,
      '-keyout',
      keyPath,
      '-out',
      certPath,
    ],
    { timeout: 20_000 },
  );
  return { certPath, keyPath, certPem: readFileSync(certPath, 'utf8') };
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freeTcpPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Whether something accepts TCP connections on 127.0.0.1:port within `timeoutMs`. */
export function tcpAccepts(port: number, timeoutMs: number = 500): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** The counters of `chronyc serverstats` that the tests look at. */
export interface ServerStats {
  readonly ntpPacketsReceived: number;
  readonly ntpPacketsDropped: number;
  readonly ntsKeConnectionsAccepted: number;
  readonly ntsKeConnectionsDropped: number;
  readonly authenticatedNtpPackets: number;
  /** Every "label : number" line, by label. */
  readonly all: Readonly<Record<string, number>>;
}

/**
 * Parses `chronyc serverstats`.
 *
 * @throws Error naming the missing line.
 */
export function parseServerStats(text: string): ServerStats {
  const all: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const match = /^(.+?)\s*:\s*(\d+)\s*$/.exec(line);
    if (match?.[1] !== undefined && match[2] !== undefined) all[match[1].trim()] = Number(match[2]);
  }
  const field = (label: string): number => {
    const value = all[label];
    if (value === undefined) throw new Error(`serverstats has no "${label}" line:\n${text}`);
    return value;
  };
  return {
    ntpPacketsReceived: field('NTP packets received'),
    ntpPacketsDropped: field('NTP packets dropped'),
    ntsKeConnectionsAccepted: field('NTS-KE connections accepted'),
    ntsKeConnectionsDropped: field('NTS-KE connections dropped'),
    authenticatedNtpPackets: field('Authenticated NTP packets'),
    all,
  };
}

/** Options of {@link startNtsServer}. */
export interface StartNtsServerOptions {
  /** Extra chrony.conf lines. */
  readonly extraConfig?: readonly string[];
  /** How long to wait for chronyd to be ready (ms); default 15000. */
  readonly startTimeoutMs?: number;
}

/** A running chronyd NTS server; `chronyc` talks to its Unix command socket. */
export interface NtsServerHandle extends ChronydProcess {
  /** NTS-KE TCP port on 127.0.0.1. */
  readonly kePort: number;
  /** NTP UDP port on 127.0.0.1 (what the key exchange negotiates). */
  readonly ntpPort: number;
  /** The server's certificate: pass `certPem` as `ca`. */
  readonly certificate: Certificate;
  /** chronyd's Unix command socket. */
  readonly socketPath: string;
  /** `chronyc serverstats`, parsed. */
  serverStats(): Promise<ServerStats>;
}

/**
 * Starts chronyd as an NTS server on free loopback ports and waits until the
 * NTS-KE port accepts, NTP answers and `chronyc serverstats` works.
 *
 * @throws Error when chronyd, chronyc or openssl is missing, chronyd exits, or it is not ready in time.
 */
export async function startNtsServer(
  options: StartNtsServerOptions = {},
): Promise<NtsServerHandle> {
  const binary = locateChronyd();
  const chronyc = locateChronyc();
  if (binary === undefined || chronyc === undefined) throw new Error('chrony is not installed');
  const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
  const dir = mkdtempSync(join(tmpdir(), 'chronobound-nts-'));
  let certificate: Certificate;
  try {
    certificate = await makeCertificate(dir);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const ntpPort = await freeUdpPort();
  const kePort = await freeTcpPort();
  const socketPath = join(dir, 'chronyd.sock');
  const runChronyc = async (...args: string[]): Promise<string> => {
    const { stdout } = await run(chronyc, ['-h', socketPath, ...args], { timeout: 5000 });
    return stdout;
  };
  const serverStats = async (): Promise<ServerStats> =>
    parseServerStats(await runChronyc('serverstats'));
  const chronyd = await superviseChronyd(binary, {
    dir,
    config: [
      `port ${ntpPort}`,
      `ntsport ${kePort}`,
      'bindaddress 127.0.0.1',
      `bindcmdaddress ${socketPath}`,
      'cmdport 0',
      'allow 127.0.0.1',
      'local stratum 1',
      `ntsserverkey ${certificate.keyPath}`,
      `ntsservercert ${certificate.certPath}`,
      `ntsdumpdir ${join(dir, 'nts')}`,
      // Key exchanges in the main process: no helper processes to clean up.
      'ntsprocesses 0',
      `pidfile ${join(dir, 'chronyd.pid')}`,
      `logdir ${dir}`,
      ...(options.extraConfig ?? []),
    ],
    args: ['-4'],
    ready: async () =>
      (await tcpAccepts(kePort, 300)) &&
      (await ntpAnswers(ntpPort, 300)) &&
      (await serverStats().then(
        () => true,
        () => false,
      )),
    deadline,
    what: `NTS-KE ${kePort}, NTP ${ntpPort}`,
  });
  return {
    kePort,
    ntpPort,
    certificate,
    socketPath,
    dir,
    pid: chronyd.pid,
    log: chronyd.log,
    chronyc: runChronyc,
    serverStats,
    stop: chronyd.stop,
    [Symbol.asyncDispose]: chronyd.stop,
  };
}
