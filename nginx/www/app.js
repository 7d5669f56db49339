// The messenger's web client: state, the event stream, the chat list and the open chat.
// Dialogs (new chat, group, members, search) are in dialogs.js.

import { Api, ApiError } from './api.js';
import { Stream } from './socket.js';
import { $, el, clear, formatTime, formatDay, formatListTime, formatBytes, paintAvatar, parseTime, sameDay, debounce } from './dom.js';
import { setupDialogs } from './dialogs.js';
import { icon, fillIcons } from './icons.js';

const PAGE = 50;
const TYPING_SHOW_MS = 6000;
const TYPING_SEND_EVERY_MS = 3000;
const QUICK_REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🎉'];
const STORAGE_TOKEN = 'messenger.token';

export const api = new Api();

/** Everything the client knows. Chats and users are full protocol-2 objects. */
export const S = {
  meId: null,
  chats: new Map(),       // chat id -> chat
  users: new Map(),       // user id -> user
  userLoads: new Map(),   // user id -> Promise
  views: new Map(),       // chat id -> {messages: Map, ids: [], hasMore, loading, receipts: Map}
  openId: null,
  typing: new Map(),      // chat id -> Map(user id -> timer)
  presence: new Map(),    // user id -> {online, last_seen}
  pending: new Map(),     // nonce -> {chatId, body, node, acked: id|null, failed}
  replyTo: null,          // message being answered
  editing: null,          // own message being edited
  attachments: [],        // {file, receipt, progress, error, abort, node}
  stream: null,
  stateLoaded: false,
  buffered: [],
  lastTypingSent: 0,
};

// --- small helpers ---------------------------------------------------------------------------

export function toast(message) {
  const node = $('toast');
  node.textContent = message;
  node.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { node.hidden = true; }, 4500);
}

function errorText(error) {
  if (error instanceof ApiError) {
    if (error.status === 429) return `Too many requests; try again in ${error.retryAfter || 'a few'} s`;
    return error.message;
  }
  return String(error && error.message || error);
}
export { errorText };

export function userName(id) {
  const user = S.users.get(id);
  if (user) return user.display_name || user.username;
  loadUser(id);
  return `user ${id}`;
}

export function loadUser(id) {
  if (S.users.has(id)) return Promise.resolve(S.users.get(id));
  if (S.userLoads.has(id)) return S.userLoads.get(id);
  const p = api.user(id).then((user) => {
    S.users.set(id, user);
    refreshNames(id);
    return user;
  }).catch(() => null).finally(() => S.userLoads.delete(id));
  S.userLoads.set(id, p);
  return p;
}

/** A user's name changed or arrived: every place showing it. */
function refreshNames(id) {
  for (const node of document.querySelectorAll(`[data-uid="${id}"]`)) node.textContent = userName(id);
  scheduleChatList();
  if (S.openId != null) renderHeader();
}

export function chatTitle(chat) {
  if (chat.chat_type === 'group') return chat.name || 'Group';
  const peer = peerOf(chat);
  return peer == null ? `${userName(S.meId)} (you)` : userName(peer);
}

function peerOf(chat) {
  if (chat.chat_type !== 'direct') return null;
  const other = chat.participants.find((id) => id !== S.meId);
  return other ?? null;
}

function activityKey(chat) {
  return chat.last_message ? chat.last_message.timestamp : chat.created_at;
}

function sortedChats() {
  return [...S.chats.values()].sort((a, b) => {
    const ka = activityKey(a), kb = activityKey(b);
    if (ka !== kb) return ka < kb ? 1 : -1;
    const ia = a.last_message ? a.last_message.id : 0, ib = b.last_message ? b.last_message.id : 0;
    if (ia !== ib) return ib - ia;
    return b.id - a.id;
  });
}

function preview(message) {
  if (!message) return '';
  let text = (message.content || '').replace(/\s+/g, ' ').trim();
  if (!text && message.files && message.files.length) {
    const f = message.files[0];
    text = f.type === 'picture' ? '📷 Photo' : `📎 ${f.filename || 'File'}`;
  }
  return message.sender_id === S.meId ? `You: ${text}` : text;
}

// --- log in / out ----------------------------------------------------------------------------

function showLogin(message = '') {
  $('app-view').hidden = true;
  $('login-view').hidden = false;
  $('login-error').textContent = message;
  $('login-username').focus();
}

async function onLoginSubmit(event) {
  event.preventDefault();
  const username = $('login-username').value.trim();
  const password = $('login-password').value;
  const needsPassword = !$('login-password-row').hidden;
  $('login-error').textContent = '';
  if (!username) return;
  $('login-submit').disabled = true;
  try {
    const { token } = await api.login(username, needsPassword ? password : null);
    localStorage.setItem(STORAGE_TOKEN, token);
    $('login-password').value = '';
    startSession(token);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && !needsPassword) {
      // The account has a password: ask for it.
      $('login-password-row').hidden = false;
      $('login-error').textContent = 'This account has a password.';
      $('login-password').focus();
    } else if (error instanceof ApiError && error.status === 401) {
      $('login-error').textContent = 'Wrong username or password.';
      $('login-password').select();
    } else {
      $('login-error').textContent = errorText(error);
    }
  } finally {
    $('login-submit').disabled = false;
  }
}

function resetState() {
  if (S.stream) S.stream.stop();
  S.stream = null;
  S.meId = null;
  S.chats.clear(); S.views.clear(); S.typing.clear(); S.presence.clear(); S.pending.clear();
  S.replyTo = null; S.editing = null;
  for (const a of S.attachments) if (a.abort) a.abort();
  S.attachments = [];
  S.openId = null;
  S.stateLoaded = false;
  S.buffered = [];
  loadGeneration += 1;   // a load still under way belongs to the old session
  clear($('message-list'));
  clear($('chat-list'));
  chatItems.clear();
  clear($('attachments'));
}

