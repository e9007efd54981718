import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  HLC_MAX_WALL_MS,
  HlcPersistenceError,
  HybridLogicalClock,
  InvalidArgumentError,
  compareHlc,
  parseHlc,
  type HlcTimestamp,
} from '../../src/index.js';
import { filePersistence } from '../../src/node/index.js';
import { fcParams, seed } from '../support/fc.js';
import { catchError } from '../support/errors.js';
import { mulberry32 } from '../../src/_internals/prng.js';

// The temporary file's name is random; the tests below choose it to plant a symlink there.
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return { ...actual, randomBytes: vi.fn(actual.randomBytes) };
});

const T0 = Date.UTC(2026, 0, 1);
let dir: string;
let n = 0;
const fresh = (): string => join(dir, `hlc-${n++}.json`);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'chronobound-hlc-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('filePersistence', () => {
  it('returns undefined when the file does not exist, then round-trips', () => {
    const path = fresh();
    const p = filePersistence(path);
    expect(p.load()).toBeUndefined();
    p.store({ wallMs: T0 + 1000 });
    expect(p.load()).toEqual({ wallMs: T0 + 1000 });
    expect(filePersistence(path).load()).toEqual({ wallMs: T0 + 1000 });
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({
      format: 'chronobound-hlc-upper-bound',
      version: 1,
      wallMs: T0 + 1000,
    });
    expect(existsSync(`${path}.tmp`)).toBe(false);
  });

  it('ignores and replaces a temp file left by a crash', () => {
    const path = fresh();
    const p = filePersistence(path);
    p.store({ wallMs: 5 });
    writeFileSync(`${path}.tmp`, '{"torn'); // a crash between write and rename
    expect(p.load()).toEqual({ wallMs: 5 });
    p.store({ wallMs: 6 });
    expect(p.load()).toEqual({ wallMs: 6 });
    expect(existsSync(`${path}.tmp`)).toBe(false);
  });

  it.each([
    ['empty', ''],
    ['not JSON', '{"format":'],
    ['garbage', '\u0000\u0001binary'],
    ['not an object', '42'],
    ['wrong format', '{"format":"other","version":1,"wallMs":5}'],
    ['wrong version', '{"format":"chronobound-hlc-upper-bound","version":2,"wallMs":5}'],
    ['negative', '{"format":"chronobound-hlc-upper-bound","version":1,"wallMs":-5}'],
    ['fractional', '{"format":"chronobound-hlc-upper-bound","version":1,"wallMs":5.5}'],
    ['too large', '{"format":"chronobound-hlc-upper-bound","version":1,"wallMs":1e20}'],
    ['missing', '{"format":"chronobound-hlc-upper-bound","version":1}'],
  ])(
    'a corrupt file (%s) throws HlcPersistenceError naming the path and is not reset',
    (_, body) => {
      const path = fresh();
      writeFileSync(path, body);
      const err = catchError(() => filePersistence(path).load());
      expect(err).toBeInstanceOf(HlcPersistenceError);
      expect((err as HlcPersistenceError).path).toBe(path);
      expect((err as HlcPersistenceError).code).toBe('HLC_PERSISTENCE');
      expect((err as Error).message).toContain(path);
      // A clock refuses to start on it rather than starting from scratch.
      expect(
        () => new HybridLogicalClock({ node: 'a', persistence: filePersistence(path) }),
      ).toThrow(HlcPersistenceError);
      expect(readFileSync(path, 'utf8')).toBe(body);
    },
  );

  it('an unreadable path throws HlcPersistenceError', () => {
    const path = fresh();
    mkdirSync(path); // a directory where the file should be
    expect(() => filePersistence(path).load()).toThrow(HlcPersistenceError);
  });

  it('a failed store throws HlcPersistenceError; the clock issues nothing and is unchanged', () => {
    const path = join(dir, 'missing-dir', 'hlc.json');
    const hlc = new HybridLogicalClock({
      node: 'a',
      physical: () => T0,
      persistence: filePersistence(path),
    });
    const err = catchError(() => hlc.now());
    expect(err).toBeInstanceOf(HlcPersistenceError);
    expect((err as HlcPersistenceError).path).toBe(path);
    expect(hlc.peek()).toBeUndefined();
    mkdirSync(join(dir, 'missing-dir'));
    expect(hlc.now()).toEqual({ wallMs: T0, counter: 0, node: 'a' });
  });

  it('validates its arguments', () => {
    expect(() => filePersistence('')).toThrow(InvalidArgumentError);
    expect(() => filePersistence(fresh()).store({ wallMs: -1 })).toThrow(InvalidArgumentError);
  });

  it('stores only bounds it can load again (at most 2^48 − 1)', () => {
    const path = fresh();
    const p = filePersistence(path);
    p.store({ wallMs: HLC_MAX_WALL_MS });
    expect(p.load()).toEqual({ wallMs: HLC_MAX_WALL_MS });
    const err = catchError(() => p.store({ wallMs: HLC_MAX_WALL_MS + 1 }));
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).argument).toBe('upper.wallMs');
    expect(p.load()).toEqual({ wallMs: HLC_MAX_WALL_MS });
  });

  it('a restarted clock never reissues (crash between any two operations, clock stepped back)', () => {
    const ops = fc.array(
      fc.oneof(
        fc.constant({ kind: 'now' as const }),
        fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 300 }) }),
        fc.record({
          kind: fc.constant('restart' as const),
          stepMs: fc.integer({ min: -3_600_000, max: 100 }),
        }),
      ),
      { maxLength: 40 },
    );
    fc.assert(
      fc.property(ops, fc.integer({ min: 1, max: 500 }), (list, window) => {
        const path = fresh();
        let t = T0;
        const make = (): HybridLogicalClock =>
          new HybridLogicalClock({
            node: 'a',
            physical: () => t,
            persistence: filePersistence(path),
            persistWindowMs: window,
          });
        let hlc = make();
        let max: HlcTimestamp | undefined;
        for (const op of list) {
          if (op.kind === 'now') {
            const got = hlc.now();
            if (max) expect(compareHlc(max, got)).toBeLessThan(0);
            max = got;
          } else if (op.kind === 'tick') t += op.ms;
          else {
            t = Math.max(0, t + op.stepMs);
            hlc = make();
          }
        }
        rmSync(path, { force: true });
      }),
      fcParams(200),
    );
  });
});

