// A consumer is held to its token limit: beyond it, 429 with Retry-After, never a 5xx.
// Use a consumer with a small tokens_per_minute (the demo's key-team-intern: 2,000/min).
//   API_KEY=key-team-intern MODEL=haiku k6 run loadtest/ratelimit.js
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import { GATEWAY_URL, headers, chatBody } from './lib.js';

const limited = new Counter('rate_limited');
const admitted = new Counter('admitted');

export const options = {
  vus: Number(__ENV.VUS || 4),
  duration: __ENV.DURATION || '10s',
  thresholds: {
    checks: ['rate==1'],
    rate_limited: ['count>0'],
    admitted: ['count>0'],
  },
};

export default function () {
  const res = http.post(`${GATEWAY_URL}/v1/chat/completions`, chatBody('limit me', false, 200), {
    headers: headers({ 'Cache-Control': 'no-store' }),
  });
  if (res.status === 429) {
    limited.add(1);
  } else if (res.status === 200) {
    admitted.add(1);
  }
  check(res, {
    'admitted or rate limited': (r) => r.status === 200 || r.status === 429,
    '429 carries Retry-After': (r) => r.status !== 429 || r.headers['Retry-After'] !== undefined,
    'every answer reports the window': (r) => r.headers['X-Ratelimit-Remaining-Tokens'] !== undefined || r.status !== 200,
  });
}
