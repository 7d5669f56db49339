// The messenger's web client: wires the page up and starts (or asks to log in).
// state.js holds the state, session.js the socket, events.js applies its events, chatlist.js,
// chatview.js and composer.js draw and act, dialogs.js has the dialogs.

import { $, debounce } from './dom.js';
import { setupDialogs } from './dialogs.js';
import { fillIcons } from './icons.js';
import { S, STORAGE_TOKEN, TYPING_SEND_EVERY_MS, api } from './state.js';
import { logout, onLoginSubmit, showLogin, startSession } from './session.js';
import { route } from './chatlist.js';
import { atBottom, loadOlder, maybeMarkRead, messagesBox, scrollToBottom } from './chatview.js';
import { addFiles, autoGrow, cancelContext, closePicker, startEdit, submitComposer } from './composer.js';

// --- wiring ----------------------------------------------------------------------------------

export function onComposerKey(e) {
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

export function onComposerInput() {
  autoGrow();
  const now = Date.now();
  if (S.openId != null && !S.editing && $('composer-input').value.trim() && now - S.lastTypingSent > TYPING_SEND_EVERY_MS) {
    if (S.stream && S.stream.send({ op: 'TYPING', d: { chat_id: S.openId } })) S.lastTypingSent = now;
  }
}

export function wire() {
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
export const saved = localStorage.getItem(STORAGE_TOKEN);
if (saved) startSession(saved); else showLogin();
