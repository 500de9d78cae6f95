// Package council is the Go client of Council, the gRPC service where agents submit a suggested
// change to a council of reviewers, watch the votes stream in and read back the decision.
//
// The wire types are the generated ones in
// github.com/council-dev/council/clients/go/gen/council/v1 (package councilv1); this package
// adds what every caller would otherwise write by hand: connecting with TLS (a private CA, a
// client certificate for mTLS) and a bearer token, default deadlines that cover every retry, an
// idempotency key on every review, outcome and verdict that is reused when the call is retried
// after UNAVAILABLE, a review as an iterator of its votes and decision (Review), the one call an
// agent makes before it acts (Guard), watches and waits that say when they are live (Stream),
// iterators that walk every page of a list, the council_review tool for LLM tool calling
// (ToolDefinition, SuggestionFromToolInput), and ServeReviews, which serves an external
// reviewer role with a handler function (reconnecting with backoff).
//
// Every error from the service is an *Error that keeps the gRPC status: errors.Is matches it
// against the sentinel of its family (ErrUnauthenticated, ErrPermissionDenied,
// ErrResourceExhausted, …), errors.As gives its code, message and field, and status.FromError,
// status.Code and helpers such as IsInvalidArgument see its code.
package council

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	councilv1 "github.com/council-dev/council/clients/go/gen/council/v1"
)

// Defaults of the options.
const (
	// DefaultTimeout bounds a unary call (and Dial) whose context has no deadline, retries
	// included.
	DefaultTimeout = 30 * time.Second
	// DefaultReviewTimeout bounds a review whose context has no deadline, retries included.
	DefaultReviewTimeout = 60 * time.Second
	// DefaultMaxAttempts is how many times a call that fails UNAVAILABLE is tried in all.
	DefaultMaxAttempts = 4
	// DefaultBackoff bounds the wait before the first retry; it doubles up to DefaultMaxBackoff,
	// and each wait is a random duration up to the bound (full jitter).
	DefaultBackoff = 100 * time.Millisecond
	// DefaultMaxBackoff caps the wait between two attempts.
	DefaultMaxBackoff = 2 * time.Second
)

// Client is a connection to a Council server. It is safe for concurrent use; call Close when done.
type Client struct {
	conn *grpc.ClientConn
	rpc  councilv1.CouncilServiceClient
	cfg  config
}

type config struct {
	tls           *tls.Config
	rootCAs       []byte // PEM, from WithRootCAs
	clientCert    []byte // PEM, from WithClientCertificate
	clientKey     []byte
	token         string
	timeout       time.Duration
	reviewTimeout time.Duration
	maxAttempts   int
	backoff       time.Duration
	maxBackoff    time.Duration
	dialOptions   []grpc.DialOption
}

// Option configures Dial.
type Option func(*config)

// WithTLS connects over TLS with the given configuration; nil means the system's root CAs and
// the host name of addr. Without WithTLS the connection is plaintext.
func WithTLS(c *tls.Config) Option {
	return func(cfg *config) {
		if c == nil {
			cfg.tls = &tls.Config{MinVersion: tls.VersionTLS12}
			return
		}
		cfg.tls = c.Clone()
	}
}

// WithRootCAs connects over TLS trusting the CA certificates in caPEM (a private CA) instead of
// the system's roots. It applies on top of WithTLS, if given.
func WithRootCAs(caPEM []byte) Option {
	return func(cfg *config) { cfg.rootCAs = caPEM }
}

// WithClientCertificate connects over TLS presenting this client certificate (PEM: the
// certificate chain and its private key), for a server that requires one (mTLS). It applies on
// top of WithTLS, if given. The files are read once: to follow a certificate that rotates on
// disk, pass WithTLS a tls.Config whose GetClientCertificate loads it.
func WithClientCertificate(certPEM, keyPEM []byte) Option {
	return func(cfg *config) {
		cfg.clientCert = certPEM
		cfg.clientKey = keyPEM
	}
}

// WithToken sends "authorization: Bearer <token>" with every call. Over a plaintext connection
// the token travels in clear text; use WithTLS outside a trusted network.
func WithToken(token string) Option {
	return func(cfg *config) { cfg.token = token }
}

// WithTimeout sets the deadline given to Dial and to each unary call whose context has none
// (default DefaultTimeout, 30 s). It bounds the whole call, retries included; for ListDecisions
// and Lessons it bounds each page (each page is a call). Zero or less means no default deadline.
// Reviews have their own (WithReviewTimeout); Watch and AwaitDecision have none.
func WithTimeout(d time.Duration) Option {
	return func(cfg *config) { cfg.timeout = d }
}

// WithReviewTimeout sets the deadline given to a review (Review, Decide, and the review part of
// Guard) whose context has none (default DefaultReviewTimeout, 60 s). It bounds the whole review,
// retries included. Zero or less means no default deadline.
func WithReviewTimeout(d time.Duration) Option {
	return func(cfg *config) { cfg.reviewTimeout = d }
}

// WithRetry sets how many attempts a call that fails UNAVAILABLE gets in all (1 means no retry;
// default 4) and the bound of the wait before the first retry (default 100 ms), which doubles
// after each attempt up to maxBackoff (default 2 s); each wait is random between zero and its
// bound (full jitter). No wait runs past the call's deadline: when the next one would, the call
// returns the last UNAVAILABLE at once. Only UNAVAILABLE is retried, and only calls that are safe
// to repeat: reads, and Review, RecordOutcome and Resolve, which send the same request id on every
// attempt (and AwaitDecision, by awaiting again). Watch is never retried.
func WithRetry(maxAttempts int, backoff, maxBackoff time.Duration) Option {
	return func(cfg *config) {
		cfg.maxAttempts = maxAttempts
		cfg.backoff = backoff
		cfg.maxBackoff = maxBackoff
	}
}

