import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  delayFlag,
  formatHostPort,
  guardUsage,
  hostPortFlag,
  intFlag,
  numberFlag,
} from '../../src/cli/args.js';
import { defineCommand, joinNegativeValues } from '../../src/cli/command.js';
import { CliUsageError, exitCodeFor } from '../../src/cli/errors.js';
import type { CliIo } from '../../src/cli/io.js';
import { InvalidArgumentError } from '../../src/index.js';
import { parseArgs } from 'node:util';
import { fcParams } from '../support/fc.js';

describe('hostPortFlag', () => {
  it.each([
    ['127.0.0.1', { host: '127.0.0.1', port: 123 }],
    ['127.0.0.1:11123', { host: '127.0.0.1', port: 11123 }],
    ['time.example.com', { host: 'time.example.com', port: 123 }],
    ['time.example.com:4123', { host: 'time.example.com', port: 4123 }],
    ['[::1]', { host: '::1', port: 123 }],
    ['[::1]:11123', { host: '::1', port: 11123 }],
    ['::1', { host: '::1', port: 123 }],
    ['fe80::1:2', { host: 'fe80::1:2', port: 123 }],
    ['  10.0.0.1:9  ', { host: '10.0.0.1', port: 9 }],
  ])('parses %j', (text, expected) => {
    expect(hostPortFlag('--server', text, 123)).toEqual(expected);
  });

  it.each([
    '',
    ':123',
    'host:0',
    'host:65536',
    'host:12a',
    'a b:1',
    '[::1]:x',
    'http://x',
    '[::1',
    '::1]',
    '[::1:123',
  ])('rejects %j naming the flag', (text) => {
    expect(() => hostPortFlag('--server', text, 123)).toThrow(InvalidArgumentError);
    expect(() => hostPortFlag('--server', text, 123)).toThrow(/--server/);
  });

  it('round-trips through formatHostPort', () => {
    const host = fc.oneof(
      fc.ipV4(),
      fc.ipV6(),
      fc.domain().filter((d) => !d.includes(':')),
    );
    fc.assert(
      fc.property(host, fc.integer({ min: 1, max: 65535 }), (h, port) => {
        expect(hostPortFlag('--server', formatHostPort({ host: h, port }), 123)).toEqual({
          host: h,
          port,
        });
      }),
      fcParams(300),
    );
  });
});

describe('number flags', () => {
  it('takes integers within range and defaults when absent', () => {
    expect(intFlag('--samples', undefined, 4, 1, 64)).toBe(4);
    expect(intFlag('--samples', '64', 4, 1, 64)).toBe(64);
    expect(intFlag('--samples', '+3', 4, 1, 64)).toBe(3);
  });

  it.each(['0', '65', '1.5', '1e1', '', 'four', '0x10', ' '])('intFlag rejects %j', (v) => {
    expect(() => intFlag('--samples', v, 4, 1, 64)).toThrow(/Invalid --samples/);
  });

  it('takes decimals, exponents and signs', () => {
    expect(numberFlag('--offset-ms', '-120.5', 0)).toBe(-120.5);
    expect(numberFlag('--offset-ms', '1e3', 0)).toBe(1000);
    expect(numberFlag('--offset-ms', '.5', 0)).toBe(0.5);
  });

  it.each(['NaN', 'Infinity', '1,5', '--1', '5ms', ''])('numberFlag rejects %j', (v) => {
    expect(() => numberFlag('--offset-ms', v, 0)).toThrow(/Invalid --offset-ms/);
  });

  it('names the range in the message', () => {
    expect(() => numberFlag('--timeout-ms', '0', 1, 1, 10)).toThrow(
      'expected a number from 1 to 10',
    );
    expect(() => numberFlag('--x', '-1', 1, 0)).toThrow('expected a number ≥ 0');
  });
});

describe('delayFlag', () => {
  it('parses A/B, a single symmetric value, and defaults to 0/0', () => {
    expect(delayFlag('--delay-ms', '2/8')).toEqual([2, 8]);
    expect(delayFlag('--delay-ms', '3')).toEqual([3, 3]);
    expect(delayFlag('--delay-ms', undefined)).toEqual([0, 0]);
  });

  it.each(['1/2/3', '-1/2', '1/', 'a/b'])('rejects %j', (v) => {
    expect(() => delayFlag('--delay-ms', v)).toThrow(/Invalid --delay-ms/);
  });
});

