// Logging in and out, the session's socket, and loading state over REST.

import { ApiError } from './api.js';
import { Stream } from './socket.js';
import { $, clear, paintAvatar } from './dom.js';
import { S, STORAGE_TOKEN, api, errorText, loadUser, peerOf, toast } from './state.js';
import { applyEphemeral, applyEvent } from './events.js';
import { clearChatList, renderChatList, route, showPane } from './chatlist.js';
import { renderHeader } from './chatview.js';
import { flushPending, onAck, onSocketError } from './composer.js';

// --- log in / out ----------------------------------------------------------------------------

export function showLogin(message = '') {
  $('app-view').hidden = true;
  $('login-view').hidden = false;
  $('login-error').textContent = message;
  $('login-username').focus();
}

export async function onLoginSubmit(event) {
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

export function resetState() {
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
  clearChatList();
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
export function tokenUserId(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const id = JSON.parse(atob(part)).user_id;
    return Number.isInteger(id) ? id : null;
  } catch {
    return null;
  }
}

export function startSession(token) {
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

export function renderMe() {
  const me = S.users.get(S.meId);
  if (!me) return;
  $('me-name').textContent = me.display_name || me.username;
  $('me-name').dataset.uid = String(me.id);
  paintAvatar($('me-avatar'), me.id, me.display_name || me.username);
}

/** Chats (and the open chat's history) over REST, then the events that arrived meanwhile. */
export let loadGeneration = 0;
export async function loadState() {
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

export async function loadPresence(ids) {
  if (!ids.length) return;
  try {
    for (let i = 0; i < ids.length; i += 100) {
      for (const p of await api.presence(ids.slice(i, i + 100))) S.presence.set(p.user_id, p);
    }
    renderChatList();
    if (S.openId != null) renderHeader();
  } catch { /* presence is decoration */ }
}

export function renderConnection(state) {
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
