import { expect } from "chai";
import { once } from "node:events";
import { connect, createServer, type PeerCertificate, type TLSSocket } from "node:tls";
import type { AddressInfo } from "node:net";
import { Metadata } from "@grpc/grpc-js";
import { credentialsOf, peerFromAuthContext, peerFromCertificate, splitAltNames } from "../../src/server/auth/peer.js";
import { makeCa, makeCert, type Pem } from "./certs.js";
import { tempDir } from "./helpers.js";

/** The client certificate exactly as a TLS server sees it after a real mTLS handshake. */
async function seenByServer(ca: Pem, server: Pem, client: Pem): Promise<PeerCertificate> {
  const tls = createServer({ key: server.key, cert: server.cert, ca: ca.cert, requestCert: true, rejectUnauthorized: true });
  const seen = new Promise<PeerCertificate>((resolve) => {
    tls.once("secureConnection", (socket: TLSSocket) => {
      resolve(socket.getPeerCertificate());
      socket.end();
    });
  });
  tls.listen(0, "127.0.0.1");
  await once(tls, "listening");
  const socket = connect({ port: (tls.address() as AddressInfo).port, host: "127.0.0.1", ca: ca.cert, key: client.key, cert: client.cert, servername: "localhost" });
  socket.on("error", () => undefined);
  try {
    return await seen;
  } finally {
    socket.destroy();
    await new Promise((resolve) => tls.close(resolve));
  }
}

describe("peer identities from client certificates", () => {
  let dir: string;
  let remove: () => Promise<void>;
  let ca: Pem;
  let server: Pem;

  before(async () => {
    ({ dir, remove } = await tempDir());
    ca = await makeCa(dir);
    server = await makeCert(dir, "server", ca, { subject: "/CN=localhost", altNames: ["DNS.1 = localhost"] });
  });

  after(async () => {
    await remove();
  });

  it("reads the common name and the URI SANs (not DNS or other names) of a real handshake's certificate", async () => {
    const client = await makeCert(dir, "client", ca, {
      subject: "/O=Example/CN=ci-bot",
      usage: "clientAuth",
      altNames: ["URI.1 = spiffe://example.org/ns/ci/sa/reviewer", "DNS.1 = client.example", "URI.2 = https://ci.example/bot", "email.1 = bot@example.org"],
    });
    const cert = await seenByServer(ca, server, client);
    expect(peerFromCertificate(cert)).to.deep.equal({ commonName: "ci-bot", uriSans: ["spiffe://example.org/ns/ci/sa/reviewer", "https://ci.example/bot"] });
    expect(peerFromAuthContext({ transportSecurityType: "ssl", sslPeerCertificate: cert })).to.deep.equal(peerFromCertificate(cert));
  });

  it("is not fooled by a URI SAN that embeds ', URI:' (node quotes it)", async () => {
    const client = await makeCert(dir, "sneaky", ca, {
      subject: "/CN=sneaky",
      usage: "clientAuth",
      altNames: ["URI.1 = spiffe://example.org/a, URI:spiffe://example.org/ns/ci/sa/reviewer"],
    });
    const cert = await seenByServer(ca, server, client);
    expect(cert.subjectaltname).to.contain('"');
    expect(peerFromCertificate(cert)!.uriSans).to.deep.equal(["spiffe://example.org/a, URI:spiffe://example.org/ns/ci/sa/reviewer"]);
  });

  it("gives no common name for a subject without one, or with two", async () => {
    const none = await makeCert(dir, "nocn", ca, { subject: "/O=Example", usage: "clientAuth", altNames: ["URI.1 = spiffe://x/y"] });
    expect(peerFromCertificate(await seenByServer(ca, server, none))).to.deep.equal({ uriSans: ["spiffe://x/y"] });
    const two = await makeCert(dir, "twocn", ca, { subject: "/CN=alice/CN=bob", usage: "clientAuth" });
    const cert = await seenByServer(ca, server, two);
    expect(cert.subject.CN).to.deep.equal(["alice", "bob"]);
    expect(peerFromCertificate(cert)).to.deep.equal({ uriSans: [] });
  });

  it("gives no peer when there is no certificate", () => {
    expect(peerFromAuthContext({})).to.equal(undefined);
    expect(peerFromAuthContext(undefined)).to.equal(undefined);
    expect(peerFromCertificate({} as PeerCertificate)).to.equal(undefined);
  });

  it("splits alternative names as node writes them", () => {
    expect(splitAltNames("DNS:a, URI:spiffe://x/y, IP Address:127.0.0.1")).to.deep.equal(["DNS:a", "URI:spiffe://x/y", "IP Address:127.0.0.1"]);
    expect(splitAltNames('URI:"a\\u002c URI:b", DNS:c')).to.deep.equal(["URI:a, URI:b", "DNS:c"]);
    expect(splitAltNames('URI:"unterminated')).to.deep.equal([]);
  });

  it("collects a call's authorization header values and its certificate", async () => {
    const client = await makeCert(dir, "call", ca, { subject: "/CN=caller", usage: "clientAuth" });
    const cert = await seenByServer(ca, server, client);
    const metadata = new Metadata();
    metadata.add("authorization", "Bearer abc");
    expect(credentialsOf({ metadata, getAuthContext: () => ({ sslPeerCertificate: cert }) })).to.deep.equal({
      authorization: ["Bearer abc"],
      peer: { commonName: "caller", uriSans: [] },
    });
    expect(credentialsOf({ metadata: new Metadata(), getAuthContext: () => ({}) })).to.deep.equal({});
  });
});
