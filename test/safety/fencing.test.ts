import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FencingGuard,
  FencingTokenIssuer,
  InvalidArgumentError,
  StaleFencingTokenError,
  type FencingTokenStore,
} from '../../src/index.js';
import { fcParams } from '../support/fc.js';

/** The SQL recipes from docs/safety.md, keyed by their `-- recipe: name` line. */
function recipes(): Map<string, string> {
  const doc = readFileSync(new URL('../../docs/safety.md', import.meta.url), 'utf8');
  const found = new Map<string, string>();
  for (const match of doc.matchAll(/```sql\n-- recipe: ([\w-]+)\n([\s\S]*?)```/g)) {
    found.set(match[1] as string, match[2] as string);
  }
  return found;
}

function memoryStore(): FencingTokenStore & { value: bigint | undefined; writes: number } {
  return {
    value: undefined,
    writes: 0,
    load() {
      return this.value;
    },
    store(token) {
      this.value = token;
      this.writes++;
    },
  };
}

describe('FencingTokenIssuer', () => {
  it('issues strictly increasing tokens, from 1n by default', () => {
    const issuer = new FencingTokenIssuer();
    expect(issuer.last).toBeUndefined();
    const tokens = Array.from({ length: 100 }, () => issuer.next());
    expect(tokens[0]).toBe(1n);
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]! > tokens[i - 1]!).toBe(true);
    expect(issuer.last).toBe(100n);
  });

  it('stays strictly increasing across any number of restarts with persistence', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 20 }), { minLength: 1, maxLength: 10 }),
        fc.bigInt({ min: 0n, max: 2n ** 62n }),
        (issuesPerLife, start) => {
          const store = memoryStore();
          const all: bigint[] = [];
          for (const n of issuesPerLife) {
            const issuer = new FencingTokenIssuer({ store, start }); // a restart
            for (let i = 0; i < n; i++) all.push(issuer.next());
          }
          for (let i = 1; i < all.length; i++) expect(all[i]! > all[i - 1]!).toBe(true);
          if (all.length > 0) expect(all[0]).toBe(start);
          expect(store.value).toBe(all.at(-1));
        },
      ),
      fcParams(300),
    );
  });

  it('without persistence a restart would repeat tokens (why the store matters)', () => {
    const first = new FencingTokenIssuer();
    first.next();
    expect(new FencingTokenIssuer().next()).toBe(1n);
  });

  it('issues nothing when storing fails, and retries the same token', () => {
    const store = memoryStore();
    const issuer = new FencingTokenIssuer({ store });
    expect(issuer.next()).toBe(1n);
    const failing: FencingTokenStore = {
      load: () => store.value,
      store: () => {
        throw new Error('disk full');
      },
    };
    const broken = new FencingTokenIssuer({ store: failing });
    expect(() => broken.next()).toThrow('disk full');
    expect(broken.last).toBe(1n);
    const healed = new FencingTokenIssuer({ store });
    expect(healed.next()).toBe(2n);
  });

  it('rejects a bad start or a corrupt store with a typed error naming it', () => {
    expect(() => new FencingTokenIssuer({ start: -1n })).toThrow(InvalidArgumentError);
    expect(() => new FencingTokenIssuer({ start: 1 as unknown as bigint })).toThrow(/start/);
    const corrupt = { load: () => 'x' as unknown as bigint, store: () => undefined };
    expect(() => new FencingTokenIssuer({ store: corrupt })).toThrow(/store\.load\(\)/);
  });
});

