/**
 * Caller-facing messages for upstream errors. A provider's error text is
 * useful to the caller ("prompt is too long: 210000 tokens > 200000
 * maximum"), but providers sometimes echo what they were sent: a key, an
 * Authorization header, a URL with `?key=` (Gemini) or `user:pass@`. Every
 * adapter passes upstream text through here before it leaves the adapter.
 */

/** MAX_MESSAGE_CHARS bounds a caller-facing upstream message. */
export const MAX_MESSAGE_CHARS = 500;

// Patterns for credentials we cannot know verbatim (another key of the same
// account, a key the provider echoes back in a different form).
const credentialPatterns: ReadonlyArray<[RegExp, string]> = [
  [/\bsk-[A-Za-z0-9_-]{6,}/g, "[redacted]"],
  [/\bAIza[0-9A-Za-z_-]{10,}/g, "[redacted]"],
  [/\bBearer\s+[A-Za-z0-9._~+/=-]+/gi, "Bearer [redacted]"],
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]+@/gi, "$1[redacted]@"],
  [/([?&](?:key|api_key|apikey|access_token|token)=)[^&\s"'#]+/gi, "$1[redacted]"],
];

/**
 * redactSecrets removes credentials from text: each of `secrets` verbatim
 * (the provider's configured key), then anything shaped like an OpenAI or
 * Anthropic key (`sk-...`), a Google key (`AIza...`), a bearer token, URL
 * user info or a key-bearing query parameter.
 */
export function redactSecrets(text: string, secrets: ReadonlyArray<string | undefined> = []): string {
  let out = text;
  for (const secret of secrets) {
    // Very short "keys" (placeholders like "x") would shred the message and protect nothing.
    if (secret !== undefined && secret.length >= 4) out = out.split(secret).join("[redacted]");
  }
  for (const [pattern, replacement] of credentialPatterns) out = out.replace(pattern, replacement);
  return out;
}

/**
 * upstreamErrorMessage builds `<provider id>: <upstream message>`, redacted
 * and cut to about MAX_MESSAGE_CHARS. Redaction happens before the cut so
 * that a key straddling the limit cannot leak its prefix.
 */
export function upstreamErrorMessage(
  providerId: string,
  message: string,
  secrets: ReadonlyArray<string | undefined> = [],
): string {
  let text = redactSecrets(message.trim(), secrets);
  if (text.length > MAX_MESSAGE_CHARS) text = `${text.slice(0, MAX_MESSAGE_CHARS - 3)}...`;
  return `${providerId}: ${text}`;
}
