/**
 * Request validation of the Gemini simulator: what the real API rejects,
 * with its 400 wording ("Invalid JSON payload received. Unknown name ...").
 */

/** Json is a parsed JSON object. */
export type Json = Record<string, unknown>;

/** ApiError is a rejection: the simulator answers it with Google's error body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: Json[] = [],
  ) {
    super(message);
  }
}

/** isJson tells whether a value is a JSON object. */
export function isJson(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function bad(message: string): ApiError {
  return new ApiError(400, message);
}

function unknownField(name: string, at?: string): ApiError {
  return bad(`Invalid JSON payload received. Unknown name "${name}"${at !== undefined ? ` at '${at}'` : ""}: Cannot find field.`);
}

function onlyKeys(value: Json, allowed: readonly string[], at?: string): void {
  for (const k of Object.keys(value)) if (!allowed.includes(k)) throw unknownField(k, at);
}

const topLevelFields = ["contents", "systemInstruction", "generationConfig", "tools", "toolConfig", "safetySettings", "cachedContent", "labels"];

/** validateRequest throws an ApiError for a body the real API would reject. */
export function validateRequest(body: Json): void {
  onlyKeys(body, topLevelFields);
  if (!Array.isArray(body.contents) || body.contents.length === 0) throw bad("* GenerateContentRequest.contents: contents is not specified");
  body.contents.forEach((c, i) => validateContent(c, `contents[${i}]`, true));
  if (body.systemInstruction !== undefined) validateContent(body.systemInstruction, "system_instruction", false);
  if (body.generationConfig !== undefined) validateGenerationConfig(body.generationConfig);
  validateTools(body.tools, body.toolConfig);
}

function validateContent(content: unknown, at: string, needsRole: boolean): void {
  if (!isJson(content)) throw bad(`Invalid value at '${at}': expected an object`);
  onlyKeys(content, ["role", "parts"], at);
  if (content.role !== undefined && content.role !== "user" && content.role !== "model" && needsRole) {
    throw bad(`Please use a valid role: user, model.`);
  }
  if (!Array.isArray(content.parts) || content.parts.length === 0) throw bad(`* GenerateContentRequest.${at}.parts: contents.parts must not be empty.`);
  content.parts.forEach((p, j) => validatePart(p, `${at}.parts[${j}]`));
}

const dataFields = ["text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult"];

function validatePart(part: unknown, at: string): void {
  if (!isJson(part)) throw bad(`Invalid value at '${at}': expected an object`);
  onlyKeys(part, [...dataFields, "thought", "thoughtSignature"], at);
  const present = dataFields.filter((f) => part[f] !== undefined);
  if (present.length !== 1) throw bad(`* GenerateContentRequest.${at}.data: required oneof field 'data' must have one initialized field`);
  if (part.text !== undefined && typeof part.text !== "string") throw bad(`Invalid value at '${at}.text' (TYPE_STRING)`);
  if (part.inlineData !== undefined) {
    const d = part.inlineData;
    if (!isJson(d) || typeof d.mimeType !== "string" || typeof d.data !== "string" || !/^[A-Za-z0-9+/=_-]*$/.test(d.data)) {
      throw bad(`Invalid value at '${at}.inline_data': mimeType and base64 data are required`);
    }
  }
  if (part.fileData !== undefined) {
    const d = part.fileData;
    if (!isJson(d) || typeof d.fileUri !== "string" || typeof d.mimeType !== "string") throw bad(`* GenerateContentRequest.${at}.file_data: fileUri and mimeType are required`);
  }
  if (part.functionCall !== undefined) {
    const f = part.functionCall;
    if (!isJson(f) || typeof f.name !== "string" || f.name === "") throw bad(`* GenerateContentRequest.${at}.function_call.name: Name cannot be empty.`);
    if (f.args !== undefined && !isJson(f.args)) throw bad(`Invalid value at '${at}.function_call.args' (type.googleapis.com/google.protobuf.Struct)`);
  }
  if (part.functionResponse !== undefined) {
    const f = part.functionResponse;
    if (!isJson(f) || typeof f.name !== "string" || f.name === "") throw bad(`* GenerateContentRequest.${at}.function_response.name: Name cannot be empty.`);
    if (!isJson(f.response)) throw bad(`Invalid value at '${at}.function_response.response' (type.googleapis.com/google.protobuf.Struct)`);
  }
}

type FieldType = "int" | "number" | "string" | "stringArray" | "object" | "boolean" | "array";
const generationFields: Record<string, FieldType> = {
  maxOutputTokens: "int",
  temperature: "number",
  topP: "number",
  topK: "int",
  stopSequences: "stringArray",
  seed: "int",
  candidateCount: "int",
  presencePenalty: "number",
  frequencyPenalty: "number",
  responseMimeType: "string",
  responseSchema: "object",
  responseModalities: "array",
  thinkingConfig: "object",
  responseLogprobs: "boolean",
  logprobs: "int",
};
const protoTypes: Record<FieldType, string> = {
  int: "TYPE_INT32",
  number: "TYPE_FLOAT",
  string: "TYPE_STRING",
  stringArray: "TYPE_STRING",
  object: "TYPE_MESSAGE",
  boolean: "TYPE_BOOL",
  array: "TYPE_ENUM",
};

function hasType(value: unknown, type: FieldType): boolean {
  switch (type) {
    case "int":
      return Number.isInteger(value);
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "string":
      return typeof value === "string";
    case "stringArray":
      return Array.isArray(value) && value.every((v) => typeof v === "string");
    case "object":
      return isJson(value);
    case "boolean":
      return typeof value === "boolean";
    case "array":
      return Array.isArray(value);
  }
}

function validateGenerationConfig(config: unknown): void {
  if (!isJson(config)) throw bad("Invalid value at 'generation_config': expected an object");
  for (const [k, v] of Object.entries(config)) {
    const type = generationFields[k];
    if (type === undefined) throw unknownField(k, "generation_config");
    if (!hasType(v, type)) throw bad(`Invalid value at 'generation_config.${k}' (${protoTypes[type]}), ${JSON.stringify(v)}`);
  }
  const num = (k: string): number | undefined => config[k] as number | undefined;
  if ((num("temperature") ?? 0) < 0 || (num("temperature") ?? 0) > 2) throw bad("* GenerateContentRequest.generation_config.temperature: must be in [0, 2]");
  if ((num("topP") ?? 0) < 0 || (num("topP") ?? 0) > 1) throw bad("* GenerateContentRequest.generation_config.top_p: must be in [0, 1]");
  if ((num("maxOutputTokens") ?? 1) < 1) throw bad("* GenerateContentRequest.generation_config.max_output_tokens: must be positive");
  if (((config.stopSequences as string[] | undefined) ?? []).length > 5) throw bad("* GenerateContentRequest.generation_config.stop_sequences: at most 5");
  const mime = config.responseMimeType as string | undefined;
  if (mime !== undefined && !["text/plain", "application/json", "text/x.enum"].includes(mime)) {
    throw bad(`* GenerateContentRequest.generation_config.response_mime_type: allowed mimetypes are text/plain, application/json, text/x.enum`);
  }
  if (config.responseSchema !== undefined) validateSchema(config.responseSchema, "generation_config.response_schema");
}

// Gemini's Schema: an OpenAPI 3.0 subset. Anything else is a 400 "Unknown name".
const schemaKeywords = [
  "type", "format", "title", "description", "nullable", "enum", "properties", "required", "items", "anyOf",
  "minItems", "maxItems", "minimum", "maximum", "minLength", "maxLength", "pattern", "minProperties",
  "maxProperties", "propertyOrdering", "example",
];
const schemaTypes = ["string", "number", "integer", "boolean", "array", "object"];
const formats: Record<string, string[]> = { string: ["enum", "date-time"], integer: ["int32", "int64"], number: ["float", "double"] };

function validateSchema(schema: unknown, at: string): void {
  if (!isJson(schema)) throw bad(`Invalid value at '${at}': expected an object`);
  onlyKeys(schema, schemaKeywords, at);
  const type = typeof schema.type === "string" ? schema.type.toLowerCase() : undefined;
  if (schema.type !== undefined && (type === undefined || !schemaTypes.includes(type))) {
    throw bad(`Invalid value at '${at}.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), ${JSON.stringify(schema.type)}`);
  }
  if (typeof schema.format === "string" && type !== undefined && !(formats[type] ?? []).includes(schema.format)) {
    throw bad(`* GenerateContentRequest.${at}.format: only ${(formats[type] ?? []).join(", ") || "no"} formats are supported for ${type.toUpperCase()} type`);
  }
  if (schema.enum !== undefined && (!Array.isArray(schema.enum) || schema.enum.some((v) => typeof v !== "string"))) {
    throw bad(`Invalid value at '${at}.enum' (TYPE_STRING)`);
  }
  if (schema.properties !== undefined) {
    if (!isJson(schema.properties)) throw bad(`Invalid value at '${at}.properties': expected an object`);
    for (const [name, sub] of Object.entries(schema.properties)) validateSchema(sub, `${at}.properties[${name}].value`);
    for (const r of (schema.required as unknown[] | undefined) ?? []) {
      if (typeof r !== "string" || !(r in schema.properties)) throw bad(`* GenerateContentRequest.${at}.required[${String(r)}]: property is not defined`);
    }
  }
  if (type === "object" && (schema.properties === undefined || Object.keys(schema.properties as Json).length === 0) && at.endsWith(".parameters")) {
    throw bad(`* GenerateContentRequest.${at}.properties: should be non-empty for OBJECT type`);
  }
  if (schema.items !== undefined) validateSchema(schema.items, `${at}.items`);
  if (schema.anyOf !== undefined) {
    if (!Array.isArray(schema.anyOf)) throw bad(`Invalid value at '${at}.any_of': expected a list`);
    schema.anyOf.forEach((s, i) => validateSchema(s, `${at}.any_of[${i}]`));
  }
}

function validateTools(tools: unknown, toolConfig: unknown): void {
  if (tools !== undefined) {
    if (!Array.isArray(tools)) throw bad("Invalid value at 'tools': expected a list");
    tools.forEach((t, i) => {
      if (!isJson(t)) throw bad(`Invalid value at 'tools[${i}]': expected an object`);
      onlyKeys(t, ["functionDeclarations", "googleSearch", "codeExecution", "urlContext"], `tools[${i}]`);
      if (t.functionDeclarations === undefined) return;
      if (!Array.isArray(t.functionDeclarations)) throw bad(`Invalid value at 'tools[${i}].function_declarations': expected a list`);
      t.functionDeclarations.forEach((d, j) => {
        const at = `tools[${i}].function_declarations[${j}]`;
        if (!isJson(d)) throw bad(`Invalid value at '${at}': expected an object`);
        onlyKeys(d, ["name", "description", "parameters", "response"], at);
        if (typeof d.name !== "string" || !/^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$/.test(d.name)) {
          throw bad(`* GenerateContentRequest.${at}.name: Invalid function name. Must start with a letter or an underscore and contain only a-z, A-Z, 0-9, underscores, dots, colons and dashes, with a maximum length of 64.`);
        }
        if (d.description !== undefined && typeof d.description !== "string") throw bad(`Invalid value at '${at}.description' (TYPE_STRING)`);
        if (d.parameters !== undefined) validateSchema(d.parameters, `${at}.parameters`);
      });
    });
  }
  if (toolConfig === undefined) return;
  if (!isJson(toolConfig)) throw bad("Invalid value at 'tool_config': expected an object");
  onlyKeys(toolConfig, ["functionCallingConfig"], "tool_config");
  const fcc = toolConfig.functionCallingConfig;
  if (fcc === undefined) return;
  if (!isJson(fcc)) throw bad("Invalid value at 'tool_config.function_calling_config': expected an object");
  onlyKeys(fcc, ["mode", "allowedFunctionNames"], "tool_config.function_calling_config");
  if (fcc.mode !== undefined && !["MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"].includes(fcc.mode as string)) {
    throw bad(`Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), ${JSON.stringify(fcc.mode)}`);
  }
  if (fcc.allowedFunctionNames !== undefined) {
    if (!hasType(fcc.allowedFunctionNames, "stringArray")) throw bad("Invalid value at 'tool_config.function_calling_config.allowed_function_names' (TYPE_STRING)");
    if (fcc.mode !== "ANY") throw bad("* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: only allowed when mode is ANY");
  }
}
