#!/usr/bin/env node
// `npm run docs:faults`: runs the fault tests (virtual time and real UDP) and writes the
// adversarial table they measure into docs/truetime.md, between the markers
// <!-- fault-table:start --> and <!-- fault-table:end -->. Every row is what one test
// saw on this machine: readings taken after the fault, trusted readings that missed the
// truth, and when the clock stopped trusting itself.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const doc = join(root, 'docs', 'truetime.md');
const work = mkdtempSync(join(tmpdir(), 'chronobound-faults-'));
const rowsFile = join(work, 'rows.jsonl');

try {
  execFileSync(
    process.execPath,
    [
      join(root, 'node_modules', 'vitest', 'vitest.mjs'),
      'run',
      'test/truetime/faults.test.ts',
      'test/ntp/faults.test.ts',
    ],
    { cwd: root, stdio: 'inherit', env: { ...process.env, CHRONOBOUND_FAULT_TABLE: rowsFile } },
  );
  const rows = readFileSync(rowsFile, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));
  const escape = (text) => String(text).replaceAll('|', '\\|');
  const number = (n) => n.toLocaleString('en-US');
  const lines = [
    '| scenario | time | readings | trusted misses | detected after | what the clock did |',
    '| --- | --- | --: | --: | --: | --- |',
    ...rows.map(
      (r) =>
        `| ${escape(r.scenario)} | ${r.time} | ${number(r.readings)} | ${number(r.misses)} | ` +
        `${r.detectionMs === null ? '—' : `${r.detectionMs.toFixed(3)} ms`} | ${escape(r.outcome)} |`,
    ),
  ];
  const text = readFileSync(doc, 'utf8');
  const start = '<!-- fault-table:start -->';
  const end = '<!-- fault-table:end -->';
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from === -1 || to === -1) throw new Error(`${doc} has no ${start} … ${end} markers`);
  const generated = `${start}\n\n${lines.join('\n')}\n\n${end}`;
  writeFileSync(doc, text.slice(0, from) + generated + text.slice(to + end.length));
  // Aligned as the repository's formatter wants it, so `npm run lint` stays clean.
  execFileSync(
    process.execPath,
    [join(root, 'node_modules', 'prettier', 'bin', 'prettier.cjs'), '--write', doc],
    { cwd: root, stdio: 'inherit' },
  );
  console.log(`\nwrote ${rows.length} rows into docs/truetime.md`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
