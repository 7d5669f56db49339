// The dialogs: a direct chat by user search, a new group, a group's members and name,
// message search.

import { openChatRoute } from './chatlist.js';
import { jumpToMessage } from './chatview.js';
import { refreshChat } from './events.js';
import { logout, replaceToken } from './session.js';
import { S, api, chatTitle, errorText, loadUser, toast, userName } from './state.js';
import { ApiError } from './api.js';
import { $, el, debounce, formatListTime, paintAvatar } from './dom.js';
import { icon } from './icons.js';

function userRow(user, action, label) {
  const avatar = el('span', { class: 'avatar small', attrs: { 'aria-hidden': 'true' } });
  paintAvatar(avatar, user.id, user.display_name || user.username);
  return el('li', {},
    el('button', { type: 'button', class: 'pick', attrs: { 'aria-label': label }, on: { click: action } },
      avatar,
      el('span', { class: 'pick-name', text: user.display_name || user.username }),
      el('span', { class: 'pick-sub muted', text: `@${user.username}` })));
}

/** Wires a search box to GET /users?username=; render(users) fills the result list. */
function userSearch(input, results, render) {
  const run = debounce(async () => {
    const q = input.value.trim();
    if (!q) { results.replaceChildren(); return; }
    try {
      const users = await api.searchUsers(q);
      for (const u of users) S.users.set(u.id, u);
      if (input.value.trim() === q) render(users);
    } catch (error) {
      results.replaceChildren(el('li', { class: 'muted', text: errorText(error) }));
    }
  }, 180);
  input.addEventListener('input', run);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown') { const first = results.querySelector('button'); if (first) { e.preventDefault(); first.focus(); } }
  });
  results.addEventListener('keydown', (e) => {
    const buttons = [...results.querySelectorAll('button')];
    const i = buttons.indexOf(document.activeElement);
    if (e.key === 'ArrowDown' && i >= 0 && i < buttons.length - 1) { e.preventDefault(); buttons[i + 1].focus(); }
    if (e.key === 'ArrowUp' && i > 0) { e.preventDefault(); buttons[i - 1].focus(); }
    if (e.key === 'ArrowUp' && i === 0) { e.preventDefault(); input.focus(); }
  });
}

// --- a direct chat ---------------------------------------------------------------------------

function setupNewChat() {
  const dlg = $('dlg-new-chat');
  const input = $('new-chat-query');
  const results = $('new-chat-results');
  $('btn-new-chat').addEventListener('click', () => {
    input.value = '';
    results.replaceChildren();
    dlg.showModal();
    input.focus();
  });
  userSearch(input, results, (users) => {
    results.replaceChildren(...users.map((u) => userRow(u, () => startDirect(u), `Chat with ${u.username}`)));
    if (!users.length) results.append(el('li', { class: 'muted', text: 'Nobody by that name.' }));
  });
  async function startDirect(user) {
    try {
      const { chat_id: chatId } = await api.initiate(user.id);
      await refreshChat(chatId);
      dlg.close();
      openChatRoute(chatId);
    } catch (error) {
      toast(`Could not start the chat: ${errorText(error)}`);
    }
  }
}

// --- a new group -----------------------------------------------------------------------------

function setupNewGroup() {
  const dlg = $('dlg-group');
  const input = $('group-query');
  const results = $('group-results');
  const picked = new Map();
  const renderPicked = () => {
    $('group-picked').replaceChildren(...[...picked.values()].map((u) => el('li', { class: 'chip' },
      el('span', { text: u.display_name || u.username }),
      el('button', { type: 'button', class: 'icon-btn small', attrs: { 'aria-label': `Remove ${u.username}` },
        on: { click: () => { picked.delete(u.id); renderPicked(); } } }, icon('close')))));
  };
  $('btn-new-group').addEventListener('click', () => {
    picked.clear();
    renderPicked();
    $('group-name').value = '';
    input.value = '';
    results.replaceChildren();
    $('group-error').textContent = '';
    dlg.showModal();
    $('group-name').focus();
  });
  userSearch(input, results, (users) => {
    results.replaceChildren(...users.filter((u) => u.id !== S.meId).map((u) => userRow(u, () => {
      picked.set(u.id, u);
      renderPicked();
      input.value = '';
      results.replaceChildren();
      input.focus();
    }, `Add ${u.username}`)));
  });
  $('btn-group-create').addEventListener('click', async () => {
    const name = $('group-name').value.trim();
    if (!name) { $('group-error').textContent = 'Give the group a name.'; $('group-name').focus(); return; }
    try {
      const chat = await api.createGroup(name, [...picked.keys()]);
      S.chats.set(chat.id, chat);
      dlg.close();
      openChatRoute(chat.id);
    } catch (error) {
      $('group-error').textContent = errorText(error);
    }
  });
}

