/**
 * Command-line parsing for the `chronobound` command: `node:util` parseArgs in
 * strict mode, plus converters that turn flag values into numbers and
 * addresses or throw `InvalidArgumentError` naming the flag.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { CliUsageError } from './errors.js';

/**
 * A host and a port, as given on the command line.
 * @internal
 */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * Runs a `parseArgs` call and turns its failures into errors naming the
 * culprit: an `InvalidArgumentError` for an unknown flag, a stray positional or
 * a value starting with `-`, a {@link CliUsageError} for a flag without its value.
 * @internal
 */
export function guardUsage<T>(
  command: string,
  flags: readonly string[],
  argv: readonly string[],
  parse: () => T,
): T {
  try {
    return parse();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) throw error;
    const message = error instanceof Error ? error.message : String(error);
    const quoted = /'([^']*)'/.exec(message)?.[1] ?? '';
    const help = `see \`chronobound ${command} --help\``;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const known = flags.map((f) => `--${f}`).join(', ');
      throw new InvalidArgumentError('option', quoted, `one of ${known}`);
    }
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      throw new InvalidArgumentError(
        'argument',
        quoted,
        `options only: \`chronobound ${command}\` takes no positional arguments (${help})`,
      );
    }
    // ERR_PARSE_ARGS_INVALID_OPTION_VALUE: "Option '--server <value>' argument missing", a
    // value starting with '-' (ambiguous), or a value given to a boolean flag.
    const flag = quoted.split(' ')[0] ?? quoted;
    if (message.includes('ambiguous')) {
      const value = argv[argv.indexOf(flag) + 1] ?? '';
      throw new InvalidArgumentError(
        flag,
        value,
        `${flag}=${value} for a value that starts with "-"`,
      );
    }
    if (quoted.includes('<value>') && message.includes('argument missing')) {
      throw new CliUsageError(`${flag} needs a value (${help})`);
    }
    throw new InvalidArgumentError(
      flag === '' ? 'option' : flag,
      message.replace(/^Option '[^']*' /, ''),
      quoted.includes('<value>') ? `a value after ${flag} (${help})` : `no value (${help})`,
    );
  }
}

/**
 * Parses an integer flag within [min, max].
 * @internal
 */
export function intFlag(
  flag: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const parsed = /^[+-]?\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    throw new InvalidArgumentError(flag, value, `an integer from ${min} to ${max}`);
  }
  return parsed;
}

/**
 * Parses a decimal number flag within [min, max].
 * @internal
 */
export function numberFlag(
  flag: string,
  value: string | undefined,
  fallback: number,
  min: number = -Infinity,
  max: number = Infinity,
): number {
  if (value === undefined) return fallback;
  const trimmed = value.trim();
  const parsed = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(trimmed)
    ? Number(trimmed)
    : Number.NaN;
  if (!Number.isFinite(parsed) || parsed < min || parsed > max) {
    const range =
      min === -Infinity && max === Infinity
        ? 'a number'
        : max === Infinity
          ? `a number ≥ ${min}`
          : `a number from ${min} to ${max}`;
    throw new InvalidArgumentError(flag, value, range);
  }
  return parsed;
}

/**
 * Parses `host`, `host:port`, `[v6]` or `[v6]:port`; a bare IPv6 address
 * (several colons, no brackets) is a host without a port.
 * @internal
 */
export function hostPortFlag(flag: string, value: string, defaultPort: number): HostPort {
  const text = value.trim();
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1] ?? '';
    portText = bracketed[2];
  } else if ((text.match(/:/g) ?? []).length > 1) {
    host = text;
  } else {
    const colon = text.lastIndexOf(':');
    host = colon === -1 ? text : text.slice(0, colon);
    portText = colon === -1 ? undefined : text.slice(colon + 1);
  }
  // A bracket left in the host is an IPv6 address with an unbalanced bracket ('[::1').
  if (host === '' || /[\s/[\]]/.test(host)) {
    throw new InvalidArgumentError(flag, value, 'host[:port], e.g. 127.0.0.1:123 or [::1]:123');
  }
  const port =
    portText === undefined ? defaultPort : intFlag(`${flag} port`, portText, 0, 1, 65535);
  return { host, port };
}

