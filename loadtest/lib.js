// Shared settings for the k6 scripts: every knob comes from the environment.
export const GATEWAY_URL = __ENV.GATEWAY_URL || 'http://127.0.0.1:9000';
export const API_KEY = __ENV.API_KEY || 'key-team-support';
export const MODEL = __ENV.MODEL || 'gpt-4';

export function headers(extra) {
  return Object.assign(
    { 'Content-Type': 'application/json', Authorization: `Bearer ${API_KEY}` },
    extra || {},
  );
}

export function chatBody(content, stream, maxTokens) {
  return JSON.stringify({
    model: MODEL,
    stream: !!stream,
    max_tokens: maxTokens || 16,
    messages: [{ role: 'user', content }],
  });
}
