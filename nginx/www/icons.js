// Line icons drawn as SVG paths (no icon font: glyph coverage differs between systems).

const PATHS = {
  search: ['M11 4a7 7 0 1 0 0 14a7 7 0 1 0 0-14z', 'M16.5 16.5L21 21'],
  compose: ['M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z', 'M12 7v6', 'M9 10h6'],
  group: ['M9 4a4 4 0 1 0 0 8a4 4 0 1 0 0-8z', 'M2 21v-1a6 6 0 0 1 6-6h2a6 6 0 0 1 6 6v1', 'M16 4.1a4 4 0 0 1 0 7.8', 'M22 21v-1a6 6 0 0 0-4-5.6'],
  logout: ['M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4', 'M16 17l5-5-5-5', 'M21 12H9'],
  attach: ['M21 11.5l-8.5 8.5a5 5 0 0 1-7-7l9-9a3.5 3.5 0 0 1 5 5l-9 9a2 2 0 0 1-3-3l8-8'],
  send: ['M22 2L11 13', 'M22 2l-7 20-4-9-9-4z'],
  back: ['M19 12H5', 'M12 19l-7-7 7-7'],
  settings: ['M12 2a10 10 0 1 0 0 20a10 10 0 1 0 0-20z', 'M12 16v-4', 'M12 8h.01'],
  reply: ['M9 14L4 9l5-5', 'M4 9h10a6 6 0 0 1 6 6v5'],
  smile: ['M12 2a10 10 0 1 0 0 20a10 10 0 1 0 0-20z', 'M8 14s1.5 2 4 2s4-2 4-2', 'M9 9.5h.01', 'M15 9.5h.01'],
  edit: ['M12 20h9', 'M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1l1-4z'],
  trash: ['M3 6h18', 'M8 6V4h8v2', 'M19 6l-1 14H6L5 6', 'M10 11v5', 'M14 11v5'],
  close: ['M18 6L6 18', 'M6 6l12 12'],
  file: ['M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8z', 'M14 2v6h6'],
};

const NS = 'http://www.w3.org/2000/svg';

/** An <svg> for `name`, sized by CSS (1em), drawn in currentColor. */
export function icon(name) {
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'ic');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const d of PATHS[name] || []) {
    const path = document.createElementNS(NS, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}

/** Fills every <span data-icon="name"> of the page. */
export function fillIcons(root = document) {
  for (const slot of root.querySelectorAll('[data-icon]')) slot.replaceChildren(icon(slot.dataset.icon));
}
