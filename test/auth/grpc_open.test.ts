/**
 * What stays open (SPEC §8): health and reflection answer without a token, so that probes and
 * `grpcurl list/describe` work on a server that requires credentials for everything else; under
 * mTLS the handshake still needs a client certificate, but not one that names a principal.
 * Driven with the real grpcurl binary, as an operator would.
 */
import { status } from "@grpc/grpc-js";
import { expect } from "chai";
import { HealthClient } from "../../src/gen/grpc/health/v1/health.js";
import { channelCredentials, startCouncil, type Running } from "../support/server.js";
import { grpcurlPath, run } from "../support/tools.js";
import { authFileIn, makePki, writeAuthFile, type Pki } from "./grpc_helpers.js";
import { tempDir } from "./helpers.js";

describe("health and reflection stay open", function () {
  this.timeout(60_000);
  let dir: string;
  let remove: () => Promise<void>;
  let pki: Pki;
  let grpcurl: string;
  const running: Running[] = [];

  before(async () => {
    grpcurl = grpcurlPath();
    ({ dir, remove } = await tempDir());
    pki = await makePki(dir);
    await writeAuthFile(authFileIn(dir), [{ name: "deploy-agent", roles: ["agent"], tokens: ["council_agent"] }]);
  });
  after(async () => {
    for (const c of running) await c.stop();
    await remove();
  });

  const g = (...args: string[]) => run(grpcurl, args, { timeoutMs: 20_000, cwd: dir });

  it("over TLS with an auth file: list, describe and health work without a token; CouncilService does not", async () => {
    const c = await startCouncil({ tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile }, authFile: authFileIn(dir) });
    running.push(c);
    const tls = ["-cacert", "ca.crt"];
    const list = await g(...tls, c.addr, "list");
    expect(list.code, list.stderr).to.equal(0);
    expect(list.stdout).to.include("council.v1.CouncilService");
    const describe = await g(...tls, c.addr, "describe", "council.v1.CouncilService");
    expect(describe.code, describe.stderr).to.equal(0);
    expect(describe.stdout).to.include("rpc ReviewSuggestion");
    const health = await g(...tls, c.addr, "grpc.health.v1.Health/Check");
    expect(health.code, health.stderr).to.equal(0);
    expect(health.stdout).to.include("SERVING");

    const refused = await g(...tls, c.addr, "council.v1.CouncilService/GetSummary");
    expect(refused.code).to.not.equal(0);
    expect(refused.stderr).to.include("Code: Unauthenticated").and.include("Message: missing or invalid credentials");
    const allowed = await g(...tls, "-H", "authorization: Bearer council_agent", c.addr, "council.v1.CouncilService/GetSummary");
    expect(allowed.code, allowed.stderr).to.equal(0);
    // Plaintext does not even reach reflection (grpcurl retries until its connect timeout: a short one).
    const plaintext = await g("-plaintext", "-connect-timeout", "2", c.addr, "list");
    expect(plaintext.code).to.not.equal(0);
  });

  it("under mTLS: any certificate from the CA reaches health and reflection; none reaches nothing", async () => {
    const c = await startCouncil({
      tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, clientCaFile: pki.ca.certFile },
      authFile: authFileIn(dir),
    });
    running.push(c);
    // This certificate names no principal in the auth file.
    await pki.client("probe", "kubelet-probe");
    const mtls = ["-cacert", "ca.crt", "-cert", "probe.crt", "-key", "probe.key"];
    const list = await g(...mtls, c.addr, "list");
    expect(list.code, list.stderr).to.equal(0);
    expect(list.stdout).to.include("grpc.health.v1.Health");
    const health = await g(...mtls, c.addr, "grpc.health.v1.Health/Check");
    expect(health.stdout).to.include("SERVING");
    const refused = await g(...mtls, c.addr, "council.v1.CouncilService/ListReviewers");
    expect(refused.stderr).to.include("Code: Unauthenticated");

    const noCert = await g("-cacert", "ca.crt", "-connect-timeout", "2", c.addr, "list");
    expect(noCert.code).to.not.equal(0);
    const health2 = new HealthClient(c.addr, channelCredentials({ ca: pki.ca.cert }));
    const code = await new Promise<number>((resolve) =>
      health2.check({ service: "" }, { deadline: Date.now() + 10_000 } as never, (e) => resolve(e ? e.code : status.OK)),
    );
    health2.close();
    expect(code).to.equal(status.UNAVAILABLE);
  });
});