describe('filePersistence never follows a symlink', () => {
  /** A file the attacker wants overwritten, and its original content. */
  function victim(): { file: string; content: string } {
    const file = join(dir, `victim-${n++}.txt`);
    const content = `precious ${n}\n`;
    writeFileSync(file, content);
    return { file, content };
  }

  it('a symlink planted at the old fixed temporary name is never written through', () => {
    const path = fresh();
    const v = victim();
    symlinkSync(v.file, `${path}.tmp`);
    const p = filePersistence(path);
    p.store({ wallMs: T0 });
    p.store({ wallMs: T0 + 1 });
    expect(readFileSync(v.file, 'utf8')).toBe(v.content);
    expect(p.load()).toEqual({ wallMs: T0 + 1 });
    expect(lstatSync(path).isFile()).toBe(true);
  });

  it('a symlink planted at the (guessed) random temporary name is never written through', () => {
    const path = fresh();
    const v = victim();
    const guessed = Buffer.from('0123456789abcdef', 'hex');
    const planted = `${path}.${guessed.toString('hex')}.tmp`;
    symlinkSync(v.file, planted);
    // The attacker guessed right: the first name tried is the planted one.
    vi.mocked(randomBytes).mockImplementationOnce(() => Buffer.from(guessed));
    const p = filePersistence(path);
    p.store({ wallMs: T0 });
    expect(readFileSync(v.file, 'utf8')).toBe(v.content);
    expect(readlinkSync(planted)).toBe(v.file); // left alone, not replaced or followed
    expect(p.load()).toEqual({ wallMs: T0 });
    expect(lstatSync(path).isFile()).toBe(true);
  });

  it('a dangling symlink at a temporary name is not followed to create its target', () => {
    const path = fresh();
    const target = join(dir, `created-by-follow-${n++}.txt`);
    symlinkSync(target, `${path}.tmp`);
    const guessed = Buffer.from('fedcba9876543210', 'hex');
    symlinkSync(target, `${path}.${guessed.toString('hex')}.tmp`);
    vi.mocked(randomBytes).mockImplementationOnce(() => Buffer.from(guessed));
    filePersistence(path).store({ wallMs: T0 });
    expect(existsSync(target)).toBe(false);
    expect(filePersistence(path).load()).toEqual({ wallMs: T0 });
  });

  it('a target that is a symlink is refused with HlcPersistenceError naming the path', () => {
    const path = fresh();
    const v = victim();
    symlinkSync(v.file, path);
    const p = filePersistence(path);
    for (const call of [() => p.load(), () => p.store({ wallMs: T0 })]) {
      const err = catchError(call);
      expect(err).toBeInstanceOf(HlcPersistenceError);
      expect((err as HlcPersistenceError).path).toBe(path);
      expect((err as Error).message).toMatch(/symbolic link/);
    }
    expect(() => new HybridLogicalClock({ node: 'a', persistence: p })).toThrow(
      HlcPersistenceError,
    );
    expect(readFileSync(v.file, 'utf8')).toBe(v.content);
    expect(readlinkSync(path)).toBe(v.file); // neither followed nor replaced
    // A dangling link is refused too, rather than read as "no bound stored yet".
    const dangling = fresh();
    symlinkSync(join(dir, 'nowhere'), dangling);
    expect(() => filePersistence(dangling).load()).toThrow(HlcPersistenceError);
  });

  it('crash leftovers never block a write and are removed on load', () => {
    const path = fresh();
    const p = filePersistence(path);
    p.store({ wallMs: 5 });
    // A directory at the old fixed name made every later write fail.
    mkdirSync(`${path}.tmp`);
    const torn = [`${path}.00112233445566ff.tmp`, `${path}.tmp.x`];
    for (const f of torn) writeFileSync(f, '{"torn');
    p.store({ wallMs: 6 });
    expect(p.load()).toEqual({ wallMs: 6 });
    const left = readdirSync(dir).filter((f) => f.startsWith(basename(path)));
    // Our own leftover is gone; an unrelated name and the directory are left alone.
    expect(left.sort()).toEqual([
      basename(path),
      `${basename(path)}.tmp`,
      `${basename(path)}.tmp.x`,
    ]);
    p.store({ wallMs: 7 });
    expect(filePersistence(path).load()).toEqual({ wallMs: 7 });
  });

  it('refuses an oversized file before reading it', () => {
    const path = fresh();
    writeFileSync(path, Buffer.alloc(20 * 2 ** 20, 0x20)); // 20 MiB of spaces
    const started = performance.now();
    const err = catchError(() => filePersistence(path).load());
    expect(performance.now() - started).toBeLessThan(200);
    expect(err).toBeInstanceOf(HlcPersistenceError);
    expect((err as Error).message).toMatch(/20971520 bytes/);
    expect((err as Error).message.length).toBeLessThan(400);
  });
});

