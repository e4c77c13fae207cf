// Cache hit ratio: a small set of repeated prompts; most answers must come from the cache.
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
    cache_hit_ratio: [`rate>${__ENV.MIN_HIT_RATIO || 0.9}`],
  },
};

export default function () {
  const n = Math.floor(Math.random() * PROMPTS);
  const res = http.post(`${GATEWAY_URL}/v1/chat/completions`, chatBody(`cached question ${n}`), {
    headers: headers(),
  });
  hits.add(res.headers['X-Tollgate-Cache'] === 'HIT');
  check(res, { 'status is 200': (r) => r.status === 200 });
}
