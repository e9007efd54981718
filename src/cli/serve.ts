/**
 * `chronobound serve`: the programmable loopback NTP server of
 * `chronobound/testing/node`, as a process — for users' own tests against any NTP
 * client. SIGINT/SIGTERM close it cleanly.
 *
 * @module
 */
import { isIP } from 'node:net';
import { InvalidArgumentError } from '../errors.js';
import { createNtpServer } from '../testing/node/index.js';
import { delayFlag, intFlag, numberFlag } from './args.js';
import { defineCommand, switchOptions, valueOptions } from './command.js';
import { ExitCode } from './errors.js';
import { untilAborted, type Command } from './io.js';

const OPTIONS = {
  ...valueOptions('port', 'host', 'offset-ms', 'delay-ms', 'jitter-ms', 'drift-ppm', 'stratum'),
  ...switchOptions('json'),
};

const HELP = `Usage: chronobound serve [options]

Runs a loopback NTP server whose clock, delays and drift you choose, for tests.
It speaks real NTPv4, so chronyd, ntpdate or chronobound can use it.

Options:
  --port N            UDP port (default 11123; 0 picks a free one)
  --host IP           address to bind (default 127.0.0.1)
  --offset-ms X       server clock minus this machine's clock (default 0)
  --delay-ms A/B      one-way delays (ms) of request A and reply B; one number for both
                      (default 0/0)
  --jitter-ms J       extra random delay in [0, J) each way (default 0)
  --drift-ppm D       server clock rate error (default 0)
  --stratum S         stratum to advertise, 1-15 (default 1)
  --json              print the bound address as one JSON line
  -h, --help          show this help

Stops on Ctrl-C (SIGINT) or SIGTERM and prints how many requests it answered.
`;

/**
 * Runs `chronobound serve` until the process is signalled.
 * @internal
 */
export const runServe: Command = defineCommand(
  { name: 'serve', options: OPTIONS, help: HELP },
  async (values, io) => {
    const port = intFlag('--port', values.port, 11123, 0, 65535);
    const host = values.host ?? '127.0.0.1';
    if (isIP(host) === 0) throw new InvalidArgumentError('--host', host, 'an IPv4 or IPv6 address');
    const offsetMs = numberFlag('--offset-ms', values['offset-ms'], 0);
    const [requestDelayMs, responseDelayMs] = delayFlag('--delay-ms', values['delay-ms']);
    const jitterMs = numberFlag('--jitter-ms', values['jitter-ms'], 0, 0, 60_000);
    const driftPpm = numberFlag('--drift-ppm', values['drift-ppm'], 0, -1e5, 1e5);
    const stratum = intFlag('--stratum', values.stratum, 1, 1, 15);

    const server = await createNtpServer({
      host,
      port,
      offsetMs,
      driftPpm,
      requestDelayMs,
      responseDelayMs,
      jitterMs,
      stratum,
    });
    try {
      if (values.json === true) {
        io.stdout.write(
          `${JSON.stringify({
            address: server.address,
            host: server.host,
            port: server.port,
            offsetMs,
            requestDelayMs,
            responseDelayMs,
            jitterMs,
            driftPpm,
            stratum,
          })}\n`,
        );
      } else {
        io.stdout.write(
          `chronobound NTP server listening on ${server.address} ` +
            `(offset ${offsetMs} ms, delay ${requestDelayMs}/${responseDelayMs} ms` +
            `${jitterMs > 0 ? ` + jitter < ${jitterMs} ms` : ''}, drift ${driftPpm} ppm, stratum ${stratum}); ` +
            'Ctrl-C to stop\n',
        );
      }
      await untilAborted(io.signal);
    } finally {
      await server.close();
    }
    const { requests, replies } = server.stats;
    io.stderr.write(`chronobound serve: stopped after ${requests} requests, ${replies} replies\n`);
    return ExitCode.ok;
  },
);
