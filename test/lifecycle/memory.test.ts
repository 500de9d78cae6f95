/**
 * The human-verdicts suite on the in-process store: two servers (each with its own Council) on one
 * MemoryStore, as close to two replicas as one process has.
 */
import { MemoryStore } from "../../src/store/memory.js";
import { startCouncil } from "../support/server.js";
import { lifecycleSuite } from "./suite.js";

lifecycleSuite("in-process store, two servers", async (options) => {
  const store = new MemoryStore();
  const a = await startCouncil({ ...options, store });
  const b = await startCouncil({ ...options, store }).catch(async (err: unknown) => {
    await a.stop();
    throw err;
  });
  return {
    a,
    b,
    // Each stop closes the shared store; closing a MemoryStore twice is harmless.
    async stop() {
      await b.stop();
      await a.stop();
    },
  };
});
