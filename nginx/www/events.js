// The event stream applied to the state: messages, edits, deletions, reactions, reads,
// chats, users; typing and presence.

import { ApiError } from './api.js';
import { formatListTime, formatTime, parseTime, sameDay } from './dom.js';
import { S, TYPING_SHOW_MS, api, loadUser, peerOf, refreshNames, toast, userName } from './state.js';
import { loadPresence, renderMe } from './session.js';
import { scheduleChatList } from './chatlist.js';
import { insertMessage, loadReceipts, maybeMarkRead, refreshTicks, renderHeader, renderMessages, replaceMessageNode } from './chatview.js';
import { cancelContext, dropPending } from './composer.js';

// --- events ----------------------------------------------------------------------------------

export function applyEvent(frame) {
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

export function onMessage(m) {
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

export function onMessageEdited(m) {
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

export function onMessageDeleted({ chat_id: chatId, message_id: id }) {
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

export function onReaction({ chat_id: chatId, message_id: id, user_id: uid, emoji, added }) {
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

export function onRead({ chat_id: chatId, user_id: uid, last_read_id: lastRead }) {
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
export function meetParticipants(chat) {
  const peer = peerOf(chat);
  if (peer != null) {
    loadUser(peer);
    if (!S.presence.has(peer)) loadPresence([peer]);
  }
}

export function onChat(chat) {
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

export function onChatRemoved({ chat_id: chatId }) {
  S.chats.delete(chatId);
  S.views.delete(chatId);
  scheduleChatList();
  if (S.openId === chatId) {
    toast('You are no longer a member of that chat.');
    location.hash = '#/';
  }
  document.dispatchEvent(new CustomEvent('chat-changed', { detail: chatId }));
}

export const refreshing = new Set();
export async function refreshChat(chatId) {
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

// --- typing and presence ---------------------------------------------------------------------

export function applyEphemeral(frame) {
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

export function stopTyping(chatId, userId) {
  const map = S.typing.get(chatId);
  if (!map || !map.has(userId)) return;
  clearTimeout(map.get(userId));
  map.delete(userId);
  typingChanged(chatId);
}

export function typingChanged(chatId) {
  scheduleChatList();
  if (S.openId === chatId) renderHeader();
}

export function typingText(chatId) {
  const map = S.typing.get(chatId);
  if (!map || map.size === 0) return '';
  const names = [...map.keys()].map(userName);
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}

export function presenceText(userId) {
  const p = S.presence.get(userId);
  if (!p) return '';
  if (p.online) return 'online';
  if (!p.last_seen) return 'offline';
  const d = parseTime(p.last_seen);
  return `last seen ${sameDay(d, new Date()) ? formatTime(p.last_seen) : formatListTime(p.last_seen)}`;
}
