/**
 * Every closable the package hands out also closes through `Symbol.asyncDispose`
 * (`await using x = …`), and disposing really closes it.
 */
import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import {
  PauseDetector,
  TrueClock,
  httpTimeSource,
  messageTimeSource,
  systemClockSource,
} from '../src/index.js';
import { watchProcessPauses } from '../src/node/index.js';
import { createNtpServer } from '../src/testing/node/index.js';
import { ManualClock, manualSource } from '../src/testing/index.js';

describe('Symbol.asyncDispose', () => {
  it('closes the HTTP, message and system sources: their subscriptions stop', async () => {
    const mono = new ManualClock();
    let fetches = 0;
    const http = httpTimeSource({
      url: 'http://127.0.0.1:9/time',
      fetch: () => {
        fetches++;
        return new Promise(() => {});
      },
      timeoutMs: 1000,
      scheduler: mono,
    });
    const message = messageTimeSource({
      send: () => {},
      onMessage: () => () => {},
      scheduler: mono,
    });
    const system = systemClockSource({ assumedErrorMs: 10, wall: mono.wall, scheduler: mono });
    for (const source of [http, message, system]) {
      expect(typeof source[Symbol.asyncDispose]).toBe('function');
      source.subscribe(
        () => {},
        mono,
        () => {},
      );
      await source[Symbol.asyncDispose]();
    }
    const before = fetches;
    mono.advance(10 * 60_000);
    expect(fetches).toBe(before);
    expect(mono.pendingTimers).toBe(0);
  });

  it('closes the loopback NTP server: its port is free again', async () => {
    const server = await createNtpServer();
    await server[Symbol.asyncDispose]();
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(server.port, '127.0.0.1', resolve);
    });
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    await expect(server.close()).resolves.toBeUndefined(); // idempotent
  });

  it('stops a PauseDetector and a process pause watch', async () => {
    const clock = new TrueClock({ source: manualSource() });
    const detector = new PauseDetector({ clock });
    detector.start();
    await detector[Symbol.asyncDispose]();
    const watch = watchProcessPauses({ clock });
    const listeners = process.listenerCount('SIGCONT');
    await watch[Symbol.asyncDispose]();
    expect(process.listenerCount('SIGCONT')).toBe(listeners - 1);
    await clock[Symbol.asyncDispose]();
  });
});
