package council_test

// TLS, mTLS, bearer tokens and the typed errors of authentication, roles and rate limits, against
// the servers that the repository's test/clients.test.ts starts (SPEC §8), given in the
// environment:
//
//   - COUNCIL_TEST_TLS_ADDR: TLS, with an auth file of principals and tokens;
//   - COUNCIL_TEST_MTLS_ADDR: the same, and a client certificate is required (mTLS);
//   - COUNCIL_TEST_LIMITED_ADDR: like the TLS one, with a review rate so low that each principal
//     gets one review (burst 1), then RESOURCE_EXHAUSTED;
//   - COUNCIL_TEST_CA_FILE: the CA (PEM) that signed the servers' and the client's certificates;
//   - COUNCIL_TEST_CLIENT_CERT_FILE, COUNCIL_TEST_CLIENT_KEY_FILE: a client certificate whose
//     common name the auth file names (principal COUNCIL_TEST_CLIENT_PRINCIPAL, role agent);
//   - COUNCIL_TEST_AGENT_TOKEN: a token of principal COUNCIL_TEST_AGENT_PRINCIPAL (agent);
//   - COUNCIL_TEST_APPROVER_TOKEN: a token of a principal with the role approver only.

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	council "github.com/council-dev/council/clients/go"
)

type secureEnv struct {
	tlsAddr, mtlsAddr, limitedAddr string
	ca, clientCert, clientKey      []byte
	clientPrincipal                string
	agentToken, agentPrincipal     string
	approverToken                  string
}

