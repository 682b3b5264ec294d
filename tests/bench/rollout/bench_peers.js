#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// bench_peers.js - local (in-process) evaluation cost of unleash-client and
// @growthbook/growthbook for the flag set of bench_rollout.c: same three flags, same subjects.
// Needs both packages resolvable (run.sh installs them outside the repo and sets NODE_PATH).
//
// Output: one line per case, "<sdk> local <case> <ns/op> <on-fraction>", best of 5 runs.
'use strict';

const N = Number(process.argv[2] || 1000000);
const SUBJECTS = 65536;
const RUNS = 5;

function subjects() {
  const out = [];
  for (let i = 0; i < SUBJECTS; i++)
    out.push({ id: 'user-' + i, country: 'DE', plan: 'free', version: '2.3.1', age: 30 + (i % 40),
               email: 'user-' + i + '@example.com' });
  return out;
}

function bench(label, fn, ctxs) {
  let best = Infinity, on = 0;
  for (let i = 0; i < 200000; i++) fn(ctxs[i & (SUBJECTS - 1)]); // warm-up (JIT)
  for (let run = 0; run < RUNS; run++) {
    on = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) if (fn(ctxs[i & (SUBJECTS - 1)])) on++;
    const ns = Number(process.hrtime.bigint() - t0) / N;
    if (ns < best) best = ns;
  }
  console.log(`${label} ${best.toFixed(1)} ${(on / N).toFixed(4)}`);
}

async function unleash(subj) {
  const { Unleash } = require('unleash-client');
  const rollout = (name) => ({ name: 'flexibleRollout', constraints: [],
    parameters: { rollout: '25', stickiness: 'default', groupId: name } });
  const never = (constraint) => ({ name: 'default', parameters: {}, constraints: [constraint] });
  const features = [
    { name: 'static', enabled: true, strategies: [{ name: 'default', parameters: {}, constraints: [] }] },
    { name: 'fractional', enabled: true, strategies: [rollout('fractional')] },
    { name: 'rules5', enabled: true, strategies: [
      never({ contextName: 'country', operator: 'IN', values: ['XX'] }),
      never({ contextName: 'plan', operator: 'IN', values: ['gold', 'platinum', 'vip'] }),
      never({ contextName: 'version', operator: 'SEMVER_GT', value: '9.0.0' }),
      never({ contextName: 'age', operator: 'NUM_LT', value: '5' }),
      never({ contextName: 'email', operator: 'STR_ENDS_WITH', values: ['@corp.example'] }),
      rollout('rules5')] },
  ];
  const client = new Unleash({ appName: 'bench', url: 'http://127.0.0.1:9/api/', refreshInterval: 0,
    disableMetrics: true, backupPath: require('os').tmpdir(), bootstrap: { data: features },
    skipInstanceCountWarning: true });
  await new Promise((resolve) => client.once('synchronized', resolve));
  const ctxs = subj.map((s) => ({ userId: s.id, properties: { country: s.country, plan: s.plan,
    version: s.version, age: String(s.age), email: s.email } }));
  for (const f of ['static', 'fractional', 'rules5'])
    bench(`unleash local ${f}`, (c) => client.isEnabled(f, c), ctxs);
  client.destroy();
}

function growthbook(subj) {
  const { GrowthBookClient } = require('@growthbook/growthbook');
  const cover = (id) => ({ id, force: true, coverage: 0.25, hashAttribute: 'id', hashVersion: 2 });
  const never = (id, condition) => ({ id, force: true, condition });
  const payload = { features: {
    static: { defaultValue: true },
    fractional: { defaultValue: false, rules: [cover('fr')] },
    rules5: { defaultValue: false, rules: [
      never('r1', { country: 'XX' }),
      never('r2', { plan: { $in: ['gold', 'platinum', 'vip'] } }),
      never('r3', { version: { $vgt: '9.0.0' } }),
      never('r4', { age: { $lt: 5 } }),
      never('r5', { email: { $regex: '@corp\\.example$' } }),
      cover('r6')] },
  } };
  const client = new GrowthBookClient({ enableDevMode: false }).initSync({ payload, streaming: false });
  const ctxs = subj.map((s) => ({ attributes: s }));
  for (const f of ['static', 'fractional', 'rules5'])
    bench(`growthbook local ${f}`, (c) => client.isOn(f, c), ctxs);
}

(async () => {
  const subj = subjects();
  console.log(`# node ${process.version}`);
  await unleash(subj);
  growthbook(subj);
})().catch((e) => { console.error(e); process.exit(1); });
