// chart.js - one small inline-SVG chart per analysis metric of a rollout: the measured values
// over time as a line with a dot per analysis run (pass, fail, or nodata drawn hollow on the
// baseline), the threshold(s) as dashed lines, and a faint vertical line where a step begins.
import { s, fmtNum, fmtTime } from './dom.js';

const W = 300, H = 72, PAD_L = 40, PAD_R = 6, PAD_T = 6, PAD_B = 6;

// points: [{at, step, value, result}] of one metric, any order.  threshold: {min?, max?} or
// undefined.  Returns an <svg> whose data-* attributes and <title>s say what it shows.
export function metricChart(metric, points, threshold) {
  const pts = points
    .map((p) => ({ ...p, t: Date.parse(p.at) }))
    .filter((p) => Number.isFinite(p.t))
    .sort((a, b) => a.t - b.t);
  const values = pts.filter((p) => typeof p.value === 'number' && Number.isFinite(p.value))
    .map((p) => p.value);
  const bounds = [threshold?.min, threshold?.max].filter((v) => typeof v === 'number');
  let lo = Math.min(...values, ...bounds), hi = Math.max(...values, ...bounds);
  if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
  if (hi === lo) { const d = Math.abs(hi) * 0.01 || 1; lo -= d; hi += d; }
  const margin = (hi - lo) * 0.1;
  lo -= margin; hi += margin;
  const t0 = pts.length ? pts[0].t : 0, t1 = pts.length ? pts[pts.length - 1].t : 1;
  const x = (t) => PAD_L + (t1 === t0 ? 0.5 : (t - t0) / (t1 - t0)) * (W - PAD_L - PAD_R);
  const y = (v) => PAD_T + (1 - (v - lo) / (hi - lo)) * (H - PAD_T - PAD_B);

  const last = pts[pts.length - 1];
  const fails = pts.filter((p) => p.result === 'fail').length;
  const label = `${metric}: ${pts.length} analysis runs, ${fails} failed` +
    (last ? `, last ${fmtNum(last.value)} (${last.result})` : '') +
    (bounds.length ? `, threshold ${thresholdText(threshold)}` : '');
  const svg = s('svg', {
    class: 'chart', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img',
    'aria-label': label, 'data-metric': metric, 'data-points': pts.length,
  }, s('title', {}, label), s('rect', { class: 'frame', x: 0.5, y: 0.5, width: W - 1, height: H - 1 }));

  // Where a new step begins.
  for (let i = 1; i < pts.length; i++) {
    if (pts[i].step !== pts[i - 1].step) {
      const sx = (x(pts[i - 1].t) + x(pts[i].t)) / 2;
      svg.append(s('line', { class: 'step', x1: sx, x2: sx, y1: 0, y2: H },
        s('title', {}, `step ${pts[i].step + 1} begins`)));
    }
  }
  for (const [k, v] of [['min', threshold?.min], ['max', threshold?.max]]) {
    if (typeof v !== 'number') continue;
    svg.append(s('line', { class: `threshold threshold-${k}`, x1: PAD_L - 3, x2: W, y1: y(v), y2: y(v) },
      s('title', {}, `${k} ${fmtNum(v)}`)));
  }
  // The value range drawn, in the left margin.
  svg.append(s('text', { class: 'axis', x: 3, y: 11 }, fmtNum(hi)),
    s('text', { class: 'axis', x: 3, y: H - 4 }, fmtNum(lo)),
    s('line', { class: 'axis', x1: PAD_L - 3, x2: PAD_L - 3, y1: 0, y2: H }));
  const line = pts.filter((p) => typeof p.value === 'number' && Number.isFinite(p.value))
    .map((p) => `${x(p.t).toFixed(1)},${y(p.value).toFixed(1)}`);
  if (line.length > 1) svg.append(s('polyline', { class: 'values', points: line.join(' ') }));
  for (const p of pts) {
    const has = typeof p.value === 'number' && Number.isFinite(p.value);
    const result = ['pass', 'fail', 'nodata'].includes(p.result) ? p.result : 'unknown';
    svg.append(s('circle', {
      class: `point ${result}`, cx: x(p.t).toFixed(1), cy: (has ? y(p.value) : H - PAD_B).toFixed(1),
      r: 3, 'data-result': result,
    }, s('title', {}, `${fmtTime(p.at)} step ${Number.isInteger(p.step) ? p.step + 1 : "?"}: ${has ? fmtNum(p.value) : 'no data'} (${p.result})`)));
  }
  return svg;
}

export function thresholdText(th) {
  const parts = [];
  if (typeof th?.min === 'number') parts.push(`≥ ${fmtNum(th.min)}`);
  if (typeof th?.max === 'number') parts.push(`≤ ${fmtNum(th.max)}`);
  return parts.join(' and ');
}
