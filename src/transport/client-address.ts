import { BlockList, isIP } from "node:net";

/**
 * The network address a call comes from, as the authentication throttle counts it: the TCP peer,
 * or, when the peer is one of the configured trusted proxies, the address that proxy reports in
 * its forwarded-for header (the right-most one that is not itself a trusted proxy). IPv6
 * addresses count by their /64 prefix: one host is usually given a whole /64, so counting
 * single IPv6 addresses would let one host appear as billions of sources.
 */
export class ClientAddresses {
  private readonly trusted = new BlockList();
  private readonly anyTrusted: boolean;

  /**
   * `trustedProxies`: addresses or CIDR ranges (`10.0.0.0/8`, `fd00::/8`); `header`: the
   * (lower-case) name of their forwarded-for header.
   */
  constructor(
    trustedProxies: readonly string[],
    readonly header = "x-forwarded-for",
  ) {
    for (const entry of trustedProxies) addRange(this.trusted, entry);
    this.anyTrusted = trustedProxies.length > 0;
  }

  /** The caller's address; `forwardedFor` is the value of the forwarded-for header, if any. */
  resolve(peer: string | undefined, forwardedFor: string | undefined): string {
    const direct = plainAddress(peer);
    if (direct === undefined) return "unknown";
    if (!this.anyTrusted || forwardedFor === undefined || !this.isTrusted(direct)) return countedAs(direct);
    const hops = forwardedFor
      .split(",")
      .map((h) => plainAddress(h.trim()))
      .filter((h): h is string => h !== undefined);
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i] as string;
      if (!this.isTrusted(hop)) return countedAs(hop);
    }
    return countedAs(hops[0] ?? direct);
  }

  private isTrusted(address: string): boolean {
    return this.trusted.check(address, isIP(address) === 6 ? "ipv6" : "ipv4");
  }
}

/** An address without port, brackets or IPv4-mapped prefix; undefined when it is not an IP address. */
function plainAddress(text: string | undefined): string | undefined {
  if (!text) return undefined;
  let address = text;
  if (isIP(address) === 0) {
    // "[::1]:443", "127.0.0.1:5000", "::1:5000" (grpc-js getPeer writes IPv6 without brackets)
    const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
    address = bracketed?.[1] ?? address.replace(/:\d+$/, "");
  }
  if (isIP(address) === 0) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped?.[1] ?? address.toLowerCase();
}

function countedAs(address: string): string {
  if (isIP(address) !== 6) return address;
  const groups = expandIpv6(address);
  return `${groups.slice(0, 4).join(":")}::/64`;
}

function expandIpv6(address: string): string[] {
  const [head = "", tail] = address.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const missing = 8 - left.length - right.length;
  return [...left, ...Array<string>(Math.max(0, missing)).fill("0"), ...right].map((g) => g.replace(/^0+(?=.)/, ""));
}

function addRange(list: BlockList, entry: string): void {
  const [address = "", prefix] = entry.trim().split("/");
  const type = isIP(address) === 6 ? "ipv6" : "ipv4";
  if (isIP(address) === 0) throw new Error(`not an IP address or CIDR range: ${entry}`);
  if (prefix === undefined) list.addAddress(address, type);
  else list.addSubnet(address, Number(prefix), type);
}
