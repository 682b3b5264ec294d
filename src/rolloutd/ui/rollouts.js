// rollouts.js - the rollout section: one card per rollout of GET /api/v1/rollouts (the rollout
// controller's API; docs/rolloutd.md "Web page" gives the shape): state, the plan's steps with
// the current one marked, why it stopped, and a chart per analysis metric.
//
// `step` and history entries' `step` are 0-based indexes into `steps` (like JSON arrays and
// Argo Rollouts' currentStepIndex); a step past the last one means the plan has finished.
import { h, fmtDuration, fmtNum, fmtTime } from './dom.js';
import { metricChart, thresholdText } from './chart.js';

const STATES = ['running', 'paused', 'succeeded', 'rolled_back', 'aborted', 'failed'];

function stepText(st) {
  const pct = typeof st.percent === 'number' ? ` ${fmtNum(st.percent)} %` : '';
  const dur = st.duration_s ? ` · ${fmtDuration(st.duration_s)}` : '';
  return `${st.stage ?? '?'}${pct}${dur}`;
}

// The threshold of metric: the current step's analysis first, else any step's.
function thresholdOf(r, metric) {
  const steps = Array.isArray(r.steps) ? r.steps : [];
  const order = [steps[r.step], ...steps];
  for (const st of order) {
    const a = (st?.analysis || []).find((x) => x?.name === metric);
    if (a) return a.threshold;
  }
  return undefined;
}

// " · last 0.9861 (fail)": the metric's latest analysis.
function lastText(history, metric) {
  const last = history.filter((p) => p.metric === metric)
    .reduce((a, p) => (!a || Date.parse(p.at) >= Date.parse(a.at) ? p : a), null);
  if (!last) return null;
  const v = typeof last.value === 'number' ? fmtNum(last.value) : 'no data';
  return h('span', { class: `last ${last.result}` }, ` · last ${v} (${last.result})`);
}

function rolloutCard(r) {
  const steps = Array.isArray(r.steps) ? r.steps : [];
  const state = STATES.includes(r.state) ? r.state : 'unknown';
  const cur = Number.isInteger(r.step) ? r.step : -1;
  const history = Array.isArray(r.history) ? r.history : [];
  const metrics = [...new Set(history.map((p) => p.metric).filter(Boolean))];

  const plan = h('ol', { class: 'plan' }, steps.map((st, i) => h('li', {
    class: i < cur || state === 'succeeded' ? 'done' : i === cur ? `current ${state}` : 'pending',
    'aria-current': i === cur ? 'step' : null,
  }, stepText(st))));
  const where = cur >= steps.length ? 'finished' : `step ${cur + 1} of ${steps.length}`;
  const charts = metrics.map((m) => {
    const th = thresholdOf(r, m);
    return h('figure', { class: 'metric' },
      metricChart(m, history.filter((p) => p.metric === m), th),
      h('figcaption', {}, m, th ? h('span', { class: 'muted' }, ` ${thresholdText(th)}`) : null,
        lastText(history, m)));
  });
  return h('article', { class: 'rollout', 'data-flag': r.flag, 'data-env': r.environment },
    h('h3', {}, `${r.flag} `, h('span', { class: 'muted' }, `in ${r.environment}`), ' ',
      h('span', { class: `badge state-${state}` }, String(r.state ?? 'unknown').replace('_', ' '))),
    h('p', { class: 'muted' }, `${where} · step started ${fmtTime(r.step_started_at)} · updated ${fmtTime(r.updated_at)}`),
    plan,
    r.reason ? h('p', { class: 'reason' }, r.reason) : null,
    charts.length ? h('div', { class: 'charts' }, charts) : h('p', { class: 'muted' }, 'No analysis has run yet.'));
}

// Replaces container's contents.  data: the parsed body, or null when rolloutd has no rollout
// API (404): both show "No rollouts".
export function renderRollouts(container, data) {
  const list = Array.isArray(data?.rollouts) ? data.rollouts : [];
  container.replaceChildren(...(list.length ? list.map(rolloutCard)
    : [h('p', { class: 'muted', id: 'rollouts-empty' }, 'No rollouts.')]));
}