/** A new token for the same person (e.g. after a password change): the session restarts. */
export function replaceToken(token) {
  resetState();
  localStorage.setItem(STORAGE_TOKEN, token);
  startSession(token);
}

export async function logout(message = '') {
  const token = api.token;
  resetState();
  localStorage.removeItem(STORAGE_TOKEN);
  api.token = null;
  if (token && !message) {
    // Revoke the session where the server supports it; a server without /logout answers 404.
    fetch('/logout', { method: 'POST', headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
  }
  $('login-password-row').hidden = true;
  if (location.hash) history.replaceState(null, '', '/');
  showLogin(message);
}

/** The user id a token names (its payload's user_id), or null if it cannot be read. */
function tokenUserId(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const id = JSON.parse(atob(part)).user_id;
    return Number.isInteger(id) ? id : null;
  } catch {
    return null;
  }
}

function startSession(token) {
  api.token = token;
  S.meId = tokenUserId(token);
  if (S.meId != null) loadUser(S.meId).then(renderMe);
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  renderChatList();
  showPane();
  S.stream = new Stream(token, {
    onState: renderConnection,
    onReady: (d, resumed) => {
      if (S.meId !== d.user_id) {
        S.meId = d.user_id;
        loadUser(S.meId).then(renderMe);
      }
      if (!resumed) loadState();
      flushPending();
    },
    onEvent: (frame) => {
      if (S.stateLoaded) applyEvent(frame); else S.buffered.push(frame);
    },
    onEphemeral: applyEphemeral,
    onAck: onAck,
    onError: onSocketError,
    onResync: () => loadState(),
    onFatal: () => logout('Your session has ended. Please sign in again.'),
  });
  S.stream.start();
  // Show what REST has if the socket is slow to come up; the first READY loads again, so
  // nothing between this load and the stream's start is missed.
  setTimeout(() => { if (S.stream && !S.stream.isReady() && !S.stateLoaded && api.token === token) loadState(); }, 4000);
}

function renderMe() {
  const me = S.users.get(S.meId);
  if (!me) return;
  $('me-name').textContent = me.display_name || me.username;
  $('me-name').dataset.uid = String(me.id);
  paintAvatar($('me-avatar'), me.id, me.display_name || me.username);
}

/** Chats (and the open chat's history) over REST, then the events that arrived meanwhile. */
let loadGeneration = 0;
async function loadState() {
  const generation = ++loadGeneration;
  S.stateLoaded = false;
  S.views.clear();   // histories are read again too: they may predate the stream's start
  try {
    const chats = await api.chats();
    if (generation !== loadGeneration) return;   // a newer load is under way; events wait for it
    S.chats.clear();
    for (const chat of chats) S.chats.set(chat.id, chat);
    // Names for the first screen of chats before showing it; the rest fill in as they come.
    // Presence is shown for direct chats only.
    const firstScreen = new Set(), peers = new Set();
    chats.forEach((chat, i) => {
      const peer = peerOf(chat);
      if (peer == null) return;
      peers.add(peer);
      if (i < 30) firstScreen.add(peer);
    });
    await Promise.all([...firstScreen].map(loadUser));
    if (generation !== loadGeneration) return;
    loadPresence([...peers]);
  } catch (error) {
    if (generation !== loadGeneration) return;
    toast(`Could not load chats: ${errorText(error)}`);
  }
  if (generation !== loadGeneration) return;
  S.stateLoaded = true;
  const buffered = S.buffered;
  S.buffered = [];
  for (const frame of buffered) applyEvent(frame);
  renderChatList();
  route();
}

async function loadPresence(ids) {
  if (!ids.length) return;
  try {
    for (let i = 0; i < ids.length; i += 100) {
      for (const p of await api.presence(ids.slice(i, i + 100))) S.presence.set(p.user_id, p);
    }
    renderChatList();
    if (S.openId != null) renderHeader();
  } catch { /* presence is decoration */ }
}

function renderConnection(state) {
  const banner = $('conn-banner');
  if (state === 'open') {
    banner.hidden = true;
    banner.textContent = '';
    document.body.classList.remove('offline');
  } else {
    banner.hidden = false;
    banner.textContent = state === 'connecting' ? 'Connecting…' : 'Reconnecting…';
    document.body.classList.toggle('offline', state !== 'connecting');
  }
}

// --- events ----------------------------------------------------------------------------------

function applyEvent(frame) {
  const d = frame.d;
  switch (frame.op) {
    case 'MESSAGE': onMessage(d); break;
    case 'MESSAGE_EDITED': onMessageEdited(d); break;
    case 'MESSAGE_DELETED': onMessageDeleted(d); break;
    case 'REACTION': onReaction(d); break;
    case 'READ': onRead(d); break;
    case 'CHAT': onChat(d); break;
    case 'CHAT_REMOVED': onChatRemoved(d); break;
    case 'USER': S.users.set(d.id, d); refreshNames(d.id); if (d.id === S.meId) renderMe(); document.dispatchEvent(new CustomEvent('user-changed', { detail: d.id })); break;
    default: break;
  }
}

function onMessage(m) {
  const chat = S.chats.get(m.chat_id);
  const view = S.views.get(m.chat_id);
  if (view) insertMessage(view, m);
  stopTyping(m.chat_id, m.sender_id);
  if (!chat) { refreshChat(m.chat_id); return; }
  const isNew = !chat.last_message || m.id > chat.last_message.id;
  if (isNew) {
    chat.last_message = m;
    if (m.sender_id === S.meId) {
      chat.last_read_id = Math.max(chat.last_read_id || 0, m.id);
      chat.unread_count = 0;
    } else if (m.id > (chat.last_read_id || 0)) {
      chat.unread_count = (chat.unread_count || 0) + 1;
    }
  }
  for (const p of S.pending.values()) {
    if (p.acked === m.id) dropPending(p);
  }
  scheduleChatList();
  if (S.openId === m.chat_id) maybeMarkRead();
}

function onMessageEdited(m) {
  const view = S.views.get(m.chat_id);
  if (view && view.messages.has(m.id)) {
    view.messages.set(m.id, m);
    if (S.openId === m.chat_id) replaceMessageNode(m);
  }
  const chat = S.chats.get(m.chat_id);
  if (chat && chat.last_message && chat.last_message.id === m.id) {
    chat.last_message = m;
    scheduleChatList();
  }
}

function onMessageDeleted({ chat_id: chatId, message_id: id }) {
  const view = S.views.get(chatId);
  if (view && view.messages.has(id)) {
    view.messages.delete(id);
    view.ids = view.ids.filter((x) => x !== id);
    if (S.openId === chatId) renderMessages({ keepScroll: true });
  }
  const chat = S.chats.get(chatId);
  if (chat && chat.last_message && chat.last_message.id === id) refreshChat(chatId);
  else if (chat && id > (chat.last_read_id || 0)) refreshChat(chatId);   // the unread count
  if (S.editing && S.editing.id === id) cancelContext();
  if (S.replyTo && S.replyTo.id === id) cancelContext();
}

function onReaction({ chat_id: chatId, message_id: id, user_id: uid, emoji, added }) {
  const view = S.views.get(chatId);
  const m = view && view.messages.get(id);
  if (!m) return;
  const reactions = (m.reactions || []).map((r) => ({ ...r, user_ids: [...r.user_ids] }));
  let r = reactions.find((x) => x.emoji === emoji);
  if (added) {
    if (!r) { r = { emoji, count: 0, user_ids: [] }; reactions.push(r); }
    if (!r.user_ids.includes(uid)) { r.count += 1; if (r.user_ids.length < 20) r.user_ids.push(uid); }
  } else if (r && (r.user_ids.includes(uid) || r.count > r.user_ids.length)) {
    r.count -= 1;
    r.user_ids = r.user_ids.filter((x) => x !== uid);
  }
  m.reactions = reactions.filter((x) => x.count > 0);
  if (S.openId === chatId) replaceMessageNode(m);
}

function onRead({ chat_id: chatId, user_id: uid, last_read_id: lastRead }) {
  const view = S.views.get(chatId);
  if (view) {
    view.receipts.set(uid, Math.max(view.receipts.get(uid) || 0, lastRead));
    if (S.openId === chatId) refreshTicks();
  }
  const chat = S.chats.get(chatId);
  if (chat && uid === S.meId && lastRead > (chat.last_read_id || 0)) {
    chat.last_read_id = lastRead;
    if (!chat.last_message || lastRead >= chat.last_message.id) chat.unread_count = 0;
    else refreshChat(chatId);
    scheduleChatList();
  }
}

/** Names and presence of a chat's people we have not seen yet. */
function meetParticipants(chat) {
  const peer = peerOf(chat);
  if (peer != null) {
    loadUser(peer);
    if (!S.presence.has(peer)) loadPresence([peer]);
  }
}

function onChat(chat) {
  const old = S.chats.get(chat.id);
  S.chats.set(chat.id, chat);
  meetParticipants(chat);
  scheduleChatList();
  if (S.openId === chat.id) {
    renderHeader();
    if (old && old.participants.join() !== chat.participants.join()) loadReceipts(chat.id);
  }
  document.dispatchEvent(new CustomEvent('chat-changed', { detail: chat.id }));
}

function onChatRemoved({ chat_id: chatId }) {
  S.chats.delete(chatId);
  S.views.delete(chatId);
  scheduleChatList();
  if (S.openId === chatId) {
    toast('You are no longer a member of that chat.');
    location.hash = '#/';
  }
  document.dispatchEvent(new CustomEvent('chat-changed', { detail: chatId }));
}

const refreshing = new Set();
async function refreshChat(chatId) {
  if (refreshing.has(chatId)) return;
  refreshing.add(chatId);
  try {
    const chat = await api.chat(chatId);
    S.chats.set(chat.id, chat);
    meetParticipants(chat);
    scheduleChatList();
    if (S.openId === chatId) renderHeader();
  } catch (error) {
    if (error instanceof ApiError && (error.status === 403 || error.status === 404)) {
      S.chats.delete(chatId);
      scheduleChatList();
    }
  } finally {
    refreshing.delete(chatId);
  }
}
export { refreshChat };

// --- typing and presence ---------------------------------------------------------------------

function applyEphemeral(frame) {
  const d = frame.d;
  if (frame.op === 'TYPING') {
    if (d.user_id === S.meId) return;
    let map = S.typing.get(d.chat_id);
    if (!map) { map = new Map(); S.typing.set(d.chat_id, map); }
    clearTimeout(map.get(d.user_id));
    map.set(d.user_id, setTimeout(() => stopTyping(d.chat_id, d.user_id), TYPING_SHOW_MS));
    typingChanged(d.chat_id);
  } else if (frame.op === 'PRESENCE') {
    S.presence.set(d.user_id, d);
    scheduleChatList();
    if (S.openId != null) renderHeader();
  }
}

function stopTyping(chatId, userId) {
  const map = S.typing.get(chatId);
  if (!map || !map.has(userId)) return;
  clearTimeout(map.get(userId));
  map.delete(userId);
  typingChanged(chatId);
}

function typingChanged(chatId) {
  scheduleChatList();
  if (S.openId === chatId) renderHeader();
}

function typingText(chatId) {
  const map = S.typing.get(chatId);
  if (!map || map.size === 0) return '';
  const names = [...map.keys()].map(userName);
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}

function presenceText(userId) {
  const p = S.presence.get(userId);
  if (!p) return '';
  if (p.online) return 'online';
  if (!p.last_seen) return 'offline';
  const d = parseTime(p.last_seen);
  return `last seen ${sameDay(d, new Date()) ? formatTime(p.last_seen) : formatListTime(p.last_seen)}`;
}

// --- the chat list ---------------------------------------------------------------------------

let listFrame = 0;
function scheduleChatList() {
  if (listFrame) return;
  listFrame = requestAnimationFrame(() => { listFrame = 0; renderChatList(); });
}

const chatItems = new Map();   // chat id -> its <li>, kept across renders

function renderChatList() {
  const list = $('chat-list');
  const focused = document.activeElement && document.activeElement.closest ? document.activeElement.closest('.chat-item') : null;
  const order = [];
  let unreadTotal = 0;
  for (const chat of sortedChats()) {
    unreadTotal += chat.unread_count || 0;
    let li = chatItems.get(chat.id);
    if (!li) {
      const id = chat.id;
      li = el('li', {
        class: 'chat-item', data: { id },
        attrs: { role: 'option', tabindex: '0' },
        on: { click: () => openChatRoute(id), keydown: (e) => chatItemKey(e, id) },
      });
      chatItems.set(id, li);
    }
    fillChatItem(li, chat);
    order.push(li);
  }
  for (const [id, li] of chatItems) {
    if (!S.chats.has(id)) { li.remove(); chatItems.delete(id); }
  }
  const current = [...list.children];
  if (current.length !== order.length || current.some((node, i) => node !== order[i])) {
    list.replaceChildren(...order);
    if (focused && document.contains(focused)) focused.focus();
  }
  $('chat-list-empty').hidden = order.length > 0 || !S.stateLoaded;
  document.title = unreadTotal > 0 ? `(${unreadTotal}) Messenger` : 'Messenger';
}

function fillChatItem(li, chat) {
  const active = chat.id === S.openId;
  const typing = typingText(chat.id);
  li.className = `chat-item${active ? ' active' : ''}${chat.unread_count > 0 ? ' unread' : ''}`;
  li.setAttribute('aria-selected', active ? 'true' : 'false');
  const avatar = el('span', { class: 'avatar', attrs: { 'aria-hidden': 'true' } });
  const peer = peerOf(chat);
  paintAvatar(avatar, chat.chat_type === 'group' ? chat.id + 7 : (peer ?? S.meId), chatTitle(chat));
  if (peer != null && S.presence.get(peer)?.online) avatar.classList.add('online');
  const badge = chat.unread_count > 0
    ? el('span', { class: 'badge', text: chat.unread_count > 999 ? '999+' : String(chat.unread_count), attrs: { 'aria-label': `${chat.unread_count} unread` } })
    : null;
  li.replaceChildren(avatar,
    el('div', { class: 'ci-body' },
      el('div', { class: 'ci-top' },
        el('span', { class: 'ci-name', text: chatTitle(chat) }),
        el('time', { class: 'ci-time', text: formatListTime(activityKey(chat)) })),
      el('div', { class: 'ci-bottom' },
        el('span', { class: `ci-preview${typing ? ' typing' : ''}`, text: typing || preview(chat.last_message) }),
        badge)));
}

function chatItemKey(e, chatId) {
  const item = e.currentTarget;
  if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); openChatRoute(chatId); }
  else if (e.key === 'ArrowDown' && item.nextElementSibling) { e.preventDefault(); item.nextElementSibling.focus(); }
  else if (e.key === 'ArrowUp' && item.previousElementSibling) { e.preventDefault(); item.previousElementSibling.focus(); }
}

