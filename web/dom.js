// Small DOM helpers. Every string from the server reaches the page as a
// text node (textContent), never as HTML.

export const $ = (sel, root = document) => root.querySelector(sel);

// h builds an element: h('button', {class: 'x', dataset: {action: 'edit'},
// onclick: fn, 'aria-label': 'Edit'}, 'Edit'). Strings among the children
// become text nodes; null and false are skipped.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return el;
}

// reconcile makes container's children the elements of items, in order,
// reusing the element kept for each key (so focus and scroll survive) and
// moving only what is out of place. make(item) builds an element; update(el,
// item) refreshes one.
export function reconcile(container, items, key, make, update) {
  const old = new Map();
  for (const el of container.children) if (el.dataset.key) old.set(el.dataset.key, el);
  let prev = null;
  const keep = new Set();
  for (const it of items) {
    const k = key(it);
    let el = old.get(k);
    if (!el) {
      el = make(it);
      el.dataset.key = k;
    }
    update(el, it);
    keep.add(k);
    const want = prev ? prev.nextSibling : container.firstChild;
    if (want !== el) container.insertBefore(el, want);
    prev = el;
  }
  for (const [k, el] of old) if (!keep.has(k)) el.remove();
}

// setText changes an element's text only when it differs (a live region
// would otherwise announce it again).
export function setText(el, s) {
  if (el.textContent !== s) el.textContent = s;
}

// clock shows a message time: the time today, else the date and time.
export function clock(ts) {
  const d = new Date(ts);
  const now = new Date();
  const t = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (d.toDateString() === now.toDateString()) return t;
  return d.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' + t;
}
