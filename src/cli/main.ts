const usage = `Usage: chronobound <command> [options]

Commands:
  now     print one honest reading [earliest, latest]
  watch   live view of the uncertainty over time
  serve   run a programmable loopback NTP server
  demo    three skewed nodes writing to SQLite: wall-clock LWW vs HLC vs commit-wait
`;
process.stdout.write(usage);
