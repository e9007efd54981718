/**
 * Clock scenarios for property tests: a machine whose wall clock starts off by
 * some offset, whose oscillator drifts within a bound, and which, at given
 * moments, gets its wall clock stepped, its process paused, or its drift
 * changed — and how to play one on a {@link SimulatedClock}. The random ones
 * come from `clockScenario()` in `chronobound/testing/fast-check`.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { SimulatedClock } from './simulated-clock.js';
import type { SimulatedClockOptions } from './simulated-clock.js';

/**
 * One thing that happens to the machine, `atMs` after the scenario starts
 * (true time).
 *
 * @example
 * ```ts
 * const scenario = {
 *   offsetMs: 12,
 *   driftPpm: -80,
 *   durationMs: 60_000,
 *   events: [{ atMs: 5_000, kind: 'pause', durationMs: 1_200 }, { atMs: 30_000, kind: 'step', deltaMs: -500 }],
 * } as const;
 * const sim = scenarioClock(scenario);
 * const seen: string[] = [];
 * applyScenario(sim, scenario, { observe: (s, e) => seen.push(`${e?.kind ?? 'end'}: ${s.wall.now() - s.trueNow()}`) });
 * seen; //=> ['pause: 11', 'step: -491', 'end: -493'] (wall minus true time: the offset, drifting, then stepped)
 * ```
 */
export type ClockScenarioEvent =
  | {
      /** When (ms after the start, true time). */
      readonly atMs: number;
      /** Someone steps the wall clock (settimeofday, an NTP step). */
      readonly kind: 'step';
      /** The step, either sign (ms). */
      readonly deltaMs: number;
    }
  | {
      /** When (ms after the start, true time). */
      readonly atMs: number;
      /** The process stops (GC, SIGSTOP); its timers fire late. */
      readonly kind: 'pause';
      /** How long (ms). */
      readonly durationMs: number;
    }
  | {
      /** When (ms after the start, true time). */
      readonly atMs: number;
      /** The oscillator's rate changes (temperature). */
      readonly kind: 'drift';
      /** The new drift (ppm), within the scenario's bound. */
      readonly driftPpm: number;
    };

/**
 * A generated scenario. `events` are sorted by `atMs`, all within `durationMs`.
 *
 * @example
 * ```ts
 * const sim = scenarioClock({ offsetMs: 12, driftPpm: -80, durationMs: 60_000, events: [] });
 * sim.wall.now() - sim.trueNow(); //=> 12
 * ```
 */
export interface ClockScenario {
  /** Wall clock minus true time at the start (ms). */
  readonly offsetMs: number;
  /** Oscillator drift at the start (ppm); see `SimulatedClockOptions.driftPpm`. */
  readonly driftPpm: number;
  /** How long the scenario lasts (true ms). */
  readonly durationMs: number;
  /** What happens, in time order. */
  readonly events: readonly ClockScenarioEvent[];
}

/**
 * A fresh {@link SimulatedClock} in the scenario's starting state (offset and drift).
 *
 * @param scenario - The scenario.
 * @param options - Other `SimulatedClock` options (start times, resolutions).
 * @returns The simulated machine.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When the scenario's drift is out of range.
 *
 * @example
 * ```ts
 * const sim = scenarioClock(scenario, { wallResolutionMs: 1 });
 * ```
 */
export function scenarioClock(
  scenario: ClockScenario,
  options: Omit<SimulatedClockOptions, 'wallOffsetMs' | 'driftPpm'> = {},
): SimulatedClock {
  return new SimulatedClock({
    ...options,
    wallOffsetMs: scenario.offsetMs,
    driftPpm: scenario.driftPpm,
  });
}

/**
 * Options of {@link applyScenario}.
 *
 * @example
 * ```ts
 * // scenario: a 1.2 s pause at 5 s and a step at 30 s, 60 s in all (see ClockScenarioEvent)
 * const at: number[] = [];
 * applyScenario(scenarioClock(scenario), scenario, { everyMs: 10_000, observe: (s) => at.push(s.trueNow() - Date.UTC(2026, 0, 1)) });
 * at; //=> [6200, 10000, 20000, 30000, 30000, 40000, 50000, 60000] (the pause, seen when it ends; the step at 30 s)
 * ```
 */
