# System tools the tests need, at pinned versions. Sourced by .ci/run and test/run.sh (npm test).
# ensure_tools installs what is missing where it can (Debian as root, `go install`), and otherwise
# stops with the one command that installs it.

GRPCURL_VERSION=v1.9.3
# ghz, the load generator of `npm run bench` (keep GHZ_VERSION in bench/lib/processes.ts the same:
# the bench prints the version it ran and flags one that differs).
GHZ_VERSION=v0.121.0
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

_have() { command -v "$1" >/dev/null 2>&1; }

_apt_install() {
  if [ "$(id -u)" = 0 ] && _have apt-get; then
    echo "tools: installing $* with apt-get" >&2
    if [ -z "${_APT_UPDATED:-}" ]; then apt-get update -qq >&2 && _APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
  else
    echo "tools: missing $*; install it with: sudo apt-get install -y $*" >&2
    return 1
  fi
}

# _go_tool NAME MODULE_PATH@VERSION: installs the Go binary NAME at exactly VERSION.
_go_tool() {
  local name=$1 spec=$2 want=${2##*@} bin
  bin=$(command -v "$name" 2>/dev/null || true)
  if [ -n "$bin" ] && go version -m "$bin" 2>/dev/null | awk '$1 == "mod" { print $3 }' | grep -qx "$want"; then
    return 0
  fi
  echo "tools: go install $spec" >&2
  go install "$spec" >&2
}

ensure_tools() {
  _have redis-server || _apt_install redis-server || return 1
  _have redis-cli || _apt_install redis-tools || return 1
  if ! _have go; then
    echo "tools: Go is needed (grpcurl, the Go client); install it with: sudo apt-get install -y golang-go" >&2
    return 1
  fi
  export PATH="$(go env GOPATH)/bin:$PATH"
  _go_tool grpcurl "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION" || return 1
  _go_tool ghz "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION" || return 1
  _go_tool protoc-gen-go "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION" || return 1
  _go_tool protoc-gen-go-grpc "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION" || return 1
  if ! python3 -m venv --help >/dev/null 2>&1; then
    _apt_install python3-venv || return 1
  fi
}
