// Sends records to a forward server with the npm fluent-logger, asking for
// acks (requireAckResponse), and exits 0 once every emit's callback reported
// success, 1 on the first error.
//
//   node send_node.js PORT TAG COUNT BASE_SEC
//
// Record i: {id: "node-<i>", user_id: "u<i % 7>", n: i, msg: "hello from node"}
// with EventTime(BASE_SEC + i, i * 1000 + 7): the test knows every value.
'use strict';
const path = require('path');
const logger = require(path.join(process.env.SRCDIR || '.', 'test', 'node', 'node_modules', 'fluent-logger'));

const [port, tag, count, baseSec] = process.argv.slice(2).map((v, i) => (i === 1 ? v : Number(v)));
const sender = logger.createFluentSender(null, {
  host: '127.0.0.1',
  port: port,
  timeout: 10,
  requireAckResponse: true,
  ackResponseTimeout: 20000,
  enableReconnect: false,
  internalLogger: { info() {}, error: (...a) => console.error(...a) },
});
sender.on('error', (err) => {
  console.error('fluent-logger error:', err && err.message);
  process.exit(1);
});

let acked = 0;
for (let i = 0; i < count; i++) {
  const record = { id: `node-${i}`, user_id: `u${i % 7}`, n: i, msg: 'hello from node' };
  sender.emit(tag, record, new logger.EventTime(baseSec + i, i * 1000 + 7), (err) => {
    if (err) {
      console.error('emit failed:', err.message || err);
      process.exit(1);
    }
    if (++acked === count) {
      console.log(`acked ${acked}`);
      sender.end(null, null, () => process.exit(0));
    }
  });
}
setTimeout(() => {
  console.error(`timed out with ${acked} of ${count} acked`);
  process.exit(1);
}, 30000).unref();