// --- routing ---------------------------------------------------------------------------------

export function openChatRoute(chatId) {
  const target = `#/chat/${chatId}`;
  if (location.hash === target) route(); else location.hash = target;
}

function route() {
  if (!api.token) return;
  const match = /^#\/chat\/(\d+)$/.exec(location.hash);
  const chatId = match ? Number(match[1]) : null;
  if (chatId != null && S.stateLoaded && !S.chats.has(chatId)) {
    refreshChat(chatId).then(() => { if (S.chats.has(chatId)) openChat(chatId); });
    return;
  }
  openChat(chatId);
}

function showPane() {
  document.querySelector('.app').classList.toggle('show-chat', S.openId != null);
}

// --- the open chat ---------------------------------------------------------------------------

function newView() {
  return { messages: new Map(), ids: [], hasMore: true, loading: false, loaded: false, receipts: new Map() };
}

async function openChat(chatId) {
  if (chatId !== S.openId) {
    cancelContext();
    S.openId = chatId;
  }
  showPane();
  scheduleChatList();
  const chat = chatId != null ? S.chats.get(chatId) : null;
  $('chat-placeholder').hidden = !!chat;
  $('chat-main').hidden = !chat;
  if (!chat) return;
  renderHeader();
  let view = S.views.get(chatId);
  if (!view) { view = newView(); S.views.set(chatId, view); }
  renderMessages({ toBottom: true });
  if (!view.loaded) {
    await loadOlder(chatId, true);
    loadReceipts(chatId);
  } else {
    maybeMarkRead();
  }
  if (window.matchMedia('(min-width: 700px)').matches) $('composer-input').focus();
}

