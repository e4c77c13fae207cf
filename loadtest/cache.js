// Cache hit ratio: a small set of repeated prompts (no Cache-Control: the cache may answer);
// after each prompt's first answer, the rest must come from the cache, and a hit names the cache
// as what answered it.
//   PROMPTS=10 k6 run loadtest/cache.js
import http from 'k6/http';
import { check } from 'k6';
import { Rate } from 'k6/metrics';
import { GATEWAY_URL, headers, chatBody } from './lib.js';

const hits = new Rate('cache_hit_ratio');
const PROMPTS = Number(__ENV.PROMPTS || 10);

export const options = {
  vus: Number(__ENV.VUS || 8),
  duration: __ENV.DURATION || '15s',
  thresholds: {
    http_req_failed: ['rate==0'],
    checks: ['rate==1'],
    cache_hit_ratio: [`rate>${__ENV.MIN_HIT_RATIO || 0.9}`],
  },
};

export default function () {
  const n = Math.floor(Math.random() * PROMPTS);
  const res = http.post(`${GATEWAY_URL}/v1/chat/completions`, chatBody(`cached question ${n}`), {
    headers: headers(),
  });
  const hit = res.headers['X-Tollgate-Cache'] === 'HIT';
  hits.add(hit);
  check(res, {
    'status is 200': (r) => r.status === 200,
    'a hit names the cache as its backend': (r) => !hit || r.headers['X-Tollgate-Backend'] === 'cache',
  });
}
