// Interop peers for asyncrpc in Node: msgpack-rpc-lite (over msgpack-lite) and msgpack5rpc
// (over msgpack5, the session Neovim's first Node client used).
//
//   node peer.js LIB serve                       listen on 127.0.0.1:0, print "LISTENING <port>", serve until stdin closes
//   node peer.js LIB client HOST PORT [CHECK...] call an asyncrpc server; one JSON line per check
//
// LIB is msgpack-rpc-lite or msgpack5rpc, found through NODE_PATH (install_peers.sh installs them
// into the cache directory). Each library gets a small adapter below; the battery is shared.
'use strict';
const net = require('net');
const util = require('util');
const { Int64BE, Uint64BE } = require('int64-buffer');

// The battery's methods. A handler gets (params, reply); reply is undefined for a notification.
// Requests are handled as they arrive: delayed_echo's timers make the replies come out of order.
function handlers() {
  const notes = [];
  return {
    echo: ([x], reply) => reply(null, x),
    add: ([a, b], reply) => reply(null, a + b),
    delayed_echo: ([ms, x], reply) => setTimeout(() => reply(null, x), ms),
    fail: ([message], reply) => reply(message), // the error object: the message, a string
    note: ([x], reply) => { notes.push(x); if (reply) reply(null, null); },
    notes: (_params, reply) => reply(null, notes),
  };
}

const libraries = {
  // codec int64: msgpack-lite otherwise decodes 64-bit integers into lossy JS numbers; with it
  // they are Int64BE / Uint64BE objects, encoded back exactly.
  'msgpack-rpc-lite': (() => {
    const rpc = () => require('msgpack-rpc-lite');
    const codecOptions = { encode: { int64: true }, decode: { int64: true } };
    return {
      serve(methods, listening) {
        const server = rpc().createServer({}, codecOptions);
        // An unknown method is answered by the library itself: [1, msgid, 'Not Implemented', nil],
        // also for a notification (msgid -1).
        for (const [name, handler] of Object.entries(methods)) server.on(name, handler);
        server.listen(0, '127.0.0.1', () => listening(server.address().port));
      },
      connect(host, port) {
        const client = rpc().createClient(Number(port), host, 0, codecOptions);
        return {
          // request() resolves to [result, msgid], rejects with the error object as it came.
          call: (method, ...params) => client.request(method, ...params).then(([result]) => result),
          notify: (method, ...params) => client.notify(method, ...params),
          close: () => client.close(),
        };
      },
    };
  })(),
  // msgpack5 3.x has no 64-bit integers: it decodes them to JS numbers (doubles) and encodes
  // those as float64. Its Session is symmetric and leaves unknown methods to the application.
  msgpack5rpc: (() => {
    const Session = () => require('msgpack5rpc');
    return {
      serve(methods, listening) {
        const server = net.createServer((socket) => {
          const session = new (Session())();
          session.attach(socket, socket);
          session.on('request', (method, params, response) => {
            const handler = methods[method];
            const reply = (error, result) => (error ? response.send(error, true) : response.send(result));
            if (handler) handler(params, reply);
            else reply(`no such method: ${method}`); // the application's answer: the library has none
          });
          session.on('notification', (method, params) => { if (methods[method]) methods[method](params); });
        });
        server.listen(0, '127.0.0.1', () => listening(server.address().port));
      },
      connect(host, port) {
        const socket = net.connect(Number(port), host);
        const session = new (Session())();
        session.attach(socket, socket);
        return {
          call: (method, ...params) => new Promise((resolve, reject) =>
            session.request(method, params, (error, result) => (error ? reject(error) : resolve(result)))),
          notify: async (method, ...params) => session.notify(method, params),
          close: () => socket.end(),
        };
      },
    };
  })(),
};

function serve(library) {
  library.serve(handlers(), (port) => console.log(`LISTENING ${port}`));
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
    const reply = await client.call('echo', x);
    emit(check, same(reply, x), kind(reply));
  } catch (error) {
    emit(check, false, util.inspect(error));
  }
}

// The error as the library hands it over: whatever the server sent as the error object.
async function expectError(client, check, method, ...params) {
  try {
    const reply = await client.call(method, ...params);
    emit(check, false, `no error: ${util.inspect(reply)}`);
  } catch (error) {
    emit(check, typeof error === 'string', typeof error === 'string' ? error : util.inspect(error));
  }
}

const checks = {
  one_call: async (c) => {
    const sum = await c.call('add', 40, 2);
    emit('one_call', sum === 42, sum);
  },
  concurrent: async (c) => {
    const order = [];
    const calls = [];
    for (let i = 0; i < 100; i++) {
      calls.push(c.call('delayed_echo', 3 * (100 - i), i).then((x) => { order.push(i); return x === i; }));
    }
    const matched = await Promise.all(calls);
    emit('concurrent', matched.every(Boolean), JSON.stringify(order));
  },
  handler_error: (c) => expectError(c, 'handler_error', 'fail', 'boom'),
  unknown_method: (c) => expectError(c, 'unknown_method', 'no_such_method'),
  notification: async (c) => {
    await c.notify('note', 'noted');
    const notes = await c.call('notes');
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

async function client(library, host, port, names) {
  const c = library.connect(host, port);
  for (const name of names.length ? names : Object.keys(checks)) {
    if (!checks[name]) { emit(name, false, 'no such check'); continue; }
    try { await checks[name](c); } catch (error) { emit(name, false, util.inspect(error)); }
  }
  c.close();
}

const [name, mode, ...args] = process.argv.slice(2);
const library = libraries[name];
if (library && mode === 'serve') serve(library);
else if (library && mode === 'client' && args.length >= 2) client(library, args[0], args[1], args.slice(2));
else { console.error('usage: node peer.js LIB serve | node peer.js LIB client HOST PORT [CHECK...]'); process.exit(2); }
