// Sends records to a forward server with the npm fluent-logger package, the
// way a Node.js application would: Message mode, requireAckResponse, and the
// shared-key (and optional user) handshake.  Reads one JSON job from argv[2]:
//   {port, tag, security: {clientHostname, sharedKey, username?, password?},
//    records: [{label, data, sec, nsec}]}
// and prints one JSON line per acked record ({"acked": i}), then
// {"done": n} and exits 0; on a client error prints {"error": message} and
// exits 1.  Used by test_forward_clients.py.
'use strict';

const path = require('path');
const modules = process.env.FLUENT_LOGGER_DIR ||
  path.join(__dirname, '..', '..', 'node', 'node_modules', 'fluent-logger');
const logger = require(modules);

const job = JSON.parse(process.argv[2]);
const quiet = { info() {}, error(...a) { process.stderr.write(a.join(' ') + '\n'); } };
const sender = logger.createFluentSender(job.tag, {
  host: '127.0.0.1',
  port: job.port,
  timeout: 10.0,
  requireAckResponse: true,
  ackResponseTimeout: 20000,
  enableReconnect: false,
  security: job.security,
  internalLogger: quiet,
});

let finished = false;
function finish(code, line) {
  if (finished) return;
  finished = true;
  process.stdout.write(JSON.stringify(line) + '\n');
  sender.end(null, null, () => process.exit(code));
  setTimeout(() => process.exit(code), 2000).unref();
}

sender.on('error', (err) => finish(1, { error: String(err && err.message || err) }));

let acked = 0;
job.records.forEach((r, i) => {
  const t = new logger.EventTime(r.sec, r.nsec);
  sender.emit(r.label, r.data, t, (err) => {
    if (err) return finish(1, { error: String(err.message || err), record: i });
    acked++;
    process.stdout.write(JSON.stringify({ acked: i }) + '\n');
    if (acked === job.records.length) finish(0, { done: acked });
  });
});
