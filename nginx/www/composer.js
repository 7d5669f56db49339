// Writing: send, reply, edit, delete, react, uploads with progress; sends waiting for the socket.

import { $, el, formatBytes } from './dom.js';
import { icon } from './icons.js';
import { QUICK_REACTIONS, S, api, errorText, toast, userName } from './state.js';
import { onMessageDeleted, onMessageEdited } from './events.js';
import { fileNode, scrollToBottom } from './chatview.js';

// --- composing -------------------------------------------------------------------------------

export function nonce() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return 'w' + [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export function startReply(m) {
  S.editing = null;
  S.replyTo = m;
  const who = m.sender_id === S.meId ? 'yourself' : userName(m.sender_id);
  showContext(`Replying to ${who}: ${(m.content || '📎 attachment').slice(0, 80)}`);
  $('composer-input').focus();
}

export function startEdit(m) {
  S.replyTo = null;
  S.editing = m;
  showContext('Editing message');
  const input = $('composer-input');
  input.value = m.content || '';
  autoGrow();
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

export function showContext(text) {
  $('composer-context-text').textContent = text;
  $('composer-context').hidden = false;
}

export function cancelContext() {
  if (S.editing) { $('composer-input').value = ''; autoGrow(); }
  S.replyTo = null;
  S.editing = null;
  $('composer-context').hidden = true;
}

export function autoGrow() {
  const input = $('composer-input');
  input.style.height = 'auto';
  input.style.height = `${Math.min(input.scrollHeight, 180)}px`;
  input.style.overflowY = input.scrollHeight > 180 ? 'auto' : 'hidden';
}

export async function submitComposer() {
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

export function pendingNode(p) {
  const body = p.body;
  const files = S.attachments.filter((a) => a.receipt).map((a) => a.receipt);
  return el('li', { class: 'msg mine pending', data: { nonce: body.nonce } },
    el('div', { class: 'bubble' },
      files.length ? el('div', { class: 'files' }, ...files.map(fileNode)) : null,
      body.content ? el('div', { class: 'text', text: body.content }) : null,
      el('div', { class: 'meta' }, el('span', { class: 'ticks pending-mark', text: '🕓', attrs: { title: 'Sending', 'aria-label': 'sending' } }))));
}

export function flushPending() {
  for (const p of S.pending.values()) {
    if (p.acked == null && !p.failed) S.stream.send(p.body);
  }
}

export function dropPending(p) {
  S.pending.delete(p.body.nonce);
  if (p.node) p.node.remove();
}

export function onAck({ nonce: n, id }) {
  const p = S.pending.get(n);
  if (!p) return;
  p.acked = id;
  const view = S.views.get(p.chatId);
  if (!view || view.messages.has(id) || !view.loaded) dropPending(p);
}

export function onSocketError(d) {
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

export async function deleteMessage(m) {
  if (!confirm('Delete this message for everyone?')) return;
  try {
    await api.deleteMessage(m.chat_id, m.id);
    onMessageDeleted({ chat_id: m.chat_id, message_id: m.id });
  } catch (error) {
    toast(`Could not delete: ${errorText(error)}`);
  }
}

export async function toggleReaction(m, emoji) {
  const r = (m.reactions || []).find((x) => x.emoji === emoji);
  const on = !(r && r.user_ids.includes(S.meId));
  try {
    await api.react(m.chat_id, m.id, emoji, on);
  } catch (error) {
    toast(`Could not react: ${errorText(error)}`);
  }
}

// The reaction picker: one popover, placed beside the message's React button.
export let pickerFor = null;
export function openPicker(m, anchor) {
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
export function closePicker() {
  const picker = $('picker');
  if (!picker || picker.hidden) return;
  picker.hidden = true;
  if (picker.anchor && document.contains(picker.anchor)) picker.anchor.focus();
}

// --- attachments -----------------------------------------------------------------------------

export function addFiles(files) {
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

export function renderAttachments() {
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

export function updateAttachment(a) {
  if (!a.node) return;
  a.node.querySelector('progress').value = a.progress;
  a.node.classList.toggle('done', !!a.receipt);
  a.node.classList.toggle('error', !!a.error);
  a.node.querySelector('.att-state').textContent = a.error ? a.error : a.receipt ? formatBytes(a.receipt.size_bytes) : `${Math.round(a.progress * 100)}%`;
}
