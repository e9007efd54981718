import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrueClock, type ClockMetrics } from '../../src/index.js';
import type { NtpExchange, NtpServerStatus } from '../../src/ntp/index.js';
import {
  PROMETHEUS_CONTENT_TYPE,
  formatPrometheusMetrics,
  metricsEndpoint,
} from '../../src/node/index.js';
import { manualSource } from '../../src/testing/index.js';
import { locatePromtool, promtoolCheck } from './promtool.js';

const promtool = locatePromtool();
if (promtool === undefined)
  console.warn('promtool not installed: skipping `promtool check metrics`.');
const check = (text: string): ReturnType<typeof promtoolCheck> =>
  promtoolCheck(promtool ?? 'promtool', text);

const metrics: ClockMetrics = {
  status: 'free-running',
  uncertaintyMs: 1.5,
  offsetFromWallMs: -0.25,
  sampleAgeMs: 2500,
  sampleErrorMs: 0.75,
  sampleSource: 'ntp "pool"\\',
  learnedRatePpm: { low: -12.5, high: -11.5 },
  maxDriftPpm: 200,
  hostCorrectionMs: 0.125,
  samplesAccepted: 42,
  disruptions: 2,
  problems: { timeout: 3, 'stale-sample': 1 },
};

const exchange = {
  server: '127.0.0.1:123',
  delayMs: 4,
  systemOffsetMs: 12.5,
  stratum: 2,
} as unknown as NtpExchange;

const servers: NtpServerStatus[] = [
  {
    server: '127.0.0.1:123',
    state: 'ok',
    reach: 0b1111_0111,
    consecutiveFailures: 0,
    pollIntervalMs: 64_000,
    best: exchange,
    lastExchange: exchange,
  },
  {
    server: '[::1]:11123',
    state: 'unreachable',
    reach: 0,
    consecutiveFailures: 5,
    pollIntervalMs: 2000,
  },
];

/** `name{labels} value` lines as a map. */
function samples(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), line.slice(at + 1));
  }
  return out;
}