// --- a group's members and name --------------------------------------------------------------

function setupMembers() {
  const dlg = $('dlg-members');
  let chatId = null;
  const canManage = () => {
    const chat = S.chats.get(chatId);
    return chat && (chat.my_role === 'owner' || chat.my_role === 'admin');
  };

  async function render() {
    const chat = S.chats.get(chatId);
    if (!chat) { if (dlg.open) dlg.close(); return; }
    $('dlg-members-title').textContent = chatTitle(chat);
    $('rename-input').value = chat.name || '';
    $('rename-input').disabled = !canManage();
    $('btn-rename').disabled = !canManage();
    $('member-add-row').hidden = !canManage();
    let members;
    try {
      members = await api.members(chatId);
    } catch (error) {
      $('members-error').textContent = errorText(error);
      return;
    }
    await Promise.all(members.map((m) => loadUser(m.user_id)));
    const myRole = chat.my_role;
    $('member-list').replaceChildren(...members.map((m) => {
      const canRemove = m.user_id !== S.meId && (myRole === 'owner' || (myRole === 'admin' && m.role === 'member'));
      const avatar = el('span', { class: 'avatar small', attrs: { 'aria-hidden': 'true' } });
      paintAvatar(avatar, m.user_id, userName(m.user_id));
      return el('li', { class: 'member' },
        avatar,
        el('span', { class: 'pick-name', text: userName(m.user_id), data: { uid: m.user_id } }),
        el('span', { class: 'role muted', text: m.user_id === S.meId ? `${m.role} (you)` : m.role }),
        canRemove ? el('button', {
          type: 'button', class: 'danger small', text: 'Remove', attrs: { 'aria-label': `Remove ${userName(m.user_id)}` },
          on: { click: () => remove(m.user_id) },
        }) : null);
    }));
  }

  async function remove(userId) {
    try {
      await api.removeMember(chatId, userId);
      await render();
    } catch (error) {
      $('members-error').textContent = errorText(error);
    }
  }

  $('btn-members').addEventListener('click', () => {
    chatId = S.openId;
    $('members-error').textContent = '';
    $('member-query').value = '';
    $('member-results').replaceChildren();
    render();
    dlg.showModal();
  });
  $('btn-rename').addEventListener('click', async () => {
    const name = $('rename-input').value.trim();
    if (!name) return;
    try {
      const chat = await api.rename(chatId, name);
      S.chats.set(chat.id, chat);
      $('members-error').textContent = '';
      document.dispatchEvent(new CustomEvent('chat-changed', { detail: chat.id }));
      toast('Renamed.');
    } catch (error) {
      $('members-error').textContent = errorText(error);
    }
  });
  $('rename-input').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); $('btn-rename').click(); } });
  userSearch($('member-query'), $('member-results'), (users) => {
    const chat = S.chats.get(chatId);
    const present = new Set(chat ? chat.participants : []);
    $('member-results').replaceChildren(...users.filter((u) => !present.has(u.id)).map((u) => userRow(u, async () => {
      try {
        await api.addMembers(chatId, [u.id]);
        $('member-query').value = '';
        $('member-results').replaceChildren();
        await refreshChat(chatId);
        await render();
      } catch (error) {
        $('members-error').textContent = errorText(error);
      }
    }, `Add ${u.username}`)));
  });
  $('btn-leave').addEventListener('click', async () => {
    if (!confirm('Leave this group?')) return;
    try {
      await api.removeMember(chatId, S.meId);
      dlg.close();
    } catch (error) {
      $('members-error').textContent = errorText(error);
    }
  });
  document.addEventListener('chat-changed', (e) => { if (dlg.open && e.detail === chatId) render(); });
}

// --- message search --------------------------------------------------------------------------

