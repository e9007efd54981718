import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readChronyTracking } from '../../src/ntp/chrony.js';
import { createNtpServer, type LoopbackNtpServer } from '../../src/testing/node/index.js';
import { locateChronyc, locateChronyd, startChronyd } from '../integration/helpers/chronyd.js';
import {
  locateOpenssl,
  makeCertificate,
  startNtsServer,
  type Certificate,
  type NtsServerHandle,
} from '../integration/helpers/nts-server.js';
import { suiteFixture } from '../support/suite-fixture.js';
import { CLI, isOneLineError, runCli, type CliResult } from './run-cli.js';

/** `chronobound now --json`, asking each of `servers`, with `flags` besides. */
function nowJson(servers: readonly string[], ...flags: string[]): Promise<CliResult> {
  return runCli(['now', ...servers.flatMap((s) => ['--server', s]), ...flags, '--json']);
}

const hasScript = spawnSync('script', ['--version']).status === 0;

interface NowJson {
  earliest: number | null;
  latest: number | null;
  estimate: number;
  uncertaintyMs: number | null;
  status: string;
  source: string;
  servers: {
    server: string;
    /** Deprecated alias of `server`, kept for one version. */
    address: string;
    kind: string;
    offsetMs: number | null;
    delayMs: number | null;
    stratum: number | null;
    errorMs: number | null;
    accepted: boolean;
    reason: string | null;
  }[];
}

const ISO_MICROS = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z/;

/** A loopback port where nothing answers (a server started and closed). */
async function deadPort(): Promise<number> {
  const s = await createNtpServer();
  const { port } = s;
  await s.close();
  return port;
}

