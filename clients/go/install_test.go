package council_test

// The README's install steps, word for word, as a new user follows them: in a new directory
// outside the repository, the two shell blocks of its "Install" section, with the program of its
// "Example" section saved as main.go in between (as the section says), run by bash. The only
// change is /path/to/council, replaced by this checkout. The program then talks to the live
// server (COUNCIL_ADDR). Go fetches gRPC and protobuf through its module proxy (or its cache).

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeSection returns the text of the README section with this "## " heading.
func readmeSection(t *testing.T, readme, heading string) string {
	t.Helper()
	start := strings.Index(readme, "\n## "+heading+"\n")
	if start < 0 {
		t.Fatalf("README.md has no section %q", heading)
	}
	body := readme[start+len("\n## "+heading+"\n"):]
	if end := strings.Index(body, "\n## "); end >= 0 {
		body = body[:end]
	}
	return body
}

// codeBlocks returns the fenced blocks of this language in text, in order.
func codeBlocks(text, lang string) []string {
	var blocks []string
	for _, m := range regexp.MustCompile("(?ms)^```"+lang+"\n(.*?)^```$").FindAllStringSubmatch(text, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

func TestTheReadmesInstallStepsWorkInANewModuleOutsideTheRepository(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	steps := codeBlocks(readmeSection(t, readme, "Install"), "sh")
	if len(steps) != 2 {
		t.Fatalf("the Install section has %d sh blocks, want 2 (before and after writing main.go)", len(steps))
	}
	programs := codeBlocks(readmeSection(t, readme, "Example"), "go")
	if len(programs) != 1 {
		t.Fatalf("the Example section has %d go blocks, want 1", len(programs))
	}
	if !strings.Contains(steps[0], "/path/to/council") {
		t.Fatal("the Install steps no longer name /path/to/council, the checkout this test substitutes")
	}
	checkout, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	script := "set -euo pipefail\n" +
		strings.ReplaceAll(steps[0], "/path/to/council", checkout) +
		"cat > main.go <<'COUNCIL_README_EXAMPLE'\n" + programs[0] + "COUNCIL_README_EXAMPLE\n" +
		steps[1]

	dir := t.TempDir() // outside the repository: no go.mod or go.work above it
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "COUNCIL_ADDR="+addr, "GOWORK=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's steps failed: %v\n--- script ---\n%s\n--- output ---\n%s", err, script, out)
	}

	// The program ran against the live server: votes with the decision id, the decision, the outcome.
	text := string(out)
	decision := regexp.MustCompile(`(?m)^(dec-\w+): DECISION_TYPE_AUTO_APPROVE: `).FindStringSubmatch(text)
	if decision == nil {
		t.Fatalf("no decision in the program's output:\n%s", text)
	}
	if n := strings.Count(text, decision[1]+": REVIEWER_ROLE_"); n != 5 {
		t.Errorf("%d votes printed with the decision id, want 5:\n%s", n, text)
	}
	if !strings.Contains(text, "stored: "+decision[1]+" OUTCOME_SUCCESS") {
		t.Errorf("the decision's outcome is not listed:\n%s", text)
	}

	// go.mod requires the client (the tidy after the import kept it) and replaces it by the checkout.
	mod, err := os.ReadFile(filepath.Join(dir, "myagent", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"require github.com/council-dev/council/clients/go v0.0.0-00010101000000-000000000000",
		"replace github.com/council-dev/council/clients/go => " + checkout + "/clients/go",
		"google.golang.org/grpc v",
	} {
		if !strings.Contains(string(mod), want) {
			t.Errorf("go.mod lacks %q:\n%s", want, mod)
		}
	}
}
