import { expect } from "chai";
import { generateKeyPairSync } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { exportJWK, generateKeyPair, generateSecret } from "jose";
import {
  ASYMMETRIC_ALGORITHMS,
  AuthFileError,
  loadAuthFile,
  parseAuthDocument,
  parseAuthText,
  parseJwks,
} from "../../src/server/auth/auth_file.js";
import { tokenHash } from "../../src/server/auth/tokens.js";
import { rejection, tempDir } from "./helpers.js";

const H1 = tokenHash("one");
const H2 = tokenHash("two");

const problem = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    expect(err).to.be.instanceOf(AuthFileError);
    return (err as Error).message;
  }
  throw new Error("expected an AuthFileError");
};

const jwt = { jwks_file: "jwks.json", issuer: "https://issuer.example", audience: "council" };

describe("auth file: parsing", () => {
  it("reads the SPEC's example, filling the JWT defaults", () => {
    const s = parseAuthText(
      `
principals:
  - name: deploy-agent
    roles: [agent]
    tokens: ["${H1}", "${H2}"]
  - name: alice
    roles: [approver]
  - name: ci-bot
    roles: [agent]
    certificate: { common_name: ci-bot }
  - name: mesh
    roles: [reviewer, operator]
    certificate: { uri_san: "spiffe://example.org/ns/ci/sa/reviewer" }
jwt:
  jwks_file: keys/jwks.json
  issuer: https://issuer.example
  audience: council
`,
      "/etc/council",
    );
    expect(s.principals.map((p) => p.name)).to.deep.equal(["deploy-agent", "alice", "ci-bot", "mesh"]);
    expect(s.principals[0]!.tokens.map((t) => t.toString("hex"))).to.deep.equal([H1.slice(7), H2.slice(7)]);
    expect(s.principals[1]!.tokens).to.deep.equal([]);
    expect(s.principals[2]!.certificate).to.deep.equal({ kind: "common_name", value: "ci-bot" });
    expect(s.principals[3]!.certificate).to.deep.equal({ kind: "uri_san", value: "spiffe://example.org/ns/ci/sa/reviewer" });
    expect(s.jwt).to.deep.include({
      jwksFile: "/etc/council/keys/jwks.json",
      issuer: "https://issuer.example",
      audience: ["council"],
      nameClaim: "sub",
      rolesClaim: "council_roles",
    });
    expect(s.jwt!.algorithms).to.deep.equal([...ASYMMETRIC_ALGORITHMS]);
  });

  it("reads JSON too, and upper-case hex in a hash", () => {
    const s = parseAuthText(JSON.stringify({ principals: [{ name: "a", roles: ["agent"], tokens: [H1.toUpperCase().replace("SHA256", "sha256")] }] }), "/");
    expect(s.principals[0]!.tokens[0]!.toString("hex")).to.equal(H1.slice(7));
  });

  it("accepts a principal with no credential: emptying tokens is how a token is revoked", () => {
    const s = parseAuthDocument({ principals: [{ name: "a", roles: ["agent"], tokens: [] }] }, "/");
    expect(s.principals[0]!.tokens).to.deep.equal([]);
  });

  it("accepts a JWT-only file, a list of audiences and a narrower list of algorithms", () => {
    const s = parseAuthDocument({ jwt: { ...jwt, audience: ["council", "council-staging"], algorithms: ["ES256", "EdDSA"] } }, "/x");
    expect(s.principals).to.deep.equal([]);
    expect(s.jwt!.audience).to.deep.equal(["council", "council-staging"]);
    expect(s.jwt!.algorithms).to.deep.equal(["ES256", "EdDSA"]);
  });

  const p = (extra: object) => ({ principals: [{ name: "a", roles: ["agent"], ...extra }] });
  const broken: [string, unknown, string][] = [
    ["not an object", "hello", "auth file: must be an object"],
    ["nothing in it", {}, "auth file: must name at least one principal, or configure jwt"],
    ["unknown top-level key", { principals: [], users: [] }, "users: unknown field (expected one of: principals, jwt)"],
    ["principals not a list", { principals: { a: 1 } }, "principals: must be a list"],
    ["unknown principal key", p({ token: [H1] }), "principals[0].token: unknown field"],
    ["no name", { principals: [{ roles: ["agent"] }] }, "principals[0].name: is required"],
    ["blank name", { principals: [{ name: " ", roles: ["agent"] }] }, "principals[0].name: must not be empty"],
    ["reserved name", { principals: [{ name: "anonymous", roles: ["agent"] }] }, 'principals[0].name: "anonymous" is reserved'],
    ["control character in a name", { principals: [{ name: "a\u0007b", roles: ["agent"] }] }, "principals[0].name: must not contain control"],
    ["no roles", { principals: [{ name: "a" }] }, "principals[0].roles: is required"],
    ["empty roles", { principals: [{ name: "a", roles: [] }] }, "principals[0].roles: must name at least one role"],
    ["unknown role", { principals: [{ name: "a", roles: ["agent", "admin"] }] }, 'principals[0].roles[1]: "admin" is not one of agent, operator, approver, reviewer'],
    ["role twice", { principals: [{ name: "a", roles: ["agent", "agent"] }] }, "principals[0].roles[1]: agent appears twice"],
    ["a token instead of its hash", p({ tokens: ["council_abc"] }), 'principals[0].tokens[0]: must be "sha256:" followed by the 64 hex digits'],
    ["a short hash", p({ tokens: ["sha256:abcd"] }), "principals[0].tokens[0]: must be"],
    ["another hash function", p({ tokens: [`sha512:${"0".repeat(64)}`] }), "principals[0].tokens[0]: must be"],
    ["tokens not a list", p({ tokens: H1 }), "principals[0].tokens: must be a list"],
    ["empty certificate", p({ certificate: {} }), "principals[0].certificate: must give exactly one of common_name, uri_san"],
    ["both certificate names", p({ certificate: { common_name: "a", uri_san: "spiffe://a" } }), "principals[0].certificate: must give exactly one"],
    ["unknown certificate key", p({ certificate: { cn: "a" } }), "principals[0].certificate.cn: unknown field"],
    ["blank common name", p({ certificate: { common_name: "" } }), "principals[0].certificate.common_name: must not be empty"],
    [
      "duplicate name",
      { principals: [{ name: "a", roles: ["agent"] }, { name: "b", roles: ["agent"] }, { name: "a", roles: ["operator"] }] },
      'principals[2].name: "a" appears twice (also principals[0])',
    ],
    [
      "one token hash for two principals",
      { principals: [{ name: "a", roles: ["agent"], tokens: [H1] }, { name: "b", roles: ["agent"], tokens: [H2, H1] }] },
      "principals[1].tokens[1]: the same hash as principals[0].tokens[0]: a token must name one principal",
    ],
    ["one token hash twice in a principal", p({ tokens: [H1, H1] }), "principals[0].tokens[1]: the same hash as principals[0].tokens[0]"],
    [
      "one certificate for two principals",
      { principals: [{ name: "a", roles: ["agent"], certificate: { uri_san: "spiffe://x" } }, { name: "b", roles: ["agent"], certificate: { uri_san: "spiffe://x" } }] },
      'principals[1].certificate.uri_san: "spiffe://x" is already the certificate of principals[0]',
    ],
    ["unknown jwt key", { jwt: { ...jwt, leeway: 5 } }, "jwt.leeway: unknown field"],
    ["no key set", { jwt: { issuer: "i", audience: "a" } }, "jwt: must give exactly one of jwks_file, jwks_url"],
    ["two key sets", { jwt: { ...jwt, jwks_url: "https://issuer.example/jwks" } }, "jwt: must give exactly one of jwks_file, jwks_url"],
    ["no issuer", { jwt: { jwks_file: "j", audience: "a" } }, "jwt.issuer: is required"],
    ["no audience", { jwt: { jwks_file: "j", issuer: "i" } }, "jwt.audience: is required"],
    ["empty audience list", { jwt: { ...jwt, audience: [] } }, "jwt.audience: must name at least one audience"],
    ["a relative URL", { jwt: { ...jwt, jwks_file: undefined, jwks_url: "/jwks.json" } }, "jwt.jwks_url: must be an absolute URL"],
    ["a key set over http", { jwt: { ...jwt, jwks_file: undefined, jwks_url: "http://issuer.example/jwks" } }, "jwt.jwks_url: must be https"],
    ["alg none", { jwt: { ...jwt, algorithms: ["RS256", "none"] } }, "jwt.algorithms[1]: none is never accepted"],
    ["an HMAC algorithm", { jwt: { ...jwt, algorithms: ["HS256"] } }, "jwt.algorithms[0]: HS256 is a shared-secret algorithm and is never accepted"],
    ["an unknown algorithm", { jwt: { ...jwt, algorithms: ["RS1"] } }, 'jwt.algorithms[0]: "RS1" is not one of RS256'],
    ["no algorithms", { jwt: { ...jwt, algorithms: [] } }, "jwt.algorithms: must name at least one algorithm"],
  ];
  for (const [what, doc, expected] of broken) {
    it(`refuses ${what}, naming where`, () => {
      expect(problem(() => parseAuthDocument(JSON.parse(JSON.stringify(doc)) as unknown, "/"))).to.contain(expected);
    });
  }

  it("accepts http for a key set on this machine only", () => {
    for (const url of ["http://127.0.0.1:8080/jwks", "http://localhost/jwks", "http://[::1]:1/jwks", "https://issuer.example/jwks"]) {
      expect(parseAuthDocument({ jwt: { ...jwt, jwks_file: undefined, jwks_url: url } }, "/").jwt!.jwksUrl!.href).to.equal(new URL(url).href);
    }
  });

  it("refuses text that is neither JSON nor YAML, and a key given twice", () => {
    expect(problem(() => parseAuthText("principals: [", "/"))).to.match(/^not valid JSON or YAML/);
    expect(problem(() => parseAuthText("principals: []\nprincipals: []\n", "/"))).to.match(/^not valid JSON or YAML/);
  });
});

