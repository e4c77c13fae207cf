// Shared settings for the k6 scripts: every knob comes from the environment. The defaults are
// `make demo`'s: its gateway, and its load-test consumer (conf/demo.yaml, `team-loadtest`), whose
// limits and budget are sized for these scripts' rates.
export const GATEWAY_URL = __ENV.GATEWAY_URL || 'http://127.0.0.1:9000';
export const API_KEY = __ENV.API_KEY || 'key-load-test';
export const MODEL = __ENV.MODEL || 'gpt-4';

// The request headers: JSON, the key (API_KEY unless given), and `extra`.
export function headers(extra, key) {
  return Object.assign(
    { 'Content-Type': 'application/json', Authorization: `Bearer ${key || API_KEY}` },
    extra || {},
  );
}

// Headers for a request that must reach a backend: `no-store` keeps the gateway's cache out of
// it both ways (no lookup, nothing stored), so the whole pipeline runs every time.
export function pastTheCache(key) {
  return headers({ 'Cache-Control': 'no-store' }, key);
}

// A chat completion of one user message; the answer is capped at `maxTokens` (16).
export function chatBody(content, stream, maxTokens, model) {
  return JSON.stringify({
    model: model || MODEL,
    stream: !!stream,
    max_tokens: maxTokens || 16,
    messages: [{ role: 'user', content }],
  });
}

// A constant-arrival-rate scenario: RATE requests a second (100) for DURATION, with VUS users
// allocated up front and at most MAX_VUS, each overridable from the environment.
export function arrivalRate(duration, vus, maxVus) {
  return {
    executor: 'constant-arrival-rate',
    rate: Number(__ENV.RATE || 100),
    timeUnit: '1s',
    duration: __ENV.DURATION || duration,
    preAllocatedVUs: Number(__ENV.VUS || vus),
    maxVUs: Number(__ENV.MAX_VUS || maxVus),
  };
}
