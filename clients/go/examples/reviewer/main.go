// Command reviewer sits on the council as an external reviewer that reads the diff: it vetoes a
// change whose diff deletes a test file, asks for more information when the diff changes files
// that the suggestion's files_affected does not list, and approves otherwise. It serves until
// interrupted (Ctrl-C or SIGTERM), reconnecting when the server goes away.
//
//	go run ./examples/reviewer [host:port]
//
// The address comes from the first argument, else COUNCIL_ADDR, else 127.0.0.1:50051. The roles
// served come from COUNCIL_ROLES (comma-separated, e.g. "safety,quality"; default "safety"): each
// must be external in the server's policy. The principal needs the role reviewer: COUNCIL_TOKEN
// (a bearer token), COUNCIL_CA_FILE (PEM of the CA to trust; turns TLS on), COUNCIL_CERT_FILE and
// COUNCIL_KEY_FILE (a client certificate, for mTLS).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	council "github.com/council-dev/council/clients/go"
	councilv1 "github.com/council-dev/council/clients/go/gen/council/v1"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "reviewer:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := os.Getenv("COUNCIL_ADDR")
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	if addr == "" {
		addr = "127.0.0.1:50051"
	}
	names, roles, err := rolesFromEnv()
	if err != nil {
		return err
	}
	opts, err := optionsFromEnv()
	if err != nil {
		return err
	}

	// Serves until Ctrl-C or SIGTERM; ServeReviews then returns nil.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	client, err := council.Dial(dialCtx, addr, opts...)
	cancel()
	if err != nil {
		return err
	}
	defer client.Close()

	err = client.ServeReviews(ctx, council.ReviewerOptions{
		Roles: roles,
		Handler: func(ctx context.Context, task *councilv1.ReviewTask) (*councilv1.TaskVote, error) {
			v := review(task.GetSuggestion())
			fmt.Printf("%s %s: %s %s\n", task.GetDecisionId(), strings.ToLower(strings.TrimPrefix(task.GetRole().String(), "REVIEWER_ROLE_")),
				strings.ToLower(strings.TrimPrefix(v.GetVote().String(), "VOTE_TYPE_")), v.GetReasoning())
			return v, nil
		},
		OnConnected: func() { fmt.Printf("serving %s on %s\n", names, addr) },
	})
	switch {
	case errors.Is(err, council.ErrFailedPrecondition):
		return fmt.Errorf("a role in COUNCIL_ROLES is not external in the server's policy: %w", err)
	case errors.Is(err, council.ErrPermissionDenied):
		return fmt.Errorf("this principal lacks the role reviewer: %w", err)
	case errors.Is(err, council.ErrUnauthenticated):
		return fmt.Errorf("no token, or one the council does not accept (set COUNCIL_TOKEN): %w", err)
	}
	return err
}

// review reads the diff: a deleted test file is a veto, a changed file the agent did not declare
// needs an explanation.
func review(s *councilv1.Suggestion) *councilv1.TaskVote {
	if strings.TrimSpace(s.GetDiff()) == "" {
		return &councilv1.TaskVote{
			Vote:      councilv1.VoteType_VOTE_TYPE_ABSTAIN,
			Reasoning: "No diff to read.",
		}
	}
	changed, deleted := filesOf(s.GetDiff())
	var deletedTests []string
	for _, f := range deleted {
		if isTest(f) {
			deletedTests = append(deletedTests, f)
		}
	}
	if len(deletedTests) > 0 {
		return &councilv1.TaskVote{
			Vote:       councilv1.VoteType_VOTE_TYPE_REJECT,
			Veto:       "deletes_tests",
			Reasoning:  fmt.Sprintf("The diff deletes %d test file(s): %s.", len(deletedTests), strings.Join(deletedTests, ", ")),
			Concerns:   []string{"Deleting tests hides regressions instead of fixing them."},
			Confidence: 0.95,
		}
	}
	var undeclared []string
	for _, f := range changed {
		if !slices.Contains(s.GetFilesAffected(), f) {
			undeclared = append(undeclared, f)
		}
	}
	if len(undeclared) > 0 {
		return &councilv1.TaskVote{
			Vote:       councilv1.VoteType_VOTE_TYPE_NEEDS_MORE_INFO,
			Reasoning:  fmt.Sprintf("The diff changes %d file(s) that files_affected does not list: %s.", len(undeclared), strings.Join(undeclared, ", ")),
			Conditions: []string{"List every file the change touches in files_affected, and say why each changes."},
			Confidence: 0.8,
		}
	}
	return &councilv1.TaskVote{
		Vote:       councilv1.VoteType_VOTE_TYPE_APPROVE,
		Reasoning:  fmt.Sprintf("The diff changes only the %d declared file(s) and deletes no test.", len(changed)),
		Confidence: 0.7,
	}
}

