// k6 smoke test: a few virtual users for a short time against a running gateway (for example
// `make demo`). Every request goes past the cache to a backend, and must succeed, stay fast and
// name the backend that answered.
//
//   k6 run loadtest/smoke.js
//   GATEWAY_URL=http://127.0.0.1:9000 API_KEY=key-load-test MODEL=gpt-4 VUS=4 DURATION=30s k6 run loadtest/smoke.js
import http from 'k6/http';
import { check } from 'k6';
import { GATEWAY_URL, pastTheCache, chatBody } from './lib.js';

export const options = {
  vus: Number(__ENV.VUS || 2),
  duration: __ENV.DURATION || '10s',
  thresholds: {
    http_req_failed: ['rate==0'],
    http_req_duration: ['p(99)<250'],
    checks: ['rate==1'],
  },
};

export default function () {
  const res = http.post(`${GATEWAY_URL}/v1/chat/completions`, chatBody('Say hello in one word.'), {
    headers: pastTheCache(),
  });
  check(res, {
    'status is 200': (r) => r.status === 200,
    'has a choice': (r) => r.json('choices.0.message.content') !== undefined,
    'names the backend': (r) => r.headers['X-Tollgate-Backend'] !== undefined,
  });
}
