import { hostNameOf } from "../host-instance.js";

/**
 * parseInstanceTokens reads ACTIONS_INSTANCE_TOKENS: comma-separated
 * `host=token` pairs, for example "a.localhost=token-a,b.localhost=token-b",
 * into host name -> token (host names in lower case; a token may contain
 * "="; blanks around entries are ignored). Throws an Error naming the entry
 * for a pair without "=", a host with a port or a path, an empty token, a
 * host given twice or a token given twice.
 */
export function parseInstanceTokens(text: string): Record<string, string> {
  const tokens: Record<string, string> = {};
  const seen = new Set<string>();
  for (const [i, raw] of text.split(",").entries()) {
    const entry = raw.trim();
    if (entry === "") continue;
    const at = entry.indexOf("=");
    if (at < 0) throw new Error(`entry ${i + 1} ("${entry}") is not host=token`);
    const host = entry.slice(0, at).trim();
    const token = entry.slice(at + 1).trim();
    const name = hostNameOf(host);
    if (name === undefined || /:\d*$/.test(host)) throw new Error(`entry ${i + 1}: "${host}" is not a host name (no port, no path)`);
    if (token === "") throw new Error(`entry ${i + 1}: the token of ${name} is empty`);
    if (Object.hasOwn(tokens, name)) throw new Error(`entry ${i + 1}: ${name} is given twice`);
    if (seen.has(token)) throw new Error(`entry ${i + 1}: the token of ${name} is another host's too; every instance needs its own`);
    tokens[name] = token;
    seen.add(token);
  }
  return tokens;
}
