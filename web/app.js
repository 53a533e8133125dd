// The browser client: logging in, the session across lost connections, the
// pushes, the conversation list. The chat view is in chat.js, the other
// panels in panels.js; docs/web.md says what the client does and why.

import { Conn, ConnLost } from './conn.js';
import { $, h, reconcile, setText, clock } from './dom.js';
import { AckBatch, Conv, Outbox, chatRequest, cidMaker, groupKey, msgKey, pushKey, retryable, userKey } from './state.js';
import { initChat } from './chat.js';
import { initPanels } from './panels.js';

const wsURL = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';

// Everything this tab knows. The password lives here, in memory only, for
// logging in again after a lost connection; it is never stored.
const S = {
  creds: null, // {name, password, device} from a successful login to logout or kick
  me: null, // the user logged in (kept while reconnecting)
  online: false, // logged in on the current connection
  synced: false, // the login backlog is all in
  convs: new Map(), // key -> Conv
  order: [], // conversation keys, most recent first
  active: null, // the key of the open conversation
  friends: new Map(), // id -> user
  incoming: new Map(), // id -> user who asked to be friends
  outgoing: new Map(), // id -> user asked
  blocks: new Map(), // id -> user
  groups: new Map(), // id -> group with members
  invites: new Map(), // group id -> {group, by}
  outbox: new Outbox(),
  inflight: new Set(), // cids sent on this connection and not answered
  peerRead: {}, // key -> the other side's read mark, saved per user
  missed: 0, // messages received while the tab was hidden, for one notification
};

const nextCid = cidMaker((n) => crypto.getRandomValues(new Uint8Array(n)));

const conn = new Conn({ url: wsURL, onOpen, onClose, onPush });
const acks = new AckBatch((ids) => {
  if (!S.online) return false;
  conn.request('ack', { ids }).catch(() => {});
  return true;
});

// ---- requests

// call sends a request and returns its reply when ok; otherwise it says
// what went wrong (prefixed with what) and returns null.
async function call(type, fields, what) {
  let f;
  try {
    f = await conn.request(type, fields);
  } catch (e) {
    if (what) notice(what + ': not connected to the server; try again once it is back.', true);
    return null;
  }
  if (f.ok) return f;
  if (what) notice(what + ': ' + (f.error || f.code), true);
  return null;
}

// ---- notices and the live region

let noticeTimer = null;
function notice(text, isError = false) {
  const el = $('#notice');
  el.hidden = false;
  el.dataset.kind = isError ? 'error' : 'info';
  setText(el, text);
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    el.hidden = true;
    el.textContent = '';
  }, 6000);
}

function announce(text) {
  const el = $('#announcer');
  el.textContent = '';
  // A new text node each time, so that the same words are read again.
  setTimeout(() => (el.textContent = text), 50);
}

// confirmBox asks a yes/no question in a modal dialog.
function confirmBox(text, yes = 'Yes') {
  const d = $('#confirm-dialog');
  setText($('#confirm-text'), text);
  setText($('#confirm-yes'), yes);
  d.returnValue = '';
  d.showModal();
  $('#confirm-no').focus();
  return new Promise((resolve) => d.addEventListener('close', () => resolve(d.returnValue === 'yes'), { once: true }));
}

// ---- rendering, batched: many pushes (a login backlog) make one render

let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(() => {
    renderQueued = false;
    renderNow();
  }, 0);
}

function renderNow() {
  document.body.dataset.view = S.me && S.creds ? 'app' : 'login';
  $('#login-view').hidden = document.body.dataset.view !== 'login';
  $('#app').hidden = document.body.dataset.view !== 'app';
  if (!S.me) return;
  setText($('#me-name'), S.me.name);
  renderConvList();
  chat.render();
  panels.render();
  const total = [...S.convs.values()].reduce((n, c) => n + c.unread, 0);
  document.title = total ? `(${total}) Chat` : 'Chat';
  badge($('#unread-total'), total, 'unread');
  badge($('#request-count'), S.incoming.size, 'friend requests');
  badge($('#invite-count'), S.invites.size, 'invitations');
}

function badge(el, n, what) {
  el.hidden = n === 0;
  setText(el, n ? String(n) : '');
  el.setAttribute('aria-label', n + ' ' + what);
}

// ---- connection state shown to the user

function setConn(state, text) {
  const el = $('#conn-status');
  el.dataset.state = state;
  setText(el, text);
}