// secure reads the environment; it fails the test (it does not skip) when something is missing.
func secure(t *testing.T) secureEnv {
	t.Helper()
	names := []string{
		"COUNCIL_TEST_TLS_ADDR", "COUNCIL_TEST_MTLS_ADDR", "COUNCIL_TEST_LIMITED_ADDR",
		"COUNCIL_TEST_CA_FILE", "COUNCIL_TEST_CLIENT_CERT_FILE", "COUNCIL_TEST_CLIENT_KEY_FILE",
		"COUNCIL_TEST_CLIENT_PRINCIPAL", "COUNCIL_TEST_AGENT_TOKEN", "COUNCIL_TEST_AGENT_PRINCIPAL",
		"COUNCIL_TEST_APPROVER_TOKEN",
	}
	var missing []string
	for _, n := range names {
		if os.Getenv(n) == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("set %s: these tests need the TLS, mTLS and rate-limited servers that the repository's "+
			"test/clients.test.ts starts (npx mocha test/clients.test.ts)", strings.Join(missing, ", "))
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(os.Getenv(name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return secureEnv{
		tlsAddr:         os.Getenv("COUNCIL_TEST_TLS_ADDR"),
		mtlsAddr:        os.Getenv("COUNCIL_TEST_MTLS_ADDR"),
		limitedAddr:     os.Getenv("COUNCIL_TEST_LIMITED_ADDR"),
		ca:              read("COUNCIL_TEST_CA_FILE"),
		clientCert:      read("COUNCIL_TEST_CLIENT_CERT_FILE"),
		clientKey:       read("COUNCIL_TEST_CLIENT_KEY_FILE"),
		clientPrincipal: os.Getenv("COUNCIL_TEST_CLIENT_PRINCIPAL"),
		agentToken:      os.Getenv("COUNCIL_TEST_AGENT_TOKEN"),
		agentPrincipal:  os.Getenv("COUNCIL_TEST_AGENT_PRINCIPAL"),
		approverToken:   os.Getenv("COUNCIL_TEST_APPROVER_TOKEN"),
	}
}

// dialAt connects to addr with opts, failing the test if Dial fails.
func dialAt(t *testing.T, addr string, opts ...council.Option) *council.Client {
	t.Helper()
	c, err := council.Dial(bounded(t, 10*time.Second), addr, opts...)
	if err != nil {
		t.Fatalf("Dial(%s): %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// streamCounter counts the streams (ReviewSuggestion attempts) a client opens.
func streamCounter(n *atomic.Int32) council.Option {
	return council.WithDialOptions(grpc.WithStreamInterceptor(
		func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			n.Add(1)
			return streamer(ctx, desc, cc, method, opts...)
		}))
}

func TestTLSWithAPrivateCAAndAToken(t *testing.T) {
	env := secure(t)
	c := dialAt(t, env.tlsAddr, council.WithRootCAs(env.ca), council.WithToken(env.agentToken))
	ctx := bounded(t, 15*time.Second)
	d, err := c.Decide(ctx, newSuggestion(suggestionID(t, "tls")))
	if err != nil {
		t.Fatal(err)
	}
	if d.GetSubmittedBy() != env.agentPrincipal {
		t.Errorf("submitted_by %q, want %q", d.GetSubmittedBy(), env.agentPrincipal)
	}
	if got, err := c.GetDecision(ctx, d.GetId()); err != nil || got.GetId() != d.GetId() {
		t.Errorf("GetDecision: %v, %v", got, err)
	}
}

func TestPlaintextOrUntrustedTLSCannotTalkToTheTLSServer(t *testing.T) {
	env := secure(t)
	for name, transport := range map[string][]council.Option{
		"plaintext":    nil,
		"system roots": {council.WithTLS(nil)},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := council.Dial(bounded(t, 10*time.Second), env.tlsAddr, append(transport, council.WithToken(env.agentToken))...)
			if err == nil {
				// Should the connection look ready, the first call must fail.
				defer c.Close()
				_, err = c.Summary(bounded(t, 10*time.Second))
			}
			if !errors.Is(err, council.ErrUnavailable) {
				t.Errorf("got %v, want UNAVAILABLE", err)
			}
		})
	}
}

func TestMTLSClientCertificateNamesThePrincipal(t *testing.T) {
	env := secure(t)
	c := dialAt(t, env.mtlsAddr, council.WithRootCAs(env.ca), council.WithClientCertificate(env.clientCert, env.clientKey))
	d, err := c.Decide(bounded(t, 15*time.Second), newSuggestion(suggestionID(t, "mtls")))
	if err != nil {
		t.Fatal(err)
	}
	if d.GetSubmittedBy() != env.clientPrincipal {
		t.Errorf("submitted_by %q, want %q", d.GetSubmittedBy(), env.clientPrincipal)
	}

	// Without a client certificate the server refuses the handshake: Dial, or else the first
	// call, fails UNAVAILABLE.
	noCert, err := council.Dial(bounded(t, 10*time.Second), env.mtlsAddr, council.WithRootCAs(env.ca),
		council.WithToken(env.agentToken), council.WithRetry(1, 0, 0))
	if err == nil {
		defer noCert.Close()
		_, err = noCert.Summary(bounded(t, 10*time.Second))
	}
	if !errors.Is(err, council.ErrUnavailable) {
		t.Errorf("without a client certificate: %v, want UNAVAILABLE", err)
	}
}

func TestBadPEMFailsDial(t *testing.T) {
	env := secure(t)
	if _, err := council.Dial(bounded(t, 5*time.Second), env.mtlsAddr, council.WithRootCAs([]byte("not PEM"))); err == nil || !strings.Contains(err.Error(), "WithRootCAs") {
		t.Errorf("WithRootCAs(garbage): %v", err)
	}
	if _, err := council.Dial(bounded(t, 5*time.Second), env.mtlsAddr, council.WithClientCertificate(env.clientCert, nil)); err == nil || !strings.Contains(err.Error(), "WithClientCertificate") {
		t.Errorf("WithClientCertificate without a key: %v", err)
	}
	// A caller's tls.Config is not changed by the options applied on top of it.
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	c := dialAt(t, env.mtlsAddr, council.WithTLS(base), council.WithRootCAs(env.ca), council.WithClientCertificate(env.clientCert, env.clientKey))
	if _, err := c.Summary(bounded(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if base.RootCAs != nil || len(base.Certificates) != 0 {
		t.Error("Dial changed the tls.Config passed to WithTLS")
	}
}

func TestMissingOrWrongTokenIsUnauthenticatedAndNotRetried(t *testing.T) {
	env := secure(t)
	for name, token := range map[string]string{
		"missing": "",
		"unknown": "council_not-a-token-the-server-knows",
		"wrong":   env.agentToken + "x",
	} {
		t.Run(name, func(t *testing.T) {
			var streams atomic.Int32
			opts := []council.Option{council.WithRootCAs(env.ca), council.WithRetry(5, time.Millisecond, 5*time.Millisecond), streamCounter(&streams)}
			if token != "" {
				opts = append(opts, council.WithToken(token))
			}
			c := dialAt(t, env.tlsAddr, opts...)
			ctx := bounded(t, 10*time.Second)
			_, err := c.Summary(ctx)
			var e *council.Error
			if !errors.Is(err, council.ErrUnauthenticated) || !errors.As(err, &e) || e.Code != codes.Unauthenticated {
				t.Fatalf("Summary: %v, want an *Error that is ErrUnauthenticated", err)
			}
			if !council.IsUnauthenticated(err) || e.Retryable() {
				t.Errorf("IsUnauthenticated %v, Retryable %v", council.IsUnauthenticated(err), e.Retryable())
			}
			_, err = c.Decide(ctx, newSuggestion(suggestionID(t, "unauth")))
			if !errors.Is(err, council.ErrUnauthenticated) {
				t.Errorf("Review: %v, want ErrUnauthenticated", err)
			}
			if n := streams.Load(); n != 1 {
				t.Errorf("Review made %d attempts, want 1", n)
			}
		})
	}
}

func TestPrincipalWithoutTheRoleIsPermissionDenied(t *testing.T) {
	env := secure(t)
	var streams atomic.Int32
	c := dialAt(t, env.tlsAddr, council.WithRootCAs(env.ca), council.WithToken(env.approverToken),
		council.WithRetry(5, time.Millisecond, 5*time.Millisecond), streamCounter(&streams))
	ctx := bounded(t, 10*time.Second)
	if _, err := c.Summary(ctx); err != nil {
		t.Fatalf("Summary (open to every role): %v", err)
	}
	_, err := c.Decide(ctx, newSuggestion(suggestionID(t, "denied")))
	var e *council.Error
	if !errors.Is(err, council.ErrPermissionDenied) || !errors.As(err, &e) || !strings.Contains(e.Message, "agent") {
		t.Fatalf("Review: %v, want ErrPermissionDenied naming the role agent", err)
	}
	if errors.Is(err, council.ErrUnauthenticated) {
		t.Error("a PERMISSION_DENIED also matched ErrUnauthenticated")
	}
	if n := streams.Load(); n != 1 {
		t.Errorf("Review made %d attempts, want 1", n)
	}
}

func TestRateLimitedReviewIsResourceExhaustedAfterOneAttempt(t *testing.T) {
	env := secure(t)
	var streams atomic.Int32
	c := dialAt(t, env.limitedAddr, council.WithRootCAs(env.ca), council.WithToken(env.agentToken),
		council.WithRetry(5, time.Millisecond, 5*time.Millisecond), streamCounter(&streams))
	ctx := bounded(t, 15*time.Second)
	if _, err := c.Decide(ctx, newSuggestion(suggestionID(t, "first"))); err != nil {
		t.Fatalf("first review (within the burst): %v", err)
	}
	streams.Store(0)
	_, err := c.Decide(ctx, newSuggestion(suggestionID(t, "second")))
	var e *council.Error
	if !errors.Is(err, council.ErrResourceExhausted) || !errors.As(err, &e) || !strings.Contains(e.Message, "rate") {
		t.Fatalf("second review: %v, want ErrResourceExhausted about the rate", err)
	}
	if e.Retryable() {
		t.Error("RESOURCE_EXHAUSTED is Retryable")
	}
	if n := streams.Load(); n != 1 {
		t.Errorf("the rate-limited review made %d attempts, want 1", n)
	}
}
