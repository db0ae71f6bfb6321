/**
 * Environment interpolation for gateway.yaml. It runs on the parsed YAML
 * tree, one string scalar at a time, never on the file's text: a variable
 * whose value contains YAML syntax (`a: b`, `[x]`, a newline) stays a plain
 * string and cannot add keys or entries to the configuration.
 *
 * Syntax, as in POSIX shells and Docker Compose:
 * - `${NAME}` is the variable's value, or "" when it is unset. An unset key
 *   therefore leaves `api_key: ${OPENAI_API_KEY}` empty, which disables that
 *   provider instead of failing the whole file.
 * - `${NAME:-default}` is the default when NAME is unset or empty; the
 *   default may itself contain references (`${A:-${B}}`).
 * - `$${` is a literal `${`. Any other `$` is literal.
 */

/** Env is the environment interpolation reads, such as `process.env`. */
export type Env = Readonly<Record<string, string | undefined>>;

/** InterpolationError is a malformed reference, such as `${FOO` or `${1X}`. */
export class InterpolationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InterpolationError";
  }
}

/** InterpolatedString is the result of interpolating one string. */
export interface InterpolatedString {
  /** value is the string with every reference replaced. */
  value: string;
  /** variables are the names whose values were read (not those of unused defaults), in order, without repeats. */
  variables: string[];
  /** unset are the variables among them that were unset or empty. */
  unset: string[];
}

const namePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * interpolateString replaces the references in one string. It throws an
 * InterpolationError when a reference is malformed.
 */
export function interpolateString(text: string, env: Env): InterpolatedString {
  const variables: string[] = [];
  const unset: string[] = [];
  const note = (list: string[], name: string) => {
    if (!list.includes(name)) list.push(name);
  };

  // parse reads text[from..] up to an unmatched "}" (when nested) or the end,
  // and returns the expansion and the index just past what it consumed.
  const parse = (from: number, nested: boolean): { out: string; end: number } => {
    let out = "";
    let i = from;
    while (i < text.length) {
      const c = text[i]!;
      if (nested && c === "}") return { out, end: i };
      if (c === "$" && text.startsWith("$${", i)) {
        out += "${";
        i += 3;
        continue;
      }
      if (c !== "$" || text[i + 1] !== "{") {
        out += c;
        i++;
        continue;
      }
      // A reference: ${NAME} or ${NAME:-default}.
      const start = i;
      i += 2;
      let name = "";
      while (i < text.length && text[i] !== "}" && !text.startsWith(":-", i)) name += text[i++];
      if (i >= text.length) throw new InterpolationError(`unterminated "\${" at offset ${start} (write "$\${" for a literal "\${")`);
      if (!namePattern.test(name)) {
        if (name === "") throw new InterpolationError(`empty variable name in "\${}"`);
        const hint = /[-:=?+]/.test(name) ? `; the only default syntax is "\${NAME:-default}"` : "";
        throw new InterpolationError(`invalid variable name "${name}" (letters, digits and _, not starting with a digit${hint})`);
      }
      note(variables, name);
      const value = env[name];
      const isSet = value !== undefined && value !== "";
      if (!isSet) note(unset, name);
      if (text[i] === "}") {
        out += value ?? "";
        i++;
        continue;
      }
      // ":-" then a default that may nest references. It is parsed even when
      // unused, so a malformed default is reported whatever the environment;
      // its variables are only noted when it is used.
      const marks = [variables.length, unset.length] as const;
      const fallback = parse(i + 2, true);
      if (fallback.end >= text.length) throw new InterpolationError(`unterminated "\${${name}:-" at offset ${start}`);
      if (isSet) {
        variables.length = marks[0];
        unset.length = marks[1];
      }
      out += isSet ? value : fallback.out;
      i = fallback.end + 1;
    }
    return { out, end: i };
  };

  const { out } = parse(0, false);
  return { value: out, variables, unset };
}

/** interpolate replaces the references in one string; see interpolateString. */
export function interpolate(text: string, env: Env): string {
  return interpolateString(text, env).value;
}

/** InterpolatedTree is the result of interpolating a parsed YAML tree. */
export interface InterpolatedTree {
  /** value is a copy of the tree with every string scalar interpolated. */
  value: unknown;
  /** strings lists every scalar that held a reference, by path (for messages and type coercion). */
  strings: Array<{ path: PropertyKey[]; variables: string[]; unset: string[] }>;
  /** errors are malformed references, by path; those scalars are left unchanged. */
  errors: Array<{ path: PropertyKey[]; message: string }>;
}

/**
 * interpolateTree interpolates every string scalar of a parsed YAML tree
 * (mapping values and list entries; mapping keys are left alone, because a
 * key named by the environment would make the file's shape unknowable).
 * The input is not modified.
 */
export function interpolateTree(tree: unknown, env: Env): InterpolatedTree {
  const strings: InterpolatedTree["strings"] = [];
  const errors: InterpolatedTree["errors"] = [];
  const walk = (node: unknown, path: PropertyKey[]): unknown => {
    if (typeof node === "string") {
      if (!node.includes("${")) return node;
      try {
        const r = interpolateString(node, env);
        if (r.variables.length > 0) strings.push({ path, variables: r.variables, unset: r.unset });
        return r.value;
      } catch (err) {
        if (!(err instanceof InterpolationError)) throw err;
        errors.push({ path, message: err.message });
        return node;
      }
    }
    if (Array.isArray(node)) return node.map((item, index) => walk(item, [...path, index]));
    if (node !== null && typeof node === "object") {
      const out: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(node)) {
        // defineProperty, because assigning a "__proto__" key would set the prototype.
        Object.defineProperty(out, key, { value: walk(value, [...path, key]), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    return node;
  };
  return { value: walk(tree, []), strings, errors };
}