describe('filePersistence under kill -9', () => {
  const distIndex = fileURLToPath(new URL('../../dist/index.js', import.meta.url));
  const distNode = fileURLToPath(new URL('../../dist/node/index.js', import.meta.url));
  const built = existsSync(distIndex) && existsSync(distNode);

  it.skipIf(!built)(
    'a process killed at random points never reissues after restart',
    async () => {
      const child = join(dir, 'writer.mjs');
      writeFileSync(
        child,
        `import { closeSync, openSync, writeSync } from 'node:fs';
import { HybridLogicalClock, HlcOverflowError, formatHlc } from ${JSON.stringify(pathToFileURL(distIndex).href)};
import { filePersistence } from ${JSON.stringify(pathToFileURL(distNode).href)};
const offset = Number(process.env.OFFSET);
const hlc = new HybridLogicalClock({
  node: 'w',
  physical: () => Date.now() + offset,
  persistence: filePersistence(process.env.HLC_FILE),
  persistWindowMs: 3,
});
const log = openSync(process.env.LOG_FILE, 'a');
for (;;) {
  try {
    writeSync(log, formatHlc(hlc.now()) + '\\n');
  } catch (e) {
    if (!(e instanceof HlcOverflowError)) throw e;
  }
}
`,
      );
      const hlcFile = join(dir, 'killed.json');
      const random = mulberry32(seed);
      let previousMax: HlcTimestamp | undefined;
      let total = 0;
      for (let round = 0; round < 8; round++) {
        const logFile = join(dir, `killed-${round}.log`);
        // Later incarnations run with the clock stepped back by up to an hour.
        const offset = round === 0 ? 0 : -Math.floor(random() * 3_600_000);
        const proc = spawn(process.execPath, [child], {
          env: { ...process.env, OFFSET: String(offset), HLC_FILE: hlcFile, LOG_FILE: logFile },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
          proc.on('exit', (code, signal) => resolve({ code, signal })),
        );
        // Even rounds are killed 60–300 ms after the spawn, often during start-up; odd
        // rounds once the writer has logged a stamp, so that the check has stamps to
        // check even when a loaded machine makes start-up take longer than 300 ms.
        if (round % 2 === 1) {
          const started = Date.now();
          while (Date.now() - started < 20_000 && !hasLine(logFile))
            await new Promise((r) => setTimeout(r, 5));
        }
        await new Promise((r) => setTimeout(r, (round % 2 === 1 ? 0 : 60) + random() * 240));
        proc.kill('SIGKILL');
        const { code, signal } = await exited;
        expect(stderr).toBe('');
        expect(signal ?? `exit ${code}`).toBe('SIGKILL');
        const lines = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n') : [];
        lines.pop(); // empty or torn last line
        const stamps = lines.map(parseHlc);
        total += stamps.length;
        for (let i = 1; i < stamps.length; i++)
          if (compareHlc(stamps[i - 1]!, stamps[i]!) >= 0)
            expect.fail(`round ${round}: ${lines[i - 1]} then ${lines[i]}`);
        if (stamps.length > 0) {
          if (previousMax) expect(compareHlc(previousMax, stamps[0]!)).toBeLessThan(0);
          previousMax = stamps.at(-1)!;
        }
      }
      expect(total).toBeGreaterThan(0);
      expect(readdirSync(dir).filter((f) => f.startsWith('killed.json'))).toContain('killed.json');
    },
    60_000,
  );
});

function hasLine(file: string): boolean {
  try {
    return readFileSync(file, 'utf8').includes('\n');
  } catch {
    return false;
  }
}