/**
 * Parses `--delay-ms`: `A/B` (one-way delays out and back, ms) or a single `D`
 * for a symmetric D/D.
 * @internal
 */
export function delayFlag(flag: string, value: string | undefined): [number, number] {
  if (value === undefined) return [0, 0];
  const parts = value.split('/');
  if (parts.length > 2) {
    throw new InvalidArgumentError(
      flag,
      value,
      'A/B (request and reply delays in ms) or one number',
    );
  }
  const out = numberFlag(flag, parts[0], 0, 0, 60_000);
  const back = parts.length === 2 ? numberFlag(flag, parts[1], 0, 0, 60_000) : out;
  return [out, back];
}

/**
 * Renders `host:port`, bracketing IPv6 hosts.
 * @internal
 */
export function formatHostPort(address: HostPort): string {
  return address.host.includes(':')
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

/**
 * Where the time comes from, parsed: the `--server` values (repeatable; port
 * `serverPort` by default) and the `--chrony` value (port 323 by default).
 *
 * @param values - The parsed `--server` and `--chrony` flags.
 * @param serverPort - The port of a `--server` that names none (4460 for NTS-KE).
 *
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} Naming the first flag that is not `host[:port]`.
 * @example
 * ```ts
 * timeSourceFlags({ server: ['10.0.0.1', '[::1]:1123'] });
 * // { servers: [{ host: '10.0.0.1', port: 123 }, { host: '::1', port: 1123 }], chrony: undefined }
 * ```
 * @internal
 */
export function timeSourceFlags(
  values: {
    readonly server?: readonly string[] | undefined;
    readonly chrony?: string | undefined;
  },
  serverPort = 123,
): { readonly servers: readonly HostPort[]; readonly chrony: HostPort | undefined } {
  return {
    servers: (values.server ?? []).map((s) => hostPortFlag('--server', s, serverPort)),
    chrony: values.chrony === undefined ? undefined : hostPortFlag('--chrony', values.chrony, 323),
  };
}

/**
 * The flags of a command that keeps a clock (`watch`, `daemon`): poll interval,
 * timeout, drift bound and the ε above which the clock is unsynchronized.
 * @internal
 */
export const CLOCK_FLAGS = [
  'poll-ms',
  'timeout-ms',
  'max-drift-ppm',
  'max-uncertainty-ms',
] as const;

/**
 * The values of {@link CLOCK_FLAGS}, checked: `pollMs` is undefined when not
 * given (each source has its own default).
 * @internal
 */
export interface ClockFlags {
  readonly pollMs: number | undefined;
  readonly timeoutMs: number;
  readonly maxDriftPpm: number;
  readonly maxUncertaintyMs: number;
}

/**
 * Parses {@link CLOCK_FLAGS}: `--poll-ms` 100 ms to a day, `--timeout-ms`
 * (default 1000) 1 ms to 10 min, `--max-drift-ppm` (default 200) up to 10⁵,
 * `--max-uncertainty-ms` (default 50) up to a day.
 *
 * @throws {@link InvalidArgumentError} Naming the first flag out of its range.
 * @example
 * ```ts
 * clockFlags({ 'timeout-ms': '500' });
 * // { pollMs: undefined, timeoutMs: 500, maxDriftPpm: 200, maxUncertaintyMs: 50 }
 * ```
 * @internal
 */
export function clockFlags(values: {
  readonly [K in (typeof CLOCK_FLAGS)[number]]?: string | undefined;
}): ClockFlags {
  const poll = values['poll-ms'];
  return {
    pollMs: poll === undefined ? undefined : numberFlag('--poll-ms', poll, 0, 100, 86_400_000),
    timeoutMs: numberFlag('--timeout-ms', values['timeout-ms'], 1000, 1, 600_000),
    maxDriftPpm: numberFlag('--max-drift-ppm', values['max-drift-ppm'], 200, 0, 1e5),
    maxUncertaintyMs: numberFlag(
      '--max-uncertainty-ms',
      values['max-uncertainty-ms'],
      50,
      0,
      86_400_000,
    ),
  };
}
