// A Node.js application logging over TLS with the npm fluent-logger
// (its `tls: true, tlsOptions` settings, passed to Node's tls.connect):
// the server's certificate checked against a CA file, a client
// certificate when given, requireAckResponse.  One JSON job in argv[2]:
//   {port, tag, ca, cert?, key?, sharedKey?, records: [{label, data}]}
// Prints {"acked": n} once every record is acked and exits 0; on an error
// prints {"error": message} and exits 1.  Used by test_forward_tls.py.
'use strict';

const fs = require('fs');
const path = require('path');
const logger = require(path.join(__dirname, 'node_modules', 'fluent-logger'));

const job = JSON.parse(process.argv[2]);
const tlsOptions = { ca: fs.readFileSync(job.ca), servername: 'localhost' };
if (job.cert) {
  tlsOptions.cert = fs.readFileSync(job.cert);
  tlsOptions.key = fs.readFileSync(job.key);
}
const options = {
  host: '127.0.0.1',
  port: job.port,
  timeout: 10.0,
  tls: true,
  tlsOptions,
  requireAckResponse: true,
  ackResponseTimeout: 20000,
  enableReconnect: false,
  internalLogger: { info() {}, error() {} },
};
if (job.sharedKey) options.security = { clientHostname: 'node-tls', sharedKey: job.sharedKey };
const sender = logger.createFluentSender(job.tag, options);

function report(code, line) {
  process.stdout.write(JSON.stringify(line) + '\n');
  process.exitCode = code;
  sender.end();
  setTimeout(() => process.exit(code), 500).unref();
}

const emitted = job.records.map((r) => new Promise((resolve, reject) => {
  sender.emit(r.label, r.data, (err) => (err ? reject(err) : resolve()));
}));
sender.on('error', (err) => report(1, { error: String(err && err.message || err) }));
Promise.all(emitted).then(
  () => report(0, { acked: emitted.length }),
  (err) => report(1, { error: String(err && err.message || err) }));
