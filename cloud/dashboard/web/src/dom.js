// Small DOM helpers: every element is built with h(), never from HTML
// strings, so values from the stream cannot inject markup (and the page's
// Content-Security-Policy needs no inline styles or scripts).

// h(tag, attrs, ...children): attrs may hold class, text, on<Event>
// handlers, dataset, hidden, and plain attributes; children are nodes,
// strings or arrays of them (null and false are skipped).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "hidden") el.hidden = true;
    else if (k === "value") el.value = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// replace empties el and appends children.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// status renders an online/offline pill.
export function status(online) {
  return h("span", { class: `pill ${online ? "ok" : "off"}` }, online ? "online" : "offline");
}

// flag renders a yes/no/unknown health flag.
export function flag(v, yes = "yes", no = "no") {
  if (v == null) return h("span", { class: "muted" }, "–");
  return h("span", { class: `pill ${v ? "ok" : "bad"}` }, v ? yes : no);
}

export function deviceLink(id, params = "") {
  return h("a", { href: `#/device/${encodeURIComponent(id)}${params}` }, id);
}
