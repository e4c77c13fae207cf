// A traffic spike: ramp to many virtual users quickly, hold, drop. Nothing may fail.
//   PEAK=400 k6 run loadtest/spike.js
import http from 'k6/http';
import { check } from 'k6';
import { GATEWAY_URL, headers, chatBody } from './lib.js';

const PEAK = Number(__ENV.PEAK || 200);

export const options = {
  stages: [
    { duration: '5s', target: 10 },
    { duration: '5s', target: PEAK },
    { duration: __ENV.HOLD || '10s', target: PEAK },
    { duration: '5s', target: 0 },
  ],
  thresholds: {
    http_req_failed: ['rate<0.001'],
    http_req_duration: ['p(99)<500'],
  },
};

export default function () {
  const res = http.post(`${GATEWAY_URL}/v1/chat/completions`, chatBody(`spike ${__VU}-${__ITER}`), {
    headers: headers({ 'Cache-Control': 'no-store' }),
  });
  check(res, { 'status is 200': (r) => r.status === 200 });
}
