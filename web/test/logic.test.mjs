// Tests of the browser client's logic that needs no page: node --test web/test/
// (node 20 or later). They drive Conn with a fake WebSocket.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Conn, ConnLost } from '../conn.js';
import { AckBatch, Backoff, Conv, Outbox, chatRequest, cidMaker, msgKey, newer, pushKey, retryable, target, typingText } from '../state.js';

// FakeWS records what the client sends; the test plays the server.
class FakeWS {
  static last = null;
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closed = false;
    FakeWS.last = this;
  }
  send(s) {
    this.sent.push(JSON.parse(s));
  }
  close() {
    this.closed = true;
  }
  // server side
  open() {
    this.onopen();
  }
  push(obj) {
    this.onmessage({ data: JSON.stringify(obj) });
  }
  drop() {
    this.onclose({ reason: 'gone' });
  }
}

function newConn(extra = {}) {
  const pushes = [];
  const closes = [];
  let opens = 0;
  const c = new Conn({
    url: 'ws://x/ws',
    WebSocket: FakeWS,
    onOpen: () => opens++,
    onClose: (e) => closes.push(e),
    onPush: (f) => pushes.push(f),
    pingEvery: 1e9,
    backoff: new Backoff(1, 4, () => 0.5),
    ...extra,
  });
  return { c, pushes, closes, opens: () => opens };
}

test('replies are matched by rid, pushes go by type', async () => {
  const { c, pushes } = newConn();
  c.start();
  const ws = FakeWS.last;
  ws.open();
  const p1 = c.request('whois', { name: 'bob' });
  const p2 = c.request('read', { with: 2, id: 7 });
  assert.equal(ws.sent.length, 2);
  assert.deepEqual(ws.sent[0], { name: 'bob', type: 'whois', rid: 1 });
  assert.equal(ws.sent[1].rid, 2);
  // A read push (no rid) between the replies, and replies out of order.
  ws.push({ type: 'read', user: { id: 2, name: 'bob' }, with: 2, id: 9 });
  ws.push({ type: 'read', rid: 2, ok: true });
  ws.push({ type: 'whois', rid: 1, ok: false, code: 'no_such_user', error: 'no such user' });
  const [r1, r2] = await Promise.all([p1, p2]);
  assert.equal(r1.code, 'no_such_user');
  assert.equal(r2.ok, true);
  assert.deepEqual(pushes.map((f) => f.type), ['read']);
  // A reply nobody waits for, an unknown push, garbage: no trouble.
  ws.push({ type: 'ping', rid: 99, ok: true });
  ws.push({ type: 'future_push', x: 1 });
  ws.onmessage({ data: 'not json' });
  ws.onmessage({ data: '[1,2]' });
  assert.deepEqual(pushes.map((f) => f.type), ['read', 'future_push']);
  c.stop();
});

test('a lost connection fails what waits and dials again; stop does not', async () => {
  const { c, closes } = newConn();
  c.start();
  let ws = FakeWS.last;
  ws.open();
  const p = c.request('chat', { to: 2, text: 'hi', cid: 'a-1' });
  ws.drop();
  await assert.rejects(p, ConnLost);
  assert.equal(closes.length, 1);
  assert.equal(typeof closes[0].delay, 'number');
  await assert.rejects(c.request('ping'), ConnLost); // not open
  await new Promise((r) => setTimeout(r, 20));
  assert.notEqual(FakeWS.last, ws, 'dialled again');
  ws = FakeWS.last;
  ws.open();
  // rids go on: a late reply of the old connection can match nothing new.
  c.request('ping').catch(() => {});
  assert.equal(ws.sent[0].rid, 2);
  c.stop();
  assert.equal(ws.closed, true);
  assert.equal(closes[closes.length - 1].delay, null);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(FakeWS.last, ws, 'no dial after stop');
});

test('a silent connection is dropped after a ping without answer', async () => {
  const { c, closes } = newConn({ pingEvery: 5, replyTimeout: 10 });
  c.start();
  FakeWS.last.open();
  await new Promise((r) => setTimeout(r, 40));
  assert.ok(closes.length >= 1);
  assert.equal(closes[0].why, 'the server stopped answering');
  c.stop();
});

test('conversation keys', () => {
  assert.equal(msgKey({ id: 1, from: 1, to: 2 }, 1), 'u:2');
  assert.equal(msgKey({ id: 1, from: 2, to: 1 }, 1), 'u:2');
  assert.equal(msgKey({ id: 1, from: 2, group: 5 }, 1), 'g:5');
  assert.equal(pushKey({ with: 3 }), 'u:3');
  assert.equal(pushKey({ group: 4 }), 'g:4');
  assert.deepEqual(target('u:3'), { with: 3 });
  assert.deepEqual(target('g:4'), { group: 4 });
});

