import type { GatewayConfig, ModelConfig, ProviderConfig, RouteConfig } from "../config/schema.js";
import { createAuthenticator, type Authenticator } from "../auth/keys.js";
import { compilePrice, type Price } from "../pricing/cost.js";
import type { ProviderAdapter } from "../providers/adapter.js";
import { createAdapter, providerStatus } from "../providers/registry.js";
import type { StateStore } from "../state/store.js";

/**
 * Runtime is one compiled configuration: adapters built, prices compiled,
 * routes and keys indexed. A reload builds a new Runtime and swaps it in;
 * requests already running keep the Runtime they started with, and the old
 * one's connection pools close only after those requests finish.
 */

/** Deployment is a model on its provider, ready to call. */
export interface Deployment {
  /** id is the gateway model id ("openai/gpt-4o"). */
  id: string;
  model: ModelConfig;
  provider: ProviderConfig;
  adapter: ProviderAdapter;
  /** upstreamModel is the provider's name for the model. */
  upstreamModel: string;
  price: Price;
  /** enabled is false when the provider has no key; disabledReason says why. */
  enabled: boolean;
  disabledReason?: string;
}

/** Runtime is a compiled, immutable configuration. */
export interface Runtime {
  readonly config: GatewayConfig;
  readonly deployments: ReadonlyMap<string, Deployment>;
  readonly routes: ReadonlyMap<string, RouteConfig>;
  readonly auth: Authenticator;
  /** warnings are things an operator should know (disabled providers, open mode). */
  readonly warnings: readonly string[];
  /**
   * state is the shared state store (limits, budgets, breakers, latency);
   * one store outlives many runtimes, so retire() does not close it.
   */
  readonly state?: StateStore;
  /** acquire marks a request as using this runtime; call the returned release when it ends. */
  acquire(): () => void;
  /** retire closes the adapters once every acquired request has released. */
  retire(): Promise<void>;
}

/** upstreamName is the provider's name of a model: `upstream`, else the id after its first "/". */
export function upstreamName(model: ModelConfig): string {
  if (model.upstream !== undefined) return model.upstream;
  const slash = model.id.indexOf("/");
  return slash >= 0 ? model.id.slice(slash + 1) : model.id;
}

/** buildRuntime compiles a validated configuration. */
export function buildRuntime(config: GatewayConfig, state?: StateStore): Runtime {
  const warnings: string[] = [];
  const adapters = new Map<string, ProviderAdapter>();
  const status = new Map<string, { enabled: boolean; reason?: string }>();
  for (const provider of config.providers) {
    adapters.set(provider.id, createAdapter(provider));
    const s = providerStatus(provider);
    status.set(provider.id, s);
    if (!s.enabled) warnings.push(`provider ${provider.id} disabled: ${s.reason}`);
  }
  const deployments = new Map<string, Deployment>();
  for (const model of config.models) {
    const provider = config.providers.find((p) => p.id === model.provider);
    const adapter = adapters.get(model.provider);
    // The loader has checked cross-references; a miss here is a programming error.
    if (provider === undefined || adapter === undefined) throw new Error(`model ${model.id}: unknown provider ${model.provider}`);
    const s = status.get(provider.id)!;
    deployments.set(model.id, {
      id: model.id,
      model,
      provider,
      adapter,
      upstreamModel: upstreamName(model),
      price: compilePrice(model.pricing),
      enabled: s.enabled,
      disabledReason: s.reason,
    });
  }
  const routes = new Map(config.routes.map((r) => [r.id, r]));
  const auth = createAuthenticator(config.keys);
  if (auth.open) warnings.push("no gateway keys configured: the gateway is OPEN to anyone who can reach it");

  let active = 0;
  let retired = false;
  let drained: (() => void) | undefined;
  let retiring: Promise<void> | undefined;
  const closeAdapters = () => Promise.all([...adapters.values()].map((a) => a.close())).then(() => undefined);

  return {
    config,
    state,
    deployments,
    routes,
    auth,
    warnings,
    acquire() {
      active++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        active--;
        if (retired && active === 0) drained?.();
      };
    },
    retire() {
      // One shared promise, so a second caller (the app closing the old state store) waits too.
      retiring ??= (async () => {
        retired = true;
        if (active > 0) await new Promise<void>((resolve) => (drained = resolve));
        await closeAdapters();
      })();
      return retiring;
    },
  };
}
