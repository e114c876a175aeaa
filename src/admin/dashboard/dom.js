// DOM helpers: elements are built with textContent only (never innerHTML), so audit data
// (hosts, paths, errors) can never become markup.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== undefined && c !== null) el.append(c instanceof Node ? c : String(c));
  return el;
}

export function table(columns, rows, empty = 'Nothing in this window.') {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h('table', {},
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { class: c.num ? 'num' : undefined }, c.label)))),
    h('tbody', {}, rows.map((r) => h('tr', { class: r.__class }, columns.map((c) => {
      const v = c.value(r);
      return h('td', { class: c.num ? 'num' : undefined, title: c.title ? c.title(r) : undefined }, v instanceof Node ? v : String(v ?? '–'));
    })))));
}

export function replace(id, ...nodes) {
  const el = document.getElementById(id);
  el.replaceChildren(...nodes);
  return el;
}
