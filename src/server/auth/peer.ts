/**
 * What a gRPC call tells about its caller: the `authorization` header and, under mTLS, the client
 * certificate that the TLS handshake verified. The call wrappers pass `credentialsOf(call)` to
 * `Authenticator.authenticate`.
 */
import type { Metadata } from "@grpc/grpc-js";
import type { PeerCertificate } from "node:tls";

/** The identities a client certificate carries that an auth file can name. */
export interface Peer {
  /** The subject's common name; absent when there is none or more than one. */
  commonName?: string;
  /** Every `URI:` subject alternative name (e.g. a SPIFFE id), in certificate order. */
  uriSans: string[];
}

/** What the Authenticator reads from a call. */
export interface Credentials {
  /** The `authorization` header's values; more than one is refused as ambiguous. */
  authorization?: string | readonly string[];
  peer?: Peer;
}

/** The shape of grpc-js's AuthContext (which its index does not export). */
export interface AuthContextLike {
  transportSecurityType?: string;
  sslPeerCertificate?: PeerCertificate;
}

/**
 * Splits node's `subjectaltname` string (`DNS:a, URI:spiffe://x, IP Address:1.2.3.4`). Since the
 * fix for CVE-2021-44532 node writes a name that contains a comma or a quote as a JSON string
 * (`URI:"spiffe://a,b"`), so a plain split on ", " could be fooled by a certificate whose name
 * embeds ", URI:…"; this follows node's own `splitEscapedAltNames` instead.
 */
export function splitAltNames(altNames: string): string[] {
  if (!altNames.includes('"')) return altNames.split(", ");
  const quoted = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/;
  const names: string[] = [];
  let current = "";
  let offset = 0;
  while (offset < altNames.length) {
    const comma = altNames.indexOf(",", offset);
    const quote = altNames.indexOf('"', offset);
    if (quote !== -1 && (comma === -1 || quote < comma)) {
      current += altNames.slice(offset, quote);
      const match = quoted.exec(altNames.slice(quote));
      // A malformed string is not something to guess about: it yields no names at all.
      if (!match) return [];
      current += JSON.parse(match[0]) as string;
      offset = quote + match[0].length;
    } else if (comma !== -1) {
      current += altNames.slice(offset, comma);
      names.push(current);
      current = "";
      offset = comma + 2;
    } else {
      current += altNames.slice(offset);
      offset = altNames.length;
    }
  }
  names.push(current);
  return names;
}

/** The identities of a node PeerCertificate, or undefined when the peer sent no certificate. */
export function peerFromCertificate(cert: PeerCertificate | undefined): Peer | undefined {
  // Without a client certificate node returns an empty object; grpc-js passes undefined.
  if (!cert || !cert.raw) return undefined;
  // A subject with several CNs gives an array; which one names the caller would be a guess.
  const cn: unknown = cert.subject?.CN;
  const peer: Peer = { uriSans: [] };
  if (typeof cn === "string" && cn !== "") peer.commonName = cn;
  if (cert.subjectaltname) {
    for (const name of splitAltNames(cert.subjectaltname)) {
      if (name.startsWith("URI:")) peer.uriSans.push(name.slice(4));
    }
  }
  return peer;
}

/** The client certificate's identities from a call's auth context (grpc-js `call.getAuthContext()`). */
export function peerFromAuthContext(ctx: AuthContextLike | undefined): Peer | undefined {
  return peerFromCertificate(ctx?.sslPeerCertificate);
}

/** Everything the Authenticator needs from a grpc-js server call. */
export function credentialsOf(call: { metadata: Metadata; getAuthContext(): AuthContextLike }): Credentials {
  const authorization = call.metadata.get("authorization").map((v) => (typeof v === "string" ? v : v.toString("utf8")));
  const credentials: Credentials = {};
  if (authorization.length > 0) credentials.authorization = authorization;
  const peer = peerFromAuthContext(call.getAuthContext());
  if (peer) credentials.peer = peer;
  return credentials;
}