function setupSearch() {
  const dlg = $('dlg-search');
  const input = $('search-query');
  const status = $('search-status');
  const results = $('search-results');
  const more = $('btn-search-more');
  let nextBefore = null;
  let query = '';

  async function run(append) {
    const q = input.value.trim();
    if (!q) { results.replaceChildren(); status.textContent = ''; more.hidden = true; return; }
    if (!append) { query = q; nextBefore = null; }
    const onlyChat = $('search-this-chat').checked && S.openId != null ? S.openId : null;
    status.textContent = 'Searching…';
    try {
      const page = await api.search(query, { chatId: onlyChat, beforeId: append ? nextBefore : null });
      const rows = page.messages.map(resultRow);
      if (append) results.append(...rows); else results.replaceChildren(...rows);
      nextBefore = page.next_before_id;
      more.hidden = nextBefore == null;
      status.textContent = results.children.length ? '' : 'No messages found.';
    } catch (error) {
      more.hidden = true;
      if (!append) results.replaceChildren();
      status.textContent = error instanceof ApiError && error.status === 404 && /endpoint|not found/i.test(error.message)
        ? 'Message search is not available on this server yet.'
        : `Search failed: ${errorText(error)}`;
    }
  }

  function resultRow(m) {
    const chat = S.chats.get(m.chat_id);
    return el('li', {},
      el('button', {
        type: 'button', class: 'pick result',
        on: { click: () => { dlg.close(); jumpToMessage(m.chat_id, m.id); } },
      },
      el('span', { class: 'result-top' },
        el('span', { class: 'pick-name', text: chat ? chatTitle(chat) : `chat ${m.chat_id}` }),
        el('span', { class: 'muted', text: `${userName(m.sender_id)} · ${formatListTime(m.timestamp)}`, data: {} })),
      highlighted(m.content || '📎 attachment', query)));
  }

  /** The text with the query's words marked: text nodes and <mark>s, never HTML. */
  function highlighted(text, q) {
    const words = q.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w.length > 0);
    const span = el('span', { class: 'result-text' });
    const lower = text.toLowerCase();
    // (Lower-casing that changes the length would shift the marks: plain text then.)
    if (!words.length || lower.length !== text.length) { span.textContent = text; return span; }
    let i = 0;
    while (i < text.length) {
      let best = -1, len = 0;
      for (const w of words) {
        const at = lower.indexOf(w, i);
        if (at !== -1 && (best === -1 || at < best)) { best = at; len = w.length; }
      }
      if (best === -1) { span.append(text.slice(i)); break; }
      if (best > i) span.append(text.slice(i, best));
      span.append(el('mark', { text: text.slice(best, best + len) }));
      i = best + len;
    }
    return span;
  }

  $('btn-search').addEventListener('click', () => {
    dlg.showModal();
    input.focus();
    input.select();
  });
  input.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); run(false); } });
  input.addEventListener('input', debounce(() => run(false), 300));
  more.addEventListener('click', () => run(true));
}

// --- your account: display name, password, every session ----------------------------------

function setupProfile() {
  const dlg = $('dlg-profile');
  const status = $('profile-status');
  const say = (text, bad = false) => { status.textContent = text; status.classList.toggle('error', bad); };
  const missing = (error) => error instanceof ApiError && (error.status === 404 || error.status === 405);

  $('btn-profile').addEventListener('click', () => {
    const me = S.users.get(S.meId);
    $('profile-username').textContent = me ? `Signed in as @${me.username}` : '';
    $('profile-name').value = me ? (me.display_name || '') : '';
    $('pw-current').value = '';
    $('pw-new').value = '';
    say('');
    dlg.showModal();
    $('profile-name').focus();
  });
  $('btn-profile-save').addEventListener('click', async () => {
    const name = $('profile-name').value.trim();
    try {
      const user = await api.updateProfile({ display_name: name || null });
      S.users.set(user.id, user);
      document.dispatchEvent(new CustomEvent('user-changed', { detail: user.id }));
      say('Saved.');
    } catch (error) {
      say(errorText(error), true);
    }
  });
  $('profile-name').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); $('btn-profile-save').click(); } });
  $('btn-password').addEventListener('click', async () => {
    const password = $('pw-new').value;
    if (password.length < 8 || password.length > 128) { say('A password has 8 to 128 characters.', true); $('pw-new').focus(); return; }
    try {
      const answer = await api.setPassword(password, $('pw-current').value || null);
      $('pw-current').value = '';
      $('pw-new').value = '';
      if (answer && typeof answer.token === 'string') { dlg.close(); replaceToken(answer.token); toast('Password set.'); return; }
      say('Password set. Signing in as you now needs it.');
    } catch (error) {
      if (missing(error) && /endpoint|not found/i.test(error.message)) say('Passwords are not available on this server yet.', true);
      else if (error instanceof ApiError && (error.status === 401 || error.status === 403)) say('The current password is wrong.', true);
      else say(errorText(error), true);
    }
  });
  $('btn-logout-all').addEventListener('click', async () => {
    if (!confirm('Log out on every device, this one included?')) return;
    try {
      await api.logoutAll();
      dlg.close();
      logout('Logged out everywhere.');
    } catch (error) {
      if (missing(error)) say('This server cannot end other sessions yet.', true);
      else say(errorText(error), true);
    }
  });
}

export function setupDialogs() {
  setupProfile();
  // Enter in a dialog's field must not submit the form (that would close the dialog): only
  // its Close/Cancel buttons do.
  for (const form of document.querySelectorAll('dialog form')) {
    form.addEventListener('submit', (e) => {
      if (!e.submitter || e.submitter.value !== 'cancel') e.preventDefault();
    });
  }
  setupNewChat();
  setupNewGroup();
  setupMembers();
  setupSearch();
}
