// The client's state that needs no page and no socket: conversations and
// their messages, the outbox of unconfirmed chats, the ack batch, the
// reconnect backoff. Node can import this file to test it.

// A conversation's key: "u:ID" with a user, "g:ID" in a group.
export const userKey = (id) => 'u:' + id;
export const groupKey = (id) => 'g:' + id;

// msgKey is the conversation a message belongs to, as user me sees it.
export function msgKey(m, me) {
  if (m.group) return groupKey(m.group);
  return userKey(m.from === me ? m.to : m.from);
}

// pushKey is the conversation of a read, typing or deleted push, or of a
// request's fields: with (the other side) or group.
export function pushKey(f) {
  return f.group ? groupKey(f.group) : userKey(f.with);
}

// target turns a key back into the fields that name the conversation in a
// request (chat's "to" is spelled differently; see chatFields).
export function target(key) {
  const id = Number(key.slice(2));
  return key[0] === 'g' ? { group: id } : { with: id };
}

// newer picks, of two copies of one message, the one with its later state:
// a tombstone beats everything, then the later edit; on a tie, the copy
// already held. The server always sends the latest state, but copies may
// cross (a live push overtaken by history).
export function newer(a, b) {
  if (!a) return b;
  if (!b) return a;
  if (a.deleted) return a;
  if (b.deleted) return b;
  return (b.edited || 0) > (a.edited || 0) ? b : a;
}

// Conv is one conversation as this tab knows it.
export class Conv {
  constructor(key) {
    this.key = key;
    this.kind = key[0]; // "u" or "g"
    this.id = Number(key.slice(2));
    this.name = '';
    this.online = false; // the other user's presence (private conversations)
    this.private = false; // a private group
    this.msgs = new Map(); // id -> message, from history and pushes
    this.cids = new Map(); // id -> cid, for messages this tab sent
    this.last = null; // the newest message known
    this.read = 0; // the user's own read mark
    this.peerRead = 0; // the other side's read mark, from read pushes
    this.unread = 0;
    this.counted = 0; // highest id already in the unread count
    this.loaded = false; // the newest page of history is in msgs
    this.atStart = false; // an empty history page was seen below the oldest
    this.catchUpFrom = null; // page forward from here (after a lost connection)
    this.typing = new Map(); // user id -> {name, until}
  }

  // put stores a message, dropping duplicates by id: "new", "updated" or
  // "same".
  put(m) {
    const old = this.msgs.get(m.id);
    const keep = newer(old, m);
    this.msgs.set(m.id, keep);
    if (!this.last || m.id >= this.last.id) this.last = keep;
    if (!old) return 'new';
    return keep === old ? 'same' : 'updated';
  }

  // apply changes a message already stored (an edited or deleted push); an
  // unknown id is kept, to be merged when the message comes.
  apply(m) {
    return this.put(m);
  }

  sorted() {
    return [...this.msgs.values()].sort((a, b) => a.id - b.id);
  }

  maxId() {
    let n = 0;
    for (const id of this.msgs.keys()) if (id > n) n = id;
    return n;
  }

  minId() {
    let n = 0;
    for (const id of this.msgs.keys()) if (n === 0 || id < n) n = id;
    return n;
  }

  // countNew counts a message just received into unread, once: messages at
  // or below `counted` were in the server's count already.
  countNew(m, me) {
    if (m.id <= this.counted) return;
    this.counted = m.id;
    if (m.from !== me && !m.deleted && m.id > this.read) this.unread++;
  }

  // markRead moves the user's read mark (never back) and recounts what is
  // left unread among the messages known.
  markRead(id, me) {
    if (id <= this.read) return false;
    this.read = id;
    if (this.last && id >= this.last.id) {
      this.unread = 0;
    } else {
      let n = 0;
      for (const m of this.msgs.values()) if (m.id > id && m.from !== me && !m.deleted) n++;
      this.unread = Math.min(this.unread, n);
    }
    return true;
  }

  // newestPage takes the reply to a history request without before or
  // after. Messages older than the page are dropped: there may be a gap
  // between them and the page, and scrolling back fetches them again.
  newestPage(msgs, limit) {
    if (msgs.length > 0 && msgs.length >= limit) {
      for (const id of [...this.msgs.keys()]) if (id < msgs[0].id) this.msgs.delete(id);
    }
    for (const m of msgs) this.put(m);
    if (msgs.length === 0 && this.msgs.size === 0) this.atStart = true;
    this.loaded = true;
  }
}

