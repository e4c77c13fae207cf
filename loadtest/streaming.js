// Streams: every SSE stream completes with [DONE]; time to first byte is tracked.
//   VUS=100 DURATION=30s k6 run loadtest/streaming.js
import http from 'k6/http';
import { check } from 'k6';
import { Trend } from 'k6/metrics';
import { GATEWAY_URL, headers, chatBody } from './lib.js';

const ttfb = new Trend('stream_time_to_first_byte', true);

export const options = {
  vus: Number(__ENV.VUS || 20),
  duration: __ENV.DURATION || '20s',
  thresholds: {
    http_req_failed: ['rate==0'],
    checks: ['rate==1'],
    stream_time_to_first_byte: ['p(99)<50'],
  },
};

export default function () {
  const res = http.post(`${GATEWAY_URL}/v1/chat/completions`, chatBody(`stream ${__VU}-${__ITER}`, true, 32), {
    headers: headers({ 'Cache-Control': 'no-store' }),
  });
  ttfb.add(res.timings.waiting);
  check(res, {
    'status is 200': (r) => r.status === 200,
    'stream completed': (r) => typeof r.body === 'string' && r.body.endsWith('data: [DONE]\n\n'),
    'no usage chunk the client did not ask for': (r) => !String(r.body).includes('"usage"'),
  });
}