// WithDialOptions passes extra options to grpc.NewClient, for example interceptors.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(cfg *config) { cfg.dialOptions = append(cfg.dialOptions, opts...) }
}

// Dial connects to the Council server at addr (host:port) and returns once the connection is
// ready. If the first connection attempt fails (nothing listening, a TLS handshake error), or
// ctx is done first, it fails with an UNAVAILABLE status that gives the reason; when ctx has no
// deadline, the WithTimeout default bounds the wait. Dial does not retry: call it again, or
// rely on the calls' own retries once connected (a connection lost later is re-established by
// gRPC in the background).
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	cfg := config{
		timeout:       DefaultTimeout,
		reviewTimeout: DefaultReviewTimeout,
		maxAttempts:   DefaultMaxAttempts,
		backoff:       DefaultBackoff,
		maxBackoff:    DefaultMaxBackoff,
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	if addr == "" {
		return nil, errors.New("council: Dial needs an address (host:port)")
	}
	if cfg.maxAttempts < 1 {
		return nil, fmt.Errorf("council: WithRetry needs at least 1 attempt, got %d", cfg.maxAttempts)
	}
	if cfg.backoff < 0 || cfg.maxBackoff < cfg.backoff {
		return nil, fmt.Errorf("council: WithRetry needs 0 <= backoff <= maxBackoff, got %v and %v", cfg.backoff, cfg.maxBackoff)
	}

	if err := cfg.applyPEM(); err != nil {
		return nil, err
	}
	transport := insecure.NewCredentials()
	if cfg.tls != nil {
		transport = credentials.NewTLS(cfg.tls)
	}
	dialOpts := []grpc.DialOption{grpc.WithTransportCredentials(transport)}
	if cfg.token != "" {
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(bearer{token: cfg.token, secure: cfg.tls != nil}))
	}
	dialOpts = append(dialOpts, cfg.dialOptions...)
	conn, err := grpc.NewClient(addr, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("council: %w", err)
	}

	c := &Client{conn: conn, rpc: councilv1.NewCouncilServiceClient(conn), cfg: cfg}
	dialCtx, cancel := c.withTimeout(ctx)
	defer cancel()
	if err := c.waitReady(dialCtx); err != nil {
		_ = conn.Close()
		return nil, FromRPCError(status.Errorf(codes.Unavailable, "council: cannot connect to %s: %s", addr, status.Convert(err).Message()))
	}
	return c, nil
}

// applyPEM adds the PEM of WithRootCAs and WithClientCertificate to the TLS configuration,
// turning TLS on if they are given.
func (cfg *config) applyPEM() error {
	if cfg.rootCAs == nil && cfg.clientCert == nil && cfg.clientKey == nil {
		return nil
	}
	if cfg.tls == nil {
		cfg.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cfg.rootCAs != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.rootCAs) {
			return errors.New("council: WithRootCAs: no certificate found in the PEM")
		}
		cfg.tls.RootCAs = pool
	}
	if cfg.clientCert != nil || cfg.clientKey != nil {
		cert, err := tls.X509KeyPair(cfg.clientCert, cfg.clientKey)
		if err != nil {
			return fmt.Errorf("council: WithClientCertificate: %w", err)
		}
		// Clipped, so that appending never writes into the slice of the caller's tls.Config.
		certs := cfg.tls.Certificates
		cfg.tls.Certificates = append(certs[:len(certs):len(certs)], cert)
	}
	return nil
}

// waitReady starts connecting and returns nil once the channel is READY, or an error once the
// first attempt has failed or ctx is done.
func (c *Client) waitReady(ctx context.Context) error {
	c.conn.Connect()
	for {
		state := c.conn.GetState()
		switch state {
		case connectivity.Ready:
			return nil
		case connectivity.Shutdown:
			return errors.New("the connection was closed")
		case connectivity.TransientFailure:
			// gRPC keeps the reason to itself; a fail-fast call in this state fails at once with
			// it, without reaching the network. Should the channel have recovered meanwhile, the
			// call is a harmless read and any answer from the server means we are connected.
			_, err := c.rpc.ListReviewers(ctx, &councilv1.ListReviewersRequest{})
			if code := Code(err); code == codes.Unavailable || code == codes.DeadlineExceeded || code == codes.Canceled {
				return err
			}
			return nil
		}
		if !c.conn.WaitForStateChange(ctx, state) {
			return fmt.Errorf("%w (connection state %s)", ctx.Err(), state)
		}
	}
}

// Close closes the connection. Calls in flight fail with CANCELED.
func (c *Client) Close() error {
	return c.conn.Close()
}

// Raw returns the generated client on the same connection, for calls this package does not wrap.
// It applies no default deadline and no retry.
func (c *Client) Raw() councilv1.CouncilServiceClient {
	return c.rpc
}

// withTimeout gives ctx the default deadline of a unary call if it has none.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return withDefaultDeadline(ctx, c.cfg.timeout)
}

// withReviewTimeout gives ctx the default deadline of a review if it has none.
func (c *Client) withReviewTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return withDefaultDeadline(ctx, c.cfg.reviewTimeout)
}

func withDefaultDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// bearer sends the token as "authorization: Bearer <token>" metadata on every call.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is true over TLS, so that grpc refuses to send the token over a
// connection that lost its security; over an explicitly plaintext connection it is false.
func (b bearer) RequireTransportSecurity() bool {
	return b.secure
}
