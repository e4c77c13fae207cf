// Constant arrival rate against /v1/chat/completions, past the cache (`no-store`, and a different
// prompt each time): the whole pipeline's throughput and latency.
//   RATE=200 DURATION=30s k6 run loadtest/steady.js
import http from 'k6/http';
import { check } from 'k6';
import { GATEWAY_URL, arrivalRate, pastTheCache, chatBody } from './lib.js';

export const options = {
  scenarios: {
    steady: arrivalRate('30s', 32, 256),
  },
  thresholds: {
    http_req_failed: ['rate<0.001'],
    http_req_duration: ['p(50)<20', 'p(99)<100'],
    dropped_iterations: ['count==0'],
  },
};

export default function () {
  const res = http.post(`${GATEWAY_URL}/v1/chat/completions`, chatBody(`steady ${__VU}-${__ITER}`), {
    headers: pastTheCache(),
  });
  check(res, { 'status is 200': (r) => r.status === 200 });
}
