#!/usr/bin/env node
'use strict';
// LogCaster example: a line-based chat server with nicknames and rooms.
//
//   node examples/chat --backend epoll --port 7001
//   nc 127.0.0.1 7001
//
// Commands: /nick <name>, /join <room>, /msg <nick> <text>, /who, /stats, /quit.
// Anything else is said to everyone else in your room.
//
// The interesting part is the SLOW CLIENT POLICY (see send() below). A broadcast
// server cannot pause the whole room because one member stopped reading, and it must
// not queue unbounded data for that member either. So, per client:
//   1. write() returned false (its queue passed the high-water mark): the client is
//      marked slow. We keep queueing for it, but only up to --max-queue bytes: a burst
//      (one big input fanned out to the room within one loop turn) must not cost a
//      reader that is merely a moment behind its messages.
//   2. Past --max-queue, messages to it are dropped and counted, not queued.
//   3. onDrain (its queue emptied): it is no longer slow, and is told how many
//      messages it missed, if any.
//   4. Slow for longer than --slow-timeout ms, or more than --max-drops messages
//      dropped: it is disconnected and the room is told why.
// So a client costs at most --max-queue + one line of server memory, and everyone
// else keeps receiving at full speed.

const { createReactor } = require('@logcaster/core');

// Options by node's own util.parseArgs, each value typed like its default.
function parseArgs(argv, defaults) {
  const options = Object.fromEntries(['help', ...Object.keys(defaults)].map((k) => [k, { type: k === 'help' ? 'boolean' : 'string' }]));
  const { values } = require('node:util').parseArgs({ args: argv, options });
  return Object.fromEntries(Object.entries({ ...defaults, ...values }).map(([k, v]) => [k, typeof defaults[k] === 'number' ? Number(v) : v]));
}

const DEFAULTS = {
  backend: 'auto',
  host: '127.0.0.1',
  port: 7001,
  'max-line': 1024, // bytes per input line, newline excluded
  'max-drops': 1000, // messages dropped for a slow client before it is disconnected
  'high-water': 64 * 1024, // per-client outgoing queue size at which write() says "slow"
  'max-queue': 1024 * 1024, // per-client outgoing queue size past which messages are dropped
  'slow-timeout': 10000, // ms a client may stay slow (no onDrain) before it is disconnected
};
let opts;
try {
  opts = parseArgs(process.argv.slice(2), DEFAULTS);
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error('--port must be 0..65535');
  for (const k of ['max-line', 'max-drops', 'high-water', 'max-queue', 'slow-timeout']) {
    if (!Number.isInteger(opts[k]) || opts[k] < 1) throw new Error(`--${k} must be a positive integer`);
  }
} catch (err) {
  console.error(`chat: ${err.message}`);
  process.exit(2);
}
if (opts.help) {
  console.log('usage: node examples/chat [--backend auto|select|poll|epoll|iouring] [--host 127.0.0.1] [--port 7001]\n' +
    '                          [--max-line 1024] [--max-drops 1000] [--high-water 65536] [--max-queue 1048576]\n' +
    '                          [--slow-timeout 10000]');
  process.exit(0);
}
const MAX_LINE = opts['max-line'];
const MAX_DROPS = opts['max-drops'];
const MAX_QUEUE = opts['max-queue'];
const SLOW_TIMEOUT = opts['slow-timeout'];

const reactor = createReactor({ backend: opts.backend, highWaterMark: opts['high-water'] });

// ---- server state ----
const rooms = new Map(); // room name -> Set<Connection>
const byNick = new Map(); // nick -> Connection
const counters = { messages: 0, dropped: 0, slowDisconnects: 0, longLines: 0, peakBuffered: 0 };
let guestSeq = 0;

const NAME_RE = /^[A-Za-z0-9_-]{1,24}$/;

