/**
 * `chronobound demo`: the problem and the fixes, on real components.
 *
 * By default, three simulated nodes whose wall clocks are skewed take turns
 * incrementing one counter row in a real database (SQLite in a temp file, or
 * PostgreSQL): wall-clock last-write-wins, a hybrid logical clock and
 * commit-wait run the same schedule side by side (see demo-counter.ts and the
 * strategies in demo-strategies.ts).
 *
 * With `--etcd`, the nodes contend for a lock on etcd instead, write with the
 * lock's fencing token, and one holder is paused past its lease (see demo-etcd.ts).
 *
 * @module
 */
import { resolve } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { intFlag, numberFlag } from './args.js';
import { defineCommand, switchOptions, valueOptions, type CommandValues } from './command.js';
import { runCounterDemo, type CounterOptions } from './demo-counter.js';
import {
  checkPostgresUrl,
  openFencedPostgres,
  openFencedSqlite,
  openPostgres,
  openSqlite,
  type DemoDb,
  type FencedDb,
} from './demo-db.js';
import { runEtcdDemo } from './demo-etcd.js';
import {
  ETCD_INSTALL,
  findEtcdOnPath,
  startLocalEtcd,
  type LocalEtcd,
} from './demo-etcd-server.js';
import { Progress, type CliIo, type Command } from './io.js';

const OPTIONS = {
  ...valueOptions('rounds', 'skew-ms', 'poll-ms', 'seed', 'postgres', 'plot'),
  ...switchOptions('no-plot'),
  ...valueOptions('etcd', 'ttl-ms', 'terms'),
  ...switchOptions('json'),
};

/** Flags that only mean something without / with `--etcd`. */
const COUNTER_ONLY = ['rounds', 'skew-ms', 'poll-ms', 'seed', 'plot'] as const;
const ETCD_ONLY = ['ttl-ms', 'terms'] as const;

const HELP = `Usage: chronobound demo [options]
       chronobound demo --etcd [URL,...] [options]

Three nodes with skewed clocks increment one counter row, each increment
causally after the last. Side by side: wall-clock last-write-wins silently
loses increments, a hybrid logical clock keeps them, and commit-wait keeps
them too, at a cost of about 2ε per write.

Options:
  --rounds N          increments (default 40)
  --skew-ms A,B,C     the three wall clocks' skews (default 0,-45,30)
  --poll-ms N         NTP poll interval of each node (default 1000)
  --seed N            seed for the schedule (default 42)
  --postgres URL      use PostgreSQL (needs the pg package) instead of SQLite
  --plot FILE         where to write the SVG (default chronobound-demo.svg)
  --no-plot           do not write the SVG
  --json              print the results as JSON
  -h, --help          show this help

With --etcd, the three nodes contend for a lock on etcd (chronobound/etcd)
instead, and write to a table that refuses stale fencing tokens (the lock
key's create revision). One holder is paused past its lease: another takes
over, and the paused one's late write is refused.

  --etcd URL,...      etcd client URLs; alone, start a temporary single-member
                      etcd on loopback (needs etcd on PATH)
  --ttl-ms N          lease TTL (default 2000; etcd may raise it)
  --terms N           ordinary hand-overs before the pause (default 3)
  --postgres URL, --json as above

Uses SQLite through better-sqlite3 (npm install better-sqlite3) in a temporary
file that is deleted afterwards, and loopback NTP servers on free ports.
`;

type Values = CommandValues<typeof OPTIONS>;

/** `--etcd` with no URL after it (last, or before another flag) means "no URL given". */
function bareEtcdAsEmpty(argv: readonly string[]): string[] {
  return argv.map((arg, i) =>
    arg === '--etcd' && (argv[i + 1] === undefined || argv[i + 1]?.startsWith('-') === true)
      ? '--etcd='
      : arg,
  );
}

const demo = defineCommand({ name: 'demo', options: OPTIONS, help: HELP }, (values, io) => {
  if (values.postgres !== undefined) checkPostgresUrl(values.postgres);
  return values.etcd === undefined ? counterDemo(values, io) : etcdDemo(values, values.etcd, io);
});

/**
 * Runs `chronobound demo`.
 * @internal
 */
export const runDemo: Command = (argv, io) => demo(bareEtcdAsEmpty(argv), io);

