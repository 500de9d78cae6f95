// Command agent guards its change with a Council server: it submits the suggestion, prints each
// vote as it streams in, waits for people if the decision needs them, acts only if allowed, and
// records an outcome.
//
//	go run ./examples/agent [host:port]
//
// The address comes from the first argument, else COUNCIL_ADDR, else 127.0.0.1:50051. Against a
// server with identity and access: COUNCIL_TOKEN (a bearer token), COUNCIL_CA_FILE (PEM of the CA
// to trust; turns TLS on), COUNCIL_CERT_FILE and COUNCIL_KEY_FILE (a client certificate, for mTLS).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	council "github.com/council-dev/council/clients/go"
	councilv1 "github.com/council-dev/council/clients/go/gen/council/v1"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		var refused notAllowed
		if errors.As(err, &refused) {
			os.Exit(refused.exitCode)
		}
		os.Exit(1)
	}
}

// notAllowed is a guarded change the agent must not make. Its exit codes are those of `council
// review --wait`: 3 rejected (or superseded), 4 still pending, 5 expired.
type notAllowed struct {
	verdict  *council.GuardVerdict
	exitCode int
}

func (e notAllowed) Error() string {
	return fmt.Sprintf("not allowed (%s): %s", e.verdict.Outcome, e.verdict.Reason)
}

func run() error {
	addr := os.Getenv("COUNCIL_ADDR")
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	if addr == "" {
		addr = "127.0.0.1:50051"
	}

	// Bounds everything, the wait for people included.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts, err := optionsFromEnv()
	if err != nil {
		return err
	}
	client, err := council.Dial(ctx, addr, opts...)
	if err != nil {
		return err
	}
	defer client.Close()

	suggestion := &councilv1.Suggestion{
		Id:              fmt.Sprintf("agent-%d", time.Now().UnixNano()),
		Title:           "Add retry with backoff to the webhook sender",
		Description:     "Retry failed webhook deliveries up to 3 times with exponential backoff.",
		Reasoning:       "About 1% of deliveries fail on transient network errors.",
		Risk:            councilv1.RiskLevel_RISK_LEVEL_LOW,
		Impact:          councilv1.ImpactLevel_IMPACT_LEVEL_MEDIUM,
		AutoFixable:     true,
		FixSteps:        []string{"Wrap send() in a retry loop", "Add a test for the retry path"},
		FilesAffected:   []string{"src/webhooks/sender.ts", "test/webhooks/sender.test.ts"},
		EstimatedEffort: councilv1.Effort_EFFORT_SMALL,
	}
	fmt.Printf("reviewing %s: %s\n", suggestion.GetId(), suggestion.GetTitle())

	verdict, err := client.Guard(ctx, suggestion,
		council.OnVote(func(v *councilv1.Vote) {
			fmt.Printf("  %-12s %-16s %.2f  %s\n", role(v.GetReviewerRole()), vote(v.GetVote()), v.GetConfidence(), v.GetReasoning())
		}),
		council.OnDecision(func(d *councilv1.Decision) {
			// The council's decision, then each change while people decide: show approvers the id.
			if d.GetStatus() == councilv1.DecisionStatus_DECISION_STATUS_PENDING && len(d.GetVerdicts()) == 0 {
				fmt.Printf("decision %s waits for %d approval(s) until %s\n", d.GetId(), d.GetApprovalsRequired(),
					d.GetExpiresAt().AsTime().Format(time.RFC3339))
			}
		}))
	var cerr *council.Error
	switch {
	case err == nil:
	case errors.As(err, &cerr) && cerr.Field != "":
		return fmt.Errorf("the council refused the suggestion (%s): %w", cerr.Field, err)
	case errors.Is(err, council.ErrUnauthenticated):
		return fmt.Errorf("no token, or one the council does not accept (set COUNCIL_TOKEN): %w", err)
	case errors.Is(err, council.ErrPermissionDenied):
		return fmt.Errorf("this principal may not submit reviews: %w", err)
	case errors.Is(err, council.ErrResourceExhausted):
		return fmt.Errorf("too many reviews; slow down: %w", err)
	default:
		return err
	}
	allowed := "not allowed"
	if verdict.Allowed {
		allowed = "allowed"
	}
	fmt.Printf("decision %s: %s, %s - %s\n", verdict.DecisionID, verdict.DecisionType, allowed, verdict.Reason)
	if !verdict.Allowed {
		// Rejected, expired, superseded, or nobody decided in time: do not act.
		code := 3
		switch verdict.Outcome {
		case council.GuardTimedOut:
			code = 4
		case council.GuardExpired:
			code = 5
		}
		return notAllowed{verdict: verdict, exitCode: code}
	}
	for _, c := range verdict.Conditions {
		fmt.Printf("  condition: %s\n", c)
	}

	// The request id makes the report idempotent: RecordOutcome retries UNAVAILABLE with it, and
	// an agent that kept it can send the same report again after a restart; either way the
	// outcome is recorded, and its lesson appended, once.
	outcomeID := council.NewRequestID()
	updated, err := client.RecordOutcome(ctx, verdict.DecisionID, councilv1.Outcome_OUTCOME_SUCCESS,
		"Deployed; webhook failures dropped to 0.01%.", "Transient failures deserve a bounded retry.",
		council.WithOutcomeRequestID(outcomeID))
	if err != nil {
		return err
	}
	fmt.Printf("recorded outcome %s at %s (request %s)\n", updated.GetOutcome(),
		updated.GetImplementedAt().AsTime().Format(time.RFC3339), outcomeID)
	return nil
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

func role(r councilv1.ReviewerRole) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "REVIEWER_ROLE_"))
}

func vote(v councilv1.VoteType) string {
	return strings.ToLower(strings.TrimPrefix(v.String(), "VOTE_TYPE_"))
}
