import { MemoryStore } from "../../src/store/memory.js";
import { storeContract } from "./contract.js";

storeContract("in-process", { open: async () => new MemoryStore() });