export interface ApplyScenarioOptions {
  /**
   * Also call `observe` every this many true ms between events.
   *
   * @defaultValue `Infinity`: only after events
   */
  readonly everyMs?: number;
  /** Called after each event (with it) and at each `everyMs` tick and at the end (without). */
  readonly observe?: (sim: SimulatedClock, event?: ClockScenarioEvent) => void;
}

/**
 * Plays a scenario's events on a {@link SimulatedClock}, advancing true time
 * from the moment of the call to `durationMs`. The initial offset and drift are
 * the clock's starting state: create it with {@link scenarioClock}. Timers
 * scheduled on `sim` fire along the way. A pause lasts in true time; an event
 * that falls inside an earlier pause happens when that pause ends.
 *
 * @param sim - The simulated machine.
 * @param scenario - What happens to it.
 * @param options - When to observe it.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `everyMs` is not > 0, or an event is out of range.
 *
 * @example
 * ```ts
 * const sim = scenarioClock(scenario);
 * applyScenario(sim, scenario, { everyMs: 1000, observe: (s) => readings.push({ reading: clock.now(), trueTime: s.trueNow() }) });
 * ```
 */
export function applyScenario(
  sim: SimulatedClock,
  scenario: ClockScenario,
  options: ApplyScenarioOptions = {},
): void {
  for (const step of plan(sim, scenario, options)) {
    if (step.advanceMs > 0) sim.advance(step.advanceMs);
    apply(sim, step.event);
    if (step.observe) options.observe?.(sim, step.event);
  }
}

/**
 * Like {@link applyScenario}, but lets promise continuations run after every
 * timer (via `SimulatedClock.advanceAsync`), for code that awaits.
 *
 * @param sim - The simulated machine.
 * @param scenario - What happens to it.
 * @param options - When to observe it.
 * @returns Resolves at the end of the scenario.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `everyMs` is not > 0, or an event is out of range.
 *
 * @example
 * ```ts
 * await applyScenarioAsync(sim, scenario, { everyMs: 100 });
 * ```
 */
export async function applyScenarioAsync(
  sim: SimulatedClock,
  scenario: ClockScenario,
  options: ApplyScenarioOptions = {},
): Promise<void> {
  for (const step of plan(sim, scenario, options)) {
    if (step.advanceMs > 0) await sim.advanceAsync(step.advanceMs);
    apply(sim, step.event);
    if (step.observe) options.observe?.(sim, step.event);
  }
}

interface PlanStep {
  readonly advanceMs: number;
  readonly event: ClockScenarioEvent | undefined;
  readonly observe: boolean;
}

/** Yields, lazily (pauses move true time), how far to advance before each event or observation. */
function* plan(
  sim: SimulatedClock,
  scenario: ClockScenario,
  options: ApplyScenarioOptions,
): Generator<PlanStep> {
  const everyMs = options.everyMs ?? Infinity;
  if (!(everyMs > 0)) throw new InvalidArgumentError('everyMs', everyMs, 'a number of ms > 0');
  const start = sim.trueNow();
  const elapsed = (): number => sim.trueNow() - start;
  let nextTick = everyMs;
  for (const event of [...scenario.events, undefined]) {
    const target = event === undefined ? scenario.durationMs : event.atMs;
    for (; nextTick < target; nextTick += everyMs) {
      // Ticks that fell inside a pause are skipped, not replayed at once.
      if (nextTick >= elapsed())
        yield { advanceMs: nextTick - elapsed(), event: undefined, observe: true };
    }
    yield { advanceMs: Math.max(0, target - elapsed()), event, observe: true };
  }
}

function apply(sim: SimulatedClock, event: ClockScenarioEvent | undefined): void {
  if (event === undefined) return;
  if (event.kind === 'step') sim.stepWall(event.deltaMs);
  else if (event.kind === 'pause') sim.pause(event.durationMs);
  else sim.setDriftPpm(event.driftPpm);
}
