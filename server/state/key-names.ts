/**
 * keyNamer turns an id into a state-store key name with a fixed prefix,
 * remembering each name it built. Hot-path reads ask for the same few
 * names (one per deployment or provider) on every request; a remembered
 * string is not concatenated, flattened and hashed again for each lookup.
 * Ids come from the configuration, so the set stays small; past `max`
 * names it stops remembering new ones rather than grow.
 */
export function keyNamer(prefix: string, suffix = "", max = 4096): (id: string) => string {
  const names = new Map<string, string>();
  return (id) => {
    let name = names.get(id);
    if (name === undefined) {
      name = `${prefix}${id}${suffix}`;
      if (names.size < max) names.set(id, name);
    }
    return name;
  };
}
