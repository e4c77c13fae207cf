// A traffic spike past the cache: ramp to PEAK virtual users quickly, hold, drop. Nothing may fail.
//   PEAK=400 k6 run loadtest/spike.js
//   PEAK=20 RAMP=1s HOLD=3s k6 run loadtest/spike.js     # short, for a debug build
import http from 'k6/http';
import { check } from 'k6';
import { GATEWAY_URL, pastTheCache, chatBody } from './lib.js';

const PEAK = Number(__ENV.PEAK || 200);
const RAMP = __ENV.RAMP || '5s';

export const options = {
  stages: [
    { duration: RAMP, target: Math.min(10, PEAK) },
    { duration: RAMP, target: PEAK },
    { duration: __ENV.HOLD || '10s', target: PEAK },
    { duration: RAMP, target: 0 },
  ],
  thresholds: {
    http_req_failed: ['rate<0.001'],
    http_req_duration: ['p(99)<500'],
  },
};

export default function () {
  const res = http.post(`${GATEWAY_URL}/v1/chat/completions`, chatBody(`spike ${__VU}-${__ITER}`), {
    headers: pastTheCache(),
  });
  check(res, { 'status is 200': (r) => r.status === 200 });
}
