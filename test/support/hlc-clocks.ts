/**
 * Hybrid logical clocks for tests: a physical clock set by hand, an HLC named
 * 'me' that reads it, timestamps written as (wallMs, counter, node), and an
 * in-memory persistence that, like filePersistence, refuses a bound it could
 * not load again.
 */
import {
  HLC_MAX_WALL_MS,
  HybridLogicalClock,
  type HlcPersistence,
  type HlcTimestamp,
  type HlcUpperBound,
  type HybridLogicalClockOptions,
} from '../../src/index.js';

/** 2026-01-01T00:00:00Z, where the physical clocks start. */
export const T0: number = Date.UTC(2026, 0, 1);

/** A physical clock set by hand (epoch ms). */
export interface ManualPhysical {
  readonly now: () => number;
  readonly set: (ms: number) => void;
  readonly add: (ms: number) => void;
}

/**
 * A physical clock at `start` that moves only when told.
 *
 * @example
 * ```ts
 * const time = manualPhysical();
 * time.add(5);
 * time.now(); // T0 + 5
 * ```
 */
export function manualPhysical(start = T0): ManualPhysical {
  let t = start;
  return {
    now: () => t,
    set: (ms) => {
      t = ms;
    },
    add: (ms) => {
      t += ms;
    },
  };
}

/**
 * An HLC named 'me' on a physical clock set by hand, starting at `start`.
 *
 * @example
 * ```ts
 * const { hlc, time } = manualHlc({ maxOffsetMs: 0 });
 * hlc.now(); // { wallMs: T0, counter: 0, node: 'me' }
 * ```
 */
export function manualHlc(
  options: Partial<HybridLogicalClockOptions> = {},
  start = T0,
): { hlc: HybridLogicalClock; time: ManualPhysical } {
  const time = manualPhysical(start);
  const hlc = new HybridLogicalClock({ node: 'me', physical: time.now, ...options });
  return { hlc, time };
}

/**
 * A timestamp from its three parts.
 *
 * @example
 * ```ts
 * hlcStamp(T0 + 500, 65_534, 'peer');
 * ```
 */
export function hlcStamp(wallMs: number, counter: number, node: string): HlcTimestamp {
  return { wallMs, counter, node };
}

/** An in-memory persistence: what it holds, and every bound stored, in order. */
export interface MemoryPersistence extends HlcPersistence {
  readonly stored: number[];
  readonly value: () => number | undefined;
}

/**
 * An empty in-memory persistence that, like filePersistence, refuses to store
 * a bound it could not load again.
 *
 * @example
 * ```ts
 * const persistence = memoryPersistence();
 * manualHlc({ persistence }).hlc.now();
 * persistence.stored; // [T0 + 1000]
 * ```
 */
export function memoryPersistence(): MemoryPersistence {
  let saved: HlcUpperBound | undefined;
  const stored: number[] = [];
  return {
    stored,
    value: () => saved?.wallMs,
    load: () => saved,
    store: (u) => {
      if (!Number.isInteger(u.wallMs) || u.wallMs < 0 || u.wallMs > HLC_MAX_WALL_MS)
        throw new Error(`stored an unloadable bound ${u.wallMs}`);
      saved = u;
      stored.push(u.wallMs);
    },
  };
}
