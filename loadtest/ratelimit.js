// A consumer is held to its token limit: beyond it, 429 with Retry-After, never a 5xx. It needs a
// consumer with a small tokens_per_minute: by default the demo's intern (key-team-intern, 2,000
// tokens a minute, models haiku and default). Each request reserves its prompt and 200 answer
// tokens and settles at what the answer used, so a few seconds fill the minute's window (two
// windows, when the run spans a minute's turn). The hour's window (20,000) holds five to ten
// such runs: past it, nothing is admitted until the hour turns (or the demo restarts).
//   k6 run loadtest/ratelimit.js
//   API_KEY=key-other MODEL=gpt-4 k6 run loadtest/ratelimit.js
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import { GATEWAY_URL, headers, chatBody } from './lib.js';

const KEY = __ENV.API_KEY || 'key-team-intern';
const LIMITED_MODEL = __ENV.MODEL || 'haiku';
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
  // `no-store`: every request is counted against the window; none is answered from the cache.
  const res = http.post(`${GATEWAY_URL}/v1/chat/completions`, chatBody('limit me', false, 200, LIMITED_MODEL), {
    headers: headers({ 'Cache-Control': 'no-store' }, KEY),
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
