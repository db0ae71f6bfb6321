import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The community price map (LiteLLM's format) the project was given beside
 * the repository, in ../shared/data; it is not committed. LITELLM_MAP
 * points the tests at another copy. Where neither exists (a clone made
 * elsewhere), the tests that read it are skipped and say why, and every
 * other test still runs.
 */

const root = fileURLToPath(new URL("../..", import.meta.url));

/** REAL_MAP is the path of the real map. */
export const REAL_MAP = process.env.LITELLM_MAP ?? join(root, "../shared/data/model_prices_and_context_window.json");

/** REAL_MAP_MISSING is false when the map is there, else the reason to skip (node:test's skip option). */
export const REAL_MAP_MISSING: false | string = existsSync(REAL_MAP) ? false : `the LiteLLM price map is not at ${REAL_MAP} (set LITELLM_MAP to its path to run this)`;
