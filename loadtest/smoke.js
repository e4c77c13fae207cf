// k6 smoke test: a few virtual users for a short time against a running gateway
// (for example `make demo`). Every request must succeed and stay fast.
//
//   k6 run loadtest/smoke.js
//   GATEWAY_URL=http://127.0.0.1:9000 API_KEY=key-team-support MODEL=gpt-4 VUS=4 DURATION=30s k6 run loadtest/smoke.js
import http from 'k6/http';
import { check } from 'k6';

const GATEWAY_URL = __ENV.GATEWAY_URL || 'http://127.0.0.1:9000';
const API_KEY = __ENV.API_KEY || 'key-team-support';
const MODEL = __ENV.MODEL || 'gpt-4';

export const options = {
  vus: Number(__ENV.VUS || 2),
  duration: __ENV.DURATION || '10s',
  thresholds: {
    http_req_failed: ['rate==0'],
    http_req_duration: ['p(99)<250'],
    checks: ['rate==1'],
  },
};

const body = JSON.stringify({
  model: MODEL,
  messages: [{ role: 'user', content: 'Say hello in one word.' }],
});

export default function () {
  const res = http.post(`${GATEWAY_URL}/v1/chat/completions`, body, {
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${API_KEY}` },
  });
  check(res, {
    'status is 200': (r) => r.status === 200,
    'has a choice': (r) => r.json('choices.0.message.content') !== undefined,
    'names the backend': (r) => r.headers['X-Tollgate-Backend'] !== undefined,
  });
}
