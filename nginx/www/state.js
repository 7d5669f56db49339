// What the client knows (chats, users, views, pending sends) and small helpers on it.

import { Api, ApiError } from './api.js';
import { $ } from './dom.js';
import { scheduleChatList } from './chatlist.js';
import { renderHeader } from './chatview.js';

export const PAGE = 50;
export const TYPING_SHOW_MS = 6000;
export const TYPING_SEND_EVERY_MS = 3000;
export const QUICK_REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🎉'];
export const STORAGE_TOKEN = 'messenger.token';

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

export function errorText(error) {
  if (error instanceof ApiError) {
    if (error.status === 429) return `Too many requests; try again in ${error.retryAfter || 'a few'} s`;
    return error.message;
  }
  return String(error && error.message || error);
}

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
export function refreshNames(id) {
  for (const node of document.querySelectorAll(`[data-uid="${id}"]`)) node.textContent = userName(id);
  scheduleChatList();
  if (S.openId != null) renderHeader();
}

export function chatTitle(chat) {
  if (chat.chat_type === 'group') return chat.name || 'Group';
  const peer = peerOf(chat);
  return peer == null ? `${userName(S.meId)} (you)` : userName(peer);
}

export function peerOf(chat) {
  if (chat.chat_type !== 'direct') return null;
  const other = chat.participants.find((id) => id !== S.meId);
  return other ?? null;
}

export function activityKey(chat) {
  return chat.last_message ? chat.last_message.timestamp : chat.created_at;
}

export function sortedChats() {
  return [...S.chats.values()].sort((a, b) => {
    const ka = activityKey(a), kb = activityKey(b);
    if (ka !== kb) return ka < kb ? 1 : -1;
    const ia = a.last_message ? a.last_message.id : 0, ib = b.last_message ? b.last_message.id : 0;
    if (ia !== ib) return ib - ia;
    return b.id - a.id;
  });
}

export function preview(message) {
  if (!message) return '';
  let text = (message.content || '').replace(/\s+/g, ' ').trim();
  if (!text && message.files && message.files.length) {
    const f = message.files[0];
    text = f.type === 'picture' ? '📷 Photo' : `📎 ${f.filename || 'File'}`;
  }
  return message.sender_id === S.meId ? `You: ${text}` : text;
}
