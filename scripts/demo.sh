#!/usr/bin/env bash
# npm run demo: from a fresh Debian 12 machine (as root) to a VM answering in a 2-host lab.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "error NOT_ROOT: the demo needs root (network namespaces, taps)." >&2; exit 1; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ferry() { node dist/src/cli/main.js "$@"; }

step "Installing missing Debian packages"
bash scripts/install-deps.sh
step "Installing npm packages and building"
[[ -d node_modules/better-sqlite3 && -d node_modules/vite ]] || npm ci --no-audit --no-fund
npm run build --silent
step "Building the test guest (cached after the first time)"
ferry image build
step "Bringing up a 2-host lab"
ferry lab up --hosts 2
step "Creating VM demo on h1"
ferry vm delete demo >/dev/null 2>&1 || true
ferry vm create demo --host h1 --memory 256M
ip=$(ferry vm show demo --json | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0,"utf8")).ip)')
step "Asking the guest from the lab's client namespace"
echo "GET http://$ip/health  -> $(ferry lab exec -- curl -s --max-time 5 "http://$ip/health")"
echo "GET http://$ip/boot-id -> $(ferry lab exec -- curl -s --max-time 5 "http://$ip/boot-id")"
echo "GET http://$ip/counter -> $(ferry lab exec -- curl -s --max-time 5 "http://$ip/counter")"
echo "echo on port 7         -> $(printf 'hello ferry\n' | ferry lab exec -- timeout 3 busybox nc "$ip" 7 || true)"
ferry vm list
step "Live-migrating demo to h2 while a client in the lab watches (ping every 5 ms, a TCP echo stream)"
ferry lab exec -- curl -s --max-time 5 "http://$ip/dirty?mbps=5" >/dev/null
ferry move demo --to h2 --probe
step "And back to h1"
ferry move demo --to h1 --probe
echo "GET http://$ip/verify  -> $(ferry lab exec -- curl -s --max-time 5 "http://$ip/verify")"
echo "GET http://$ip/boot-id -> $(ferry lab exec -- curl -s --max-time 5 "http://$ip/boot-id") (unchanged: the guest never rebooted)"
ferry migration list
step "Done"
echo "The lab stays up: try 'node dist/src/cli/main.js vm list', then 'node dist/src/cli/main.js lab down'."