// filesOf returns the files a unified diff (git's or plain) changes, and those it deletes.
func filesOf(diff string) (changed, deleted []string) {
	var from string
	for line := range strings.Lines(diff) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "--- "):
			from = diffPath(line[4:])
		case strings.HasPrefix(line, "+++ "):
			to := diffPath(line[4:])
			if to == "" { // +++ /dev/null: the file is deleted
				to = from
				deleted = append(deleted, from)
			}
			if to != "" && !slices.Contains(changed, to) {
				changed = append(changed, to)
			}
		}
	}
	return changed, deleted
}

// diffPath is the path of a ---/+++ line without its a/ or b/ prefix and timestamp; "" for
// /dev/null.
func diffPath(s string) string {
	s, _, _ = strings.Cut(s, "\t")
	if s == "/dev/null" {
		return ""
	}
	if strings.HasPrefix(s, "a/") || strings.HasPrefix(s, "b/") {
		return s[2:]
	}
	return s
}

// isTest says whether a path looks like a test file in the usual layouts of Go, TypeScript,
// JavaScript and Python.
func isTest(p string) bool {
	base := path.Base(p)
	for _, dir := range []string{"test/", "tests/", "__tests__/"} {
		if strings.HasPrefix(p, dir) || strings.Contains(p, "/"+dir) {
			return true
		}
	}
	return strings.HasSuffix(base, "_test.go") || strings.HasPrefix(base, "test_") || strings.HasSuffix(base, "_test.py") ||
		strings.Contains(base, ".test.") || strings.Contains(base, ".spec.")
}

// rolesFromEnv reads COUNCIL_ROLES (default "safety"): the names as given, and the roles.
func rolesFromEnv() (string, []councilv1.ReviewerRole, error) {
	names := os.Getenv("COUNCIL_ROLES")
	if names == "" {
		names = "safety"
	}
	var roles []councilv1.ReviewerRole
	for name := range strings.SplitSeq(names, ",") {
		v, ok := councilv1.ReviewerRole_value["REVIEWER_ROLE_"+strings.ToUpper(strings.TrimSpace(name))]
		if !ok || v == 0 {
			return "", nil, fmt.Errorf("COUNCIL_ROLES: unknown role %q (safety, performance, architecture, compliance, quality)", name)
		}
		roles = append(roles, councilv1.ReviewerRole(v))
	}
	return names, roles, nil
}

// optionsFromEnv turns COUNCIL_TOKEN, COUNCIL_CA_FILE, COUNCIL_CERT_FILE and COUNCIL_KEY_FILE into
// Dial options.
func optionsFromEnv() ([]council.Option, error) {
	var opts []council.Option
	if token := os.Getenv("COUNCIL_TOKEN"); token != "" {
		opts = append(opts, council.WithToken(token))
	}
	if path := os.Getenv("COUNCIL_CA_FILE"); path != "" {
		ca, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		opts = append(opts, council.WithRootCAs(ca))
	}
	if certPath, keyPath := os.Getenv("COUNCIL_CERT_FILE"), os.Getenv("COUNCIL_KEY_FILE"); certPath != "" || keyPath != "" {
		cert, err := os.ReadFile(certPath)
		if err != nil {
			return nil, err
		}
		key, err := os.ReadFile(keyPath)
		if err != nil {
			return nil, err
		}
		opts = append(opts, council.WithClientCertificate(cert, key))
	}
	return opts, nil
}