test('duplicates are dropped by id and the latest state wins', () => {
  const c = new Conv('u:2');
  const m = { id: 5, from: 2, to: 1, text: 'hi', ts: 1 };
  assert.equal(c.put(m), 'new');
  assert.equal(c.put({ ...m }), 'same');
  assert.equal(c.put({ ...m, text: 'hey', edited: 3 }), 'updated');
  assert.equal(c.put(m), 'same', 'an older copy does not undo the edit');
  assert.equal(c.msgs.get(5).text, 'hey');
  assert.equal(c.put({ ...m, text: '', deleted: true }), 'updated');
  assert.equal(c.put({ ...m, text: 'again', edited: 9 }), 'same', 'a tombstone stays');
  assert.equal(c.msgs.size, 1);
  assert.equal(c.last.deleted, true);
  assert.equal(newer(undefined, m), m);
});

test('unread counts each message once and read marks move forward only', () => {
  const me = 1;
  const c = new Conv('u:2');
  // The conversations reply said 2 unread up to id 10.
  c.unread = 2;
  c.counted = 10;
  c.countNew({ id: 9, from: 2 }, me); // from the backlog, already counted
  assert.equal(c.unread, 2);
  c.countNew({ id: 11, from: 2 }, me);
  c.countNew({ id: 11, from: 2 }, me);
  c.countNew({ id: 12, from: me }, me);
  assert.equal(c.unread, 3);
  for (const id of [9, 10, 11, 12]) c.put({ id, from: id === 12 ? me : 2, to: me, text: 'x', ts: id });
  assert.equal(c.markRead(12, me), true);
  assert.equal(c.unread, 0);
  assert.equal(c.markRead(11, me), false);
  assert.equal(c.read, 12);
});

test('the newest page drops older messages that may leave a gap', () => {
  const c = new Conv('g:1');
  c.put({ id: 1, from: 2, group: 1, text: 'old', ts: 1 });
  c.put({ id: 300, from: 2, group: 1, text: 'pushed', ts: 3 });
  const page = [];
  for (let id = 250; id < 300; id++) page.push({ id, from: 2, group: 1, text: 't', ts: 2 });
  c.newestPage(page, 50);
  assert.equal(c.msgs.has(1), false);
  assert.equal(c.msgs.has(300), true);
  assert.equal(c.minId(), 250);
  assert.equal(c.maxId(), 300);
  assert.equal(c.loaded, true);
});

test('the outbox keeps order and cids across a reload', () => {
  const store = new Map();
  const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v), removeItem: (k) => store.delete(k) };
  const o = new Outbox(storage, 'k');
  o.add({ cid: 'c1', conv: 'u:2', text: 'one' });
  o.add({ cid: 'c2', conv: 'g:3', text: 'two' });
  o.add({ cid: 'c3', conv: 'u:2', text: 'three' });
  o.fail('c3', 'blocked');
  const again = new Outbox(storage, 'k');
  assert.deepEqual(again.pending().map((it) => it.cid), ['c1', 'c2']);
  assert.deepEqual(again.forConv('u:2').map((it) => it.cid), ['c1', 'c3']);
  assert.deepEqual(chatRequest(again.get('c1')), ['chat', { to: 2, text: 'one', cid: 'c1' }]);
  assert.deepEqual(chatRequest(again.get('c2')), ['group_chat', { group: 3, text: 'two', cid: 'c2' }]);
  again.remove('c1');
  again.remove('c2');
  again.remove('c3');
  assert.equal(store.has('k'), false);
  storage.setItem('k', '{broken');
  assert.equal(new Outbox(storage, 'k').items.length, 0);
  assert.equal(retryable('unavailable'), true);
  assert.equal(retryable('blocked'), false);
});

test('cids are unique and short', () => {
  let n = 0;
  const next = cidMaker((k) => Uint8Array.from({ length: k }, () => n++));
  const a = next();
  const b = next();
  assert.notEqual(a, b);
  assert.ok(a.length <= 64);
  assert.match(a, /^[0-9a-f]{16}-1$/);
});

test('acks are batched and kept while they cannot go', async () => {
  const sent = [];
  let up = false;
  const acks = new AckBatch((ids) => (up ? (sent.push(ids), true) : false), 5, 3);
  acks.add(1);
  acks.add(2);
  await new Promise((r) => setTimeout(r, 15));
  assert.equal(sent.length, 0);
  up = true;
  acks.add(2);
  acks.add(3); // the third id flushes at once
  assert.deepEqual(sent, [[1, 2, 3]]);
  acks.flush();
  assert.equal(sent.length, 1);
});

test('backoff doubles to its cap', () => {
  const b = new Backoff(100, 400, () => 1);
  assert.deepEqual([b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 400]);
  b.reset();
  assert.equal(b.next(), 100);
  const low = new Backoff(100, 400, () => 0);
  assert.equal(low.next(), 50);
});

test('typing text', () => {
  const t = new Map([[1, { name: 'bob', until: 10 }]]);
  assert.equal(typingText(t, 5), 'bob is typing…');
  assert.equal(typingText(t, 11), '');
  t.set(2, { name: 'carol', until: 10 });
  assert.equal(typingText(t, 5), 'bob and carol are typing…');
  t.set(3, { name: 'dave', until: 10 });
  assert.equal(typingText(t, 5), '3 people are typing…');
});
