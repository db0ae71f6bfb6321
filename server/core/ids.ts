import { randomBytes } from "node:crypto";

/**
 * Cheap unique ids: a random per-process prefix plus a counter. Unique
 * across replicas (64 random bits per process) without a syscall or a UUID
 * per request.
 */

const prefix = randomBytes(8).toString("hex");
let counter = 0;

/** newId returns a fresh id such as "3f9a…-1a". */
export function newId(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${prefix}-${counter.toString(36)}`;
}

const callerIdPattern = /^[A-Za-z0-9._:\-]{1,128}$/;

/** requestIdFrom honours a caller's x-request-id when it is safe to log and echo, else makes one. */
export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && callerIdPattern.test(value) ? value : newId();
}