describe('FencingGuard', () => {
  it('DDIA Fig. 8-5: the paused client’s write with token 33 is rejected after 34 wrote', () => {
    const guard = new FencingGuard();
    const storage = new Map<string, string>();
    const write = (token: bigint, value: string) => {
      guard.check('file', token);
      storage.set('file', value);
    };
    write(33n, 'client 1, before its pause');
    write(34n, 'client 2');
    let error: unknown;
    try {
      write(33n, 'client 1, after its pause');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StaleFencingTokenError);
    expect((error as StaleFencingTokenError).token).toBe(33n);
    expect((error as StaleFencingTokenError).highest).toBe(34n);
    expect((error as StaleFencingTokenError).code).toBe('STALE_FENCING_TOKEN');
    expect(storage.get('file')).toBe('client 2');
    expect(guard.highest('file')).toBe(34n);
  });

  it('accepts equal tokens, keeps resources independent, and takes safe integer numbers', () => {
    const guard = new FencingGuard();
    guard.check('a', 5n);
    guard.check('a', 5n);
    guard.check('b', 1);
    expect(guard.accepts('a', 4n)).toBe(false);
    expect(guard.accepts('a', 5)).toBe(true);
    expect(guard.accepts('b', 1n)).toBe(true);
    expect(guard.highest('b')).toBe(1n);
    expect(guard.highest('c')).toBeUndefined();
    expect(() => guard.check('a', 1.5)).toThrow(InvalidArgumentError);
    expect(() => guard.check('a', -1n)).toThrow(/token/);
    expect(() => guard.check(7 as unknown as string, 1n)).toThrow(/resource/);
  });

  it('accepts exactly the tokens that are ≥ every token accepted before (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('x', 'y'), fc.bigInt({ min: 0n, max: 50n })), {
          maxLength: 60,
        }),
        (writes) => {
          const guard = new FencingGuard();
          const highest = new Map<string, bigint>();
          for (const [resource, token] of writes) {
            const expected = highest.get(resource);
            const shouldAccept = expected === undefined || token >= expected;
            expect(guard.accepts(resource, token)).toBe(shouldAccept);
            if (shouldAccept) {
              guard.check(resource, token);
              highest.set(resource, token);
            } else {
              expect(() => guard.check(resource, token)).toThrow(StaleFencingTokenError);
            }
            expect(guard.highest(resource)).toBe(highest.get(resource));
          }
        },
      ),
      fcParams(500),
    );
  });
});

describe('SQL recipe from docs/safety.md, on SQLite', () => {
  const sql = recipes();

  it('the doc has the recipes the test relies on', () => {
    expect([...sql.keys()].sort()).toEqual(['fenced-update', 'fenced-write', 'issuer', 'schema']);
  });

  it('replays Fig. 8-5 with the conditional upsert and update', () => {
    const db = new Database(':memory:');
    db.exec(sql.get('schema')!);
    const upsert = db.prepare(sql.get('fenced-write')!);
    const update = db.prepare(sql.get('fenced-update')!);
    const read = db
      .prepare('SELECT value, fence FROM fenced_resource WHERE id = ?')
      .safeIntegers(true);

    expect(upsert.run({ id: 'file', value: 'client 1', token: 33n }).changes).toBe(1);
    expect(update.run({ id: 'file', value: 'client 1 again', token: 33n }).changes).toBe(1);
    expect(upsert.run({ id: 'file', value: 'client 2', token: 34n }).changes).toBe(1);
    // The zombie wakes up: both statements refuse its stale token.
    expect(upsert.run({ id: 'file', value: 'zombie', token: 33n }).changes).toBe(0);
    expect(update.run({ id: 'file', value: 'zombie', token: 33n }).changes).toBe(0);
    expect(read.get('file')).toEqual({ value: 'client 2', fence: 34n });
    // Tokens beyond 2^53 survive as bigints.
    expect(upsert.run({ id: 'file', value: 'big', token: 2n ** 60n }).changes).toBe(1);
    expect(read.get('file')).toEqual({ value: 'big', fence: 2n ** 60n });
    db.close();
  });

  it('the database agrees with FencingGuard on any sequence of writes (property)', () => {
    const db = new Database(':memory:');
    db.exec(sql.get('schema')!);
    const upsert = db.prepare(sql.get('fenced-write')!);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('r1', 'r2'), fc.bigInt({ min: 0n, max: 20n })), {
          maxLength: 40,
        }),
        (writes) => {
          db.exec('DELETE FROM fenced_resource');
          const guard = new FencingGuard();
          for (const [id, token] of writes) {
            const accepted = upsert.run({ id, value: `${token}`, token }).changes === 1;
            expect(accepted).toBe(guard.accepts(id, token));
            if (accepted) guard.check(id, token);
          }
        },
      ),
      fcParams(200),
    );
    db.close();
  });

  it('an issuer persisted in SQLite keeps increasing across restarts', () => {
    const db = new Database(':memory:');
    db.exec(sql.get('issuer')!);
    const load = db.prepare('SELECT last FROM fencing_issuer WHERE name = ?').safeIntegers(true);
    const save = db.prepare(
      'INSERT INTO fencing_issuer (name, last) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET last = excluded.last',
    );
    const store: FencingTokenStore = {
      load: () => (load.get('locks') as { last: bigint } | undefined)?.last,
      store: (token) => void save.run('locks', token),
    };
    const first = new FencingTokenIssuer({ store });
    expect([first.next(), first.next()]).toEqual([1n, 2n]);
    const restarted = new FencingTokenIssuer({ store });
    expect(restarted.last).toBe(2n);
    expect(restarted.next()).toBe(3n);
    db.close();
  });
});
