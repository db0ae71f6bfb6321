import { createHash } from "node:crypto";
import type { KeyConfig } from "../config/schema.js";
import { GatewayError } from "../core/errors.js";

/**
 * Gateway API keys. Callers present `Authorization: Bearer <token>` on both
 * the RPC and the REST shim; the configuration holds only the token's
 * sha256, so a leaked config file leaks no credentials. With no keys
 * configured the gateway runs open (a warning is logged at start).
 */

/** Caller is the authenticated identity of a request. */
export interface Caller {
  /** keyId is the key's id from config, or "anonymous" in open mode. */
  keyId: string;
  /** team is the key's team, if any. */
  team?: string;
  /** key is the key's configuration; undefined in open mode. */
  key?: KeyConfig;
  /** mayUse tells whether the caller may use a model or route id. */
  mayUse(modelOrRoute: string): boolean;
}

/** Authenticator resolves a bearer token to a Caller. */
export interface Authenticator {
  /** open is true when no keys are configured. */
  readonly open: boolean;
  /** authenticate checks an Authorization header value; it throws unauthenticated. */
  authenticate(authorization: string | undefined): Caller;
}

const anonymous: Caller = { keyId: "anonymous", mayUse: () => true };

/** sha256Hex returns the lowercase hex sha256 of a token (what key_sha256 holds). */
export function sha256Hex(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/**
 * modelMatcher compiles an allow-list ("*", "openai/*", exact ids) into a
 * predicate. An empty list allows everything.
 */
export function modelMatcher(patterns: readonly string[]): (id: string) => boolean {
  if (patterns.length === 0 || patterns.includes("*")) return () => true;
  const exact = new Set(patterns.filter((p) => !p.endsWith("*")));
  const prefixes = patterns.filter((p) => p.endsWith("*")).map((p) => p.slice(0, -1));
  return (id) => exact.has(id) || prefixes.some((p) => id.startsWith(p));
}

/** createAuthenticator builds the key lookup from config. */
export function createAuthenticator(keys: readonly KeyConfig[]): Authenticator {
  const byHash = new Map<string, Caller>();
  for (const key of keys) {
    const allowed = modelMatcher(key.models);
    byHash.set(key.key_sha256, { keyId: key.id, team: key.team, key, mayUse: allowed });
  }
  const open = keys.length === 0;
  // Tokens already checked, so a key's sha256 is computed once rather than per request. Only
  // valid tokens are kept, and a key has one token, so this never outgrows the key list.
  const known = new Map<string, Caller>();
  return {
    open,
    authenticate(authorization) {
      if (open) return anonymous;
      if (authorization === undefined || authorization === "") {
        throw new GatewayError("unauthenticated", "missing API key: send `Authorization: Bearer <key>`", {
          openaiCode: "invalid_api_key",
        });
      }
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (match === null) {
        throw new GatewayError("unauthenticated", "malformed Authorization header: expected `Bearer <key>`", {
          openaiCode: "invalid_api_key",
        });
      }
      const token = match[1]!;
      const seen = known.get(token);
      if (seen !== undefined) return seen;
      const caller = byHash.get(sha256Hex(token));
      if (caller === undefined) {
        throw new GatewayError("unauthenticated", "invalid API key", { openaiCode: "invalid_api_key" });
      }
      known.set(token, caller);
      return caller;
    },
  };
}