// Outbox keeps the chats not yet confirmed by the server, in the order they
// were written, each with its cid, so that after a lost connection each goes
// again with the same cid: the server stores it once. It is saved in the
// tab's sessionStorage (when given) so that a reload loses nothing either.
export class Outbox {
  constructor(storage = null, key = '') {
    this.storage = storage;
    this.key = key;
    this.items = [];
    this.load();
  }

  load() {
    this.items = [];
    if (!this.storage || !this.key) return;
    try {
      const v = JSON.parse(this.storage.getItem(this.key) || '[]');
      if (Array.isArray(v)) {
        this.items = v.filter((it) => it && typeof it.cid === 'string' && typeof it.text === 'string' && typeof it.conv === 'string');
      }
    } catch {
      this.items = [];
    }
  }

  save() {
    if (!this.storage || !this.key) return;
    try {
      if (this.items.length === 0) this.storage.removeItem(this.key);
      else this.storage.setItem(this.key, JSON.stringify(this.items));
    } catch {
      // Storage full or refused: the outbox still lives in memory.
    }
  }

  // add queues {cid, conv, text}.
  add(item) {
    this.items.push({ cid: item.cid, conv: item.conv, text: item.text, state: 'pending' });
    this.save();
  }

  get(cid) {
    return this.items.find((it) => it.cid === cid);
  }

  remove(cid) {
    const n = this.items.length;
    this.items = this.items.filter((it) => it.cid !== cid);
    if (this.items.length !== n) this.save();
  }

  fail(cid, error) {
    const it = this.get(cid);
    if (!it) return;
    it.state = 'failed';
    it.error = error;
    this.save();
  }

  // pending lists what must go (again) to the server, oldest first.
  pending() {
    return this.items.filter((it) => it.state === 'pending');
  }

  forConv(key) {
    return this.items.filter((it) => it.conv === key);
  }
}

// chatRequest is the request that sends an outbox item.
export function chatRequest(it) {
  const id = Number(it.conv.slice(2));
  return it.conv[0] === 'g'
    ? ['group_chat', { group: id, text: it.text, cid: it.cid }]
    : ['chat', { to: id, text: it.text, cid: it.cid }];
}

// retryable tells whether a failed chat reply leaves the chat worth sending
// again (with its cid) rather than failed for good.
export function retryable(code) {
  return code === 'unavailable' || code === 'rate_limited' || code === 'internal';
}

// cidMaker returns a function that makes cids unique to this page load:
// random hex and a counter, well under the 64 bytes allowed.
export function cidMaker(randomBytes) {
  const base = [...randomBytes(8)].map((b) => b.toString(16).padStart(2, '0')).join('');
  let n = 0;
  return () => base + '-' + (++n).toString(36);
}

// AckBatch gathers the ids of messages received and acks them together,
// after a short delay or once many are waiting. send(ids) returns false
// when it cannot send now; the ids then wait for the next flush.
export class AckBatch {
  constructor(send, delay = 300, max = 1000) {
    this.send = send;
    this.delay = delay;
    this.max = max;
    this.ids = new Set();
    this.timer = null;
  }

  add(id) {
    this.ids.add(id);
    if (this.ids.size >= this.max) this.flush();
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), this.delay);
  }

  flush() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ids.size === 0) return;
    const ids = [...this.ids];
    if (this.send(ids) !== false) this.ids.clear();
  }
}

// Backoff gives the waits between reconnects: doubling from min to max,
// each drawn at random in its upper half so that clients of a restarted
// server do not all come back at once.
export class Backoff {
  constructor(min = 500, max = 30000, random = Math.random) {
    this.min = min;
    this.max = max;
    this.random = random;
    this.cur = min;
  }

  next() {
    const d = this.cur;
    this.cur = Math.min(this.cur * 2, this.max);
    return Math.round(d / 2 + (this.random() * d) / 2);
  }

  reset() {
    this.cur = this.min;
  }
}

// Typing notices: one at most every typingEvery ms per conversation; shown
// for typingShow ms after each.
export const typingEvery = 3000;
export const typingShow = 5000;

// typingText says who is typing, from a conv's typing map, at time now.
export function typingText(typing, now) {
  const names = [];
  for (const t of typing.values()) if (t.until > now) names.push(t.name);
  if (names.length === 0) return '';
  if (names.length === 1) return names[0] + ' is typing…';
  if (names.length === 2) return names[0] + ' and ' + names[1] + ' are typing…';
  return names.length + ' people are typing…';
}
