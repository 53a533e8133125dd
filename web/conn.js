// The connection to the server: one WebSocket to /ws, one JSON frame per
// text message. Requests carry a rid and get their reply by it; frames that
// answer no request waiting here are pushes. After a lost connection it
// dials again with a backoff, until stopped.

import { Backoff } from './state.js';

// ConnLost is what a request waiting for its reply gets when the connection
// goes first: the request may or may not have been done.
export class ConnLost extends Error {
  constructor(why) {
    super(why || 'the connection was lost');
    this.code = 'disconnected';
  }
}

export class Conn {
  // opts: url; onOpen(), onClose({delay, why}), onPush(frame); WebSocket
  // (the constructor, for tests); pingEvery and replyTimeout in ms.
  constructor(opts) {
    this.url = opts.url;
    this.WS = opts.WebSocket || globalThis.WebSocket;
    this.onOpen = opts.onOpen || (() => {});
    this.onClose = opts.onClose || (() => {});
    this.onPush = opts.onPush || (() => {});
    this.pingEvery = opts.pingEvery || 25000;
    this.replyTimeout = opts.replyTimeout || 20000;
    this.backoff = opts.backoff || new Backoff();
    this.ws = null;
    this.open = false;
    this.stopped = true;
    this.rid = 0; // never reset: a late reply can never match a new request
    this.waiting = new Map(); // rid -> {resolve, reject, type}
    this.redial = null; // timer of the next dial
    this.pinger = null;
    this.lastHeard = 0;
  }

  // start dials now (if not connected or dialing) and keeps the connection
  // up until stop.
  start() {
    this.stopped = false;
    if (this.ws) return;
    clearTimeout(this.redial);
    this.redial = null;
    this.dial();
  }

  // stop closes the connection and dials no more.
  stop() {
    this.stopped = true;
    clearTimeout(this.redial);
    this.redial = null;
    if (this.ws) this.drop('closed');
  }

  // now dials at once if a redial is waiting (the network came back, the
  // tab was shown again).
  now() {
    if (!this.stopped && !this.ws && this.redial) {
      clearTimeout(this.redial);
      this.redial = null;
      this.dial();
    }
  }

  dial() {
    let ws;
    try {
      ws = new this.WS(this.url);
    } catch (e) {
      this.lost(String(e && e.message ? e.message : e));
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.open = true;
      this.lastHeard = Date.now();
      this.pinger = setInterval(() => this.ping(), this.pingEvery);
      this.onOpen();
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.lastHeard = Date.now();
      this.frame(ev.data);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.lost(ev && ev.reason ? ev.reason : 'the connection was closed');
    };
    ws.onerror = () => {}; // a close follows
  }

  // frame handles one text message from the server.
  frame(data) {
    if (typeof data !== 'string') return;
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    if (!f || typeof f !== 'object' || Array.isArray(f) || typeof f.type !== 'string') return;
    if (f.rid !== undefined && this.waiting.has(f.rid)) {
      const w = this.waiting.get(f.rid);
      this.waiting.delete(f.rid);
      w.resolve(f);
      return;
    }
    // A reply nobody waits for any more (there is none on this client)
    // has "ok"; a push never has.
    if ('ok' in f) return;
    this.onPush(f);
  }

  // request sends {type, rid, ...fields} and resolves with the reply frame
  // (ok or not). It rejects with ConnLost when the connection is not open
  // or goes before the reply.
  request(type, fields = {}) {
    if (!this.open) return Promise.reject(new ConnLost('not connected'));
    const rid = ++this.rid;
    const p = new Promise((resolve, reject) => this.waiting.set(rid, { resolve, reject, type }));
    try {
      this.ws.send(JSON.stringify({ ...fields, type, rid }));
    } catch (e) {
      this.drop(String(e && e.message ? e.message : e));
    }
    return p;
  }

  // ping keeps the connection alive (the server closes one silent for 90
  // s) and finds a dead one: no frame at all for replyTimeout after a ping
  // means the connection is gone, whatever the socket says.
  ping() {
    if (!this.open) return;
    const sent = Date.now();
    this.request('ping').catch(() => {});
    setTimeout(() => {
      if (this.open && this.lastHeard < sent) this.drop('the server stopped answering');
    }, this.replyTimeout);
  }

  // drop ends the connection at once from this side.
  drop(why) {
    const ws = this.ws;
    if (!ws) return;
    this.lost(why);
    try {
      ws.close();
    } catch {
      // already closing
    }
  }

  lost(why) {
    this.ws = null;
    this.open = false;
    clearInterval(this.pinger);
    this.pinger = null;
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of waiting) w.reject(new ConnLost(why));
    let delay = null;
    if (!this.stopped) {
      delay = this.backoff.next();
      this.redial = setTimeout(() => {
        this.redial = null;
        if (!this.stopped) this.dial();
      }, delay);
    }
    this.onClose({ delay, why });
  }
}