async function loadReceipts(chatId) {
  try {
    const receipts = await api.receipts(chatId);
    const view = S.views.get(chatId);
    if (!view) return;
    for (const r of receipts) view.receipts.set(r.user_id, Math.max(view.receipts.get(r.user_id) || 0, r.last_read_id || 0));
    if (S.openId === chatId) refreshTicks();
  } catch { /* ticks stay at ✓ */ }
}

/** One page of history before the oldest loaded message (the newest page the first time). */
export async function loadOlder(chatId, first = false) {
  const view = S.views.get(chatId);
  if (!view || view.loading || (!first && !view.hasMore)) return;
  view.loading = true;
  $('history-top').textContent = 'Loading…';
  try {
    const page = await api.messages(chatId, { beforeId: first ? null : view.ids[0], limit: PAGE });
    for (const m of page.messages) {
      if (!view.messages.has(m.id)) view.messages.set(m.id, m);
    }
    view.ids = [...view.messages.keys()].sort((a, b) => a - b);
    view.hasMore = page.messages.length === PAGE;
    view.loaded = true;
    if (S.openId === chatId) {
      renderMessages(first ? { toBottom: true } : { keepScroll: true, prepended: true });
      if (first) maybeMarkRead();
    }
  } catch (error) {
    toast(`Could not load messages: ${errorText(error)}`);
  } finally {
    view.loading = false;
    if (S.openId === chatId) $('history-top').textContent = view.hasMore ? '' : 'This is the beginning of the chat.';
  }
}

