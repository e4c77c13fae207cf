// Streams at a constant arrival rate (streams are never cached, and `no-store` says so again):
// every SSE stream completes with [DONE] and carries no usage chunk it did not ask for; time to
// first byte is tracked. An arrival rate, not a fixed number of users looping flat out: the
// latency measured is the gateway's, not the queue of a saturated machine.
//   RATE=200 DURATION=30s k6 run loadtest/streaming.js
import http from 'k6/http';
import { check } from 'k6';
import { Trend } from 'k6/metrics';
import { GATEWAY_URL, arrivalRate, pastTheCache, chatBody } from './lib.js';

const ttfb = new Trend('stream_time_to_first_byte', true);

export const options = {
  scenarios: {
    streaming: arrivalRate('20s', 20, 200),
  },
  thresholds: {
    http_req_failed: ['rate==0'],
    checks: ['rate==1'],
    stream_time_to_first_byte: ['p(99)<50'],
    dropped_iterations: ['count==0'],
  },
};

export default function () {
  const res = http.post(`${GATEWAY_URL}/v1/chat/completions`, chatBody(`stream ${__VU}-${__ITER}`, true, 32), {
    headers: pastTheCache(),
  });
  ttfb.add(res.timings.waiting);
  check(res, {
    'status is 200': (r) => r.status === 200,
    'stream completed': (r) => typeof r.body === 'string' && r.body.endsWith('data: [DONE]\n\n'),
    'no usage chunk the client did not ask for': (r) => !String(r.body).includes('"usage"'),
    'names the backend': (r) => r.headers['X-Tollgate-Backend'] !== undefined,
  });
}
