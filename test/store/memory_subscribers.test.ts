/**
 * The in-process store tells subscribers synchronously, inside saveReview; a subscriber that throws
 * must not fail the review (already stored) nor keep the others from hearing of it.
 */
import { expect } from "chai";
import type { Decision } from "../../src/domain/model.js";
import { MemoryStore } from "../../src/store/memory.js";
import { decision } from "../support/fixtures.js";
import { waitFor } from "../support/wait.js";

describe("in-process store subscribers", () => {
  it("drops a subscriber that throws and tells it through onError; the save and the others go on", async () => {
    const store = new MemoryStore();
    const broken = new Error("a bug in a watcher");
    const errors: Error[] = [];
    const heard: Decision[] = [];
    let calls = 0;
    store.subscribe(
      () => {
        calls++;
        throw broken;
      },
      (err) => errors.push(err),
    );
    store.subscribe((d) => heard.push(d), () => expect.fail("the healthy subscriber must not be ended"));

    const first = decision();
    const saved = await store.saveReview(first, "fp");
    expect(saved.kind).to.equal("stored");
    expect(await store.getDecision(first.id)).to.deep.equal(first);
    await waitFor(() => errors.length === 1, { what: "the broken subscriber's onError" });
    expect(errors[0]).to.equal(broken);

    const second = decision();
    await store.saveReview(second, "fp");
    expect(heard.map((d) => d.id)).to.deep.equal([first.id, second.id]);
    expect(calls).to.equal(1);
    await store.close();
  });
});
