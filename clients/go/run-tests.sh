#!/usr/bin/env bash
# Checks and tests the Go client: gofmt, go mod tidy, go vet, then every test against the live
# Council server at COUNCIL_TEST_ADDR (host:port). Exits non-zero if anything fails.
#
#   COUNCIL_TEST_ADDR=127.0.0.1:50051 bash clients/go/run-tests.sh
set -euo pipefail
cd "$(dirname "$0")"

unformatted=$(gofmt -l .)
if [[ -n "$unformatted" ]]; then
  echo "run-tests.sh: not gofmt-ed:" $unformatted >&2
  exit 1
fi
go mod tidy -diff
go vet ./...

if [[ -z "${COUNCIL_TEST_ADDR:-}" ]]; then
  echo "run-tests.sh: COUNCIL_TEST_ADDR is not set; start a Council server and set it to its host:port" >&2
  exit 1
fi
go test -count=1 ./...
