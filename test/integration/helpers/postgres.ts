/**
 * A throwaway PostgreSQL cluster for integration tests: `initdb` into a temp
 * directory owned by the `postgres` user, a free loopback port, the unix socket
 * inside the temp directory, fsync off, trust authentication on 127.0.0.1 only.
 *
 * `initdb` and `postgres` refuse to run as root, so when the tests run as root
 * every server command goes through `runuser -u postgres --`.
 *
 * Where the binaries are missing the suites skip locally, but under CI
 * (`process.env.CI`) {@link locatePostgres} throws: a missing database is a
 * failure there, never a silent skip.
 */
import { execFile, execFileSync } from 'node:child_process';
import {
  chownSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { appendFile, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Candidate directories holding `initdb`, `pg_ctl` and `postgres`, most preferred first. */
function candidateBinDirs(): string[] {
  const dirs: string[] = [];
  const fromEnv = process.env['PG_BIN'];
  if (fromEnv) dirs.push(fromEnv);
  dirs.push('/usr/lib/postgresql/15/bin', '/usr/local/bin');
  try {
    for (const v of readdirSync('/usr/lib/postgresql').sort().reverse()) {
      dirs.push(`/usr/lib/postgresql/${v}/bin`);
    }
  } catch {
    // No Debian-style layout; the fixed candidates above are all there is.
  }
  return dirs;
}

/**
 * The directory holding `initdb` and `pg_ctl`, or `undefined` when PostgreSQL is
 * not installed (local runs skip). Under CI it throws instead.
 */
export function locatePostgres(): string | undefined {
  for (const dir of candidateBinDirs()) {
    if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
  }
  if (process.env['CI']) {
    throw new Error(
      'PostgreSQL (initdb, pg_ctl) not found in ' +
        `${candidateBinDirs().join(', ')}; CI must run the database tests (install postgresql-15 or set PG_BIN).`,
    );
  }
  return undefined;
}

/** What {@link startPostgres} returns. */
export interface PostgresCluster {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  readonly connectionString: string;
  readonly host: string;
  readonly port: number;
  /** The temp directory (data dir, socket dir and log live under it). */
  readonly dir: string;
  /** Stops the server (`immediate`: like a crash, `fast`: clean) and leaves it stopped. */
  stopServer(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Starts a stopped server again on the same port and data. */
  startServer(): Promise<void>;
  /** Stops the server, waits `downMs`, starts it again. */
  restart(options?: { mode?: 'fast' | 'immediate'; downMs?: number }): Promise<void>;
  /** The server log, for failure messages. */
  log(): Promise<string>;
  /** Stops the server and removes the directory. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startPostgres}. */
export interface StartPostgresOptions {
  /** Bin directory; default {@link locatePostgres}. */
  readonly binDir?: string;
  /** Extra `postgresql.conf` lines. */
  readonly settings?: Record<string, string | number>;
}

/** Asks the kernel for a free loopback port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Runs a PostgreSQL binary as the `postgres` user when we are root. */
async function runPg(binary: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const [file, argv] = asRoot
    ? ['runuser', ['-u', 'postgres', '--', binary, ...args]]
    : [binary, args];
  try {
    return await run(file, argv, { timeout: 60_000, env: { ...process.env, LC_ALL: 'C' } });
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(
      `${binary} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`,
    );
  }
}

/**
 * Creates and starts a throwaway cluster.
 *
 * @throws {Error} When PostgreSQL is not installed or does not start (the log is in the message).
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresCluster> {
  const binDir = options.binDir ?? locatePostgres();
  if (binDir === undefined) throw new Error('PostgreSQL is not installed (initdb not found)');
  const dir = mkdtempSync(join(tmpdir(), 'chronobound-pg-'));
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  writeFileSync(logFile, '');
  if (asRoot) {
    chownPostgres(dir);
    chownPostgres(logFile);
  }
  const bin = (name: string) => join(binDir, name);
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await runPg(bin('initdb'), [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '-A',
      'trust',
      '--no-sync',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-instructions',
    ]);
  } catch (error) {
    remove();
    throw error;
  }
  // Loopback only, trust auth: nothing here is reachable from outside the machine.
  writeFileSync(
    join(dataDir, 'pg_hba.conf'),
    'local all all trust\nhost all all 127.0.0.1/32 trust\n',
  );
  const settings: Record<string, string | number> = {
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: `'${dir}'`,
    fsync: 'off',
    full_page_writes: 'off',
    shared_buffers: "'16MB'",
    max_connections: 60,
    log_min_messages: 'warning',
    ...options.settings,
  };

  let port = 0;
  const start = async (): Promise<void> => {
    await runPg(bin('pg_ctl'), ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start']);
  };
  // The port is chosen before the server binds it; on the rare collision, pick another.
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    await appendFile(
      join(dataDir, 'postgresql.conf'),
      `\n${Object.entries({ ...settings, port })
        .map(([k, v]) => `${k} = ${v}`)
        .join('\n')}\n`,
    );
    try {
      await start();
      break;
    } catch (error) {
      if (attempt >= 3) {
        const log = await readFile(logFile, 'utf8').catch(() => '');
        remove();
        throw new Error(`PostgreSQL did not start: ${(error as Error).message}\n${log}`);
      }
    }
  }

  let running = true;
  const stopServer = async (mode: 'fast' | 'immediate' = 'fast'): Promise<void> => {
    if (!running) return;
    await runPg(bin('pg_ctl'), ['-D', dataDir, '-m', mode, '-w', '-t', '60', 'stop']);
    running = false;
  };
  const startServer = async (): Promise<void> => {
    if (running) return;
    await start();
    running = true;
  };
  let stopped = false;
  // If the test process goes away without stop() (a crash, a timeout), take the server down with it.
  const onExit = (): void => {
    if (stopped) return;
    try {
      const argv = ['-D', dataDir, '-m', 'immediate', '-w', 'stop'];
      if (asRoot)
        execFileSync('runuser', ['-u', 'postgres', '--', bin('pg_ctl'), ...argv], {
          stdio: 'ignore',
        });
      else execFileSync(bin('pg_ctl'), argv, { stdio: 'ignore' });
    } catch {
      // Already stopped.
    }
    remove();
  };
  process.once('exit', onExit);
  return {
    connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`,
    host: '127.0.0.1',
    port,
    dir,
    stopServer,
    startServer,
    async restart({ mode = 'fast', downMs = 0 } = {}) {
      await stopServer(mode);
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      await startServer();
    },
    log: () => readFile(logFile, 'utf8'),
    async stop() {
      if (stopped) return;
      stopped = true;
      process.off('exit', onExit);
      try {
        await stopServer('immediate');
      } finally {
        remove();
      }
    },
  };
}

function chownPostgres(path: string): void {
  const { uid, gid } = postgresIds();
  chownSync(path, uid, gid);
}

let ids: { uid: number; gid: number } | undefined;
function postgresIds(): { uid: number; gid: number } {
  if (ids) return ids;
  // /etc/passwd: name:x:uid:gid:...
  const line = readFileSyncSafe('/etc/passwd')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const parts = line?.split(':');
  if (!parts || parts.length < 4) {
    throw new Error('no `postgres` user: PostgreSQL refuses to run as root, create that user');
  }
  ids = { uid: Number(parts[2]), gid: Number(parts[3]) };
  return ids;
}

function readFileSyncSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