describe('formatPrometheusMetrics', () => {
  const text = formatPrometheusMetrics(metrics, {
    ntpServers: servers,
    clockbound: {
      writes: 17,
      last: {
        asOfNs: 1n,
        voidAfterNs: 2n,
        boundNs: 1_234_567n,
        disruptionMarker: 0n,
        maxDriftPpb: 200_000,
        status: 'free-running',
      },
    },
  });
  const got = samples(text);

  it('exports the clock in base units with conventional names and one-hot states', () => {
    expect(got.get('chronobound_status{status="free-running"}')).toBe('1');
    expect(got.get('chronobound_status{status="synchronized"}')).toBe('0');
    expect(got.get('chronobound_status{status="unsynchronized"}')).toBe('0');
    expect(got.get('chronobound_status{status="disrupted"}')).toBe('0');
    expect(got.get('chronobound_uncertainty_seconds')).toBe('0.0015');
    expect(got.get('chronobound_system_clock_offset_seconds')).toBe('-0.00025');
    expect(got.get('chronobound_sample_age_seconds')).toBe('2.5');
    expect(got.get('chronobound_sample_error_seconds')).toBe('0.00075');
    expect(got.get('chronobound_sample_source_info{source="ntp \\"pool\\"\\\\"}')).toBe('1');
    expect(got.get('chronobound_learned_frequency_ppm{bound="low"}')).toBe('-12.5');
    expect(got.get('chronobound_learned_frequency_ppm{bound="high"}')).toBe('-11.5');
    expect(got.get('chronobound_max_drift_ppm')).toBe('200');
    expect(got.get('chronobound_host_correction_seconds')).toBe('0.000125');
    expect(got.get('chronobound_samples_accepted_total')).toBe('42');
    expect(got.get('chronobound_disruptions_total')).toBe('2');
    expect(got.get('chronobound_problems_total{reason="stale-sample"}')).toBe('1');
    expect(got.get('chronobound_problems_total{reason="timeout"}')).toBe('3');
    expect(text).toContain('# TYPE chronobound_problems_total counter\n');
    expect(text).toContain('# TYPE chronobound_uncertainty_seconds gauge\n');
    expect(text).toMatch(/^# HELP chronobound_status /);
    expect(text.endsWith('\n')).toBe(true);
  });

  it('exports each NTP server: reach, state one-hot, delay, offset, stratum, poll', () => {
    expect(got.get('chronobound_ntp_server_reach{server="127.0.0.1:123"}')).toBe('247');
    expect(got.get('chronobound_ntp_server_reach{server="[::1]:11123"}')).toBe('0');
    expect(got.get('chronobound_ntp_server_state{server="127.0.0.1:123",state="ok"}')).toBe('1');
    expect(got.get('chronobound_ntp_server_state{server="127.0.0.1:123",state="pending"}')).toBe(
      '0',
    );
    expect(got.get('chronobound_ntp_server_state{server="[::1]:11123",state="unreachable"}')).toBe(
      '1',
    );
    expect(got.get('chronobound_ntp_server_delay_seconds{server="127.0.0.1:123"}')).toBe('0.004');
    expect(got.get('chronobound_ntp_server_delay_seconds{server="[::1]:11123"}')).toBe('NaN');
    expect(got.get('chronobound_ntp_server_offset_seconds{server="127.0.0.1:123"}')).toBe('0.0125');
    expect(got.get('chronobound_ntp_server_stratum{server="127.0.0.1:123"}')).toBe('2');
    expect(got.get('chronobound_ntp_server_poll_interval_seconds{server="127.0.0.1:123"}')).toBe(
      '64',
    );
    expect(got.get('chronobound_clockbound_writes_total')).toBe('17');
    expect(got.get('chronobound_clockbound_bound_seconds')).toBe('0.001234567');
    expect(got.get('chronobound_clockbound_status{status="free-running"}')).toBe('1');
  });

  it('writes +Inf and NaN for a clock without a sample, and no learned rate', () => {
    const empty = formatPrometheusMetrics({
      ...metrics,
      status: 'unsynchronized',
      uncertaintyMs: Infinity,
      offsetFromWallMs: Number.NaN,
      sampleAgeMs: Number.NaN,
      sampleErrorMs: Number.NaN,
      sampleSource: '',
      learnedRatePpm: undefined,
      problems: {},
    });
    const e = samples(empty);
    expect(e.get('chronobound_uncertainty_seconds')).toBe('+Inf');
    expect(e.get('chronobound_sample_age_seconds')).toBe('NaN');
    expect([...e.keys()].some((k) => k.startsWith('chronobound_learned_frequency_ppm'))).toBe(
      false,
    );
    expect([...e.keys()].some((k) => k.startsWith('chronobound_ntp_'))).toBe(false);
  });

  it.skipIf(promtool === undefined)('passes `promtool check metrics`', async () => {
    for (const t of [
      text,
      formatPrometheusMetrics({ ...metrics, uncertaintyMs: Infinity, learnedRatePpm: undefined }),
    ]) {
      const r = await check(t);
      expect(r.output).toBe('');
      expect(r.code).toBe(0);
    }
  });

  it.skipIf(promtool === undefined)(
    'promtool does catch a broken exposition (the check is real)',
    async () => {
      const r = await check('# TYPE chronobound_x counter\nchronobound_x 1\n');
      expect(r.code).not.toBe(0);
      expect(r.output).toMatch(/_total/);
    },
  );
});

describe('metricsEndpoint', () => {
  const source = manualSource();
  const clock = new TrueClock({ source, watchdogIntervalMs: 0 });
  let server: Server;
  let port: number;

  beforeAll(async () => {
    source.push({
      monotonicAt: performance.now(),
      offsetMs: Date.now() - performance.now(),
      errorMs: 1,
      source: 'manual',
    });
    server = createServer(metricsEndpoint(clock, { ntp: { servers: () => servers } }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await clock.close();
  });

  function get(
    path: string,
    method = 'GET',
  ): Promise<{ status: number; type: string | undefined; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }),
        );
      });
      req.once('error', reject);
      req.end();
    });
  }

  it('serves a fresh snapshot at GET /metrics, 404 elsewhere, 405 for other methods', async () => {
    const r = await get('/metrics');
    expect(r.status).toBe(200);
    expect(r.type).toBe(PROMETHEUS_CONTENT_TYPE);
    expect(r.body).toContain('chronobound_status{status="synchronized"} 1\n');
    expect(r.body).toContain('chronobound_samples_accepted_total 1\n');
    expect(r.body).toContain('chronobound_ntp_server_reach{server="127.0.0.1:123"} 247\n');
    if (promtool !== undefined) expect((await check(r.body)).code).toBe(0);
    expect((await get('/metrics?x=1')).status).toBe(200);
    const head = await get('/metrics', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect((await get('/')).status).toBe(404);
    expect((await get('/metrics', 'POST')).status).toBe(405);
  });

  it('hands other paths to next() when given', () => {
    const handler = metricsEndpoint(clock);
    let called = false;
    handler(
      { url: '/other', method: 'GET' } as Parameters<typeof handler>[0],
      {} as Parameters<typeof handler>[1],
      () => {
        called = true;
      },
    );
    expect(called).toBe(true);
  });
});
