#!/usr/bin/env bash
# `npm test`: installs any missing system tool it can (see .ci/tools.sh), then type-checks and runs
# every test: rules, store contract (in-process, Redis, Redis Cluster), gRPC, grpcurl, generated
# code freshness, and each language client's own suite against a live server.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../.ci/tools.sh
source .ci/tools.sh
ensure_tools
[ -d node_modules ] || npm ci --no-audit --no-fund
echo "typecheck: tsc --noEmit"
npx tsc --noEmit -p tsconfig.json
# With arguments (e.g. `npm test -- test/server/watch.test.ts`), only those files run.
if [ $# -eq 0 ]; then set -- 'test/**/*.test.ts'; fi
npx mocha "$@"
