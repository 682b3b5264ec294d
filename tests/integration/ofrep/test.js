// rolloutd through the official OpenFeature server SDK + OFREP provider (TAP output).
// usage: node test.js BASE_URL EVAL_TOKEN
// Expects the flags test_rolloutd_ofrep.sh creates: bool-full (full), bool-canary (canary 50 %),
// color (string, full: "green"), killed (full + kill switch).
'use strict';
const { OpenFeature } = require('@openfeature/server-sdk');
const { OFREPProvider } = require('@openfeature/ofrep-provider');

const [baseUrl, token] = process.argv.slice(2);
let n = 0;
let failed = 0;
function ok(cond, desc, detail) {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${desc}`);
  if (!cond && detail !== undefined) console.log(`# ${JSON.stringify(detail)}`);
}

async function main() {
  const headers = { Authorization: `Bearer ${token}` };
  await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl, headers }));
  const client = OpenFeature.getClient('rolloutd-test');

  let d = await client.getBooleanDetails('bool-full', false, { targetingKey: 'user-1' });
  ok(d.value === true && d.reason === 'STATIC' && d.variant === 'candidate' && !d.errorCode,
     'boolean flag at stage full: true, STATIC, candidate', d);
  ok(d.flagMetadata && d.flagMetadata.stage === 'full', 'flag metadata carries the stage', d);

  let on = 0;
  const seen = new Map();
  for (let i = 0; i < 200; i++) {
    const ctx = { targetingKey: `user-${i}`, plan: 'pro', age: 33, beta: true };
    const r = await client.getBooleanDetails('bool-canary', false, ctx);
    if (r.errorCode) { ok(false, 'canary evaluation without error', r); break; }
    seen.set(i, r.value);
    if (r.value) on++;
  }
  ok(on > 60 && on < 140, `canary 50 %: ${on}/200 users get candidate`, on);
  let stable = true;
  for (let i = 0; i < 20; i++) {
    const r = await client.getBooleanValue('bool-canary', false, { targetingKey: `user-${i}` });
    if (r !== seen.get(i)) stable = false;
  }
  ok(stable, 'a user keeps the same variant (sticky bucketing)');

  d = await client.getStringDetails('color', 'red', { targetingKey: 'user-7' });
  ok(d.value === 'green' && d.variant === 'candidate' && !d.errorCode, 'string flag: "green"', d);

  d = await client.getBooleanDetails('no-such-flag', true, { targetingKey: 'u' });
  ok(d.value === true && d.errorCode === 'FLAG_NOT_FOUND' && d.reason === 'ERROR',
     'unknown flag: FLAG_NOT_FOUND, code default', d);
  ok(typeof d.errorMessage === 'string' && d.errorMessage.includes('no-such-flag'),
     'FLAG_NOT_FOUND carries rolloutd\'s details', d);

  d = await client.getStringDetails('bool-full', 'fallback', { targetingKey: 'u' });
  ok(d.value === 'fallback' && d.errorCode === 'TYPE_MISMATCH',
     'string asked of a boolean flag: TYPE_MISMATCH, code default', d);

  d = await client.getBooleanDetails('bool-canary', false, {});
  ok(d.value === false && d.errorCode === 'TARGETING_KEY_MISSING',
     'canary without targetingKey: TARGETING_KEY_MISSING', d);

  d = await client.getBooleanDetails('killed', false, { targetingKey: 'u' });
  ok(d.value === false && d.reason === 'DISABLED' && !d.errorCode,
     'kill switch: false, DISABLED', d);

  // A baseUrl with a trailing slash makes the provider send "//ofrep/...".
  OpenFeature.setProvider('slash', new OFREPProvider({ baseUrl: `${baseUrl}/`, headers }));
  d = await OpenFeature.getClient('slash').getBooleanDetails('bool-full', false, { targetingKey: 'u' });
  ok(d.value === true && !d.errorCode, 'baseUrl with a trailing slash works', d);

  OpenFeature.setProvider('badtoken', new OFREPProvider({ baseUrl, headers: { Authorization: 'Bearer nope' } }));
  d = await OpenFeature.getClient('badtoken').getBooleanDetails('bool-full', false, { targetingKey: 'u' });
  ok(d.value === false && d.errorCode === 'GENERAL', 'a bad token: GENERAL error, code default', d);

  const t0 = process.hrtime.bigint();
  const N = 300;
  for (let i = 0; i < N; i++) await client.getBooleanValue('bool-canary', false, { targetingKey: `u${i}` });
  const us = Number(process.hrtime.bigint() - t0) / 1000 / N;
  console.log(`# sequential round trip through SDK + provider: ${us.toFixed(0)} us/evaluation`);

  await OpenFeature.close();
  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.log(`not ok - exception ${e && e.stack}`); process.exit(1); });
