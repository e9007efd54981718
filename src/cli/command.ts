/**
 * The prologue every `chronobound` command shares: parse its flags strictly,
 * turn parse failures into usage errors that name the flag, answer `--help`,
 * then run the command with typed flag values. A command is its name, its
 * options, its help text and a function of the parsed values.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CLOCK_FLAGS, guardUsage } from './args.js';
import { ExitCode } from './errors.js';
import type { CliIo, Command } from './io.js';

/**
 * A command's options, as `node:util` parseArgs takes them.
 * @internal
 */
export type CommandOptions = NonNullable<ParseArgsConfig['options']>;

/**
 * Options that take a value, by name: `{ [name]: { type: 'string' } }` each.
 *
 * @example
 * ```ts
 * valueOptions('port', 'host'); // { port: { type: 'string' }, host: { type: 'string' } }
 * ```
 * @internal
 */
export function valueOptions<const K extends string>(
  ...names: readonly K[]
): { readonly [P in K]: { readonly type: 'string' } } {
  return Object.fromEntries(names.map((n) => [n, { type: 'string' }])) as {
    readonly [P in K]: { readonly type: 'string' };
  };
}

/**
 * Options that are on or off, by name: `{ [name]: { type: 'boolean' } }` each.
 *
 * @example
 * ```ts
 * switchOptions('json'); // { json: { type: 'boolean' } }
 * ```
 * @internal
 */
export function switchOptions<const K extends string>(
  ...names: readonly K[]
): { readonly [P in K]: { readonly type: 'boolean' } } {
  return Object.fromEntries(names.map((n) => [n, { type: 'boolean' }])) as {
    readonly [P in K]: { readonly type: 'boolean' };
  };
}

/**
 * Where the time comes from, for `now`, `watch` and `daemon`: `--server`
 * (repeatable) and `--chrony`.
 * @internal
 */
export const TIME_SOURCE_OPTIONS: {
  readonly server: { readonly type: 'string'; readonly multiple: true };
  readonly chrony: { readonly type: 'string' };
} = { server: { type: 'string', multiple: true }, chrony: { type: 'string' } };

/**
 * The options of a command that keeps a clock (`watch`, `daemon`), in this
 * order: where the time comes from ({@link TIME_SOURCE_OPTIONS}), the
 * command's own value options `names`, then the clock's flags (`CLOCK_FLAGS`:
 * poll interval, timeout, drift bound, uncertainty limit).
 *
 * @example
 * ```ts
 * Object.keys(clockCommandOptions('count'));
 * // ['server', 'chrony', 'count', 'poll-ms', 'timeout-ms', 'max-drift-ppm', 'max-uncertainty-ms']
 * ```
 * @internal
 */
export function clockCommandOptions<const K extends string>(
  ...names: readonly K[]
): typeof TIME_SOURCE_OPTIONS & {
  readonly [P in K | (typeof CLOCK_FLAGS)[number]]: { readonly type: 'string' };
} {
  return {
    ...TIME_SOURCE_OPTIONS,
    ...valueOptions<K | (typeof CLOCK_FLAGS)[number]>(...names, ...CLOCK_FLAGS),
  };
}

/** Every command takes `-h`/`--help`. */
const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;

/**
 * What a command's flags parse to: a string (or strings) per string option, a
 * boolean per boolean option, each absent when not given.
 * @internal
 */
export type CommandValues<O extends CommandOptions> = ReturnType<
  typeof parseArgs<{
    options: O & typeof HELP_OPTION;
    strict: true;
    allowPositionals: false;
  }>
>['values'];

/**
 * A command: its name (for messages), options (without `--help`, which every
 * command gets) and the text `--help` prints.
 * @internal
 */
export interface CommandSpec<O extends CommandOptions> {
  readonly name: string;
  readonly options: O;
  readonly help: string;
}

/** A value the shell cannot mistake for a flag: a negative number such as `-1500` or `-.5`. */
const NEGATIVE_NUMBER = /^-(\d|\.\d)/;

/**
 * Joins `--flag -1500` into `--flag=-1500` for string options, so a negative
 * number is taken as the option's value (parseArgs refuses it as ambiguous).
 * Anything else starting with `-` is left for parseArgs to judge.
 * @internal
 */
export function joinNegativeValues(
  options: CommandOptions,
  argv: readonly string[],
): readonly string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const next = argv[i + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : undefined;
    if (
      name !== undefined &&
      Object.hasOwn(options, name) &&
      options[name]?.type === 'string' &&
      next !== undefined &&
      NEGATIVE_NUMBER.test(next)
    ) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/**
 * Parses a command's flags: strict (unknown flags and stray arguments are
 * usage errors naming the culprit), negative numbers accepted as values.
 *
 * @throws {@link InvalidArgumentError} or a usage error for a malformed command line.
 * @internal
 */
export function parseCommandLine<O extends CommandOptions>(
  spec: CommandSpec<O>,
  argv: readonly string[],
): CommandValues<O> {
  const options = { ...spec.options, ...HELP_OPTION };
  const args = joinNegativeValues(options, argv);
  return guardUsage(spec.name, Object.keys(options), args, () =>
    parseArgs({ args: [...args], options, strict: true, allowPositionals: false }),
  ).values;
}

/**
 * Makes a {@link Command}: parses the flags, prints the help for `-h`/`--help`
 * (exit 0), otherwise runs `run` with the parsed values.
 *
 * @example
 * ```ts
 * const runHello = defineCommand(
 *   { name: 'hello', options: { json: { type: 'boolean' } }, help: 'Usage: chronobound hello\n' },
 *   async (values, io) => {
 *     io.stdout.write(values.json === true ? '{"hello":true}\n' : 'hello\n');
 *     return ExitCode.ok;
 *   },
 * );
 * await runHello(['--json'], io); // prints {"hello":true}, returns 0
 * ```
 * @internal
 */
export function defineCommand<O extends CommandOptions>(
  spec: CommandSpec<O>,
  run: (values: CommandValues<O>, io: CliIo) => Promise<number>,
): Command {
  return async (argv, io) => {
    const values = parseCommandLine(spec, argv);
    if ((values as { readonly help?: boolean }).help === true) {
      io.stdout.write(spec.help);
      return ExitCode.ok;
    }
    return run(values, io);
  };
}
