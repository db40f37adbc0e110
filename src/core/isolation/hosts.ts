/**
 * Host names and allowlist patterns, as `sandbox.toml`'s reader checks them and the egress proxy enforces them:
 * one definition, so a pattern the config accepts is one the proxy takes. Only node: built-ins, since the
 * proxy's bundle runs on a bare Node image.
 */
import { isIP } from 'node:net';

const LABEL = /^[a-z0-9_-]{1,63}$/;

/** Lower case and no trailing dot: the form names are compared in. */
export function normalizeHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

/** Dot-separated labels of letters, digits, `-` and `_`, in the normalized form. */
export function isHostName(name: string): boolean {
  return name.length <= 253 && name.split('.').every((label) => LABEL.test(label));
}

/** True for a host that is an IP address in any form, including those a resolver reads as one. */
export function isIpLiteral(host: string): boolean {
  const h = host.replace(/\.$/, '');
  if (h.startsWith('[') || h.includes(':') || isIP(h)) return true;
  // inet_aton and the URL standard take a name whose last label is a number as IPv4, whatever comes before
  // it: 2130706433, 0x7f000001, 0177.0.0.1 and 127.1 all mean 127.0.0.1. No real host name ends so.
  return /^(0x[0-9a-f]*|[0-9]+)$/i.test(h.slice(h.lastIndexOf('.') + 1));
}

/**
 * Why a pattern cannot be on an allowlist, or undefined if it can: a host name (that name only), or `*.` and one
 * (any name under it); no addresses, ports, paths or other wildcards.
 */
export function hostPatternProblem(pattern: string): string | undefined {
  const name = normalizeHost(pattern.startsWith('*.') ? pattern.slice(2) : pattern);
  if (name === '') return 'it is empty';
  if (name.includes('*')) return 'a wildcard may only stand first, as in "*.example.org"';
  if (isIP(name.replace(/^\[(.*)\]$/, '$1')) || (isHostName(name) && isIpLiteral(name))) return 'it is an IP address: only host names can be allowed';
  if (!isHostName(name)) return 'expected a host name such as "api.example.com" (no scheme, port or path)';
  return undefined;
}