// ---- the slow-client policy: every byte we send goes through here ----
function send(conn, text) {
  const st = conn.context;
  if (conn.closed || st.gone) return;
  if (st.slow && conn.bufferedAmount >= MAX_QUEUE) {
    st.dropped++;
    counters.dropped++;
    if (st.dropped > MAX_DROPS) disconnectSlow(conn, `${st.dropped} messages dropped`);
    return;
  }
  if (!conn.write(text) && !st.slow) { // queued, but over the high-water mark
    st.slow = true;
    st.slowSince = Date.now();
  }
  const queued = conn.bufferedAmount;
  if (queued > counters.peakBuffered) counters.peakBuffered = queued;
}

// Clients that stay slow too long are cut off even when the room is quiet.
function sweepSlow() {
  const now = Date.now();
  for (const conn of byNick.values()) {
    const st = conn.context;
    if (st.slow && !st.gone && now - st.slowSince > SLOW_TIMEOUT) {
      disconnectSlow(conn, `slow for ${now - st.slowSince} ms, ${st.dropped} messages dropped`);
    }
  }
}

function disconnectSlow(conn, why) {
  const st = conn.context;
  counters.slowDisconnects++;
  console.log(`chat: disconnected ${st.nick}: not reading (${why})`);
  st.gone = true; // no more writes; destroy() drops what is queued
  leaveRoom(conn, `${st.nick} was disconnected: not reading (${why})`);
  conn.destroy();
}

function notice(conn, text) {
  send(conn, `* ${text}\n`);
}

function broadcast(room, from, text) {
  const members = rooms.get(room);
  if (!members) return;
  for (const member of members) if (member !== from) send(member, text);
}

function joinRoom(conn, room) {
  const st = conn.context;
  let members = rooms.get(room);
  if (!members) rooms.set(room, (members = new Set()));
  members.add(conn);
  st.room = room;
  broadcast(room, conn, `* ${st.nick} joined #${room}\n`);
}

function leaveRoom(conn, why) {
  const st = conn.context;
  const members = rooms.get(st.room);
  if (!members || !members.delete(conn)) return;
  if (members.size === 0) rooms.delete(st.room);
  else broadcast(st.room, conn, `* ${why}\n`);
}

