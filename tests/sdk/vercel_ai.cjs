// The Vercel AI SDK's default OpenAI path (`openai(model)`, the Responses API) through the
// gateway: generateText and streamText. Prints one JSON object.
//   node tests/sdk/vercel_ai.cjs SDK_DIR BASE_URL KEY MODEL
const path = require("path");
const { createRequire } = require("module");
const [sdkDir, baseURL, apiKey, model] = process.argv.slice(2);
const sdk = createRequire(path.join(sdkDir, "package.json"));
const { generateText, streamText } = sdk("ai");
const { createOpenAI } = sdk("@ai-sdk/openai");

(async () => {
  const openai = createOpenAI({ baseURL, apiKey });
  const out = {};
  const g = await generateText({ model: openai(model), prompt: "hello there", maxRetries: 0 });
  out.text = g.text;
  out.output_tokens = g.usage.outputTokens;
  const s = streamText({ model: openai(model), prompt: "stream it", maxRetries: 0 });
  let streamed = "";
  for await (const part of s.textStream) streamed += part;
  out.streamed = streamed;
  out.stream_output_tokens = (await s.usage).outputTokens;
  console.log(JSON.stringify(out));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