function onOpen() {
  openWaiters.splice(0).forEach((w) => w.resolve());
  if (S.creds) {
    setConn('connecting', 'Logging in again…');
    relogin();
  }
}

function onClose({ delay, why }) {
  openWaiters.splice(0).forEach((w) => w.reject(new ConnLost(why)));
  const was = S.online;
  S.online = false;
  S.synced = false;
  S.inflight.clear();
  if (was) {
    // Whatever comes after this was missed live: each conversation shown
    // so far pages forward from its newest message when it is next opened.
    for (const c of S.convs.values()) if (c.loaded && c.catchUpFrom === null) c.catchUpFrom = c.maxId();
  }
  if (!S.creds) return;
  const secs = delay === null ? 0 : Math.max(1, Math.round(delay / 1000));
  setConn('offline', delay === null ? 'Disconnected' : `Connection lost; reconnecting in ${secs} s…`);
  render();
}

// waitOpen resolves once the connection is open (at once if it is).
const openWaiters = [];
function waitOpen(ms) {
  if (conn.open) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const w = { resolve, reject };
    openWaiters.push(w);
    setTimeout(() => {
      const i = openWaiters.indexOf(w);
      if (i >= 0) {
        openWaiters.splice(i, 1);
        reject(new ConnLost('no answer from the server'));
      }
    }, ms);
  });
}

// Reconnect at once when the network or the tab comes back.
addEventListener('online', () => conn.now());
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') {
    conn.now();
    S.missed = 0;
    chat.markRead();
  }
});

// ---- logging in

function randomDevice() {
  const ua = navigator.userAgent;
  const browser = /Firefox\//.test(ua) ? 'firefox' : /Edg\//.test(ua) ? 'edge' : /Chrom(e|ium)\//.test(ua) ? 'chrome' : /Safari\//.test(ua) ? 'safari' : 'browser';
  const r = [...crypto.getRandomValues(new Uint8Array(3))].map((b) => b.toString(36).padStart(2, '0')).join('');
  return `web-${browser}-${r}`;
}

function loginError(text) {
  setText($('#login-error'), text);
}

function loginBusy(busy) {
  $('#login-button').disabled = busy;
  $('#register-button').disabled = busy;
}

async function submitLogin(register) {
  askNotify();
  const name = $('#login-name').value.trim();
  const password = $('#login-password').value;
  let device = $('#login-device').value.trim();
  if (!device) device = $('#login-device').value = randomDevice();
  if (!name || !password) {
    loginError('Enter your name and password.');
    (name ? $('#login-password') : $('#login-name')).focus();
    return;
  }
  if (new TextEncoder().encode(device).length > 64) {
    loginError('The device name is at most 64 bytes.');
    return;
  }
  localStorage.setItem('chat.device', device);
  loginError('');
  loginBusy(true);
  let f;
  try {
    conn.start();
    await waitOpen(10000);
    if (register) {
      const r = await conn.request('register', { name, password });
      if (!r.ok) throw r;
    }
    f = await conn.request('login', { name, password, device });
    if (!f.ok) throw f;
  } catch (e) {
    conn.stop();
    if (e instanceof ConnLost) loginError('Cannot reach the server. Is it running? (' + e.message + ')');
    else loginError(e.error || String(e.code || e));
    return;
  } finally {
    loginBusy(false);
  }
  localStorage.setItem('chat.name', name);
  $('#login-password').value = '';
  S.creds = { name, password, device };
  loggedIn(f);
}

async function relogin() {
  const { name, password, device } = S.creds;
  let f;
  try {
    f = await conn.request('login', { name, password, device });
  } catch {
    return; // lost again: the next open tries again
  }
  if (f.ok) return loggedIn(f);
  if (f.code === 'rate_limited') {
    setTimeout(() => conn.open && S.creds && !S.online && relogin(), f.retry_after || 1000);
  } else if (f.code === 'unavailable' || f.code === 'internal') {
    conn.drop('the server could not log in: ' + f.code); // dial again after a backoff
  } else {
    signOut('Could not log in again: ' + (f.error || f.code));
  }
}

