// The open chat: history and its paging, messages as nodes, receipts, marking read.

import { $, el, formatBytes, formatDay, formatTime, paintAvatar, parseTime, sameDay } from './dom.js';
import { icon } from './icons.js';
import { PAGE, S, api, chatTitle, errorText, peerOf, toast, userName } from './state.js';
import { presenceText, typingText } from './events.js';
import { openChatRoute, scheduleChatList, showPane } from './chatlist.js';
import { cancelContext, deleteMessage, openPicker, startEdit, startReply, toggleReaction } from './composer.js';

// --- the open chat ---------------------------------------------------------------------------

export function newView() {
  return { messages: new Map(), ids: [], hasMore: true, loading: false, loaded: false, receipts: new Map() };
}

export async function openChat(chatId) {
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

export async function loadReceipts(chatId) {
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

export function renderHeader() {
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

export const messagesBox = () => $('messages');
export function atBottom() {
  const box = messagesBox();
  return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
}
export function scrollToBottom() { const box = messagesBox(); box.scrollTop = box.scrollHeight; }

export function insertMessage(view, m) {
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

export function dayDivider(ts) {
  return el('li', { class: 'day', attrs: { role: 'separator' } }, el('span', { text: formatDay(ts) }));
}

export function continues(prev, m) {
  if (!prev || prev.sender_id !== m.sender_id) return false;
  return parseTime(m.timestamp) - parseTime(prev.timestamp) < 5 * 60 * 1000;
}

export function renderMessages({ toBottom = false, keepScroll = false, prepended = false } = {}) {
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

export function appendMessageNode(view, m) {
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

export function replaceMessageNode(m) {
  const old = $('message-list').querySelector(`.msg[data-id="${m.id}"]`);
  if (!old) return;
  const fresh = messageNode(m, old.classList.contains('cont'));
  const hadFocus = old.contains(document.activeElement);
  old.replaceWith(fresh);
  if (hadFocus) fresh.focus();
}

export function readByAll(m) {
  const chat = S.chats.get(m.chat_id);
  const view = S.views.get(m.chat_id);
  if (!chat || !view) return false;
  const others = chat.participants.filter((id) => id !== S.meId);
  if (others.length === 0) return false;
  return others.every((id) => (view.receipts.get(id) || 0) >= m.id);
}

export function ticksNode(m) {
  const read = readByAll(m);
  return el('span', {
    class: `ticks${read ? ' read' : ''}`,
    text: read ? '✓✓' : '✓',
    attrs: { title: read ? 'Read' : 'Sent', 'aria-label': read ? 'read' : 'sent' },
  });
}

export function refreshTicks() {
  const view = S.views.get(S.openId);
  if (!view) return;
  for (const node of $('message-list').querySelectorAll('.msg.mine[data-id]')) {
    const m = view.messages.get(Number(node.dataset.id));
    const ticks = node.querySelector('.ticks');
    if (m && ticks) ticks.replaceWith(ticksNode(m));
  }
}

export function fileNode(f) {
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

export function replyQuote(m) {
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

export function messageNode(m, cont) {
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

export function actionButton(name, label, handler) {
  return el('button', { type: 'button', class: 'act', attrs: { title: label, 'aria-label': label }, on: { click: handler } }, icon(name));
}

export function canDelete(m) {
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

export function maybeMarkRead() {
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