describe('guardUsage', () => {
  const options = { port: { type: 'string' }, json: { type: 'boolean' } } as const;
  const parse = (argv: string[]) =>
    guardUsage('serve', Object.keys(options), argv, () =>
      parseArgs({ args: argv, options, strict: true, allowPositionals: false }),
    );

  it('passes parsed values through', () => {
    expect(parse(['--port', '5', '--json']).values).toEqual({ port: '5', json: true });
  });

  it('turns parseArgs failures into InvalidArgumentError naming the culprit', () => {
    expect(() => parse(['--nope'])).toThrow(
      'Invalid option: "--nope"; expected one of --port, --json.',
    );
    expect(() => parse(['stray'])).toThrow(/Invalid argument: "stray"/);
    expect(() => parse(['--port'])).toThrow(
      new CliUsageError('--port needs a value (see `chronobound serve --help`)'),
    );
    expect(() => parse(['--port'])).toThrow(CliUsageError);
    expect(() => parse(['--port', '-5'])).toThrow(
      'Invalid --port: "-5"; expected --port=-5 for a value that starts with "-".',
    );
    expect(() => parse(['--json=1'])).toThrow(/Invalid --json/);
    for (const argv of [['--nope'], ['stray']]) {
      expect(() => parse(argv)).toThrow(InvalidArgumentError);
    }
  });

  it('lets other errors through untouched', () => {
    const boom = new RangeError('boom');
    expect(() =>
      guardUsage('x', [], [], () => {
        throw boom;
      }),
    ).toThrow(boom);
  });
});

describe('joinNegativeValues', () => {
  const options = { 'offset-ms': { type: 'string' }, json: { type: 'boolean' } } as const;

  it('joins a string option and a negative number into --flag=value', () => {
    expect(joinNegativeValues(options, ['--offset-ms', '-1500', '--json'])).toEqual([
      '--offset-ms=-1500',
      '--json',
    ]);
    expect(joinNegativeValues(options, ['--offset-ms', '-.5'])).toEqual(['--offset-ms=-.5']);
  });

  it('leaves flags, boolean options and unknown options alone', () => {
    for (const argv of [
      ['--offset-ms', '--json'],
      ['--offset-ms', '-x'],
      ['--json', '-1'],
      ['--other', '-1'],
      ['--offset-ms=-1'],
    ]) {
      expect(joinNegativeValues(options, argv)).toEqual(argv);
    }
  });
});

describe('defineCommand', () => {
  function recordingIo(): CliIo & { out: string[] } {
    const out: string[] = [];
    return {
      out,
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: () => undefined },
      signal: new AbortController().signal,
      debug: false,
      cwd: '/',
    };
  }
  const run = defineCommand(
    { name: 'probe', options: { 'offset-ms': { type: 'string' } }, help: 'Usage: probe\n' },
    (values, io) => {
      io.stdout.write(`offset ${values['offset-ms'] ?? 'none'}\n`);
      return Promise.resolve(7);
    },
  );

  it('answers -h and --help with the help text, exit 0, without running the command', async () => {
    for (const flag of ['-h', '--help']) {
      const io = recordingIo();
      expect(await run([flag], io)).toBe(0);
      expect(io.out).toEqual(['Usage: probe\n']);
    }
  });

  it('runs the command with the parsed values, negative numbers included', async () => {
    const io = recordingIo();
    expect(await run(['--offset-ms', '-1500'], io)).toBe(7);
    expect(io.out).toEqual(['offset -1500\n']);
  });

  it('refuses a malformed command line as a usage error (exit 2)', async () => {
    const io = recordingIo();
    const error: unknown = await run(['--offset-ms'], io).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliUsageError);
    expect(exitCodeFor(error)).toBe(2);
    await expect(run(['--nope'], io)).rejects.toThrow(InvalidArgumentError);
    expect(io.out).toEqual([]);
  });
});
