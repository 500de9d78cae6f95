package council_test

// A suggestion's diff and who cast each vote (issue 13), against the live server: the diff set on
// the suggestion reaches the server and is stored with the decision, and every vote says who cast
// it (CastBy; the built-in rules: "rules").

import (
	"testing"
	"time"

	councilv1 "github.com/council-dev/council/clients/go/gen/council/v1"
)

const testDiff = "--- a/src/http.ts\n+++ b/src/http.ts\n@@ -1 +1 @@\n-return fetch(url);\n+return retry(() => fetch(url), 3); // « naïve » ✓\n"

func TestADiffReachesTheServerAndEveryVoteIsCastByTheRules(t *testing.T) {
	c := dial(t)
	ctx := bounded(t, 15*time.Second)
	s := newSuggestion(suggestionID(t, "diff"))
	s.Diff = testDiff

	var votes []*councilv1.Vote
	var d *councilv1.Decision
	for ev, err := range c.Review(ctx, s) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Vote != nil {
			votes = append(votes, ev.Vote)
		} else {
			d = ev.Decision
		}
	}
	if d == nil || len(votes) != 5 {
		t.Fatalf("%d votes and decision %v, want 5 votes and a decision", len(votes), d)
	}
	stored, err := c.GetDecision(ctx, d.GetId())
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []*councilv1.Decision{d, stored} {
		if got.GetSuggestion().GetDiff() != testDiff {
			t.Errorf("decision's diff %q, want %q", got.GetSuggestion().GetDiff(), testDiff)
		}
		for i, v := range got.GetVotes() {
			if v.GetCastBy() != "rules" {
				t.Errorf("decision vote %d cast by %q, want rules", i, v.GetCastBy())
			}
		}
	}
	for i, v := range votes {
		if v.GetCastBy() != "rules" {
			t.Errorf("streamed vote %d cast by %q, want rules", i, v.GetCastBy())
		}
	}
}
