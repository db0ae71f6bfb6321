// Run: npx tsx clients/examples/stream.ts   (with the gateway running: npm start)
import { createGatewayClient, userText } from "../index.js";

const gw = createGatewayClient({ baseUrl: process.env.GATEWAY_URL ?? "http://127.0.0.1:8080", apiKey: process.env.GATEWAY_KEY, protocol: "grpc" });
for await (const res of gw.streamComplete({ model: process.argv[2] ?? "sim", messages: [userText("Stream a short answer.")] })) {
  const e = res.event;
  if (e.case === "start") console.error(`[answering: ${e.value.provider} ${e.value.model}]`);
  else if (e.case === "textDelta") process.stdout.write(e.value.text);
  else if (e.case === "finish") console.error(`\n[finish ${e.value.finishReason}, ${e.value.usage?.outputTokens} tokens, ${e.value.cost?.totalNanoUsd} nano-USD]`);
}
