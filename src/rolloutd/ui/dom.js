// dom.js - builds DOM nodes from data without innerHTML (flag keys, actors and reasons are
// user data: they become text nodes, never markup).
const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// h('td', {class: 'x'}, 'text', child...) -> an HTML element.
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// s('circle', {cx: 1}) -> an SVG element.
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

// A number as people read it: 4 significant digits, no exponent for the usual ranges.
export function fmtNum(v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  if (v !== 0 && Math.abs(v) < 0.001) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

// "2026-12-05T14:18:56.345813Z" -> "2026-12-05 14:18:56"; unparsable text stays as it is.
export function fmtTime(at) {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)/.exec(at || '');
  return m ? `${m[1]} ${m[2]}` : (at || '–');
}

// Seconds as "1h", "30m", "1h30m", "45s".
export function fmtDuration(sec) {
  if (typeof sec !== 'number' || !(sec >= 0)) return '';
  const hr = Math.floor(sec / 3600), min = Math.floor((sec % 3600) / 60), rest = sec % 60;
  return [hr && `${hr}h`, min && `${min}m`, rest && `${rest}s`].filter(Boolean).join('') || '0s';
}
