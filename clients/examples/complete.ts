// Run: npx tsx clients/examples/complete.ts   (with the gateway running: npm start)
import { createGatewayClient, systemText, userText } from "../index.js";

const gw = createGatewayClient({ baseUrl: process.env.GATEWAY_URL ?? "http://127.0.0.1:8080", apiKey: process.env.GATEWAY_KEY });
const res = await gw.complete({
  model: process.argv[2] ?? "sim",
  messages: [systemText("You are terse."), userText("Say hello to the platform team.")],
  sampling: { maxOutputTokens: 64 },
});
console.log(`${res.provider}/${res.model}: ${res.message?.text}`);
console.log(`tokens in/out: ${res.usage?.inputTokens}/${res.usage?.outputTokens}, cost: ${res.cost?.totalNanoUsd} nano-USD`);