function loggedIn(f) {
  if (!S.me || S.me.id !== f.user.id) resetFor(f.user);
  S.me = f.user;
  S.online = true;
  S.synced = false;
  conn.backoff.reset();
  setConn('syncing', 'Catching up…');
  S.friends = new Map(f.friends.map((u) => [u.id, u]));
  S.incoming = new Map((f.requests || []).map((u) => [u.id, u]));
  setGroups(f.groups);
  for (const it of S.outbox.items) conv(it.conv);
  render();
  refreshConvs();
  panels.refreshPeople();
  resendOutbox();
  chat.reopen();
}

// resetFor clears what belonged to another user and loads this user's
// outbox (chats this tab had not got confirmed, before a reload).
function resetFor(user) {
  S.convs = new Map();
  S.order = [];
  S.active = null;
  S.invites = new Map();
  S.outbox = new Outbox(sessionStorage, 'chat.outbox.' + user.id);
  S.outbox.items.forEach((it) => (it.state = 'pending'));
  S.peerReadKey = 'chat.peerRead.' + user.id;
  try {
    S.peerRead = JSON.parse(localStorage.getItem(S.peerReadKey) || '{}') || {};
  } catch {
    S.peerRead = {};
  }
}

// signOut ends the session on this tab: back to the login form with why.
function signOut(why) {
  conn.stop();
  S.creds = null;
  S.online = false;
  setConn('stopped', 'Signed out');
  loginError(why || '');
  $('#login-name').value = localStorage.getItem('chat.name') || '';
  if (document.activeElement) document.activeElement.blur();
  renderNow();
  $('#login-password').focus();
}

// ---- conversations

// conv returns the conversation of key, made if new. hint is a message that
// may name the other side.
function conv(key, hint) {
  let c = S.convs.get(key);
  if (c) return c;
  c = new Conv(key);
  c.peerRead = S.peerRead[key] || 0;
  S.convs.set(key, c);
  S.order.unshift(key);
  if (c.kind === 'g') {
    const g = S.groups.get(c.id);
    if (g) {
      c.name = g.name;
      c.private = g.private;
    } else {
      refreshGroups();
    }
  } else {
    const u = S.friends.get(c.id);
    if (u) {
      c.name = u.name;
      c.online = u.online;
    } else if (hint && hint.from === c.id && hint.from_name) {
      c.name = hint.from_name;
    }
    if (!u) whoisInto(c);
  }
  return c;
}

// whoisInto fills in a private conversation's name and presence.
async function whoisInto(c) {
  if (!S.online) return;
  const f = await call('whois', { id: c.id });
  if (!f) {
    if (!c.name) c.name = 'user ' + c.id;
    return render();
  }
  c.name = f.user.name;
  c.online = !!f.user.online;
  render();
}

function toFront(key) {
  const i = S.order.indexOf(key);
  if (i > 0) {
    S.order.splice(i, 1);
    S.order.unshift(key);
  }
}

async function refreshConvs() {
  const f = await call('conversations', { limit: 1000 });
  if (!f) return;
  const keys = [];
  for (const cv of f.conversations) {
    const key = cv.group ? groupKey(cv.group.id) : userKey(cv.with.id);
    let c = S.convs.get(key);
    if (!c) {
      c = new Conv(key);
      c.peerRead = S.peerRead[key] || 0;
      S.convs.set(key, c);
    }
    if (cv.group) {
      c.name = cv.group.name;
      c.private = !!cv.group.private;
    } else {
      c.name = cv.with.name;
      c.online = !!cv.with.online;
    }
    if (cv.last) c.put(cv.last);
    c.read = Math.max(c.read, cv.read);
    c.unread = cv.unread;
    c.counted = Math.max(c.counted, cv.last ? cv.last.id : 0);
    keys.push(key);
  }
  // Conversations the server did not list: a private one with no message
  // yet stays (on top); a group no longer ours goes.
  const listed = new Set(keys);
  const rest = S.order.filter((k) => !listed.has(k) && (k[0] === 'u' || S.groups.has(Number(k.slice(2)))));
  for (const k of S.order) if (!listed.has(k) && !rest.includes(k)) dropConv(k);
  S.order = [...rest, ...keys];
  render();
  chat.markRead();
}

function dropConv(key) {
  S.convs.delete(key);
  S.order = S.order.filter((k) => k !== key);
  if (S.active === key) chat.close();
}

function setGroups(list) {
  S.groups = new Map();
  for (const g of list) setGroup(g);
}

