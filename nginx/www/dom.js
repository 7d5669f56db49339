// DOM helpers. Every piece of data reaches the page as a text node or an attribute value —
// never as HTML.

export const $ = (id) => document.getElementById(id);

/**
 * el('li', {class: 'x', text: 'hi', data: {id: 3}, attrs: {title: 't'}, on: {click: f}}, ...children)
 * Children are nodes or strings (strings become text nodes).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    switch (key) {
      case 'class': node.className = value; break;
      case 'text': node.textContent = value; break;
      case 'data': for (const [k, v] of Object.entries(value)) node.dataset[k] = String(v); break;
      case 'attrs': for (const [k, v] of Object.entries(value)) if (v != null && v !== false) node.setAttribute(k, v === true ? '' : String(v)); break;
      case 'on': for (const [k, v] of Object.entries(value)) node.addEventListener(k, v); break;
      default: node[key] = value;
    }
  }
  for (const child of children) {
    if (child == null || child === false) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

export function clear(node) { node.replaceChildren(); }

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
const shortDayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

export function parseTime(ts) { return ts ? new Date(ts) : null; }
export function formatTime(ts) { const d = parseTime(ts); return d ? timeFormat.format(d) : ''; }

export function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** "Today", "Yesterday" or a date, for the separators between days. */
export function formatDay(ts) {
  const d = parseTime(ts);
  const now = new Date();
  if (sameDay(d, now)) return 'Today';
  const y = new Date(now); y.setDate(now.getDate() - 1);
  if (sameDay(d, y)) return 'Yesterday';
  return dayFormat.format(d);
}

/** The chat list's time: hours today, else a short date. */
export function formatListTime(ts) {
  const d = parseTime(ts);
  if (!d) return '';
  return sameDay(d, new Date()) ? timeFormat.format(d) : shortDayFormat.format(d);
}

export function formatBytes(n) {
  if (n == null) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Two letters for an avatar. */
export function initials(name) {
  const parts = String(name || '?').split(/[\s._-]+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[1][0] : String(name || '?').slice(0, 2);
  return letters.toUpperCase();
}

/** A stable hue per id, for avatar colours (set through the CSSOM, which the CSP allows). */
export function paintAvatar(node, id, name) {
  node.textContent = initials(name);
  const hue = (Number(id) * 137) % 360;
  node.style.setProperty('--hue', String(hue));
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}