function rejectFlags(
  values: Values,
  flags: readonly (keyof Values)[],
  why: (flag: string) => string,
): void {
  for (const flag of flags) {
    const value = values[flag];
    if (value !== undefined) throw new InvalidArgumentError(`--${flag}`, value, why(`--${flag}`));
  }
}

function counterOptions(values: Values, io: CliIo): CounterOptions {
  rejectFlags(values, ETCD_ONLY, (flag) => `${flag} only together with --etcd`);
  if (values['no-plot'] === true && values.plot !== undefined) {
    throw new InvalidArgumentError('--plot', values.plot, 'no --plot together with --no-plot');
  }
  return {
    rounds: intFlag('--rounds', values.rounds, 40, 1, 10_000),
    skews: parseSkews(values['skew-ms']),
    pollMs: numberFlag('--poll-ms', values['poll-ms'], 1000, 50, 600_000),
    seed: intFlag('--seed', values.seed, 42, 0, 2 ** 32 - 1),
    plotFile:
      values['no-plot'] === true
        ? undefined
        : resolve(io.cwd, values.plot ?? 'chronobound-demo.svg'),
    json: values.json === true,
  };
}

function parseSkews(value: string | undefined): number[] {
  if (value === undefined) return [0, -45, 30];
  const parts = value.split(',');
  if (parts.length !== 3) {
    throw new InvalidArgumentError(
      '--skew-ms',
      value,
      'three comma-separated numbers, e.g. 0,-45,30',
    );
  }
  return parts.map((p) => numberFlag('--skew-ms', p, 0, -400, 400));
}

async function counterDemo(values: Values, io: CliIo): Promise<number> {
  const options = counterOptions(values, io);
  const progress = new Progress(io);
  progress.update('demo: opening the database…', true);
  const db: DemoDb =
    values.postgres === undefined ? await openSqlite() : await openPostgres(values.postgres);
  try {
    return await runCounterDemo(options, db, io, progress);
  } finally {
    await db.close();
  }
}

/** `--etcd` URLs: a comma-separated list of http(s) URLs. */
function parseEndpoints(value: string): string[] {
  const urls = value.split(',').map((u) => u.trim());
  for (const url of urls) {
    let ok = false;
    try {
      const parsed = new URL(url);
      ok = (parsed.protocol === 'http:' || parsed.protocol === 'https:') && parsed.host !== '';
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new InvalidArgumentError(
        '--etcd',
        value,
        'etcd client URLs, comma-separated, e.g. http://127.0.0.1:2379',
      );
    }
  }
  return urls;
}

async function etcdDemo(values: Values, etcd: string, io: CliIo): Promise<number> {
  rejectFlags(
    values,
    COUNTER_ONLY,
    (flag) => `no ${flag} with --etcd (it belongs to the counter demo)`,
  );
  const ttlMs = intFlag('--ttl-ms', values['ttl-ms'], 2000, 1000, 60_000);
  const terms = intFlag('--terms', values.terms, 3, 0, 100);
  const given = etcd === '' ? undefined : parseEndpoints(etcd);
  const binary = given === undefined ? findEtcdOnPath() : undefined;
  if (given === undefined && binary === undefined) {
    throw new InvalidArgumentError(
      '--etcd',
      '',
      'a URL: there is no etcd on PATH for the demo to start, so ' +
        `${ETCD_INSTALL} and pass --etcd http://127.0.0.1:2379`,
    );
  }
  const progress = new Progress(io);
  let local: LocalEtcd | undefined;
  let db: FencedDb | undefined;
  try {
    if (binary !== undefined) {
      progress.update(`demo: starting a temporary single-member etcd (${binary})…`, true);
      local = await startLocalEtcd(binary, 20_000, io.signal);
    }
    progress.update('demo: opening the database…', true);
    db =
      values.postgres === undefined
        ? await openFencedSqlite()
        : await openFencedPostgres(values.postgres);
    const endpoints = local === undefined ? (given ?? []) : [local.endpoint];
    return await runEtcdDemo(
      {
        endpoints,
        etcdDescription:
          local === undefined
            ? endpoints.join(', ')
            : `${local.endpoint}, etcd ${local.version} started for this demo from ${binary} (removed afterwards)`,
        ttlMs,
        terms,
        json: values.json === true,
      },
      db,
      io,
      progress,
    );
  } finally {
    progress.done();
    await db?.close();
    await local?.stop();
  }
}
