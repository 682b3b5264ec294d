// app.js - rolloutd's web page: flags per environment with the kill switch, rollouts, and a
// flag's audit history, all from the admin API of the rolloutd that serves the page.
//
// The token lives in sessionStorage only (this tab; gone when it closes) and is sent as
// "Authorization: Bearer" to this origin.  Every read needs a token (the API's rule); any
// token may read, changes need an admin token, and rolloutd decides: the page shows its 401/403
// answers, it does not guess a token's scope.
import { h, fmtNum, fmtTime } from './dom.js';
import { renderRollouts } from './rollouts.js';

const TOKEN_KEY = 'rolloutd.token';
const REFRESH_MS = 10000;
const $ = (id) => document.getElementById(id);

// selected: the flag whose history is shown, also kept in the address (#KEY) so a reload or a
// shared link shows the same one.
const state = { envs: [], flags: [], rollouts: [], selected: null };

function select(key) {
  state.selected = key;
  if (key !== null) history.replaceState(null, '', `#${encodeURIComponent(key)}`);
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const t = token.get();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method, headers, cache: 'no-store', credentials: 'omit',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'unreachable', `rolloutd is not reachable (${e.message})`);
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const e = data?.error;
    throw new ApiError(res.status, e?.code ?? '', e?.message ?? (text.trim() || res.statusText));
  }
  return data;
}

// kind: 'ok' | 'error'.  The message stays until the next one.
function say(kind, text) {
  const m = $('message');
  m.className = kind;
  m.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  m.textContent = text;
  m.hidden = false;
}

function showTokenForm(show) {
  $('token-form').hidden = !show;
  $('token-state').hidden = show;
  $('token-cancel').hidden = !token.get(); // back to the token in use
  if (show) $('token').focus();
}

function showData(show) {
  for (const id of ['flags-section', 'rollouts-section', 'history-section']) $(id).hidden = !show;
  $('intro').hidden = show;
  if (!show) $('summary').textContent = '';
}

// ===== flags =====

function envCell(flag, env) {
  const e = flag.environments?.[env] ?? { stage: 'off' };
  const stage = e.stage ?? 'off';
  const pct = { off: 0, full: 100 }[stage] ?? e[stage];
  const killed = e.kill === true;
  const pcts = ['shadow', 'canary', 'partial'].filter((k) => typeof e[k] === 'number')
    .map((k) => `${k} ${fmtNum(e[k])}`).join(' · ');
  return h('td', { class: killed ? 'env killed' : 'env', 'data-env': env },
    h('span', { class: `badge stage-${stage}` }, stage),
    ' ', h('span', { class: 'pct' }, `${fmtNum(pct)} %`),
    killed ? h('span', { class: 'badge kill' }, 'killed') : null,
    rolloutBadge(flag.key, env),
    pcts ? h('div', { class: 'muted small' }, pcts) : null,
    h('button', {
      type: 'button', class: killed ? 'lift' : 'kill',
      'aria-label': `${killed ? 'Lift the kill switch of' : 'Kill'} ${flag.key} in ${env}`,
      onclick: () => flipKill(flag, env, !killed),
    }, killed ? 'Lift kill' : 'Kill'));
}

// "rollout running · step 2/5" next to a flag's stage when a plan drives it there.
function rolloutBadge(key, env) {
  const r = state.rollouts.find((x) => x?.flag === key && x?.environment === env);
  if (!r) return null;
  const n = Array.isArray(r.steps) ? r.steps.length : 0;
  const st = String(r.state ?? 'unknown');
  return h('span', { class: `badge rollout-badge state-${st}`, title: r.reason || null },
    `rollout ${st.replace('_', ' ')}${Number.isInteger(r.step) && r.step < n ? ` · step ${r.step + 1}/${n}` : ''}`);
}

function renderFlags() {
  $('flags-head').replaceChildren(h('th', { scope: 'col' }, 'flag'),
    ...state.envs.map((env) => h('th', { scope: 'col' }, env)));
  const rows = state.flags.map((f) => h('tr', {
    'data-flag': f.key, class: f.key === state.selected ? 'selected' : null,
  },
  h('th', { scope: 'row' },
    h('button', {
      type: 'button', class: 'link', title: 'show its history',
      onclick: () => { select(f.key); renderFlags(); loadHistory(); },
    }, f.key),
    h('span', { class: 'muted small' }, ` v${f.version}`),
    f.description ? h('div', { class: 'muted small' }, f.description) : null),
  ...state.envs.map((env) => envCell(f, env))));
  $('flags').tBodies[0].replaceChildren(...rows);
  $('flags').hidden = rows.length === 0;
  $('flags-empty').hidden = rows.length !== 0;
}

async function flipKill(flag, env, kill) {
  const what = `${flag.key} in ${env}`;
  try {
    const f = await api('POST', `/api/v1/flags/${encodeURIComponent(flag.key)}/kill`,
      { env, kill, version: flag.version });
    say('ok', `${what}: kill switch ${kill ? 'on: everyone gets the control variant' : 'lifted'} (version ${f.version}).`);
    select(flag.key);
  } catch (e) {
    if (e.status === 401) { // no token, or one rolloutd does not know (revoked?): ask again
      const sent = token.get() ? 'this token' : 'a change without a token';
      token.clear();
      showData(false);
      showTokenForm(true);
      say('error', `Change refused: rolloutd does not accept ${sent} (401 ${e.code}: ${e.message}). Enter an admin token.`);
      return;
    } else if (e.status === 403) {
      say('error', `Change refused: this token may only read (403 ${e.code}: ${e.message}). Changes need an admin token.`);
    } else if (e.status === 409) {
      say('error', `Change refused: ${flag.key} changed meanwhile (409 ${e.code}: ${e.message}). Reloaded: check it and try again.`);
    } else {
      say('error', `Change failed: ${what}: ${e.status ? `HTTP ${e.status} ${e.code}: ` : ''}${e.message}`);
    }
  }
  await load();
}