function renderHeader() {
  const chat = S.chats.get(S.openId);
  if (!chat) return;
  $('chat-name').textContent = chatTitle(chat);
  const peer = peerOf(chat);
  paintAvatar($('chat-avatar'), chat.chat_type === 'group' ? chat.id + 7 : (peer ?? S.meId), chatTitle(chat));
  const typing = typingText(chat.id);
  let sub;
  if (typing) sub = typing;
  else if (chat.chat_type === 'group') sub = `${chat.participants.length} member${chat.participants.length === 1 ? '' : 's'}`;
  else sub = peer != null ? presenceText(peer) : 'notes to yourself';
  $('chat-sub').textContent = sub;
  $('chat-sub').classList.toggle('typing', !!typing);
  $('btn-members').hidden = chat.chat_type !== 'group';
}

const messagesBox = () => $('messages');
function atBottom() {
  const box = messagesBox();
  return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
}
function scrollToBottom() { const box = messagesBox(); box.scrollTop = box.scrollHeight; }

function insertMessage(view, m) {
  if (view.messages.has(m.id)) {
    view.messages.set(m.id, m);
    if (S.openId === m.chat_id) replaceMessageNode(m);
    return;
  }
  view.messages.set(m.id, m);
  // Before the first page has arrived the message is only kept: the page may have been read
  // before it was committed, and merging keeps both.
  if (!view.loaded) return;
  const last = view.ids[view.ids.length - 1];
  if (last === undefined || m.id > last) view.ids.push(m.id);
  else view.ids = [...view.messages.keys()].sort((a, b) => a - b);
  if (S.openId !== m.chat_id) return;
  const stick = atBottom() || m.sender_id === S.meId;
  if (m.id === view.ids[view.ids.length - 1]) appendMessageNode(view, m);
  else renderMessages({ keepScroll: true });
  if (stick) scrollToBottom();
  else $('btn-jump').hidden = false;
}

function dayDivider(ts) {
  return el('li', { class: 'day', attrs: { role: 'separator' } }, el('span', { text: formatDay(ts) }));
}

function continues(prev, m) {
  if (!prev || prev.sender_id !== m.sender_id) return false;
  return parseTime(m.timestamp) - parseTime(prev.timestamp) < 5 * 60 * 1000;
}

function renderMessages({ toBottom = false, keepScroll = false, prepended = false } = {}) {
  const view = S.views.get(S.openId);
  const list = $('message-list');
  const box = messagesBox();
  const oldHeight = box.scrollHeight, oldTop = box.scrollTop;
  const nodes = [];
  let prev = null;
  if (view) {
    for (const id of view.ids) {
      const m = view.messages.get(id);
      if (!prev || !sameDay(parseTime(prev.timestamp), parseTime(m.timestamp))) { nodes.push(dayDivider(m.timestamp)); prev = null; }
      nodes.push(messageNode(m, continues(prev, m)));
      prev = m;
    }
  }
  for (const p of S.pending.values()) if (p.chatId === S.openId && p.node) nodes.push(p.node);
  list.replaceChildren(...nodes);
  if (toBottom) scrollToBottom();
  else if (prepended) box.scrollTop = oldTop + (box.scrollHeight - oldHeight);
  else if (keepScroll) box.scrollTop = oldTop;
}

function appendMessageNode(view, m) {
  const list = $('message-list');
  const prevId = view.ids[view.ids.length - 2];
  const prev = prevId !== undefined ? view.messages.get(prevId) : null;
  const firstPending = list.querySelector('.msg.pending');
  if (!prev || !sameDay(parseTime(prev.timestamp), parseTime(m.timestamp))) {
    list.insertBefore(dayDivider(m.timestamp), firstPending);
    list.insertBefore(messageNode(m, false), firstPending);
  } else {
    list.insertBefore(messageNode(m, continues(prev, m)), firstPending);
  }
}

function replaceMessageNode(m) {
  const old = $('message-list').querySelector(`.msg[data-id="${m.id}"]`);
  if (!old) return;
  const fresh = messageNode(m, old.classList.contains('cont'));
  const hadFocus = old.contains(document.activeElement);
  old.replaceWith(fresh);
  if (hadFocus) fresh.focus();
}

function readByAll(m) {
  const chat = S.chats.get(m.chat_id);
  const view = S.views.get(m.chat_id);
  if (!chat || !view) return false;
  const others = chat.participants.filter((id) => id !== S.meId);
  if (others.length === 0) return false;
  return others.every((id) => (view.receipts.get(id) || 0) >= m.id);
}

function ticksNode(m) {
  const read = readByAll(m);
  return el('span', {
    class: `ticks${read ? ' read' : ''}`,
    text: read ? '✓✓' : '✓',
    attrs: { title: read ? 'Read' : 'Sent', 'aria-label': read ? 'read' : 'sent' },
  });
}

function refreshTicks() {
  const view = S.views.get(S.openId);
  if (!view) return;
  for (const node of $('message-list').querySelectorAll('.msg.mine[data-id]')) {
    const m = view.messages.get(Number(node.dataset.id));
    const ticks = node.querySelector('.ticks');
    if (m && ticks) ticks.replaceWith(ticksNode(m));
  }
}

