/**
 * Parsing of providers' retry hints into milliseconds. Order of precedence
 * (OpenAI's SDK uses the same): `retry-after-ms`, then `retry-after` as
 * seconds or an HTTP date. Gemini's `retryDelay` ("34s") lives in the error
 * body and is parsed by parseDurationMs.
 */

type HeaderBag = Record<string, string | string[] | undefined>;

function header(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** retryAfterMs reads the retry hint from response headers, or undefined. */
export function retryAfterMs(headers: HeaderBag, now: number = Date.now()): number | undefined {
  const ms = header(headers, "retry-after-ms");
  if (ms !== undefined) {
    const n = Number(ms);
    if (Number.isFinite(n) && n >= 0) return Math.round(n);
  }
  const ra = header(headers, "retry-after");
  if (ra !== undefined) {
    const seconds = Number(ra);
    if (ra.trim() !== "" && Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
    const date = Date.parse(ra);
    if (Number.isFinite(date)) return Math.max(0, date - now);
  }
  return undefined;
}

/**
 * parseDurationMs parses durations such as "34s", "1.5s", "250ms", "6m0s" or
 * "1h2m3s" (OpenAI rate-limit resets, Gemini retryDelay) into milliseconds.
 */
export function parseDurationMs(text: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let matched = "";
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const n = Number(m[1]);
    const unit = m[2];
    total += unit === "ms" ? n : unit === "s" ? n * 1000 : unit === "m" ? n * 60_000 : n * 3_600_000;
    matched += m[0];
  }
  return matched === text.trim() && matched !== "" ? Math.round(total) : undefined;
}
