/**
 * Request ids are scoped to their principal (SPEC §8): the decision id a request id maps to, and
 * the Redis keys of review and outcome requests. For `anonymous` they are exactly what they were
 * before principals existed (pinned below), so stored keyspaces keep working; for every other
 * principal they are unambiguous, whatever the name and the request id hold.
 */
import { expect } from "chai";
import { decisionIdForRequest } from "../../src/domain/identity.js";
import { ANONYMOUS, ANONYMOUS_NAME, mayRecordOutcome, outcomeScope, principal } from "../../src/domain/principal.js";
import { Keyspace } from "../../src/store/keys.js";

describe("request ids per principal", () => {
  it("anonymous keeps the decision id of the keyspaces written before principals", () => {
    // Computed with the code before principals: "dec-" + sha256("request:" + id), first 24 hex digits.
    expect(decisionIdForRequest(ANONYMOUS_NAME, "req-42")).to.equal("dec-c21ffd426eb02571978bab45");
    expect(decisionIdForRequest(ANONYMOUS_NAME, "")).to.equal("dec-14ddcd05edc1d133237ae9f5");
  });

  it("gives two principals two decision ids for one request id, and never anonymous's", () => {
    const ids = new Set([
      decisionIdForRequest(ANONYMOUS_NAME, "r1"),
      decisionIdForRequest("agent-a", "r1"),
      decisionIdForRequest("agent-b", "r1"),
      decisionIdForRequest("agent-a", "r2"),
    ]);
    expect(ids.size).to.equal(4);
    for (const id of ids) expect(id).to.match(/^dec-[0-9a-f]{24}$/);
    expect(decisionIdForRequest("agent-a", "r1")).to.equal(decisionIdForRequest("agent-a", "r1"));
  });

  it("cannot be fooled by moving a separator between the name and the request id", () => {
    const pairs: [string, string][] = [
      ["a:b", "c"],
      ["a", "b:c"],
      ['a","b', "c"],
      ["a", '","b"c'],
      ["a", 'b","c'],
      ["1:a", "b"],
      ["1", "a:b"],
    ];
    const ids = pairs.map(([p, r]) => decisionIdForRequest(p, r));
    expect(new Set(ids).size).to.equal(pairs.length);
    // An anonymous request id that spells another principal's hash input names another decision.
    expect(decisionIdForRequest(ANONYMOUS_NAME, 'principal-request:["a","b"]')).to.not.equal(decisionIdForRequest("a", "b"));
    const keys = new Keyspace("council:", 4);
    const requestKeys = pairs.map(([p, r]) => keys.request(0, p, r));
    expect(new Set(requestKeys).size).to.equal(pairs.length);
    const outcomeKeys = pairs.map(([p, r]) => keys.outcomeRequest(0, "dec-1", p, r));
    expect(new Set(outcomeKeys).size).to.equal(pairs.length);
  });

  it("keeps anonymous's Redis keys as they were, and puts every other principal's apart", () => {
    const keys = new Keyspace("council:", 1);
    const tag = "council:{b0}:";
    expect(keys.request(0, ANONYMOUS_NAME, "r1")).to.equal(`${tag}req:r1`);
    expect(keys.outcomeRequest(0, "dec-1", ANONYMOUS_NAME, "r1")).to.equal(`${tag}oreq:dec-1:r1`);
    expect(keys.request(0, "agent-a", "r1")).to.equal(`${tag}preq:7:agent-a:r1`);
    expect(keys.request(0, "zoë", "r1")).to.equal(`${tag}preq:4:zoë:r1`);
    expect(keys.outcomeRequest(0, "dec-1", "agent-a", "r1")).to.equal(`${tag}poreq:dec-1:7:agent-a:r1`);
    // No anonymous request id can spell another principal's key: those live under another word.
    expect(keys.request(0, ANONYMOUS_NAME, "preq:7:agent-a:r1")).to.not.equal(keys.request(0, "agent-a", "r1"));
  });
});

describe("who may record an outcome", () => {
  const agent = principal("agent-a", ["agent"]);
  const operator = principal("ops", ["operator"]);
  const approver = principal("alice", ["approver"]);
  const rows: [string, ReturnType<typeof principal>, string, boolean][] = [
    ["an agent, on its own decision", agent, "agent-a", true],
    ["an agent, on another agent's decision", agent, "agent-b", false],
    ["an agent, on a decision stored before principals", agent, ANONYMOUS_NAME, false],
    ["an operator, on anyone's decision", operator, "agent-b", true],
    ["anonymous (auth off), on anything", ANONYMOUS, "agent-b", true],
    ["an approver, on its own decision", principal("alice", ["approver"]), "alice", false],
  ];
  for (const [name, p, submittedBy, may] of rows) {
    it(`${name}: ${may ? "may" : "may not"}`, () => {
      expect(mayRecordOutcome(p, submittedBy)).to.equal(may);
      // outcomeScope is the same rule in the form a store checks atomically.
      const scope = outcomeScope(p);
      const byScope = scope.kind === "any" || (scope.kind === "own" && scope.submittedBy === submittedBy);
      expect(byScope).to.equal(may);
    });
  }
  it("names the scope: any for an operator, own for an agent, none otherwise", () => {
    expect(outcomeScope(operator)).to.deep.equal({ kind: "any" });
    expect(outcomeScope(principal("both", ["agent", "operator"]))).to.deep.equal({ kind: "any" });
    expect(outcomeScope(agent)).to.deep.equal({ kind: "own", submittedBy: "agent-a" });
    expect(outcomeScope(approver)).to.deep.equal({ kind: "none" });
  });
});
