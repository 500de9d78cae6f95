/** The external-review cases (review_cases.ts) on the in-process store. */
import { startCouncil } from "../support/server.js";
import { externalReviewCases } from "./review_cases.js";

externalReviewCases("in-process store", (options) => startCouncil(options));
