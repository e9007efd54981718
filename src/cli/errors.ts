/**
 * Exit codes of the `chronobound` command and the one-line messages it prints
 * for failures. The CLI reports the library's typed errors
 * (`InvalidArgumentError` for a bad flag value, `SourceUnavailableError` when
 * no server is usable, …) and Node's system errors; its one class of its own,
 * {@link CliUsageError}, is for a command line that is malformed as a whole
 * (a flag without its value).
 *
 * @module
 */
import { ChronoboundError } from '../errors.js';

/**
 * The exit codes, documented in docs/cli.md.
 * @internal
 */
export const ExitCode = {
  /** Success; for `now`, the reading is synchronized. */
  ok: 0,
  /** The clock is not synchronized: no usable server, or only an assumed bound. */
  unsynchronized: 1,
  /** Bad command line: unknown command or flag, malformed value. */
  usage: 2,
  /** Anything else went wrong at run time: port in use, missing optional package, I/O. */
  runtime: 3,
} as const;

/** @internal */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * A malformed command line that no flag value explains, e.g. a flag given
 * without its value. Exit code {@link ExitCode.usage}.
 *
 * @example
 * ```ts
 * throw new CliUsageError('--server needs a value (see `chronobound now --help`)');
 * ```
 * @internal
 */
export class CliUsageError extends Error {
  /** Stable code, as on the library's errors. */
  readonly code = 'CLI_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'CliUsageError';
  }
}

const UNSYNCHRONIZED_CODES = new Set<string>([
  'CLOCK_UNSYNCHRONIZED',
  'SOURCE_UNAVAILABLE',
  'NTP_TIMEOUT',
  'CHRONY_TIMEOUT',
  'NTP_REJECTED',
  'NTP_PACKET',
]);

/** `node:util` parseArgs failures and {@link CliUsageError} are usage errors. */
const PARSE_ARGS_CODES = new Set<string>([
  'CLI_USAGE',
  'ERR_PARSE_ARGS_UNKNOWN_OPTION',
  'ERR_PARSE_ARGS_INVALID_OPTION_VALUE',
  'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL',
]);

function codeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

/**
 * The exit code for an error that ended a command.
 * @internal
 */
export function exitCodeFor(error: unknown): ExitCodeValue {
  const code = codeOf(error);
  if (error instanceof ChronoboundError) {
    if (code === 'INVALID_ARGUMENT') return ExitCode.usage;
    if (code !== undefined && UNSYNCHRONIZED_CODES.has(code)) return ExitCode.unsynchronized;
    return ExitCode.runtime;
  }
  if (code !== undefined && PARSE_ARGS_CODES.has(code)) return ExitCode.usage;
  return ExitCode.runtime;
}

/** Friendlier words for the system errors users actually meet. */
function describeSystemError(error: Error & { code?: unknown }): string | undefined {
  const e = error as Error & { code?: string; address?: string; port?: number; hostname?: string };
  const where =
    e.address !== undefined ? `${e.address}${e.port !== undefined ? `:${e.port}` : ''}` : '';
  switch (e.code) {
    case 'EADDRINUSE':
      return `address ${where || 'requested'} is already in use; pick another --port (0 picks a free one)`;
    case 'EACCES':
      return `permission denied for ${where || 'the requested resource'}; ports below 1024 need privileges`;
    case 'EADDRNOTAVAIL':
      return `address ${where || 'requested'} is not available on this machine`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve host ${e.hostname ?? where}`;
    case 'ERR_MODULE_NOT_FOUND':
      return error.message.split('\n')[0];
    default:
      return undefined;
  }
}

/**
 * One line describing an error: its message, without a stack, with newlines folded.
 * @internal
 */
export function describeError(error: unknown): string {
  let text: string;
  if (error instanceof Error) {
    text = describeSystemError(error) ?? error.message;
  } else {
    text = String(error);
  }
  return text.replace(/\s*\n\s*/g, ' ').trim() || 'unknown error';
}
