// The chat view: the messages of the open conversation, scrolling back
// through history, the composer, typing notices, read marks, edit and
// delete.

import { $, h, reconcile, setText, clock } from './dom.js';
import { target, typingEvery, typingText } from './state.js';

const PAGE = 50; // messages per history page

export function initChat(app) {
  const { S } = app;
  const scroller = $('#scroller');
  const list = $('#messages');
  const composer = $('#composer');
  const drafts = new Map(); // conversation key -> text being written
  const typingSent = new Map(); // conversation key -> when the last notice went
  let editing = null; // {key, id} of the message being edited
  let stick = false; // scroll to the newest at the next render
  let keepOffset = false; // older messages come above: keep the view still

  // ---- opening and closing

  function open(key) {
    if (!S.convs.has(key)) return;
    if (S.active !== key) {
      leave();
      composer.value = drafts.get(key) || '';
      autosize();
    }
    S.active = key;
    stick = true;
    document.body.dataset.chatOpen = 'true';
    app.selectTab($('#tab-chats'), false);
    app.render();
    load(S.convs.get(key));
    setTimeout(() => composer.focus(), 0);
  }

  // leave keeps the draft of the conversation being left.
  function leave() {
    if (!S.active) return;
    if (editing) cancelEdit();
    if (composer.value) drafts.set(S.active, composer.value);
    else drafts.delete(S.active);
  }

  function close() {
    const key = S.active;
    leave();
    S.active = null;
    delete document.body.dataset.chatOpen;
    app.render();
    setTimeout(() => {
      const btn = key && document.querySelector(`[data-conv-id="${key}"]`);
      if (btn) btn.focus();
    }, 0);
  }

  // reopen catches the open conversation up after a login.
  function reopen() {
    const c = S.active && S.convs.get(S.active);
    if (c) load(c);
  }

  async function load(c) {
    if (!S.online) return;
    if (!c.loaded) await loadNewest(c);
    else if (c.catchUpFrom !== null) await catchUp(c);
    markRead();
  }

  async function loadNewest(c) {
    if (c.loading) return;
    c.loading = true;
    const f = await app.call('history', { ...target(c.key), limit: PAGE }, 'Could not load the messages');
    c.loading = false;
    if (f) {
      c.newestPage(f.messages, PAGE);
      c.catchUpFrom = null;
      if (S.active === c.key) stick = true;
      setTimeout(() => fill(c), 50);
    }
    app.render();
  }

  // catchUp pages forward from the newest message known before the
  // connection was lost, then refreshes the page before it (edits and
  // deletes made meanwhile). Far behind, it starts again from the newest.
  async function catchUp(c) {
    if (c.loading) return;
    c.loading = true;
    const from = c.catchUpFrom;
    let after = from;
    let done = false;
    for (let i = 0; i < 5 && !done; i++) {
      const f = await app.call('history', { ...target(c.key), after, limit: 200 });
      if (!f) {
        c.loading = false;
        return; // tried again at the next opening or login
      }
      for (const m of f.messages) c.put(m);
      if (f.messages.length === 0) done = true;
      else after = f.messages[f.messages.length - 1].id;
    }
    c.loading = false;
    if (!done) {
      c.msgs.clear();
      c.loaded = false;
      c.atStart = false;
      c.catchUpFrom = null;
      return loadNewest(c);
    }
    const f = await app.call('history', { ...target(c.key), before: from + 1, limit: PAGE });
    if (f) for (const m of f.messages) c.put(m);
    c.catchUpFrom = null;
    app.render();
  }

  async function loadOlder(c) {
    if (!c || c.loading || c.atStart || !c.loaded || !S.online) return;
    const before = c.minId();
    if (!before) {
      c.atStart = true;
      return app.render();
    }
    c.loading = true;
    app.render();
    const f = await app.call('history', { ...target(c.key), before, limit: PAGE }, 'Could not load older messages');
    c.loading = false;
    if (f) {
      if (f.messages.length === 0) c.atStart = true;
      for (const m of f.messages) c.put(m);
      keepOffset = true;
      setTimeout(() => fill(c), 50);
    }
    app.render();
  }

  // fill loads older pages while the messages do not fill the view, so
  // that there is something to scroll.
  function fill(c) {
    if (S.active === c.key && scroller.scrollHeight <= scroller.clientHeight + 8) loadOlder(c);
  }

  scroller.addEventListener('scroll', () => {
    if (scroller.scrollTop < 80) loadOlder(S.active && S.convs.get(S.active));
  });
  $('#load-older').addEventListener('click', () => loadOlder(S.active && S.convs.get(S.active)));
  $('#back').addEventListener('click', close);
  $('#group-info').addEventListener('click', () => {
    const c = S.convs.get(S.active);
    if (c && c.kind === 'g') app.panels.openGroup(c.id);
  });

  // ---- read marks

  // markRead tells the server the open conversation is read up to its
  // newest message, when the user can see it.
  function markRead() {
    const c = S.active && S.convs.get(S.active);
    if (!c || !S.online || document.visibilityState !== 'visible') return;
    const id = c.maxId();
    if (!id || id <= c.read) return;
    c.markRead(id, S.me.id);
    c.unread = 0;
    app.conn.request('read', { ...target(c.key), id }).catch(() => {});
    app.render();
  }

  // ---- rendering

  function render() {
    const c = S.active && S.convs.get(S.active);
    $('#chat-none').hidden = !!c;
    $('#chat-view').hidden = !c;
    if (!c) {
      delete document.body.dataset.chatOpen;
      $('#chat').removeAttribute('data-conv-id');
      if (list.firstChild) list.replaceChildren();
      return;
    }
    $('#chat').dataset.convId = c.key;
    setText($('#chat-title'), c.name || '…');
    setText($('#chat-sub'), subtitle(c));
    $('#group-info').hidden = c.kind !== 'g';
    $('#load-older').hidden = !c.loaded || c.atStart;
    $('#load-older').disabled = !!c.loading;
    $('#history-start').hidden = !c.atStart;

    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 60;
    const oldHeight = scroller.scrollHeight;
    const oldTop = scroller.scrollTop;
    const role = myRole(c);
    reconcile(list, items(c), (it) => (it.cid ? 'c:' + it.cid : 'm:' + it.m.id), () => h('li'), (li, it) => updateMsg(li, it, c, role));
    if (stick || (atBottom && !keepOffset)) scroller.scrollTop = scroller.scrollHeight;
    else if (keepOffset) scroller.scrollTop = oldTop + (scroller.scrollHeight - oldHeight);
    stick = false;
    keepOffset = false;

    setText($('#typing'), typingText(c.typing, Date.now()));
    $('#edit-bar').hidden = !(editing && editing.key === c.key);
    $('#send').textContent = editing ? 'Save' : 'Send';
    markRead();
  }

  function subtitle(c) {
    if (c.kind === 'u') return c.online ? 'online' : 'offline';
    const g = S.groups.get(c.id);
    const n = g && g.members ? g.members.length : 0;
    return `${c.private ? 'private group' : 'group'} · ${n} member${n === 1 ? '' : 's'}`;
  }

  function myRole(c) {
    if (c.kind !== 'g') return '';
    const g = S.groups.get(c.id);
    const me = g && g.members && g.members.find((m) => m.id === S.me.id);
    return me ? me.role : '';
  }

  // items are the messages known, by id, then this tab's chats not yet
  // confirmed, in the order written.
  function items(c) {
    const out = c.sorted().map((m) => ({ m, cid: c.cids.get(m.id) }));
    for (const it of S.outbox.forConv(c.key)) out.push({ out: it, cid: it.cid });
    return out;
  }

  function updateMsg(li, it, c, role) {
    const m = it.m;
    const mine = m ? m.from === S.me.id : true;
    let state = '';
    if (it.out) state = it.out.state; // pending or failed
    else if (mine && !m.deleted) state = c.kind === 'u' && m.id <= c.peerRead ? 'read' : 'sent';
    const canEdit = !!m && mine && !m.deleted;
    const canDelete = !!m && !m.deleted && (mine || role === 'creator' || role === 'admin');
    const text = m ? m.text : it.out.text;
    const sig = JSON.stringify([m && m.id, text, m && m.edited, m && m.deleted, state, canEdit, canDelete, m && m.from_name, it.out && it.out.error, c.kind]);
    if (li.dataset.sig === sig) return;
    li.dataset.sig = sig;

    li.className = 'msg ' + (mine ? 'mine' : 'theirs') + (m && m.deleted ? ' deleted' : '');
    setData(li, 'msgId', m && m.id);
    setData(li, 'state', state);
    setData(li, 'from', m ? m.from : S.me.id);
    setData(li, 'cid', it.cid);
    setData(li, 'edited', m && m.edited ? 'true' : '');
    setData(li, 'deleted', m && m.deleted ? 'true' : '');

    const who = mine ? 'You' : m.from_name;
    const showName = !mine && c.kind === 'g';
    const time = m ? h('time', { datetime: new Date(m.ts).toISOString(), title: new Date(m.ts).toLocaleString() }, clock(m.ts)) : h('span', { class: 'time' }, 'now');
    const actions = [];
    if (canEdit) actions.push(h('button', { type: 'button', class: 'link', dataset: { action: 'edit' }, 'aria-label': 'Edit your message' }, 'Edit'));
    if (canDelete) actions.push(h('button', { type: 'button', class: 'link', dataset: { action: 'delete' }, 'aria-label': mine ? 'Delete your message' : `Delete ${who}'s message` }, 'Delete'));
    if (state === 'failed') {
      actions.push(h('button', { type: 'button', class: 'link', dataset: { action: 'retry' } }, 'Retry'));
      actions.push(h('button', { type: 'button', class: 'link', dataset: { action: 'discard' } }, 'Discard'));
    }
    li.replaceChildren(
      h(
        'div',
        { class: 'bubble' },
        h('div', { class: 'meta' }, h('span', { class: showName ? 'from' : 'from visually-hidden' }, who + ':'), ' ', time),
        h('p', { class: 'text' }, m && m.deleted ? 'This message was deleted.' : text),
        h(
          'div',
          { class: 'foot' },
          m && m.edited && !m.deleted ? h('span', { class: 'edited' }, 'edited') : null,
          state ? h('span', { class: 'mark', title: markText(state, it) }, h('span', { 'aria-hidden': 'true' }, markIcon(state)), h('span', { class: 'visually-hidden' }, markText(state, it))) : null,
        ),
      ),
    );
    if (actions.length) li.append(h('div', { class: 'actions' }, actions));
  }

  function setData(el, k, v) {
    if (v === undefined || v === null || v === '' || v === false) delete el.dataset[k];
    else el.dataset[k] = String(v);
  }

  const markIcon = (s) => ({ pending: '◷', sent: '✓', read: '✓✓', failed: '!' })[s] || '';
  const markText = (s, it) =>
    ({ pending: 'sending', sent: 'sent', read: 'read', failed: 'not sent: ' + ((it.out && it.out.error) || '') })[s] || '';

  list.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-action]');
    if (!b) return;
    const li = b.closest('li');
    const id = Number(li.dataset.msgId);
    const action = b.dataset.action;
    if (action === 'edit') startEdit(id);
    else if (action === 'delete') del(id);
    else if (action === 'retry') app.retryItem(li.dataset.cid);
    else if (action === 'discard') app.discardItem(li.dataset.cid);
  });

  // ---- edit and delete

  function startEdit(id) {
    const c = S.convs.get(S.active);
    const m = c && c.msgs.get(id);
    if (!m || m.deleted || m.from !== S.me.id) return;
    if (!editing && composer.value) drafts.set(c.key, composer.value);
    editing = { key: c.key, id };
    composer.value = m.text;
    autosize();
    app.render();
    composer.focus();
    composer.setSelectionRange(composer.value.length, composer.value.length);
  }

  function cancelEdit() {
    if (!editing) return;
    const key = editing.key;
    editing = null;
    composer.value = drafts.get(key) || '';
    drafts.delete(key);
    autosize();
    app.render();
  }

  async function saveEdit(text) {
    const { key, id } = editing;
    const f = await app.call('edit', { id, text }, 'Could not edit the message');
    if (!f) return; // still editing: try again or cancel
    const c = S.convs.get(key);
    if (c) c.put(f.message);
    if (editing && editing.id === id) {
      editing = null;
      composer.value = drafts.get(key) || '';
      drafts.delete(key);
      autosize();
    }
    app.render();
  }

  async function del(id) {
    const key = S.active;
    if (!(await app.confirmBox('Delete this message for everyone?', 'Delete'))) return;
    const f = await app.call('delete_message', { id }, 'Could not delete the message');
    const c = S.convs.get(key);
    const old = c && c.msgs.get(id);
    if (!f || !old) return;
    const { edited, ...rest } = old;
    c.put({ ...rest, text: '', deleted: true });
    if (editing && editing.id === id) cancelEdit();
    app.render();
  }

  // ---- the composer

  function send() {
    const text = composer.value;
    if (!S.active || !/\S/u.test(text)) return;
    const n = new TextEncoder().encode(text).length;
    if (n > 4096) {
      app.notice(`A message is at most 4096 bytes; this one has ${n}.`, true);
      return;
    }
    if (editing) {
      saveEdit(text);
      return;
    }
    composer.value = '';
    drafts.delete(S.active);
    autosize();
    stick = true;
    app.sendChat(S.active, text);
    composer.focus();
  }

  function autosize() {
    composer.style.height = 'auto';
    composer.style.height = Math.min(composer.scrollHeight + 2, 160) + 'px';
  }

  function typed() {
    autosize();
    const key = S.active;
    if (editing || !S.online || !key || !/\S/u.test(composer.value)) return;
    const now = Date.now();
    if (now - (typingSent.get(key) || 0) < typingEvery) return;
    typingSent.set(key, now);
    app.conn.request('typing', target(key)).catch(() => {});
  }

  $('#composer-form').addEventListener('submit', (e) => {
    e.preventDefault();
    send();
  });
  composer.addEventListener('input', typed);
  // The keydown above sent the message; a keypress that some drivers (and
  // old browsers) send after it must not add a line break to the next one.
  composer.addEventListener('keypress', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) e.preventDefault();
  });
  composer.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    } else if (e.key === 'Escape' && editing) {
      e.preventDefault();
      e.stopPropagation();
      cancelEdit();
    }
  });
  $('#edit-cancel').addEventListener('click', () => {
    cancelEdit();
    composer.focus();
  });

  // Escape closes the conversation (back to the list on a phone), unless
  // a dialog is open: the dialog takes its own Escape.
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || e.defaultPrevented || document.querySelector('dialog[open]')) return;
    if (editing) cancelEdit();
    else if (S.active) close();
  });

  return { render, open, close, reopen, markRead };
}
