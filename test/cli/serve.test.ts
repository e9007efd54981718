import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { queryNtp } from '../../src/ntp/client.js';
import { isOneLineError, runCli, startCli } from './run-cli.js';

interface ServeJson {
  address: string;
  host: string;
  port: number;
  offsetMs: number;
  requestDelayMs: number;
  responseDelayMs: number;
  driftPpm: number;
}

describe('chronobound serve', () => {
  it('serves NTP at the requested offset and delays, prints its address, stops on SIGINT (exit 0)', async () => {
    const cli = startCli([
      'serve',
      '--port',
      '0',
      '--offset-ms=-120',
      '--delay-ms',
      '2/6',
      '--json',
    ]);
    const info = JSON.parse(await cli.line(/^\{/)) as ServeJson;
    expect(info).toMatchObject({
      host: '127.0.0.1',
      offsetMs: -120,
      requestDelayMs: 2,
      responseDelayMs: 6,
    });
    expect(info.port).toBeGreaterThan(0);
    expect(info.address).toBe(`127.0.0.1:${info.port}`);

    const x = await queryNtp({ host: info.host, port: info.port, timeoutMs: 2000 });
    // The server's clock is this machine's minus 120 ms (the child's performance
    // clock; both follow CLOCK_REALTIME here), give or take the exchange's bound.
    expect(Math.abs((x.systemOffsetMs ?? NaN) + 120)).toBeLessThanOrEqual(x.errorMs + 2);
    expect(x.delayMs).toBeGreaterThanOrEqual(8);
    expect(x.stratum).toBe(1);

    cli.child.kill('SIGINT');
    const r = await cli.done;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/stopped after [1-9]\d* requests, [1-9]\d* replies/);
  });

  it('takes a negative number as an option’s value: --offset-ms -1500', async () => {
    const cli = startCli(['serve', '--port', '0', '--offset-ms', '-1500', '--json']);
    const info = JSON.parse(await cli.line(/^\{/)) as ServeJson;
    expect(info.offsetMs).toBe(-1500);
    cli.child.kill('SIGINT');
    expect((await cli.done).code).toBe(0);
  });

  it('prints a human line by default and stops on SIGTERM (exit 0)', async () => {
    const cli = startCli(['serve', '--port', '0', '--drift-ppm', '50', '--stratum', '3']);
    const line = await cli.line(/listening/);
    expect(line).toMatch(
      /^chronobound NTP server listening on 127\.0\.0\.1:\d+ \(offset 0 ms, delay 0\/0 ms, drift 50 ppm, stratum 3\); Ctrl-C to stop$/,
    );
    const port = Number(/:(\d+) /.exec(line)?.[1]);
    const x = await queryNtp({ host: '127.0.0.1', port, timeoutMs: 2000 });
    expect(x.stratum).toBe(3);
    cli.child.kill('SIGTERM');
    const r = await cli.done;
    expect(r.code).toBe(0);
  });

  it('reports a port in use in one line (exit 3), and the stack only with --debug', async () => {
    const blocker = createSocket('udp4');
    await new Promise<void>((resolve) => blocker.bind(0, '127.0.0.1', () => resolve()));
    const { port } = blocker.address();
    try {
      const r = await runCli(['serve', '--port', String(port)]);
      expect(r.code).toBe(3);
      expect(isOneLineError(r.stderr)).toBe(true);
      expect(r.stderr).toBe(
        `chronobound serve: address 127.0.0.1:${port} is already in use; pick another --port (0 picks a free one)\n`,
      );
      const debug = await runCli(['serve', '--port', String(port), '--debug']);
      expect(debug.code).toBe(3);
      expect(debug.stderr).toMatch(/EADDRINUSE/);
      expect(debug.stderr).toMatch(/\n\s+at /);
    } finally {
      blocker.close();
    }
  });
});
