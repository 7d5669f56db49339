// The chat list (newest activity first, unread badges, previews) and the #/chat/ID route.

import { $, el, formatListTime, paintAvatar } from './dom.js';
import { S, activityKey, api, chatTitle, peerOf, preview, sortedChats } from './state.js';
import { refreshChat, typingText } from './events.js';
import { openChat } from './chatview.js';

// --- the chat list ---------------------------------------------------------------------------

export let listFrame = 0;
export function scheduleChatList() {
  if (listFrame) return;
  listFrame = requestAnimationFrame(() => { listFrame = 0; renderChatList(); });
}

export const chatItems = new Map();   // chat id -> its <li>, kept across renders

export function renderChatList() {
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

export function fillChatItem(li, chat) {
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

export function chatItemKey(e, chatId) {
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

export function route() {
  if (!api.token) return;
  const match = /^#\/chat\/(\d+)$/.exec(location.hash);
  const chatId = match ? Number(match[1]) : null;
  if (chatId != null && S.stateLoaded && !S.chats.has(chatId)) {
    refreshChat(chatId).then(() => { if (S.chats.has(chatId)) openChat(chatId); });
    return;
  }
  openChat(chatId);
}

export function showPane() {
  document.querySelector('.app').classList.toggle('show-chat', S.openId != null);
}

/** Forgets the kept list items (a new session starts empty). */
export function clearChatList() { chatItems.clear(); }
