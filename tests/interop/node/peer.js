// Interop peer for asyncrpc: msgpack-rpc-lite (npm), over msgpack-lite.
//
//   node peer.js serve                       listen on 127.0.0.1:0, print "LISTENING <port>", serve until stdin closes
//   node peer.js client HOST PORT [CHECK...] call an asyncrpc server; one JSON line per check
//
// Found through NODE_PATH (install_peers.sh installs it into the cache directory).
// codec int64: msgpack-lite otherwise decodes 64-bit integers into lossy JS numbers; with it they
// are Int64BE / Uint64BE objects, encoded back exactly.
'use strict';
const rpc = require('msgpack-rpc-lite');
const msgpack = require('msgpack-lite');
const { Int64BE, Uint64BE } = require('int64-buffer');
const util = require('util');

const codecOptions = { encode: { int64: true }, decode: { int64: true } };

function serve() {
  const notes = [];
  const server = rpc.createServer({}, codecOptions);
  // A handler gets (params, callback); callback is undefined for a notification.
  server.on('echo', ([x], cb) => cb(null, x));
  server.on('add', ([a, b], cb) => cb(null, a + b));
  // Requests are handled as they arrive; the timers make the replies come back out of order.
  server.on('delayed_echo', ([ms, x], cb) => setTimeout(() => cb(null, x), ms));
  server.on('fail', ([message], cb) => cb(new Error(message))); // sent as error.message, a string
  server.on('note', ([x], cb) => { notes.push(x); if (cb) cb(null, null); });
  server.on('notes', (_params, cb) => cb(null, notes));
  server.listen(0, '127.0.0.1', () => console.log(`LISTENING ${server.address().port}`));
  process.stdin.on('end', () => process.exit(0)).resume(); // the test closed our stdin
}

function emit(check, ok, detail) {
  console.log(JSON.stringify({ check, ok: Boolean(ok), detail: String(detail) }));
}

// Equal, type included (Buffer vs string, and 64-bit integers compared as their decimal text).
function same(a, b) {
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  if (a instanceof Int64BE || a instanceof Uint64BE) return a.constructor === b.constructor && a.toString() === b.toString();
  return a === b;
}

function kind(x) {
  return Buffer.isBuffer(x) ? 'Buffer' : (x && x.constructor ? x.constructor.name : typeof x);
}

async function echo(client, check, x) {
  try {
    const [reply] = await client.request('echo', x);
    emit(check, same(reply, x), kind(reply));
  } catch (error) {
    emit(check, false, util.inspect(error));
  }
}

// The error as the library hands it over: whatever the server sent as the error object.
async function expectError(client, check, method, ...params) {
  try {
    const [reply] = await client.request(method, ...params);
    emit(check, false, `no error: ${util.inspect(reply)}`);
  } catch (error) {
    emit(check, typeof error === 'string', typeof error === 'string' ? error : util.inspect(error));
  }
}

const checks = {
  one_call: async (c) => {
    const [sum] = await c.request('add', 40, 2);
    emit('one_call', sum === 42, sum);
  },
  concurrent: async (c) => {
    const order = [];
    const calls = [];
    for (let i = 0; i < 100; i++) {
      calls.push(c.request('delayed_echo', 100 - i, i).then(([x]) => { order.push(i); return x === i; }));
    }
    const matched = await Promise.all(calls);
    emit('concurrent', matched.every(Boolean), JSON.stringify(order));
  },
  handler_error: (c) => expectError(c, 'handler_error', 'fail', 'boom'),
  unknown_method: (c) => expectError(c, 'unknown_method', 'no_such_method'),
  notification: async (c) => {
    await c.notify('note', 'noted');
    const [notes] = await c.request('notes');
    emit('notification', notes.length === 1 && notes[0] === 'noted', JSON.stringify(notes));
  },
  bin_and_str: async (c) => {
    await echo(c, 'bin_and_str:bin', Buffer.from([0, 1, 0xfe, 0xff]));
    await echo(c, 'bin_and_str:str', 'text');
  },
  large: async (c) => {
    await echo(c, 'large:str', '0123456789abcdef'.repeat(1 << 16));
    await echo(c, 'large:bin', Buffer.alloc(1 << 20).fill(Buffer.from([0, 0x80, 0xff, 7])));
  },
  unicode: (c) => echo(c, 'unicode', 'emoji \u{1F600} combining e\u0301 CJK \u6f22 nul \u0000'),
  int64: async (c) => {
    await echo(c, 'int64:min', new Int64BE('-9223372036854775808', 10));
    await echo(c, 'int64:max', new Uint64BE('9223372036854775807', 10)); // positive: sent as uint64, as msgpack-python does
    await echo(c, 'int64:uint64_max', new Uint64BE('18446744073709551615', 10));
  },
};

async function client(host, port, names) {
  const c = rpc.createClient(Number(port), host, 0, codecOptions);
  for (const name of names.length ? names : Object.keys(checks)) {
    if (!checks[name]) { emit(name, false, 'no such check'); continue; }
    try { await checks[name](c); } catch (error) { emit(name, false, util.inspect(error)); }
  }
  c.close();
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'serve') serve();
else if (mode === 'client' && args.length >= 2) client(args[0], args[1], args.slice(2));
else { console.error('usage: node peer.js serve | node peer.js client HOST PORT [CHECK...]'); process.exit(2); }