describe('chronobound now against loopback NTP servers', () => {
  let good: LoopbackNtpServer;
  let good2: LoopbackNtpServer;
  let liar: LoopbackNtpServer;

  beforeAll(async () => {
    // The reference: 250 ms ahead of this machine, a slightly asymmetric path.
    good = await createNtpServer({ offsetMs: 250, requestDelayMs: 1, responseDelayMs: 2 });
    good2 = await createNtpServer({ offsetMs: 250 });
    liar = await createNtpServer({ offsetMs: 900 });
  });
  afterAll(async () => {
    await Promise.all([good.close(), good2.close(), liar.close()]);
  });

  it('prints a synchronized interval that contains the server’s true time (exit 0)', async () => {
    const before = good.trueNow();
    const r = await nowJson([good.address], '--samples', '3', '--interval-ms', '20');
    const after = good.trueNow();
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as NowJson;
    expect(j.status).toBe('synchronized');
    expect(j.earliest).not.toBeNull();
    expect(j.latest).not.toBeNull();
    // The reading was taken between `before` and `after`; an honest interval
    // therefore cannot lie wholly before `before` nor wholly after `after`.
    expect(j.latest as number).toBeGreaterThanOrEqual(before);
    expect(j.earliest as number).toBeLessThanOrEqual(after);
    expect(j.uncertaintyMs as number).toBeGreaterThan(0);
    expect(j.uncertaintyMs as number).toBeLessThan(50);
    expect(j.estimate).toBeCloseTo(((j.earliest as number) + (j.latest as number)) / 2, 3);
    expect(j.servers).toHaveLength(1);
    const s = j.servers[0];
    expect(s).toMatchObject({
      server: good.address,
      kind: 'ntp',
      stratum: 1,
      accepted: true,
      reason: null,
    });
    // The old name stays for one version, with the same value.
    expect(s?.address).toBe(s?.server);
    // Server minus system clock ≈ +250 ms, within the exchange's bound plus Date.now()'s 1 ms step.
    expect(Math.abs((s?.offsetMs ?? 0) - 250)).toBeLessThanOrEqual((s?.errorMs ?? 0) + 1);
    expect(s?.delayMs).toBeGreaterThanOrEqual(3);
  });

  it('prints the human report: ISO-8601 with microseconds, ε, status and the server table', async () => {
    const r = await runCli(['now', '--server', good.address]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^earliest  ${ISO_MICROS.source}$`));
    expect(lines[1]).toMatch(new RegExp(`^estimate  ${ISO_MICROS.source}$`));
    expect(lines[2]).toMatch(new RegExp(`^latest    ${ISO_MICROS.source}$`));
    expect(lines[3]).toMatch(/^ε {9}± \d+\.\d{3} ms$/);
    expect(lines[4]).toBe('status    synchronized');
    expect(r.stdout).toMatch(/server\s+offset\s+delay\s+stratum\s+λ\s+result/);
    expect(r.stdout).toMatch(
      new RegExp(`${good.address.replace(/\./g, '\\.')}\\s+\\+2\\d\\d\\.\\d{3} ms.*accepted`),
    );
    // No progress line off a terminal: stderr stays empty.
    expect(r.stderr).toBe('');
  });

  it.skipIf(!hasScript)(
    'shows a progress line on a terminal while it waits, and erases it',
    async () => {
      const command = `${process.execPath} ${CLI} now --server ${good.address} --samples 2 --interval-ms 300`;
      const { stdout } = await promisify(execFile)('script', ['-qfec', command, '/dev/null'], {
        timeout: 20_000,
      });
      // stderr and stdout share the terminal: the line, rewritten, then erased before the report.
      expect(stdout).toContain(
        '\r\x1b[Kchronobound now: asking 1 server, 2 exchanges each 0.3 s apart… 0 of 1 done',
      );
      expect(stdout).toContain('… 1 of 1 done\r\x1b[K');
      expect(stdout.indexOf('\r\x1b[Kearliest')).toBeGreaterThan(0);
      expect(stdout).toMatch(/status {4}synchronized/);
    },
  );

  it('casts out a falseticker when a majority agrees (exit 0)', async () => {
    const r = await nowJson([good.address, good2.address, liar.address]);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as NowJson;
    expect(j.status).toBe('synchronized');
    expect(j.source).toMatch(/2 of 3 servers agree/);
    const byAddress = new Map(j.servers.map((s) => [s.server, s]));
    expect(byAddress.get(liar.address)).toMatchObject({ accepted: false });
    expect(byAddress.get(liar.address)?.reason).toMatch(/^falseticker/);
    expect(byAddress.get(good.address)?.accepted).toBe(true);
    expect(byAddress.get(good2.address)?.accepted).toBe(true);
  });

  it('refuses when no server answers: exit 1, one-line message, reasons in the table', async () => {
    const port = await deadPort();
    const r = await nowJson([`127.0.0.1:${port}`], '--timeout-ms', '300');
    expect(r.code).toBe(1);
    expect(isOneLineError(r.stderr)).toBe(true);
    expect(r.stderr).toContain('no usable time server');
    const j = JSON.parse(r.stdout) as NowJson;
    expect(j.status).toBe('unsynchronized');
    expect(j.servers[0]).toMatchObject({
      server: `127.0.0.1:${port}`,
      accepted: false,
      offsetMs: null,
    });
    expect(j.servers[0]?.reason).toMatch(/timeout/);
    expect(j.servers.at(-1)).toMatchObject({ kind: 'system', accepted: false });
  });

  it('two configured, one dead: f = 0, so the live one alone synchronizes (exit 0)', async () => {
    const port = await deadPort();
    // The live server must answer within the timeout even on a loaded machine: 2 s, not 300 ms.
    const r = await nowJson([good.address, `127.0.0.1:${port}`], '--timeout-ms', '2000');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as NowJson;
    expect(j.status).toBe('synchronized');
    expect(j.servers.find((s) => s.server === good.address)?.accepted).toBe(true);
  });

  it('with --chrony besides, chronyd is one more configured source: one of three answering is no majority (exit 1)', async () => {
    // Without --chrony the two servers alone would do (f = 0, as above); with it f = 1.
    const held = await Promise.all([createNtpServer(), createNtpServer()]);
    const [ntpPort, chronyPort] = held.map((h) => h.port);
    await Promise.all(held.map((h) => h.close()));
    const r = await nowJson(
      [good.address, `127.0.0.1:${ntpPort}`],
      ...['--chrony', `127.0.0.1:${chronyPort}`, '--timeout-ms', '2000'],
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /no majority: 1 of 3 configured sources answered, and up to 1 may be wrong/,
    );
    const j = JSON.parse(r.stdout) as NowJson;
    expect(j.servers.map((s) => s.kind)).toEqual(['ntp', 'ntp', 'chrony', 'system']);
    expect(j.servers[0]?.reason).toMatch(/^no majority/);
    expect(j.servers[2]?.reason).toMatch(/^timeout/);
  });

  it('three configured, one answering: it may be the one liar, so no majority (exit 1)', async () => {
    // Both bound at once, so the two dead ports differ.
    const held = await Promise.all([createNtpServer(), createNtpServer()]);
    const [a, b] = held.map((h) => h.port);
    await Promise.all(held.map((h) => h.close()));
    const r = await nowJson(
      [good.address, `127.0.0.1:${a}`, `127.0.0.1:${b}`],
      '--timeout-ms',
      '2000',
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /no majority: 1 of 3 configured sources answered, and up to 1 may be wrong/,
    );
    const j = JSON.parse(r.stdout) as NowJson;
    expect(j.servers.find((s) => s.server === good.address)?.reason).toMatch(/^no majority/);
  });

  it('refuses a server 1e12 ms off the system clock (the panic threshold): unsynchronized, exit 1, and says why', async () => {
    const far = await createNtpServer({ offsetMs: 1e12 });
    try {
      const r = await nowJson([far.address], '--timeout-ms', '500');
      expect(r.code).toBe(1);
      const j = JSON.parse(r.stdout) as NowJson;
      expect(j.status).toBe('unsynchronized');
      expect(r.stderr).toMatch(/panic/);
    } finally {
      await far.close();
    }
  });

  it('reports a Kiss-o’-Death refusal by its reason', async () => {
    const kod = await createNtpServer({ kissCode: 'DENY' });
    try {
      const r = await nowJson([kod.address], '--timeout-ms', '500');
      expect(r.code).toBe(1);
      const j = JSON.parse(r.stdout) as NowJson;
      expect(j.servers[0]?.reason).toMatch(/kiss/i);
    } finally {
      await kod.close();
    }
  });

  it('is unsynchronized (exit 1) when ε exceeds --max-uncertainty-ms', async () => {
    const slow = await createNtpServer({ requestDelayMs: 30, responseDelayMs: 30 });
    try {
      const r = await nowJson([slow.address], '--max-uncertainty-ms', '5');
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ status: 'unsynchronized' });
      expect(r.stderr).toMatch(/above --max-uncertainty-ms 5/);
    } finally {
      await slow.close();
    }
  });
});

describe('chronobound now with no server given', () => {
  it('falls back to the system clock, honestly unsynchronized (exit 1), when no chronyd answers', async (ctx) => {
    const chronydUp = await readChronyTracking({ timeoutMs: 300 }).then(
      () => true,
      () => false,
    );
    if (chronydUp) ctx.skip(); // a local chronyd on :323 would (rightly) be used instead
    const r = await runCli(['now', '--assumed-error-ms', '250', '--json']);
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout) as NowJson;
    expect(j.status).toBe('unsynchronized');
    expect(j.source).toBe('system clock (assumed ±250 ms)');
    expect(j.uncertaintyMs as number).toBeGreaterThanOrEqual(250);
    expect(j.servers[0]).toMatchObject({
      server: '127.0.0.1:323',
      kind: 'chrony',
      accepted: false,
    });
    expect(isOneLineError(r.stderr)).toBe(true);
    expect(r.stderr).toContain('no chronyd answered on 127.0.0.1:323');
  });
});

describe.skipIf(locateChronyd() === undefined)('chronobound now against a real chronyd', () => {
  const chronyd = suiteFixture(startChronyd, 30_000);

  it('reads chronyd’s tracking report with --chrony (exit 0)', async () => {
    const r = await runCli(['now', '--chrony', `127.0.0.1:${chronyd().cmdPort}`, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as NowJson;
    expect(j.status).toBe('synchronized');
    expect(j.servers[0]).toMatchObject({ kind: 'chrony', accepted: true, stratum: 8 });
    const before = Date.now();
    expect(Math.abs(j.estimate - before)).toBeLessThan(5000);
  });

  it('uses chronyd as an NTP server with --server', async () => {
    const r = await nowJson([`127.0.0.1:${chronyd().ntpPort}`]);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as NowJson;
    expect(j.servers[0]).toMatchObject({ kind: 'ntp', accepted: true, stratum: 8 });
    // chronyd serves this machine's clock: offset ≈ 0 within its bound (+1 ms for Date.now()).
    expect(Math.abs(j.servers[0]?.offsetMs ?? Infinity)).toBeLessThanOrEqual(
      (j.servers[0]?.errorMs ?? 0) + 1,
    );
  });
});

describe('chronobound now: usage', () => {
  it('refuses --nts without --server, --nts-ca without --nts or with an unreadable file, and a server given twice (exit 2)', async () => {
    for (const args of [
      ['now', '--nts'],
      ['now', '--nts-ca', '/nonexistent.pem', '--server', '127.0.0.1:4460'],
      ['now', '--nts', '--nts-ca', '/nonexistent.pem', '--server', '127.0.0.1:4460'],
      ['now', '--server', '127.0.0.1:1123', '--server', '127.0.0.1:1123'],
    ]) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(isOneLineError(r.stderr), r.stderr).toBe(true);
    }
  });
});

describe.skipIf(
  locateChronyd() === undefined || locateChronyc() === undefined || locateOpenssl() === undefined,
)('chronobound now --nts against a real chronyd NTS server', () => {
  let server: NtsServerHandle;
  let dir: string;
  let other: Certificate;
  beforeAll(async () => {
    server = await startNtsServer();
    dir = mkdtempSync(join(tmpdir(), 'chronobound-cli-nts-'));
    other = await makeCertificate(dir, { name: 'other' });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });
  /** `now --nts` against the server, trusting the certificate at `caPath`. */
  const nowOverNts = (caPath: string): Promise<CliResult> =>
    nowJson([`127.0.0.1:${server.kePort}`], '--nts', '--nts-ca', caPath, '--timeout-ms', '15000');

  it('authenticates with NTS-KE and NTS: synchronized (exit 0), chronyd counts it', async () => {
    const before = await server.serverStats();
    const r = await nowOverNts(server.certificate.certPath);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as NowJson;
    expect(j.status).toBe('synchronized');
    // Named by the NTS-KE server given, not by the NTP port the key exchange negotiated.
    expect(j.source).toBe(`127.0.0.1:${server.kePort}`);
    expect(j.servers[0]).toMatchObject({
      server: `127.0.0.1:${server.kePort}`,
      kind: 'nts',
      accepted: true,
      stratum: 1,
    });
    // chronyd -x serves this machine's clock: offset ≈ 0 within its bound (+1 ms for Date.now()).
    expect(Math.abs(j.servers[0]?.offsetMs ?? Infinity)).toBeLessThanOrEqual(
      (j.servers[0]?.errorMs ?? 0) + 1,
    );
    const after = await server.serverStats();
    expect(after.ntsKeConnectionsAccepted).toBeGreaterThan(before.ntsKeConnectionsAccepted);
    expect(after.authenticatedNtpPackets).toBeGreaterThan(before.authenticatedNtpPackets);
  });

  it('with the wrong CA: exit 1, a one-line error naming the certificate, no NTP sent', async () => {
    const before = await server.serverStats();
    const r = await nowOverNts(other.certPath);
    expect(r.code, r.stderr).toBe(1);
    expect(isOneLineError(r.stderr), r.stderr).toBe(true);
    expect(r.stderr).toMatch(/certificate is not trusted/);
    expect(r.stderr).toContain('--nts-ca');
    const j = JSON.parse(r.stdout) as NowJson;
    expect(j.status).toBe('unsynchronized');
    expect(j.servers[0]).toMatchObject({ kind: 'nts', accepted: false });
    expect(j.servers[0]?.reason).toMatch(/^nts-ke: .*certificate is not trusted/);
    const after = await server.serverStats();
    expect(after.authenticatedNtpPackets).toBe(before.authenticatedNtpPackets);
  });
});
