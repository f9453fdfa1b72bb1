import dns from "node:dns";
import net from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * EndpointGuardOptions configures createEndpointGuard.
 */
export interface EndpointGuardOptions {
  /**
   * Deny loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16, fe80::/10),
   * unspecified (0.0.0.0, ::) and cloud metadata addresses (169.254.169.254,
   * fd00:ec2::254, 100.100.100.200). Default true when NODE_ENV is "production".
   */
  readonly denyInternal?: boolean;
  /**
   * Also deny private networks: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16,
   * 100.64.0.0/10 and fc00::/7. Default false.
   */
  readonly denyPrivate?: boolean;
  /**
   * Always allowed: host names ("hooks.internal"), IP addresses or CIDR
   * ranges ("10.1.0.0/16"). Default none.
   */
  readonly allow?: readonly string[];
}

/**
 * EndpointGuard keeps target calls away from addresses they must not reach
 * (server-side request forgery): it checks endpoints when targets are saved
 * and every address a call actually connects to, after DNS resolution, so a
 * name that resolves to a denied address is caught too.
 */
export interface EndpointGuard {
  /** enabled is false when nothing is denied. */
  readonly enabled: boolean;
  /**
   * checkEndpoint throws a ConnectError with Code.InvalidArgument when the
   * endpoint's host is a denied IP address or "localhost". Names are checked
   * again when they are resolved.
   */
  checkEndpoint(endpoint: string): void;
  /** denied returns why an IP address is denied, or undefined when it is allowed (or not an IP address). */
  denied(address: string): string | undefined;
  /** lookup is a dns.lookup for net.connect that fails for denied addresses. */
  readonly lookup: net.LookupFunction;
}

const internal: [string, number, "ipv4" | "ipv6", string][] = [
  ["127.0.0.0", 8, "ipv4", "loopback"],
  ["0.0.0.0", 8, "ipv4", "unspecified"],
  ["169.254.0.0", 16, "ipv4", "link-local or cloud metadata"],
  ["100.100.100.200", 32, "ipv4", "cloud metadata"],
  ["::1", 128, "ipv6", "loopback"],
  ["::", 128, "ipv6", "unspecified"],
  ["fe80::", 10, "ipv6", "link-local"],
  ["fd00:ec2::254", 128, "ipv6", "cloud metadata"],
];
const privateRanges: [string, number, "ipv4" | "ipv6", string][] = [
  ["10.0.0.0", 8, "ipv4", "private"],
  ["172.16.0.0", 12, "ipv4", "private"],
  ["192.168.0.0", 16, "ipv4", "private"],
  ["100.64.0.0", 10, "ipv4", "shared address space"],
  ["fc00::", 7, "ipv6", "unique local"],
];

/**
 * createEndpointGuard returns an EndpointGuard. IPv4-mapped IPv6 addresses
 * (::ffff:127.0.0.1) are judged as the IPv4 address they carry.
 */
export function createEndpointGuard(options: EndpointGuardOptions = {}): EndpointGuard {
  const denyInternal = options.denyInternal ?? process.env.NODE_ENV === "production";
  const ranges = [...(denyInternal ? internal : []), ...(options.denyPrivate === true ? privateRanges : [])];
  const lists = ranges.map(([address, prefix, family, reason]) => {
    const list = new net.BlockList();
    list.addSubnet(address, prefix, family);
    return { list, reason };
  });
  const allowList = new net.BlockList();
  const allowedHosts = new Set<string>();
  for (const entry of options.allow ?? []) {
    const [address, prefix] = entry.split("/", 2) as [string, string | undefined];
    const family = net.isIP(address);
    if (family === 0) {
      if (prefix !== undefined) throw new ConnectError(`allow entry "${entry}" is not a valid CIDR range`, Code.InvalidArgument);
      allowedHosts.add(entry.toLowerCase());
      continue;
    }
    const bits = prefix === undefined ? (family === 4 ? 32 : 128) : Number(prefix);
    if (!Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128)) {
      throw new ConnectError(`allow entry "${entry}" has a bad prefix length`, Code.InvalidArgument);
    }
    allowList.addSubnet(address, bits, family === 4 ? "ipv4" : "ipv6");
  }
  const enabled = lists.length > 0;

  const denied = (raw: string): string | undefined => {
    if (!enabled) return undefined;
    let address = raw.startsWith("[") && raw.endsWith("]") ? raw.slice(1, -1) : raw;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) address = mapped[1]!;
    const version = net.isIP(address);
    if (version === 0) return undefined; // A name: judged by lookup once resolved.
    const family = version === 6 ? "ipv6" : "ipv4";
    if (allowList.check(address, family)) return undefined;
    for (const { list, reason } of lists) {
      if (list.check(address, family)) return `${address} is a ${reason} address`;
    }
    return undefined;
  };

  const lookup: net.LookupFunction = (hostname, lookupOptions, callback) => {
    dns.lookup(hostname, { ...lookupOptions, all: true }, (error, addresses) => {
      if (error) {
        callback(error, "", 4);
        return;
      }
      const allowedHost = allowedHosts.has(hostname.toLowerCase());
      const usable = allowedHost ? addresses : addresses.filter((a) => denied(a.address) === undefined);
      if (usable.length === 0) {
        const why = addresses.map((a) => denied(a.address)).join(", ");
        const e = Object.assign(new Error(`${hostname} resolves only to denied addresses: ${why}`), { code: "EDENIEDADDRESS" });
        callback(e, "", 4);
        return;
      }
      if (lookupOptions.all === true) {
        (callback as unknown as (err: null, addresses: dns.LookupAddress[]) => void)(null, usable);
      } else {
        callback(null, usable[0]!.address, usable[0]!.family);
      }
    });
  };

  return {
    enabled,
    denied,
    lookup,
    checkEndpoint(endpoint) {
      if (!enabled) return;
      let host: string;
      try {
        host = new URL(endpoint).hostname;
      } catch {
        return; // Malformed URLs are rejected by target validation.
      }
      if (allowedHosts.has(host.toLowerCase())) return;
      const bare = host.startsWith("[") ? host.slice(1, -1) : host;
      const why = net.isIP(bare) !== 0 ? denied(bare) : /^localhost\.?$|\.localhost\.?$/i.test(host) ? `${host} is a loopback name` : undefined;
      if (why !== undefined) {
        throw new ConnectError(`target endpoint is not allowed: ${why}`, Code.InvalidArgument);
      }
    },
  };
}