// refreshGroups reads the user's groups again: a group this tab does not
// know (joined on another device) sent a message, or a group_chat found
// the user no longer in one (left on another device).
let groupsAsked = false;
async function refreshGroups() {
  if (groupsAsked || !S.online) return;
  groupsAsked = true;
  const f = await call('groups', {});
  groupsAsked = false;
  if (!f) return;
  setGroups(f.groups);
  for (const key of [...S.convs.keys()]) if (key[0] === 'g' && !S.groups.has(Number(key.slice(2)))) dropConv(key);
  for (const g of f.groups) conv(groupKey(g.id));
  render();
}

// setGroup takes a group with members (a reply, group_updated).
function setGroup(g) {
  const old = S.groups.get(g.id);
  if (!g.members && old) g.members = old.members;
  S.groups.set(g.id, g);
  const c = S.convs.get(groupKey(g.id));
  if (c) {
    c.name = g.name;
    c.private = !!g.private;
  }
  S.invites.delete(g.id);
  render();
}

// addGroup makes a group joined or created the newest conversation.
function addGroup(g) {
  setGroup(g);
  const c = conv(groupKey(g.id));
  toFront(c.key);
  render();
  return c;
}

function removeGroup(id, why) {
  const g = S.groups.get(id);
  S.groups.delete(id);
  dropConv(groupKey(id));
  if (why) notice(why.replace('%s', g ? g.name : 'a group'));
  render();
}

function renderConvList() {
  const list = $('#conv-list');
  const items = S.order.map((k) => S.convs.get(k)).filter(Boolean);
  $('#conv-empty').hidden = items.length > 0;
  reconcile(
    list,
    items,
    (c) => c.key,
    (c) => {
      const btn = h('button', { type: 'button', class: 'conv', dataset: { convId: c.key }, onclick: () => chat.open(c.key) });
      return h('li', {}, btn);
    },
    (li, c) => {
      const btn = li.firstChild;
      const last = c.last;
      let preview = '';
      if (last) {
        const who = last.from === S.me.id ? 'You: ' : c.kind === 'g' ? last.from_name + ': ' : '';
        preview = who + (last.deleted ? 'message deleted' : last.text.replace(/\s+/g, ' ').slice(0, 80));
      } else if (S.outbox.forConv(c.key).length) {
        preview = 'You: ' + S.outbox.forConv(c.key).slice(-1)[0].text.slice(0, 80);
      }
      const sig = JSON.stringify([c.name, c.online, c.private, c.unread, preview, last && last.ts, S.active === c.key]);
      if (btn.dataset.sig === sig) return;
      btn.dataset.sig = sig;
      btn.dataset.unread = String(c.unread);
      btn.dataset.convName = c.name;
      if (S.active === c.key) btn.setAttribute('aria-current', 'true');
      else btn.removeAttribute('aria-current');
      const status = c.kind === 'u' ? (c.online ? 'online' : 'offline') : c.private ? 'private group' : 'group';
      btn.setAttribute('aria-label', `${c.name || '…'}, ${status}${c.unread ? `, ${c.unread} unread` : ''}${preview ? ', last: ' + preview : ''}`);
      btn.replaceChildren(
        h('span', { class: 'avatar' + (c.kind === 'u' && c.online ? ' online' : ''), 'aria-hidden': 'true' }, c.kind === 'g' ? '#' : (c.name || '?').slice(0, 1).toUpperCase()),
        h(
          'span',
          { class: 'conv-main' },
          h('span', { class: 'conv-name' }, c.name || '…', c.private ? h('span', { class: 'tag' }, 'private') : null),
          h('span', { class: 'conv-last' }, preview),
        ),
        h(
          'span',
          { class: 'conv-side' },
          last ? h('time', { datetime: new Date(last.ts).toISOString() }, clock(last.ts)) : null,
          c.unread ? h('span', { class: 'badge unread' }, String(c.unread)) : null,
        ),
      );
    },
  );
}

// ---- sending chats: the outbox

function sendChat(key, text) {
  const it = { cid: nextCid(), conv: key, text };
  S.outbox.add(it);
  toFront(key);
  render();
  if (S.online) sendItem(S.outbox.get(it.cid));
}

