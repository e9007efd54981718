import { HybridLogicalClock, TrueClock, formatHlc, hlcToBigInt } from 'chronobound';
import { ntpSource } from 'chronobound/ntp';
import { createNtpServer } from 'chronobound/testing/node';

// A loopback NTP reference whose clock runs 250 ms ahead of this machine's.
const server = await createNtpServer({ offsetMs: 250 });
const clock = new TrueClock({ source: ntpSource({ servers: [server.address] }) });
await clock.ready({ timeoutMs: 5000 });

// The reference's clock read just before and just after: the truth lies in between.
const before = server.trueNow();
const r = clock.now();
const after = server.trueNow();
console.log(r.status, `ε = ${r.uncertaintyMs.toFixed(3)} ms`);
console.log('offset vs Date.now():', (r.estimate - Date.now()).toFixed(1), 'ms');
console.log('contains the reference:', r.earliest <= after && before <= r.latest);

// Commit-wait: resolve only once the timestamp has definitely passed everywhere.
const { timestamp, waitedMs } = await clock.commitWait((ts) => `row@${ts}`);
console.log('after(timestamp):', clock.after(timestamp), `waited ${waitedMs.toFixed(3)} ms`);

// Hybrid logical clock on the synchronized time, encoded for a BIGINT column.
const hlc = new HybridLogicalClock({ node: 'node-a', physical: () => clock.now().estimate });
const ts = hlc.now();
console.log(formatHlc(ts), hlcToBigInt(ts));

await clock.close();
await server.close();
