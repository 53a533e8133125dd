// The panels beside the chat: friends and requests, groups (and the group
// dialog), settings (sessions, password, account).

import { $, h, reconcile, setText, clock } from './dom.js';
import { groupKey, userKey } from './state.js';

export function initPanels(app) {
  const { S } = app;
  let sessions = [];
  let found = null; // the last find_groups result
  let dialogGroup = null; // the group id shown in the group dialog

  // ---- friends

  async function refreshPeople(withFriends = false) {
    const [fr, rq, bl] = await Promise.all([
      withFriends ? app.call('friends', {}) : null,
      app.call('friend_requests', {}),
      app.call('blocks', {}),
    ]);
    if (fr) S.friends = new Map(fr.friends.map((u) => [u.id, u]));
    if (rq) {
      S.incoming = new Map(rq.incoming.map((u) => [u.id, u]));
      S.outgoing = new Map(rq.outgoing.map((u) => [u.id, u]));
    }
    if (bl) S.blocks = new Map(bl.users.map((u) => [u.id, u]));
    app.render();
  }

  async function addFriend(fields, name) {
    const f = await app.call('add_friend', fields, `Could not add ${name}`);
    if (!f) return false;
    S.incoming.delete(f.friend.id);
    if (f.status === 'friends') {
      S.friends.set(f.friend.id, f.friend);
      S.outgoing.delete(f.friend.id);
      app.notice(`${f.friend.name} is your friend.`);
    } else {
      S.outgoing.set(f.friend.id, f.friend);
      app.notice(`Friend request sent to ${f.friend.name}.`);
    }
    app.render();
    return true;
  }

  async function messageUser(name) {
    const f = await app.call('whois', { name }, `Could not find ${name}`);
    if (!f) return false;
    if (f.user.id === S.me.id) {
      app.notice('That is you.', true);
      return false;
    }
    const c = app.conv(userKey(f.user.id));
    c.name = f.user.name;
    c.online = !!f.user.online;
    app.toFront(c.key);
    app.chat.open(c.key);
    return true;
  }

  async function block(fields, name) {
    if (!(await app.confirmBox(`Block ${name}? It also ends your friendship and any request between you.`, 'Block'))) return false;
    const f = await app.call('block', fields, `Could not block ${name}`);
    if (!f) return false;
    app.notice(`${name} is blocked.`);
    await refreshPeople(true);
    return true;
  }

  $('#friend-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = $('#friend-name').value.trim();
    if (name && (await addFriend({ name }, name))) $('#friend-name').value = '';
  });
  $('#friend-message').addEventListener('click', async () => {
    const name = $('#friend-name').value.trim();
    if (name && (await messageUser(name))) $('#friend-name').value = '';
  });
  $('#friend-block').addEventListener('click', async () => {
    const name = $('#friend-name').value.trim();
    if (name && (await block({ name }, name))) $('#friend-name').value = '';
  });

  // onAction calls handle(action, li) for clicks on [data-action] buttons
  // inside list.
  function onAction(list, handle) {
    list.addEventListener('click', (e) => {
      const b = e.target.closest('button[data-action]');
      if (b) handle(b.dataset.action, b.closest('li'));
    });
  }

  const userOf = (map, li) => map.get(Number(li.dataset.userId));

  onAction($('#request-list'), async (action, li) => {
    const u = userOf(S.incoming, li);
    if (!u) return;
    if (action === 'accept') addFriend({ friend: u.id }, u.name);
    if (action === 'decline' && (await app.call('decline_friend', { friend: u.id }, 'Could not decline'))) {
      S.incoming.delete(u.id);
      app.render();
    }
  });
  onAction($('#friend-list'), async (action, li) => {
    const u = userOf(S.friends, li);
    if (!u) return;
    if (action === 'message') messageUser(u.name);
    if (action === 'block') block({ user: u.id }, u.name);
    if (action === 'remove') {
      if (!(await app.confirmBox(`Remove ${u.name} from your friends?`, 'Remove'))) return;
      if (await app.call('remove_friend', { friend: u.id }, `Could not remove ${u.name}`)) {
        S.friends.delete(u.id);
        app.render();
      }
    }
  });
  onAction($('#outgoing-list'), async (action, li) => {
    const u = userOf(S.outgoing, li);
    if (u && action === 'cancel' && (await app.call('remove_friend', { friend: u.id }, 'Could not take the request back'))) {
      S.outgoing.delete(u.id);
      app.render();
    }
  });
  onAction($('#block-list'), async (action, li) => {
    const u = userOf(S.blocks, li);
    if (u && action === 'unblock' && (await app.call('unblock', { user: u.id }, `Could not unblock ${u.name}`))) {
      S.blocks.delete(u.id);
      app.notice(`${u.name} is no longer blocked.`);
      app.render();
    }
  });

  // userRows renders users with action buttons: [action, label] pairs.
  function userRows(list, users, actions, withPresence) {
    reconcile(
      list,
      users,
      (u) => 'u' + u.id,
      () => h('li', { class: 'row-item' }),
      (li, u) => {
        const sig = JSON.stringify([u.name, u.online, withPresence]);
        if (li.dataset.sig === sig) return;
        li.dataset.sig = sig;
        li.dataset.userId = String(u.id);
        if (withPresence) li.dataset.online = String(!!u.online);
        li.replaceChildren(
          h(
            'span',
            { class: 'who' },
            withPresence ? h('span', { class: 'dot' + (u.online ? ' online' : ''), 'aria-hidden': 'true' }) : null,
            h('span', { class: 'name' }, u.name),
            withPresence ? h('span', { class: 'visually-hidden' }, u.online ? ', online' : ', offline') : null,
          ),
          h('span', { class: 'buttons' }, actions.map(([action, label]) => h('button', { type: 'button', class: 'small secondary', dataset: { action }, 'aria-label': `${label} ${u.name}` }, label))),
        );
      },
    );
  }

  const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id - b.id);

  function renderFriends() {
    const friends = [...S.friends.values()].sort((a, b) => (b.online ? 1 : 0) - (a.online ? 1 : 0) || byName(a, b));
    userRows($('#request-list'), [...S.incoming.values()], [['accept', 'Accept'], ['decline', 'Decline']], false);
    userRows($('#friend-list'), friends, [['message', 'Message'], ['remove', 'Remove'], ['block', 'Block']], true);
    userRows($('#outgoing-list'), [...S.outgoing.values()], [['cancel', 'Cancel']], false);
    userRows($('#block-list'), [...S.blocks.values()], [['unblock', 'Unblock']], false);
    for (const [id, arr] of [['#request-list', S.incoming], ['#friend-list', S.friends], ['#outgoing-list', S.outgoing], ['#block-list', S.blocks]]) {
      $(id).dataset.empty = String(arr.size === 0);
    }
  }

  // ---- groups

  async function join(id) {
    const f = await app.call('join_group', { group: id }, 'Could not join');
    if (!f) return;
    S.invites.delete(id);
    const c = app.addGroup(f.group);
    app.chat.open(c.key);
  }

  $('#group-create-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = $('#group-name').value.trim();
    const desc = $('#group-desc').value.trim();
    if (!name) return;
    const fields = { name, private: $('#group-private').checked };
    if (desc) fields.desc = desc;
    const f = await app.call('create_group', fields, 'Could not create the group');
    if (!f) return;
    $('#group-name').value = '';
    $('#group-desc').value = '';
    $('#group-private').checked = false;
    const c = app.addGroup(f.group);
    app.chat.open(c.key);
  });

  $('#group-find-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const query = $('#group-query').value.trim();
    const f = await app.call('find_groups', query ? { query, limit: 50 } : { limit: 50 }, 'Could not search');
    if (!f) return;
    found = f.groups;
    app.announce(`${found.length} group${found.length === 1 ? '' : 's'} found`);
    app.render();
  });

  onAction($('#group-results'), (action, li) => {
    const id = Number(li.dataset.groupId);
    if (action === 'join') join(id);
    if (action === 'open') app.chat.open(groupKey(id));
  });
  onAction($('#invite-list'), (action, li) => {
    const id = Number(li.dataset.groupId);
    if (action === 'join') join(id);
    if (action === 'dismiss') {
      S.invites.delete(id);
      app.render();
    }
  });
  onAction($('#group-list'), (action, li) => {
    const id = Number(li.dataset.groupId);
    if (action === 'open') app.chat.open(groupKey(id));
    if (action === 'info') openGroup(id);
  });

  function groupRows(list, rows, describe, actions) {
    reconcile(
      list,
      rows,
      (r) => 'g' + r.group.id,
      () => h('li', { class: 'row-item' }),
      (li, r) => {
        const g = r.group;
        const acts = actions(r);
        const sig = JSON.stringify([g.name, g.private, describe(r), acts]);
        if (li.dataset.sig === sig) return;
        li.dataset.sig = sig;
        li.dataset.groupId = String(g.id);
        li.replaceChildren(
          h('span', { class: 'who' }, h('span', { class: 'name' }, g.name), g.private ? h('span', { class: 'tag' }, 'private') : null, h('span', { class: 'sub' }, describe(r))),
          h('span', { class: 'buttons' }, acts.map(([action, label]) => h('button', { type: 'button', class: 'small secondary', dataset: { action }, 'aria-label': `${label} ${g.name}` }, label))),
        );
      },
    );
  }

  function renderGroups() {
    groupRows($('#invite-list'), [...S.invites.values()], (r) => `invited by ${r.by ? r.by.name : 'someone'}`, () => [['join', 'Join'], ['dismiss', 'Dismiss']]);
    const mine = [...S.groups.values()].sort(byName).map((g) => ({ group: g }));
    groupRows(
      $('#group-list'),
      mine,
      (r) => {
        const me = (r.group.members || []).find((m) => m.id === S.me.id);
        const n = (r.group.members || []).length;
        return `${n} member${n === 1 ? '' : 's'}${me && me.role !== 'member' ? ', you are ' + me.role : ''}`;
      },
      () => [['open', 'Open'], ['info', 'Info']],
    );
    $('#group-results').hidden = found === null;
    groupRows(
      $('#group-results'),
      (found || []).map((g) => ({ group: g })),
      (r) => `${r.group.count} member${r.group.count === 1 ? '' : 's'}${r.group.desc ? ' · ' + r.group.desc : ''}`,
      (r) => (S.groups.has(r.group.id) ? [['open', 'Open']] : [['join', 'Join']]),
    );
    $('#invite-list').dataset.empty = String(S.invites.size === 0);
    $('#group-list').dataset.empty = String(S.groups.size === 0);
    if (dialogGroup !== null) renderDialog();
  }

  // ---- the group dialog

  const dialog = $('#group-dialog');

  function openGroup(id) {
    const g = S.groups.get(id);
    if (!g) return;
    dialogGroup = id;
    $('#gedit-name').value = g.name;
    $('#gedit-desc').value = g.desc || '';
    $('#gedit-private').checked = !!g.private;
    $('#invite-name').value = '';
    renderDialog();
    dialog.showModal();
    // Members' presence reaches this tab only for friends: read it afresh.
    app.call('groups', {}).then((f) => {
      if (f) app.setGroups(f.groups);
      app.render();
    });
  }

  dialog.addEventListener('close', () => {
    dialogGroup = null;
  });

  function roleOf(g, id) {
    const m = (g.members || []).find((x) => x.id === id);
    return m ? m.role : '';
  }

  function renderDialog() {
    const g = S.groups.get(dialogGroup);
    if (!g) {
      if (dialog.open) dialog.close();
      return;
    }
    const me = roleOf(g, S.me.id);
    const boss = me === 'creator' || me === 'admin';
    dialog.dataset.groupId = String(g.id);
    dialog.dataset.role = me;
    setText($('#gd-title'), g.name);
    setText($('#gd-desc'), g.desc || '');
    const n = (g.members || []).length;
    setText($('#gd-meta'), `${g.private ? 'Private' : 'Public'} group · ${n} member${n === 1 ? '' : 's'}${me ? ' · you are ' + (me === 'member' ? 'a member' : 'the ' + me) : ''}`);
    const rank = { creator: 0, admin: 1, member: 2 };
    const members = [...(g.members || [])].sort((a, b) => rank[a.role] - rank[b.role] || byName(a, b));
    reconcile(
      $('#member-list'),
      members,
      (m) => 'm' + m.id,
      () => h('li', { class: 'row-item' }),
      (li, m) => {
        const acts = [];
        if (m.id !== S.me.id && m.role !== 'creator') {
          if (me === 'creator') acts.push(m.role === 'admin' ? ['make-member', 'Make member'] : ['make-admin', 'Make admin']);
          if (boss) acts.push(['kick', 'Remove']);
        }
        const sig = JSON.stringify([m.name, m.role, m.online, acts]);
        if (li.dataset.sig === sig) return;
        li.dataset.sig = sig;
        li.dataset.userId = String(m.id);
        li.dataset.role = m.role;
        li.replaceChildren(
          h(
            'span',
            { class: 'who' },
            h('span', { class: 'dot' + (m.online ? ' online' : ''), 'aria-hidden': 'true' }),
            h('span', { class: 'name' }, m.name),
            m.role !== 'member' ? h('span', { class: 'tag' }, m.role) : null,
            h('span', { class: 'visually-hidden' }, m.online ? ', online' : ', offline'),
          ),
          h('span', { class: 'buttons' }, acts.map(([action, label]) => h('button', { type: 'button', class: 'small secondary', dataset: { action }, 'aria-label': `${label}: ${m.name}` }, label))),
        );
      },
    );
    $('#invite-form').hidden = g.private && !boss;
    $('#gedit-form').hidden = !boss;
    $('#group-delete').hidden = me !== 'creator';
  }

  onAction($('#member-list'), async (action, li) => {
    const g = S.groups.get(dialogGroup);
    const m = g && (g.members || []).find((x) => x.id === Number(li.dataset.userId));
    if (!m) return;
    if (action === 'kick') {
      if (!(await app.confirmBox(`Remove ${m.name} from ${g.name}? They can come back only on a new invitation.`, 'Remove'))) return;
      if (await app.call('kick_member', { group: g.id, user: m.id }, `Could not remove ${m.name}`)) {
        g.members = g.members.filter((x) => x.id !== m.id);
        app.render();
      }
    } else if (action === 'make-admin' || action === 'make-member') {
      const role = action === 'make-admin' ? 'admin' : 'member';
      if (await app.call('set_role', { group: g.id, user: m.id, role }, 'Could not change the role')) {
        m.role = role;
        app.render();
      }
    }
  });

  $('#invite-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = $('#invite-name').value.trim();
    if (!name || dialogGroup === null) return;
    if (await app.call('invite', { group: dialogGroup, name }, `Could not invite ${name}`)) {
      $('#invite-name').value = '';
      app.notice(`${name} is invited.`);
    }
  });

  $('#gedit-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = $('#gedit-name').value.trim();
    if (!name || dialogGroup === null) return;
    const f = await app.call(
      'update_group',
      { group: dialogGroup, name, desc: $('#gedit-desc').value.trim(), private: $('#gedit-private').checked },
      'Could not change the group',
    );
    if (f) {
      app.setGroup(f.group);
      app.notice('The group is changed.');
    }
  });

  $('#group-leave').addEventListener('click', async () => {
    const g = S.groups.get(dialogGroup);
    if (!g || !(await app.confirmBox(`Leave ${g.name}?`, 'Leave'))) return;
    if (await app.call('leave_group', { group: g.id }, 'Could not leave')) {
      dialog.close();
      app.removeGroup(g.id, 'You left the group %s.');
    }
  });

  $('#group-delete').addEventListener('click', async () => {
    const g = S.groups.get(dialogGroup);
    if (!g || !(await app.confirmBox(`Delete ${g.name} and all its messages, for everyone?`, 'Delete'))) return;
    if (await app.call('delete_group', { group: g.id }, 'Could not delete the group')) {
      dialog.close();
      app.removeGroup(g.id, 'You deleted the group %s.');
    }
  });

  // ---- settings

  async function refreshSessions() {
    const f = await app.call('sessions', {}, 'Could not list the sessions');
    if (!f) return;
    sessions = f.sessions;
    app.render();
  }

  function renderSettings() {
    setText($('#settings-name'), S.me.name);
    setText($('#settings-device'), S.creds ? S.creds.device : '');
    reconcile(
      $('#sessions-list'),
      sessions,
      (s) => 'd:' + s.device,
      () => h('li', { class: 'row-item' }),
      (li, s) => {
        li.dataset.device = s.device;
        if (s.current) li.dataset.current = 'true';
        else delete li.dataset.current;
        li.replaceChildren(
          h('span', { class: 'who' }, h('span', { class: 'name' }, s.device || '(no device name)'), s.current ? h('span', { class: 'tag' }, 'this tab') : null, h('span', { class: 'sub' }, 'since ' + clock(s.since))),
        );
      },
    );
    let state = 'This browser cannot show notifications.';
    let canAsk = false;
    if ('Notification' in window) {
      const p = Notification.permission;
      if (!window.isSecureContext) state = 'Notifications need https (or localhost).';
      else if (p === 'granted') state = 'On: a new message shows a notification while this tab is hidden.';
      else if (p === 'denied') state = 'Blocked in this browser’s site settings.';
      else {
        state = 'Off.';
        canAsk = true;
      }
    }
    setText($('#notify-state'), state);
    $('#notify-enable').hidden = !canAsk;
  }

  $('#notify-enable').addEventListener('click', () => {
    if ('Notification' in window) Notification.requestPermission().then(() => app.render());
  });
  $('#sessions-refresh').addEventListener('click', refreshSessions);

  $('#logout').addEventListener('click', async () => {
    await app.call('logout', {});
    app.signOut('You logged out.');
  });
  $('#logout-all').addEventListener('click', async () => {
    if (!(await app.confirmBox('Log out on every device, this one too?', 'Log out everywhere'))) return;
    if (await app.call('logout', { all: true }, 'Could not log out everywhere')) app.signOut('You logged out on every device.');
  });

  $('#pw-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const old = $('#pw-old').value;
    const nw = $('#pw-new').value;
    if (!old || !nw) return;
    if (await app.call('change_password', { old, new: nw }, 'Could not change the password')) {
      if (S.creds) S.creds.password = nw;
      $('#pw-old').value = '';
      $('#pw-new').value = '';
      app.notice('Your password is changed; your other sessions were logged out.');
      refreshSessions();
    }
  });

  $('#delete-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const password = $('#delete-password').value;
    if (!password) return;
    if (!(await app.confirmBox('Delete your account for good? This cannot be undone.', 'Delete my account'))) return;
    if (await app.call('delete_account', { password }, 'Could not delete the account')) {
      $('#delete-password').value = '';
      S.outbox.items = [];
      S.outbox.save();
      localStorage.removeItem('chat.name');
      app.signOut('Your account was deleted.');
    }
  });

  // shown is told which tab was just selected.
  function shown(tabId) {
    if (tabId === 'tab-settings' && S.online) refreshSessions();
  }

  function render() {
    renderFriends();
    renderGroups();
    renderSettings();
  }

  return { render, refreshPeople, openGroup, shown };
}
