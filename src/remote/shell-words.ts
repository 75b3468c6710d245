/** Quoting for bash command lines, and SSH addresses: shared by every session and backend. */

/** Single-quote for bash. */
export const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Quote a path but leave `*` unquoted so it globs (spread's artifacts rule). */
export const globQuote = (s: string): string => s.split('*').map((p) => (p ? shellQuote(p) : '')).join('*') || "''";

/** `host:port`, `host` (port 22) or `[v6addr]:port`. */
export function parseAddress(address: string): { host: string; port: number } {
  const m = /^\[(.+)\](?::(\d+))?$/.exec(address) ?? /^([^:]+)(?::(\d+))?$/.exec(address);
  return m ? { host: m[1]!, port: m[2] ? Number(m[2]) : 22 } : { host: address, port: 22 };
}