function fileNode(f) {
  // Only the server's own upload URLs (same origin, served sandboxed by nginx).
  if (typeof f.url !== 'string' || !f.url.startsWith('/uploads/')) {
    return el('span', { class: 'att-file muted', text: f.filename || 'attachment' });
  }
  if (f.type === 'picture') {
    const img = el('img', { class: 'att-img', src: f.url, alt: f.filename || 'image', loading: 'lazy', decoding: 'async' });
    img.addEventListener('load', () => { if (atBottom() || img.dataset.stick) scrollToBottom(); }, { once: true });
    if (atBottom()) img.dataset.stick = '1';
    return el('a', { class: 'att-img-link', href: f.url, target: '_blank', rel: 'noopener noreferrer' }, img);
  }
  if (f.type === 'video') return el('video', { class: 'att-media', src: f.url, controls: true, preload: 'metadata' });
  if (f.type === 'audio') return el('audio', { class: 'att-media', src: f.url, controls: true, preload: 'metadata' });
  return el('a', { class: 'att-file', href: f.url, attrs: { download: f.filename || '' } },
    el('span', { class: 'att-icon' }, icon('file')),
    el('span', { class: 'att-name', text: f.filename || 'file' }),
    el('span', { class: 'att-size muted', text: formatBytes(f.size_bytes) }));
}

function replyQuote(m) {
  const view = S.views.get(m.chat_id);
  const original = view && view.messages.get(m.reply_to_id);
  const who = !original ? null : original.sender_id === S.meId
    ? el('span', { class: 'rq-name', text: 'You' })
    : el('span', { class: 'rq-name', text: userName(original.sender_id), data: { uid: original.sender_id } });
  const text = original ? (original.content || (original.files.length ? '📎 attachment' : '')) : 'an earlier message';
  return el('button', {
    type: 'button', class: 'reply-quote',
    attrs: { 'aria-label': 'Show the message this replies to' },
    on: { click: () => jumpToMessage(m.chat_id, m.reply_to_id) },
  }, who, el('span', { class: 'rq-text', text }));
}

function messageNode(m, cont) {
  const mine = m.sender_id === S.meId;
  const chat = S.chats.get(m.chat_id);
  const showName = !mine && !cont && chat && chat.chat_type === 'group';
  const bubble = el('div', { class: 'bubble' },
    showName ? el('div', { class: 'sender', text: userName(m.sender_id), data: { uid: m.sender_id } }) : null,
    m.reply_to_id != null ? replyQuote(m) : null,
    m.files && m.files.length ? el('div', { class: 'files' }, ...m.files.map(fileNode)) : null,
    m.content ? el('div', { class: 'text', text: m.content }) : null,
    el('div', { class: 'meta' },
      m.edited_at ? el('span', { class: 'edited', text: 'edited' }) : null,
      el('time', { text: formatTime(m.timestamp), attrs: { datetime: m.timestamp } }),
      mine ? ticksNode(m) : null));
  const reactions = (m.reactions || []).length
    ? el('div', { class: 'reactions' }, ...m.reactions.map((r) => {
        const minePick = r.user_ids.includes(S.meId);
        return el('button', {
          type: 'button', class: `reaction${minePick ? ' mine' : ''}`,
          attrs: { 'aria-pressed': minePick ? 'true' : 'false', title: r.user_ids.map(userName).join(', ') },
          on: { click: () => toggleReaction(m, r.emoji) },
        }, el('span', { text: r.emoji }), el('span', { class: 'count', text: String(r.count) }));
      }))
    : null;
  const actions = el('div', { class: 'actions' },
    actionButton('reply', 'Reply', () => startReply(m)),
    actionButton('smile', 'React', (e) => openPicker(m, e.currentTarget)),
    mine ? actionButton('edit', 'Edit', () => startEdit(m)) : null,
    canDelete(m) ? actionButton('trash', 'Delete', () => deleteMessage(m)) : null);
  return el('li', {
    class: `msg${mine ? ' mine' : ''}${cont ? ' cont' : ''}`,
    data: { id: m.id, sender: m.sender_id },
    attrs: { tabindex: '-1' },
  }, bubble, reactions, actions);
}

function actionButton(name, label, handler) {
  return el('button', { type: 'button', class: 'act', attrs: { title: label, 'aria-label': label }, on: { click: handler } }, icon(name));
}

function canDelete(m) {
  if (m.sender_id === S.meId) return true;
  const chat = S.chats.get(m.chat_id);
  return chat && chat.chat_type === 'group' && (chat.my_role === 'owner' || chat.my_role === 'admin');
}

export async function jumpToMessage(chatId, messageId) {
  if (S.openId !== chatId) {
    openChatRoute(chatId);
    for (let i = 0; i < 50 && (S.openId !== chatId || !S.views.get(chatId)?.loaded); i++) await new Promise((r) => setTimeout(r, 50));
  }
  const view = S.views.get(chatId);
  for (let i = 0; view && !view.messages.has(messageId) && view.hasMore && i < 40; i++) await loadOlder(chatId);
  const node = $('message-list').querySelector(`.msg[data-id="${messageId}"]`);
  if (!node) { toast('That message is no longer there.'); return; }
  node.scrollIntoView({ block: 'center' });
  node.classList.add('highlight');
  node.focus({ preventScroll: true });
  setTimeout(() => node.classList.remove('highlight'), 2000);
}

// --- reading ---------------------------------------------------------------------------------

function maybeMarkRead() {
  const chatId = S.openId;
  const chat = S.chats.get(chatId);
  const view = S.views.get(chatId);
  if (!chat || !view || !view.ids.length || document.visibilityState !== 'visible') return;
  if (!atBottom()) return;
  const newest = view.ids[view.ids.length - 1];
  if (newest <= (chat.last_read_id || 0) && !chat.unread_count) return;
  chat.last_read_id = Math.max(chat.last_read_id || 0, newest);
  chat.unread_count = 0;
  scheduleChatList();
  if (!S.stream || !S.stream.send({ op: 'READ', d: { chat_id: chatId, message_id: newest } })) {
    api.markRead(chatId, newest).catch(() => {});
  }
}