// ===== history =====

// The differences between two flag JSONs as "path: a → b" lines (version left out).
function diff(before, after, path = '', out = []) {
  if (JSON.stringify(before) === JSON.stringify(after)) return out;
  const isObj = (v) => v && typeof v === 'object' && !Array.isArray(v);
  if (isObj(before) && isObj(after)) {
    for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
      if (!path && k === 'version') continue;
      diff(before[k], after[k], path ? `${path}.${k}` : k, out);
    }
  } else {
    const show = (v) => (v === undefined ? '–' : JSON.stringify(v));
    out.push(`${path}: ${show(before)} → ${show(after)}`);
  }
  return out;
}

function changeText(e) {
  if (!e.before) return ['created'];
  if (!e.after) return ['deleted'];
  const d = diff(e.before, e.after);
  return d.length > 6 ? [...d.slice(0, 6), `… ${d.length - 6} more`] : d;
}

async function loadHistory() {
  const key = state.selected;
  $('history-flag').textContent = key ?? '';
  const body = $('history').tBodies[0];
  if (!key) { body.replaceChildren(); return; }
  try {
    const data = await api('GET', `/api/v1/flags/${encodeURIComponent(key)}/history?limit=50`);
    if (state.selected !== key) return;
    body.replaceChildren(...[...data.history].reverse().map((e) => h('tr', { 'data-revision': e.revision },
      h('td', {}, String(e.revision)), h('td', {}, fmtTime(e.at)), h('td', {}, e.actor),
      h('td', {}, h('span', { class: `badge action-${e.action}` }, e.action)),
      h('td', { class: 'change' }, changeText(e).map((l) => h('div', {}, l))))));
  } catch (e) {
    body.replaceChildren(h('tr', {}, h('td', { colspan: 5, class: 'error' },
      `cannot load the history: ${e.status ? `HTTP ${e.status} ${e.code}: ` : ''}${e.message}`)));
  }
}

// ===== rollouts =====

async function loadRollouts() {
  let data = null;
  try {
    data = await api('GET', '/api/v1/rollouts');
  } catch (e) {
    if (e.status !== 404) { // 404: this rolloutd has no rollout API: no rollouts
      const why = e.status === 403 ? 'this token may not read them (an admin token may)' : e.message;
      $('rollouts').replaceChildren(h('p', { class: 'error' },
        `cannot load the rollouts: ${e.status ? `HTTP ${e.status} ${e.code}: ` : ''}${why}`));
      return;
    }
  }
  renderRollouts($('rollouts'), data);
  const list = Array.isArray(data?.rollouts) ? data.rollouts : [];
  if (list.length || state.rollouts.length) {
    state.rollouts = list;
    renderFlags();
  }
}

// ===== everything =====

// One load at a time; a load asked for while one runs (a click during the periodic refresh)
// runs again after it, so what the page shows is never older than the last change it made.
// Resolves to true when the data came in.
let inflight = null;
let again = false;
function load() {
  if (inflight) {
    again = true;
    return inflight;
  }
  inflight = (async () => {
    let okay;
    do {
      again = false;
      okay = await loadOnce();
    } while (again);
    inflight = null;
    return okay;
  })();
  return inflight;
}

async function loadOnce() {
  if (!token.get()) {
    showData(false);
    showTokenForm(true);
    return false;
  }
  try {
    const [envs, flags] = await Promise.all([api('GET', '/api/v1/environments'),
      api('GET', '/api/v1/flags')]);
    state.envs = envs.environments.map((e) => e.name);
    state.flags = flags.flags;
    if (!state.flags.some((f) => f.key === state.selected)) select(state.flags[0]?.key ?? null);
    $('summary').textContent = `revision ${flags.revision} · ${state.flags.length} flags · ${state.envs.length} environments`;
    renderFlags();
    showData(true);
    await Promise.all([loadHistory(), loadRollouts()]);
    return true;
  } catch (e) {
    if (e.status === 401) {
      token.clear();
      showData(false);
      showTokenForm(true);
      say('error', `rolloutd refused the token (401 ${e.code}: ${e.message}). Enter a valid token.`);
    } else {
      say('error', `cannot load the flags: ${e.status ? `HTTP ${e.status} ${e.code}: ` : ''}${e.message}`);
    }
    return false;
  }
}

function init() {
  try {
    state.selected = decodeURIComponent(location.hash.slice(1)) || null;
  } catch {
    state.selected = null;
  }
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token').value.trim();
    $('token').value = '';
    if (!/^[\x21-\x7e]+$/.test(t)) {
      say('error', 'A token is printable ASCII without spaces (rolloutd\'s are rt_ and 64 hex digits).');
      return;
    }
    token.set(t);
    $('message').hidden = true;
    // The form stays while someone types into it (the periodic refresh leaves it alone).
    load().then((okay) => { if (okay) showTokenForm(false); });
  });
  $('token-change').addEventListener('click', () => showTokenForm(true));
  $('token-cancel').addEventListener('click', () => showTokenForm(false));
  $('token-forget').addEventListener('click', () => {
    token.clear();
    state.flags = [];
    say('ok', 'Token forgotten.');
    load();
  });
  setInterval(() => { if (!document.hidden && token.get()) load(); }, REFRESH_MS);
  load().then((okay) => { if (okay) showTokenForm(false); });
}

init();