describe("auth file: key sets", () => {
  it("accepts public RSA, EC and OKP keys", async () => {
    const keys = await Promise.all(
      (["RS256", "ES256", "EdDSA"] as const).map(async (alg) => ({ ...(await exportJWK((await generateKeyPair(alg)).publicKey)), kid: alg })),
    );
    expect(parseJwks(JSON.stringify({ keys })).keys).to.have.length(3);
  });

  it("refuses private, symmetric, short and broken keys, and an empty set, naming the key", async () => {
    const pair = await generateKeyPair("ES256", { extractable: true });
    const priv = await exportJWK(pair.privateKey);
    const secret = await exportJWK(await generateSecret("HS256", { extractable: true }));
    const shortRsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ format: "jwk" });
    const pub = await exportJWK(pair.publicKey);
    expect(problem(() => parseJwks("{"))).to.match(/^not valid JSON/);
    expect(problem(() => parseJwks(JSON.stringify({ keys: [] })))).to.contain("keys: must hold at least one key");
    expect(problem(() => parseJwks(JSON.stringify({ keys: [pub, priv] })))).to.contain('keys[1]: holds a private key ("d")');
    expect(problem(() => parseJwks(JSON.stringify({ keys: [secret] })))).to.contain('keys[0].kty: "oct" is not a public-key type');
    expect(problem(() => parseJwks(JSON.stringify({ keys: [{ ...pub, x: "AAAA" }] })))).to.contain("keys[0]: is not a usable public key");
    expect(problem(() => parseJwks(JSON.stringify({ keys: [shortRsa] })))).to.contain("keys[0]: is an RSA key of 1024 bits");
  });

  it("loads an auth file and its key set from disk, naming the file in every problem", async () => {
    const { dir, remove } = await tempDir();
    try {
      const pub = await exportJWK((await generateKeyPair("ES256")).publicKey);
      const file = join(dir, "auth.yaml");
      await writeFile(file, `jwt: { jwks_file: jwks.json, issuer: i, audience: a }\n`);
      await writeFile(join(dir, "jwks.json"), JSON.stringify({ keys: [pub] }));
      const loaded = await loadAuthFile(file);
      expect(loaded.jwks!.keys).to.have.length(1);
      expect(loaded.digest).to.match(/^[0-9a-f]{64}$/);

      await writeFile(join(dir, "jwks.json"), JSON.stringify({ keys: [] }));
      const err1 = await rejection(loadAuthFile(file));
      expect(err1).to.be.instanceOf(AuthFileError);
      expect(err1.message).to.equal(`auth file ${file}: jwt.jwks_file ${join(dir, "jwks.json")}: keys: must hold at least one key`);

      await writeFile(file, `principals: [{ name: a, roles: [] }]\n`);
      const err2 = await rejection(loadAuthFile(file));
      expect(err2.message).to.equal(`auth file ${file}: principals[0].roles: must name at least one role (agent, operator, approver, reviewer)`);

      const err3 = await rejection(loadAuthFile(join(dir, "missing.yaml")));
      expect(err3).to.be.instanceOf(AuthFileError);
      expect(err3.message).to.equal(`auth file ${join(dir, "missing.yaml")} cannot be read: ENOENT`);
    } finally {
      await remove();
    }
  });
});