async function sendItem(it) {
  if (!it || it.state !== 'pending' || S.inflight.has(it.cid)) return;
  S.inflight.add(it.cid);
  const [type, fields] = chatRequest(it);
  let f;
  try {
    f = await conn.request(type, fields);
  } catch {
    S.inflight.delete(it.cid);
    return; // stays pending: sent again, same cid, after the next login
  }
  S.inflight.delete(it.cid);
  if (f.ok) {
    S.outbox.remove(it.cid);
    const m = f.message;
    const c = conv(msgKey(m, S.me.id));
    c.cids.set(m.id, it.cid);
    c.put(m);
    c.countNew(m, S.me.id);
    render();
    return;
  }
  if (retryable(f.code)) {
    setTimeout(() => S.online && sendItem(S.outbox.get(it.cid)), f.retry_after || 3000);
    return;
  }
  if (f.code === 'not_member' || f.code === 'no_such_group') refreshGroups();
  S.outbox.fail(it.cid, f.error || f.code);
  notice('Not sent: ' + (f.error || f.code), true);
  render();
}

function resendOutbox() {
  for (const it of S.outbox.pending()) sendItem(it);
}

function retryItem(cid) {
  const it = S.outbox.get(cid);
  if (!it) return;
  it.state = 'pending';
  delete it.error;
  S.outbox.save();
  render();
  if (S.online) sendItem(it);
}

function discardItem(cid) {
  S.outbox.remove(cid);
  render();
}

// ---- pushes

function onPush(f) {
  if (!S.me) return;
  const handler = pushes[f.type];
  if (handler) handler(f);
  render();
}

const pushes = {
  message(f) {
    const m = f.message;
    if (!m || typeof m.id !== 'number') return;
    const c = conv(msgKey(m, S.me.id), m);
    const mine = m.from === S.me.id;
    if (!mine) acks.add(m.id);
    if (c.put(m) !== 'new') return;
    c.countNew(m, S.me.id);
    if (c.last === c.msgs.get(m.id)) toFront(c.key);
    c.typing.delete(m.from);
    if (mine || m.deleted) return;
    const where = c.kind === 'g' ? ` in ${c.name}` : '';
    if (!S.synced) {
      // the login backlog: shown, not read out one by one
    } else if (S.active === c.key) announce(`${m.from_name}${where}: ${m.text}`);
    else announce(`New message from ${m.from_name}${where}`);
    notify(c, m, !!f.backlog);
  },
  synced() {
    S.synced = true;
    setConn('online', 'Connected');
    acks.flush();
    if (S.missed > 0 && document.visibilityState === 'hidden') {
      showNotification('Chat', `${S.missed} new message${S.missed > 1 ? 's' : ''}`, null);
    }
    S.missed = 0;
  },
  presence(f) {
    const u = f.user;
    const fr = S.friends.get(u.id);
    if (fr) fr.online = !!u.online;
    const c = S.convs.get(userKey(u.id));
    if (c) c.online = !!u.online;
    for (const g of S.groups.values()) for (const m of g.members || []) if (m.id === u.id) m.online = !!u.online;
  },
  read(f) {
    const c = S.convs.get(pushKey(f));
    if (!c || typeof f.id !== 'number') return;
    if (f.user && f.user.id === S.me.id) {
      c.markRead(f.id, S.me.id);
    } else if (c.kind === 'u' && f.id > c.peerRead) {
      c.peerRead = f.id;
      S.peerRead[c.key] = f.id;
      try {
        localStorage.setItem(S.peerReadKey, JSON.stringify(S.peerRead));
      } catch {
        // full: the marks still show in this tab
      }
    }
  },
  typing(f) {
    const c = S.convs.get(pushKey(f));
    if (!c || !f.user || f.user.id === S.me.id) return;
    c.typing.set(f.user.id, { name: f.user.name, until: Date.now() + 5000 });
    setTimeout(render, 5100);
  },
  edited(f) {
    const m = f.message;
    const c = m && S.convs.get(msgKey(m, S.me.id));
    if (c && c.msgs.has(m.id)) c.put(m);
  },
  deleted(f) {
    const c = S.convs.get(pushKey(f));
    const old = c && c.msgs.get(f.id);
    if (!old || old.deleted) return;
    if (old.from !== S.me.id && old.id > c.read && old.id <= c.counted) c.unread = Math.max(0, c.unread - 1);
    const { edited, ...rest } = old;
    c.put({ ...rest, text: '', deleted: true });
  },
  friend_request(f) {
    S.incoming.set(f.user.id, f.user);
    notice(`${f.user.name} asks to be your friend (see Friends).`);
    if (document.visibilityState === 'hidden') showNotification('Friend request', `${f.user.name} asks to be your friend`, null);
  },
  friend_added(f) {
    S.friends.set(f.friend.id, f.friend);
    S.outgoing.delete(f.friend.id);
    S.incoming.delete(f.friend.id);
    const c = S.convs.get(userKey(f.friend.id));
    if (c) c.online = !!f.friend.online;
    notice(`${f.friend.name} is now your friend.`);
  },
  friend_removed(f) {
    S.friends.delete(f.user.id);
  },
  invited(f) {
    S.invites.set(f.group.id, { group: f.group, by: f.by });
    notice(`${f.by.name} invited you to the group ${f.group.name} (see Groups).`);
    if (document.visibilityState === 'hidden') showNotification('Invitation', `${f.by.name} invited you to ${f.group.name}`, null);
  },
  member_joined(f) {
    const g = S.groups.get(f.group);
    if (g && g.members && !g.members.some((m) => m.id === f.user.id)) g.members.push({ ...f.user, role: 'member' });
  },
  member_left(f) {
    const g = S.groups.get(f.group);
    if (g && g.members) g.members = g.members.filter((m) => m.id !== f.user.id);
  },
  member_removed(f) {
    if (f.user.id === S.me.id) {
      removeGroup(f.group, `${f.by ? f.by.name : 'An admin'} removed you from the group %s.`);
      return;
    }
    pushes.member_left(f);
  },
  group_updated(f) {
    setGroup(f.group);
  },
  group_deleted(f) {
    removeGroup(f.group, 'The group %s was deleted.');
  },
  kicked(f) {
    signOut('You were signed out: ' + (f.reason || 'by the server') + '.');
  },
  shutdown(f) {
    notice((f.reason || 'The server is shutting down') + '. Reconnecting…');
  },
};

