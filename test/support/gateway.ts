import { Writable } from "node:stream";
import pino from "pino";
import { startGatewayServer, type GatewayServer } from "../../server/app.js";
import { configSchema, type GatewayConfig } from "../../server/config/schema.js";

/**
 * Test support: a real gateway on an ephemeral loopback port, with its log
 * lines captured so tests can assert what was (and was not) logged.
 */

/** TestGateway is a running in-process gateway with captured logs. */
export interface TestGateway extends GatewayServer {
  /** logs are the JSON log lines written so far. */
  logs: Array<Record<string, unknown>>;
  /** rawLogs is the log output as text, for "never contains" checks. */
  rawLogs(): string;
}

/** startTestGateway validates a config object (snake_case, as in gateway.yaml) and starts a gateway on port 0. */
export async function startTestGateway(config: unknown): Promise<TestGateway> {
  const parsed: GatewayConfig = configSchema.parse(config);
  const logs: Array<Record<string, unknown>> = [];
  let raw = "";
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      const text = chunk.toString("utf8");
      raw += text;
      for (const line of text.split("\n")) if (line.trim() !== "") logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = pino({ level: "info" }, sink);
  const server = await startGatewayServer({ config: parsed, logger, host: "127.0.0.1", port: 0 });
  return Object.assign(server, { logs, rawLogs: () => raw });
}

/** simulatedProvider is a fast in-process provider config for tests. */
export function simulatedProvider(id = "sim", settings: Record<string, number> = {}): Record<string, unknown> {
  return { id, type: "simulated", simulated: { first_token_ms: 0, tokens_per_second: 0, answer_tokens: 12, ...settings } };
}
