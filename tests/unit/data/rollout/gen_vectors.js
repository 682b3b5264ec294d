#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// gen_vectors.js - reference vectors for librollout's bucketing, computed independently of the
// C code: murmur3_x86_32 written from the published algorithm over UTF-8 bytes, and the bucket
// (h * 100000) >> 32 in BigInt arithmetic.  When the npm package `murmurhash3js` is
// resolvable (NODE_PATH=/some/dir/node_modules), every ASCII vector is cross-checked against
// it too (that package hashes charCodeAt & 0xff, so only ASCII inputs are comparable).
//
//   node tests/unit/data/rollout/gen_vectors.js > tests/unit/data/rollout/bucket_vectors.json
'use strict';

function murmur3_32(bytes, seed) {
  const c1 = 0xcc9e2d51, c2 = 0x1b873593;
  let h = seed >>> 0;
  const n = bytes.length, blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    k = Math.imul(k, c1); k = (k << 15) | (k >>> 17); k = Math.imul(k, c2);
    h ^= k; h = (h << 13) | (h >>> 19); h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  switch (n & 3) {
    case 3: k ^= bytes[blocks + 2] << 16; // fall through
    case 2: k ^= bytes[blocks + 1] << 8;  // fall through
    case 1:
      k ^= bytes[blocks];
      k = Math.imul(k, c1); k = (k << 15) | (k >>> 17); k = Math.imul(k, c2);
      h ^= k;
  }
  h ^= n;
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const SCALE = 100000n;
const bucketOf = (h) => Number((BigInt(h) * SCALE) >> 32n);

let reference = null;
try {
  reference = require('murmurhash3js');
} catch (e) {
  process.stderr.write('murmurhash3js not found: no cross-check (set NODE_PATH)\n');
}

const vectors = [];
function add(salt, value) {
  const input = Buffer.from(salt + ':' + value, 'utf8');
  const hash = murmur3_32(input, 0);
  if (reference && /^[\x00-\x7f]*$/.test(salt + value)) {
    const other = reference.x86.hash32(salt + ':' + value, 0) >>> 0;
    if (other !== hash) throw new Error(`mismatch for ${salt}:${value}: ${hash} vs ${other}`);
  }
  vectors.push({ salt, value, hash, bucket: bucketOf(hash) });
}

// From the peer spike (unleash-client, groupId spike-flag): user-1 -> 902997170 etc.
for (let i = 1; i <= 8; i++) add('spike-flag', 'user-' + i);
// Every tail length, empty value, non-ASCII (UTF-8) values and salts.
for (let n = 0; n <= 9; n++) add('len', 'x'.repeat(n));
add('pricing-model-v2', '');
add('pricing-model-v2', 'ü');
add('pricing-model-v2', '用户-42');
add('pricing-model-v2', 'emoji-😀');
add('sälz', 'user-1');
add('a', 'b');
// A deterministic spread of ids.
for (let i = 0; i < 200; i++) add('flag-' + (i % 7), 'u' + (i * 7919).toString(36));

const known = { 'user-1': 902997170, 'user-2': 3542363312, 'user-3': 3152499612,
                'user-6': 1798590001, 'user-8': 2402182699 };
for (const v of vectors.slice(0, 8))
  if (known[v.value] !== undefined && known[v.value] !== v.hash)
    throw new Error(`spike vector ${v.value}: ${v.hash} != ${known[v.value]}`);

process.stdout.write(JSON.stringify({
  generator: 'tests/unit/data/rollout/gen_vectors.js',
  formula: 'bucket = (murmur3_x86_32(utf8(salt + ":" + value), 0) * 100000) >> 32',
  cross_checked_with: reference ? 'murmurhash3js (ASCII vectors)' : null,
  vectors,
}, null, 1) + '\n');