// ---- commands ----
function handleLine(conn, line) {
  const st = conn.context;
  if (line === '') return;
  if (line[0] !== '/') {
    counters.messages++;
    broadcast(st.room, conn, `<${st.nick}> ${line}\n`);
    return;
  }
  const sp = line.indexOf(' ');
  const cmd = (sp < 0 ? line : line.slice(0, sp)).toLowerCase();
  const arg = sp < 0 ? '' : line.slice(sp + 1).trim();
  switch (cmd) {
    case '/nick': {
      if (!NAME_RE.test(arg)) return notice(conn, 'usage: /nick <name> (letters, digits, _ or -, at most 24)');
      if (byNick.has(arg)) return notice(conn, `nick ${arg} is taken`);
      const old = st.nick;
      byNick.delete(old);
      byNick.set(arg, conn);
      st.nick = arg;
      broadcast(st.room, conn, `* ${old} is now known as ${arg}\n`);
      return notice(conn, `you are now ${arg}`);
    }
    case '/join': {
      const room = arg.replace(/^#/, '');
      if (!NAME_RE.test(room)) return notice(conn, 'usage: /join <room>');
      if (room === st.room) return notice(conn, `you are already in #${room}`);
      leaveRoom(conn, `${st.nick} left #${st.room}`);
      joinRoom(conn, room);
      return notice(conn, `you joined #${room} (${rooms.get(room).size} here)`);
    }
    case '/msg': {
      const m = /^(\S+)\s+(.+)$/.exec(arg);
      if (!m) return notice(conn, 'usage: /msg <nick> <text>');
      const to = byNick.get(m[1]);
      if (!to) return notice(conn, `no such nick: ${m[1]}`);
      counters.messages++;
      send(to, `*${st.nick}* ${m[2]}\n`);
      return;
    }
    case '/who': {
      const names = [...(rooms.get(st.room) || [])].map((c) => c.context.nick).sort();
      return notice(conn, `#${st.room}: ${names.join(' ')}`);
    }
    case '/stats': {
      let buffered = 0;
      for (const c of byNick.values()) buffered = Math.max(buffered, c.bufferedAmount);
      return notice(conn, `stats clients=${byNick.size} rooms=${rooms.size} messages=${counters.messages} ` +
        `dropped=${counters.dropped} slowDisconnects=${counters.slowDisconnects} longLines=${counters.longLines} ` +
        `maxBuffered=${buffered} peakBuffered=${counters.peakBuffered} rss=${process.memoryUsage().rss}`);
    }
    case '/quit': {
      leaveRoom(conn, `${st.nick} quit${arg ? `: ${arg}` : ''}`);
      st.gone = true;
      conn.end('* bye\n');
      return;
    }
    default:
      return notice(conn, `unknown command ${cmd}; try /nick /join /msg /who /stats /quit`);
  }
}

// ---- line framing: bytes -> lines, each at most MAX_LINE bytes ----
// Length of the line so far, not counting a CR before the LF (or, for a partial line,
// a trailing CR that may turn out to be one).
function lineBytes(carry, data, start, end) {
  const n = carry.length + (end - start);
  const last = end > start ? data[end - 1] : carry[carry.length - 1];
  return last === 13 ? n - 1 : n;
}

function onBytes(conn, data) {
  const st = conn.context;
  let start = 0;
  while (start < data.length && !st.gone) {
    const nl = data.indexOf(10, start);
    const end = nl < 0 ? data.length : nl;
    if (st.discarding) {
      // The rest of an over-long line: skip it without buffering.
      if (nl >= 0) st.discarding = false;
    } else if (lineBytes(st.carry, data, start, end) > MAX_LINE) {
      counters.longLines++;
      st.carry = Buffer.alloc(0);
      st.discarding = nl < 0;
      notice(conn, `line too long (max ${MAX_LINE} bytes), dropped`);
    } else if (nl < 0) {
      // Partial line: copy it (data is only valid during onData).
      st.carry = Buffer.concat([st.carry, data.subarray(start, end)]);
    } else {
      let line = st.carry.length ? Buffer.concat([st.carry, data.subarray(start, end)]).toString('utf8')
        : data.toString('utf8', start, end);
      st.carry = Buffer.alloc(0);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      handleLine(conn, line);
    }
    start = end + 1;
  }
}

const chatHandler = {
  onOpen(conn) {
    let nick;
    do nick = `guest${++guestSeq}`; while (byNick.has(nick));
    conn.context = { nick, room: 'lobby', carry: Buffer.alloc(0), discarding: false, slow: false, slowSince: 0, dropped: 0, gone: false };
    byNick.set(nick, conn);
    notice(conn, `welcome ${nick}, you are in #lobby. Commands: /nick /join /msg /who /stats /quit`);
    joinRoom(conn, 'lobby');
  },
  onData: onBytes,
  onDrain(conn) {
    const st = conn.context;
    if (!st.slow) return;
    st.slow = false;
    if (st.dropped > 0) {
      const n = st.dropped;
      st.dropped = 0;
      notice(conn, `you were not reading: ${n} messages dropped`);
    }
  },
  onEnd(conn) {
    // The client half-closed. The reactor now ends our side too, and write() would
    // throw from here on: leave the room at once so nobody writes to it any more.
    const st = conn.context;
    if (st.gone) return;
    st.gone = true;
    leaveRoom(conn, `${st.nick} left`);
  },
  onClose(conn) {
    const st = conn.context;
    if (!st) return;
    if (!st.gone) leaveRoom(conn, `${st.nick} left`);
    if (byNick.get(st.nick) === conn) byNick.delete(st.nick);
  },
};

function shutdown() {
  reactor.close().then(() => process.exit(0));
}
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);

reactor.setTimer(Math.min(1000, SLOW_TIMEOUT), sweepSlow, { repeat: true });
const listener = reactor.listen({ host: opts.host, port: opts.port }, chatHandler);
console.log(`chat listening on ${listener.host}:${listener.port} (backend ${reactor.backend})`);
