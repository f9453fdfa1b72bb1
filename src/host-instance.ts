import { Code, ConnectError } from "@connectrpc/connect";
import { defaultInstanceId, validateInstanceId } from "./store/action-store.js";

/**
 * RequestAddress is what a host-based instance resolver reads of a request:
 * its URL (with the authority it was sent to) and its headers. Connect's
 * UnaryRequest and StreamRequest have both, so a resolver fits the actions
 * interceptor's resolveInstance and the management API's authorizers alike.
 */
export interface RequestAddress {
  /** The request's URL, for example "http://a.example.com:8080/pkg.Service/Method". */
  readonly url: string;
  /** The request's headers. */
  readonly header: Headers;
}

/**
 * HostInstanceResolverOptions configures createHostInstanceResolver.
 */
export interface HostInstanceResolverOptions {
  /**
   * The instance of each host name: host name (case-insensitive, without the
   * port) -> instance ID, for example `{ "a.example.com": "a" }`.
   */
  readonly hosts: Readonly<Record<string, string>> | ReadonlyMap<string, string>;
  /**
   * The instance of any other host, default "" (defaultInstanceId). `null`
   * refuses other hosts with Code.NotFound, as ZITADEL answers a domain that
   * belongs to no instance.
   */
  readonly fallback?: string | null;
  /**
   * A header that names the host instead of the request's authority, for
   * example "x-zitadel-instance-host" behind a proxy that sets it (ZITADEL's
   * instance host header); when a request lacks it, the authority counts.
   * Default none: only the authority counts (the Host header over HTTP/1.1,
   * `:authority` over HTTP/2). Set it only when every request passes a proxy
   * that overwrites the header, or clients choose their instance with it.
   */
  readonly header?: string;
}

/**
 * hostNameOf returns the host name of a "host[:port]" authority in lower
 * case, without the port, brackets kept for IPv6 and without a trailing dot,
 * or undefined when it is not a valid authority.
 */
export function hostNameOf(authority: string): string | undefined {
  return parseAuthority(authority)?.host;
}

/** parseAuthority splits a "host[:port]" authority into its normalized host name (see hostNameOf) and port. */
function parseAuthority(authority: string): { host: string; port: string } | undefined {
  const value = authority.trim();
  if (value === "" || /[\s/?#@\\]/.test(value)) return undefined;
  let url: URL;
  try {
    url = new URL(`http://${value}`);
  } catch {
    return undefined;
  }
  const host = url.hostname.replace(/\.$/, "");
  return host === "" ? undefined : { host, port: url.port };
}

/**
 * createHostInstanceResolver returns a function that finds the instance
 * (tenant) of a request from the host it was sent to, as ZITADEL finds the
 * instance from the request's domain: the host name of `header` when set and
 * present, else of the request's authority, looked up in `hosts`; other hosts
 * get the fallback instance. Use it as the resolveInstance of
 * createActionsInterceptor or createActions, and for the management API's
 * authorizers (createStaticTokenAuthorizer).
 *
 * Throws a ConnectError with Code.InvalidArgument for an invalid host name or
 * instance ID in the options; the returned function throws Code.NotFound for
 * an unknown host when `fallback` is null.
 */
export function createHostInstanceResolver(options: HostInstanceResolverOptions): (req: RequestAddress) => string {
  const hosts = new Map<string, string>();
  const entries = options.hosts instanceof Map ? [...options.hosts] : Object.entries(options.hosts);
  for (const [host, instanceId] of entries) {
    const parsed = parseAuthority(host);
    if (parsed === undefined || parsed.port !== "" || /:\d*$/.test(host.trim())) {
      throw new ConnectError(`hosts: "${host}" is not a host name (no port, no path)`, Code.InvalidArgument);
    }
    if (hosts.has(parsed.host)) {
      throw new ConnectError(`hosts: "${host}" is given twice`, Code.InvalidArgument);
    }
    hosts.set(parsed.host, validateInstanceId(instanceId));
  }
  const fallback = options.fallback === null ? null : validateInstanceId(options.fallback ?? defaultInstanceId);
  const header = options.header?.toLowerCase();
  return (req) => {
    const named = header === undefined ? null : req.header.get(header);
    let host: string | undefined;
    if (named !== null && named !== "") {
      host = hostNameOf(named);
    } else {
      try {
        host = new URL(req.url).hostname.replace(/\.$/, "") || undefined;
      } catch {
        host = undefined;
      }
    }
    const instanceId = host === undefined ? undefined : hosts.get(host);
    if (instanceId !== undefined) return instanceId;
    if (fallback === null) {
      throw new ConnectError(`no instance serves the host "${host ?? ""}"`, Code.NotFound);
    }
    return fallback;
  };
}