// ---- notifications

function askNotify() {
  if ('Notification' in window && Notification.permission === 'default') {
    Notification.requestPermission().then(() => render());
  }
}

function notify(c, m, backlog) {
  if (document.visibilityState !== 'hidden') return;
  if (backlog && !S.synced) {
    S.missed++; // one notification for the whole backlog, at synced
    return;
  }
  const title = c.kind === 'g' ? `${m.from_name} in ${c.name}` : m.from_name;
  showNotification(title, m.text.slice(0, 200), c.key);
}

function showNotification(title, body, key) {
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  try {
    const n = new Notification(title, { body, tag: key || 'chat', icon: 'icon.svg' });
    n.onclick = () => {
      window.focus();
      if (key && S.convs.has(key)) chat.open(key);
      n.close();
    };
  } catch {
    // Some browsers allow notifications from a service worker only.
  }
}

// ---- keyboard: the tabs of the sidebar

function selectTab(tab, focus) {
  for (const t of document.querySelectorAll('[role=tab]')) {
    const on = t === tab;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    $('#' + t.getAttribute('aria-controls')).hidden = !on;
  }
  if (focus) tab.focus();
  panels.shown(tab.id);
}

// ---- start

const app = {
  S, conn, call, notice, announce, confirmBox, render, conv, toFront, setGroup, setGroups, addGroup, removeGroup,
  sendChat, retryItem, discardItem, signOut, askNotify, selectTab,
};
const chat = initChat(app);
const panels = initPanels(app);
app.chat = chat;
app.panels = panels;

$('#login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  submitLogin(false);
});
$('#register-button').addEventListener('click', () => submitLogin(true));

const tabs = [...document.querySelectorAll('[role=tab]')];
for (const t of tabs) {
  t.addEventListener('click', () => selectTab(t, false));
  t.addEventListener('keydown', (e) => {
    const i = tabs.indexOf(t);
    const to = { ArrowRight: i + 1, ArrowDown: i + 1, ArrowLeft: i - 1, ArrowUp: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    selectTab(tabs[(to + tabs.length) % tabs.length], true);
  });
}

$('#login-name').value = localStorage.getItem('chat.name') || '';
$('#login-device').value = localStorage.getItem('chat.device') || randomDevice();
($('#login-name').value ? $('#login-password') : $('#login-name')).focus();
renderNow();

// For the browser tests and for a look from the console: read-only views.
window.chatClient = {
  get state() {
    return { me: S.me, online: S.online, synced: S.synced, active: S.active, outbox: S.outbox.items.length };
  },
};