// --- composing -------------------------------------------------------------------------------

function nonce() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return 'w' + [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function startReply(m) {
  S.editing = null;
  S.replyTo = m;
  const who = m.sender_id === S.meId ? 'yourself' : userName(m.sender_id);
  showContext(`Replying to ${who}: ${(m.content || '📎 attachment').slice(0, 80)}`);
  $('composer-input').focus();
}

function startEdit(m) {
  S.replyTo = null;
  S.editing = m;
  showContext('Editing message');
  const input = $('composer-input');
  input.value = m.content || '';
  autoGrow();
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

function showContext(text) {
  $('composer-context-text').textContent = text;
  $('composer-context').hidden = false;
}

function cancelContext() {
  if (S.editing) { $('composer-input').value = ''; autoGrow(); }
  S.replyTo = null;
  S.editing = null;
  $('composer-context').hidden = true;
}

function autoGrow() {
  const input = $('composer-input');
  input.style.height = 'auto';
  input.style.height = `${Math.min(input.scrollHeight, 180)}px`;
  input.style.overflowY = input.scrollHeight > 180 ? 'auto' : 'hidden';
}

async function submitComposer() {
  const chatId = S.openId;
  if (chatId == null) return;
  const input = $('composer-input');
  const content = input.value.trim();
  if (S.editing) {
    const m = S.editing;
    if (!content && !(m.files && m.files.length)) { toast('A message needs text or a file.'); return; }
    if (content === (m.content || '')) { cancelContext(); return; }
    try {
      const edited = await api.editMessage(m.chat_id, m.id, content);
      onMessageEdited(edited);
      S.editing = null;
      cancelContext();
      input.value = '';
      autoGrow();
    } catch (error) {
      toast(`Could not edit: ${errorText(error)}`);
    }
    return;
  }
  if (S.attachments.some((a) => !a.receipt && !a.error)) { toast('Wait for the uploads to finish.'); return; }
  const files = S.attachments.filter((a) => a.receipt).map((a) => ({ id: a.receipt.id }));
  if (!content && files.length === 0) return;
  const body = { chat_id: chatId, content, files, nonce: nonce() };
  if (S.replyTo) body.reply_to_id = S.replyTo.id;
  const p = { chatId, body, node: null, acked: null, failed: false };
  p.node = pendingNode(p);
  S.pending.set(body.nonce, p);
  input.value = '';
  autoGrow();
  S.attachments = [];
  renderAttachments();
  S.replyTo = null;
  $('composer-context').hidden = true;
  $('message-list').append(p.node);
  scrollToBottom();
  if (S.stream) S.stream.send(body);   // else it goes out on the next READY
}

function pendingNode(p) {
  const body = p.body;
  const files = S.attachments.filter((a) => a.receipt).map((a) => a.receipt);
  return el('li', { class: 'msg mine pending', data: { nonce: body.nonce } },
    el('div', { class: 'bubble' },
      files.length ? el('div', { class: 'files' }, ...files.map(fileNode)) : null,
      body.content ? el('div', { class: 'text', text: body.content }) : null,
      el('div', { class: 'meta' }, el('span', { class: 'ticks pending-mark', text: '🕓', attrs: { title: 'Sending', 'aria-label': 'sending' } }))));
}

function flushPending() {
  for (const p of S.pending.values()) {
    if (p.acked == null && !p.failed) S.stream.send(p.body);
  }
}

function dropPending(p) {
  S.pending.delete(p.body.nonce);
  if (p.node) p.node.remove();
}

function onAck({ nonce: n, id }) {
  const p = S.pending.get(n);
  if (!p) return;
  p.acked = id;
  const view = S.views.get(p.chatId);
  if (!view || view.messages.has(id) || !view.loaded) dropPending(p);
}

function onSocketError(d) {
  const p = d && d.nonce ? S.pending.get(d.nonce) : null;
  if (!p) { if (d && d.message) toast(d.message); return; }
  if (d.retry_after) {
    setTimeout(() => { if (S.pending.has(p.body.nonce)) S.stream && S.stream.send(p.body); }, Number(d.retry_after) * 1000);
    return;
  }
  p.failed = true;
  toast(`Not sent: ${d.message}`);
  const mark = p.node.querySelector('.ticks');
  const retry = el('button', { type: 'button', class: 'retry', text: 'Retry', on: { click: () => { p.failed = false; retry.remove(); p.node.classList.remove('failed'); S.stream.send(p.body); } } });
  const discard = el('button', { type: 'button', class: 'retry', text: 'Discard', on: { click: () => dropPending(p) } });
  p.node.classList.add('failed');
  mark.textContent = '!';
  mark.after(retry, discard);
}

async function deleteMessage(m) {
  if (!confirm('Delete this message for everyone?')) return;
  try {
    await api.deleteMessage(m.chat_id, m.id);
    onMessageDeleted({ chat_id: m.chat_id, message_id: m.id });
  } catch (error) {
    toast(`Could not delete: ${errorText(error)}`);
  }
}

async function toggleReaction(m, emoji) {
  const r = (m.reactions || []).find((x) => x.emoji === emoji);
  const on = !(r && r.user_ids.includes(S.meId));
  try {
    await api.react(m.chat_id, m.id, emoji, on);
  } catch (error) {
    toast(`Could not react: ${errorText(error)}`);
  }
}

// The reaction picker: one popover, placed beside the message's React button.
let pickerFor = null;
function openPicker(m, anchor) {
  const picker = $('picker') || document.body.appendChild(el('div', { id: 'picker', class: 'picker', attrs: { role: 'menu' } }));
  pickerFor = m;
  picker.replaceChildren(...QUICK_REACTIONS.map((emoji) => el('button', {
    type: 'button', class: 'pick', text: emoji, attrs: { role: 'menuitem', 'aria-label': `React ${emoji}` },
    on: { click: () => { closePicker(); toggleReaction(pickerFor, emoji); } },
  })));
  picker.hidden = false;
  const rect = anchor.getBoundingClientRect();
  const width = picker.offsetWidth || 240;
  picker.style.left = `${Math.max(8, Math.min(window.innerWidth - width - 8, rect.left - width / 2))}px`;
  picker.style.top = `${Math.max(8, rect.top - picker.offsetHeight - 6)}px`;
  picker.firstChild.focus();
  picker.anchor = anchor;
}
function closePicker() {
  const picker = $('picker');
  if (!picker || picker.hidden) return;
  picker.hidden = true;
  if (picker.anchor && document.contains(picker.anchor)) picker.anchor.focus();
}

// --- attachments -----------------------------------------------------------------------------

function addFiles(files) {
  if (S.openId == null) return;
  for (const file of files) {
    if (S.attachments.length >= 10) { toast('At most 10 files per message.'); break; }
    const a = { file, receipt: null, progress: 0, error: null, abort: null };
    const { promise, abort } = api.upload(file, (fraction) => { a.progress = fraction; updateAttachment(a); });
    a.abort = abort;
    S.attachments.push(a);
    promise.then((receipt) => { a.receipt = receipt; a.progress = 1; updateAttachment(a); })
      .catch((error) => { a.error = errorText(error); updateAttachment(a); });
  }
  renderAttachments();
}

function renderAttachments() {
  const list = $('attachments');
  list.replaceChildren(...S.attachments.map((a) => {
    a.node = el('li', { class: 'attachment' },
      el('span', { class: 'att-name', text: a.file.name }),
      el('progress', { max: 1, value: a.progress, attrs: { 'aria-label': `Uploading ${a.file.name}` } }),
      el('span', { class: 'att-state muted' }),
      el('button', {
        type: 'button', class: 'icon-btn small', attrs: { 'aria-label': `Remove ${a.file.name}` },
        on: { click: () => { if (a.abort && !a.receipt) a.abort(); S.attachments = S.attachments.filter((x) => x !== a); renderAttachments(); } },
      }, icon('close')));
    updateAttachment(a);
    return a.node;
  }));
  list.hidden = S.attachments.length === 0;
}

function updateAttachment(a) {
  if (!a.node) return;
  a.node.querySelector('progress').value = a.progress;
  a.node.classList.toggle('done', !!a.receipt);
  a.node.classList.toggle('error', !!a.error);
  a.node.querySelector('.att-state').textContent = a.error ? a.error : a.receipt ? formatBytes(a.receipt.size_bytes) : `${Math.round(a.progress * 100)}%`;
}

// --- wiring ----------------------------------------------------------------------------------

function onComposerKey(e) {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    submitComposer();
  } else if (e.key === 'Escape' && (S.replyTo || S.editing)) {
    e.preventDefault();
    cancelContext();
  } else if (e.key === 'ArrowUp' && !e.target.value) {
    const view = S.views.get(S.openId);
    const lastMine = view && [...view.ids].reverse().map((id) => view.messages.get(id)).find((m) => m.sender_id === S.meId);
    if (lastMine) { e.preventDefault(); startEdit(lastMine); }
  }
}

function onComposerInput() {
  autoGrow();
  const now = Date.now();
  if (S.openId != null && !S.editing && $('composer-input').value.trim() && now - S.lastTypingSent > TYPING_SEND_EVERY_MS) {
    if (S.stream && S.stream.send({ op: 'TYPING', d: { chat_id: S.openId } })) S.lastTypingSent = now;
  }
}

function wire() {
  fillIcons();
  $('login-form').addEventListener('submit', onLoginSubmit);
  $('login-username').addEventListener('input', () => { $('login-password-row').hidden = true; $('login-error').textContent = ''; });
  $('btn-logout').addEventListener('click', () => logout());
  $('composer-input').addEventListener('keydown', onComposerKey);
  $('composer-input').addEventListener('input', onComposerInput);
  $('composer-input').addEventListener('paste', (e) => {
    const files = [...(e.clipboardData?.files || [])];
    if (files.length) { e.preventDefault(); addFiles(files); }
  });
  $('btn-send').addEventListener('click', submitComposer);
  $('btn-context-cancel').addEventListener('click', cancelContext);
  $('file-input').addEventListener('change', (e) => { addFiles([...e.target.files]); e.target.value = ''; });
  $('btn-back').addEventListener('click', () => { location.hash = '#/'; });
  $('btn-jump').addEventListener('click', () => { scrollToBottom(); $('btn-jump').hidden = true; });
  const pane = $('chat-pane');
  pane.addEventListener('dragover', (e) => { if (e.dataTransfer?.types.includes('Files')) { e.preventDefault(); pane.classList.add('dropping'); } });
  pane.addEventListener('dragleave', () => pane.classList.remove('dropping'));
  pane.addEventListener('drop', (e) => { pane.classList.remove('dropping'); if (e.dataTransfer?.files.length) { e.preventDefault(); addFiles([...e.dataTransfer.files]); } });
  messagesBox().addEventListener('scroll', debounce(() => {
    if (messagesBox().scrollTop < 300 && S.openId != null) loadOlder(S.openId);
    if (atBottom()) { $('btn-jump').hidden = true; maybeMarkRead(); }
  }, 60));
  window.addEventListener('hashchange', route);
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') maybeMarkRead(); });
  window.addEventListener('focus', maybeMarkRead);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') closePicker();
  });
  document.addEventListener('click', (e) => {
    const picker = $('picker');
    if (picker && !picker.hidden && !picker.contains(e.target) && !e.target.closest('.act')) closePicker();
  });
  api.onUnauthorized = () => logout('Your session has ended. Please sign in again.');
  setupDialogs();
}

wire();
const saved = localStorage.getItem(STORAGE_TOKEN);
if (saved) startSession(saved); else showLogin();
