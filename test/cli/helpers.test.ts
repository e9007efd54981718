import { describe, expect, it } from 'vitest';
import { ms, signedMs, table } from '../../src/cli/format.js';
import { Progress, unlessAborted, untilAborted, type CliIo } from '../../src/cli/io.js';
import { mergedSource } from '../../src/cli/merged-source.js';
import type { SyncSample } from '../../src/clock/types.js';
import type { SourceContext, TimeSource } from '../../src/sources/types.js';
import { ManualClock } from '../../src/testing/index.js';

describe('ms', () => {
  it('prints an unsigned duration with the given digits', () => {
    expect(ms(1.25)).toBe('1.250 ms');
    expect(ms(1701.6, 0)).toBe('1702 ms');
  });
});

describe('table', () => {
  it('pads every column but the last to its widest cell', () => {
    expect(
      table([
        ['server', 'delay', 'result'],
        ['10.0.0.1:123', '0.4 ms', 'accepted'],
        ['a', '', 'timeout: no reply'],
      ]),
    ).toBe(
      [
        'server        delay   result',
        '10.0.0.1:123  0.4 ms  accepted',
        'a                     timeout: no reply',
      ].join('\n'),
    );
    expect(
      table(
        [
          ['a', 'b'],
          ['ccc', 'd'],
        ],
        '   ',
      ),
    ).toBe('a     b\nccc   d');
    expect(table([])).toBe('');
  });

  it('signs durations with a true minus', () => {
    expect(signedMs(1.25)).toBe('+1.250 ms');
    expect(signedMs(-0.5)).toBe('−0.500 ms');
    expect(signedMs(12.345, 1)).toBe('+12.3 ms');
  });
});

function ioWith(isTTY: boolean): CliIo & { err: string[] } {
  const err: string[] = [];
  return {
    err,
    stdout: { write: () => undefined },
    stderr: { write: (t: string) => err.push(t), isTTY },
    signal: new AbortController().signal,
    debug: false,
    cwd: '/',
  };
}

describe('Progress', () => {
  it('rewrites one line in place on a terminal and erases it when done', () => {
    const io = ioWith(true);
    const progress = new Progress(io, 'silent');
    progress.update('one');
    progress.update('two');
    progress.done();
    progress.done(); // nothing left to erase
    expect(io.err).toEqual(['\r\x1b[Kone', '\r\x1b[Ktwo', '\r\x1b[K']);
  });

  it('off a terminal: nothing when silent, else whole lines (forced ones always)', () => {
    const silent = ioWith(false);
    new Progress(silent, 'silent').update('x', true);
    expect(silent.err).toEqual([]);
    const lines = ioWith(false);
    const progress = new Progress(lines);
    progress.update('first');
    progress.update('within a second: dropped');
    progress.update('forced', true);
    progress.done();
    expect(lines.err).toEqual(['first\n', 'forced\n']);
  });

  it('untilAborted resolves on abort, and at once when already aborted', async () => {
    const controller = new AbortController();
    const waiting = untilAborted(controller.signal);
    controller.abort();
    await waiting;
    await untilAborted(controller.signal);
  });

  it('unlessAborted passes the promise through, or rejects with the reason of an abort that comes first', async () => {
    const controller = new AbortController();
    await expect(unlessAborted(Promise.resolve(7), controller.signal)).resolves.toBe(7);
    await expect(
      unlessAborted(Promise.reject(new Error('own failure')), controller.signal),
    ).rejects.toThrow('own failure');
    const waiting = unlessAborted(new Promise(() => undefined), controller.signal);
    controller.abort('stopped'); // a string reason arrives as an Error
    await expect(waiting).rejects.toThrow(/^stopped$/);
    await expect(unlessAborted(Promise.resolve(1), controller.signal)).rejects.toThrow('stopped');
  });
});

/** A source that records what it was given and can be made to deliver. */
function recordingSource(options: { pollIntervalMs?: number; maxSampleGapMs?: number } = {}) {
  const calls = {
    context: undefined as SourceContext | undefined,
    invalidated: [] as number[],
    stopped: 0,
    closed: 0,
    deliver: (_sample: SyncSample): void => undefined,
  };
  const source: TimeSource = {
    ...options,
    subscribe(onSample, _monotonic, _onProblem, context) {
      calls.context = context;
      calls.deliver = onSample;
      return () => void calls.stopped++;
    },
    invalidate: (at) => void calls.invalidated.push(at),
    close: () => {
      calls.closed++;
      return Promise.resolve();
    },
  };
  return { source, calls };
}

describe('mergedSource', () => {
  it('hands every sample of each source on, with the clock’s context to each', async () => {
    const a = recordingSource({ pollIntervalMs: 16_000 });
    const b = recordingSource({ pollIntervalMs: 1000, maxSampleGapMs: 3000 });
    const merged = mergedSource(a.source, b.source);
    const got: string[] = [];
    const context: SourceContext = {
      maxDriftPpm: 50,
      predictUncertaintyMs: (errorMs, elapsedMs) => errorMs + 50e-6 * elapsedMs,
    };
    const clock = new ManualClock();
    const stop = merged.subscribe((s) => got.push(s.source), clock, undefined, context);
    expect(a.calls.context).toBe(context);
    expect(b.calls.context).toBe(context);
    a.calls.deliver({ monotonicAt: 0, offsetMs: 0, errorMs: 1, source: 'a' });
    b.calls.deliver({ monotonicAt: 0, offsetMs: 0, errorMs: 1, source: 'b' });
    expect(got).toEqual(['a', 'b']);
    // The faster source keeps the clock fed.
    expect(merged.pollIntervalMs).toBe(1000);
    expect(merged.maxSampleGapMs).toBe(3000);
    merged.invalidate?.(42);
    expect([a.calls.invalidated, b.calls.invalidated]).toEqual([[42], [42]]);
    stop();
    expect([a.calls.stopped, b.calls.stopped]).toEqual([1, 1]);
    await merged.close();
    expect([a.calls.closed, b.calls.closed]).toEqual([1, 1]);
  });

  it('follows a source whose interval changes, and refuses no sources', () => {
    let interval = 64_000;
    const adaptive: TimeSource = {
      get pollIntervalMs() {
        return interval;
      },
      subscribe: () => () => undefined,
      close: () => Promise.resolve(),
    };
    const merged = mergedSource(adaptive, recordingSource().source);
    expect(merged.pollIntervalMs).toBe(64_000);
    interval = 8000;
    expect(merged.pollIntervalMs).toBe(8000);
    expect(merged.maxSampleGapMs).toBe(8000);
    expect(() => mergedSource()).toThrow(RangeError);
  });
});
