import type { Caller } from "../auth/keys.js";
import { GatewayError } from "../core/errors.js";
import type { Runtime } from "../core/runtime.js";

/**
 * `GET /v1/models` in OpenAI's list format: the models and routes the
 * caller's key may use. Routes are listed too, since they are valid `model`
 * values; their owner is "gateway".
 */
export function listModels(runtime: Runtime, caller: Caller, one?: string): string {
  const data: Array<{ id: string; object: "model"; created: number; owned_by: string }> = [];
  for (const d of runtime.deployments.values()) {
    if (caller.mayUse(d.id)) data.push({ id: d.id, object: "model", created: 0, owned_by: d.provider.id });
  }
  for (const r of runtime.routes.values()) {
    if (caller.mayUse(r.id)) data.push({ id: r.id, object: "model", created: 0, owned_by: "gateway" });
  }
  if (one !== undefined) {
    const found = data.find((m) => m.id === one);
    if (found === undefined) throw new GatewayError("not_found", `unknown model "${one}"`, { param: "model", openaiCode: "model_not_found" });
    return JSON.stringify(found);
  }
  return JSON.stringify({ object: "list", data });
}
