import type { JsonObject, JsonValue } from "../../core/chat.js";

/**
 * JSON Schema → Gemini's Schema (an OpenAPI 3.0 subset). Gemini rejects a
 * request whose function parameters or responseSchema use keywords outside
 * that subset (`additionalProperties`, `$schema`, `$ref`, `default`, ...),
 * which OpenAI-style tool schemas use freely. So the schema is rebuilt from
 * an allow-list rather than patched by a deny-list: a keyword added to JSON
 * Schema later is dropped, not forwarded into a 400.
 */

const passThrough = ["description", "title", "minItems", "maxItems", "minimum", "maximum"] as const;

// Gemini accepts only these formats (anything else is a 400).
const formatsByType: Record<string, ReadonlySet<string>> = {
  string: new Set(["enum", "date-time"]),
  integer: new Set(["int32", "int64"]),
  number: new Set(["float", "double"]),
};

const MAX_REF_DEPTH = 8;

/**
 * cleanGeminiSchema rebuilds a JSON Schema with only what Gemini accepts:
 * type, format (the supported ones), description, title, nullable, enum,
 * properties, required (limited to defined properties), items, anyOf and
 * numeric and array bounds. It also translates what has an equivalent:
 * `type: [T, "null"]` and `anyOf` with a null branch → `nullable`, `const` →
 * a one-value `enum`, `oneOf` → `anyOf`, `allOf` → merged, and local `$ref`s
 * into `$defs`/`definitions` → inlined (a recursive or unresolved reference
 * becomes an untyped object).
 */
export function cleanGeminiSchema(schema: JsonObject): JsonObject {
  const defs = { ...asObject(schema.definitions), ...asObject(schema.$defs) };
  return clean(schema, defs, 0);
}

function asObject(value: JsonValue | undefined): JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? value : {};
}

function clean(input: JsonObject, defs: JsonObject, depth: number): JsonObject {
  let schema = input;
  if (typeof schema.$ref === "string") {
    const target = /^#\/(?:\$defs|definitions)\/(.+)$/.exec(schema.$ref)?.[1];
    const resolved = target !== undefined ? defs[decodeURIComponent(target)] : undefined;
    if (resolved === undefined || depth >= MAX_REF_DEPTH) return { type: "object" };
    // Sibling keywords of $ref (a description, say) override the referenced schema's.
    const { $ref: _ref, ...siblings } = schema;
    schema = { ...asObject(resolved), ...siblings };
    depth += 1;
  }
  if (Array.isArray(schema.allOf)) schema = mergeAllOf(schema, defs, depth);

  const out: JsonObject = {};
  let nullable = schema.nullable === true;

  let type = schema.type;
  if (Array.isArray(type)) {
    const types = type.filter((t): t is string => typeof t === "string" && t !== "null");
    if (types.length < type.length) nullable = true;
    // Gemini has one type per schema; several non-null types become anyOf below.
    if (types.length === 1) type = types[0]!;
    else if (types.length > 1) {
      out.anyOf = types.map((t) => clean({ ...schema, type: t, nullable: false }, defs, depth));
      type = undefined;
    } else type = undefined;
  }
  if (typeof type === "string") out.type = type;

  for (const key of passThrough) {
    const value = schema[key];
    if (value !== undefined) out[key] = value;
  }
  if (typeof schema.format === "string" && typeof type === "string" && formatsByType[type]?.has(schema.format)) {
    out.format = schema.format;
  }
  const values = Array.isArray(schema.enum) ? schema.enum.filter((v) => v !== null) : schema.const != null ? [schema.const] : undefined;
  if (values !== undefined) {
    if (out.type === undefined || out.type === "string") {
      out.type = "string";
      out.enum = values.map((v) => (typeof v === "string" ? v : JSON.stringify(v)));
    } else {
      // Gemini allows enum on strings only: keep the constraint as words the model can follow.
      const list = values.map((v) => JSON.stringify(v)).join(", ");
      out.description = typeof out.description === "string" ? `${out.description} (one of: ${list})` : `One of: ${list}`;
    }
  }

  const properties = asObject(schema.properties);
  if (schema.properties !== undefined) {
    const cleaned: JsonObject = {};
    for (const [name, sub] of Object.entries(properties)) cleaned[name] = clean(asObject(sub), defs, depth);
    out.properties = cleaned;
    if (Array.isArray(schema.required)) {
      const required = schema.required.filter((r): r is string => typeof r === "string" && r in cleaned);
      if (required.length > 0) out.required = required;
    }
  }
  if (schema.items !== undefined && !Array.isArray(schema.items)) out.items = clean(asObject(schema.items), defs, depth);

  const branches = Array.isArray(schema.anyOf) ? schema.anyOf : Array.isArray(schema.oneOf) ? schema.oneOf : undefined;
  if (branches !== undefined) {
    const nonNull = branches.filter((b) => !(asObject(b).type === "null"));
    if (nonNull.length < branches.length) nullable = true;
    const cleaned = nonNull.map((b) => clean(asObject(b), defs, depth));
    if (cleaned.length === 1 && out.type === undefined) {
      // A single remaining branch is the schema itself; the outer keywords (a description) win.
      for (const [k, v] of Object.entries(cleaned[0]!)) if (!(k in out)) out[k] = v;
    } else if (cleaned.length > 0) {
      out.anyOf = cleaned;
    }
  }
  if (nullable) out.nullable = true;
  return out;
}

function mergeAllOf(schema: JsonObject, defs: JsonObject, depth: number): JsonObject {
  const { allOf, ...rest } = schema;
  const merged: JsonObject = { ...rest };
  const properties: JsonObject = { ...asObject(rest.properties) };
  const required = new Set<string>(Array.isArray(rest.required) ? rest.required.filter((r): r is string => typeof r === "string") : []);
  for (const part of Array.isArray(allOf) ? allOf : []) {
    // Resolve references first so that their properties merge too.
    const sub = typeof asObject(part).$ref === "string" ? clean(asObject(part), defs, depth) : asObject(part);
    for (const [k, v] of Object.entries(sub)) {
      if (k === "properties") {
        Object.assign(properties, asObject(v));
      } else if (k === "required") {
        if (Array.isArray(v)) for (const r of v) if (typeof r === "string") required.add(r);
      } else if (!(k in merged)) {
        merged[k] = v;
      }
    }
  }
  if (Object.keys(properties).length > 0) merged.properties = properties;
  if (required.size > 0) merged.required = [...required];
  return merged;
}
