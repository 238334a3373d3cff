#!/bin/bash
# Egress through kilnd's proxy, against a fake internet the test makes:
# kilnd (and this script) run in network namespace A (nsenter: only the
# network namespace changes, so the cgroup mounts stay visible); the "internet" is
# namespace B, joined to A by a veth pair, with an HTTP server on
# 203.0.113.2:80, a TLS server on :443 (self-signed) and a UDP listener on
# :53 that records whatever reaches it. No other network carries traffic.
#
# A build allowed pkg.fake.test:80 and :443 fetches both through the proxy;
# a host not in the allowlist, an allowed host on another port, a name that
# resolves to a private address, a raw TCP connection and a DNS query all
# fail, are recorded, and never reach the fake internet (its own logs say
# so). Audit mode lets traffic through and records it; `kiln egress
# suggest` turns that into an allowlist that then works in block mode.
set -u
if [ -z "${KILN_EGRESS_IN_NETNS:-}" ]; then
  [ "$(id -u)" -eq 0 ] || {
    if [ "${CI:-}" = true ]; then echo "not ok 1 - needs root (network namespaces)"; echo "1..1"; exit 1; fi
    echo "1..0 # SKIP needs root (network namespaces)"; exit 0
  }
  TAG=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
  NA=kiln-a-$TAG NB=kiln-b-$TAG
  cleanup_ns() {
    [ -n "${SRV_PID:-}" ] && kill "$SRV_PID" 2>/dev/null
    ip netns del "$NA" 2>/dev/null
    ip netns del "$NB" 2>/dev/null
  }
  trap cleanup_ns EXIT
  ip netns add "$NA" && ip netns add "$NB" || { echo "Bail out! ip netns add failed"; exit 1; }
  ip -n "$NA" link set lo up
  ip -n "$NB" link set lo up
  ip link add "va-$TAG" netns "$NA" type veth peer name "vb-$TAG" netns "$NB" ||
    { echo "Bail out! veth failed"; exit 1; }
  ip -n "$NA" addr add 203.0.113.1/24 dev "va-$TAG"
  ip -n "$NB" addr add 203.0.113.2/24 dev "vb-$TAG"
  ip -n "$NA" link set "va-$TAG" up
  ip -n "$NB" link set "vb-$TAG" up
  FAKE=$(mktemp -d /tmp/kiln-fake.XXXXXX)
  chmod 755 "$FAKE"
  echo "FAKE-INTERNET-HELLO-$TAG" >"$FAKE/hello.txt"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=pkg.fake.test -addext 'subjectAltName=DNS:pkg.fake.test' \
    -keyout "$FAKE/key.pem" -out "$FAKE/cert.pem" >/dev/null 2>&1 ||
    { echo "Bail out! openssl"; exit 1; }
  cat >"$FAKE/server.py" <<'PY'
import http.server, socket, ssl, sys, threading, os
root = sys.argv[1]
os.chdir(root)
log = open(os.path.join(root, "requests.log"), "a", buffering=1)
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        log.write("%s %s %s\n" % (self.server.server_port, self.headers.get("Host"), self.requestline))
def serve(port, tls):
    s = http.server.ThreadingHTTPServer(("203.0.113.2", port), H)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain("cert.pem", "key.pem")
        s.socket = ctx.wrap_socket(s.socket, server_side=True)
    s.serve_forever()
def dns():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", 53))
    while True:
        d, a = u.recvfrom(2048)
        log.write("UDP53 %d bytes from %s\n" % (len(d), a[0]))
for p, t in ((80, False), (8080, False), (443, True)):
    threading.Thread(target=serve, args=(p, t), daemon=True).start()
threading.Thread(target=dns, daemon=True).start()
open(os.path.join(root, "ready"), "w").close()
threading.Event().wait()
PY
  nsenter --net=/run/netns/"$NB" python3 "$FAKE/server.py" "$FAKE" >"$FAKE/server.out" 2>&1 &
  SRV_PID=$!
  for _ in $(seq 1 100); do [ -e "$FAKE/ready" ] && break; sleep 0.05; done
  [ -e "$FAKE/ready" ] || { echo "Bail out! the fake internet did not start"; cat "$FAKE/server.out"; exit 1; }
  KILN_EGRESS_IN_NETNS=1 FAKE=$FAKE nsenter --net=/run/netns/"$NA" bash "$0"
  RC=$?
  rm -rf "$FAKE"
  exit $RC
fi

. "$KILN_TESTS/e2e/lib.sh"

# kilnd runs with the capability bounding set of contrib/kilnd.service, so
# that egress is known to work under the unit as shipped.
CAPS=$(sed -n 's/^CapabilityBoundingSet=//p' "$KILN_TESTS/../contrib/kilnd.service" |
  tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
[ -n "$CAPS" ] || bail "no CapabilityBoundingSet in contrib/kilnd.service"
printf '#!/bin/sh\nexec setpriv --bounding-set -all,%s "%s" "$@"\n' "$CAPS" "$KILND" \
  >"$WORK/kilnd-unit-caps"
chmod +x "$WORK/kilnd-unit-caps"
KILND=$WORK/kilnd-unit-caps

# The fake internet is reachable from here (namespace A) and nowhere else.
check "the fake internet answers in namespace A" -- \
  curl -sf --max-time 5 -o /dev/null http://203.0.113.2/hello.txt
MARK=$(cat "$FAKE/hello.txt")
: >"$FAKE/requests.log"

cat >"$WORK/kilnd.yml" <<EOF
egress:
  hosts:
    pkg.fake.test: 203.0.113.2
    other.fake.test: 203.0.113.2
    private.fake.test: 10.9.9.9
    meta.fake.test: 169.254.169.254
EOF
mkdir -p "$WORK/data/policies"
cat >"$WORK/data/policies/net.yml" <<'EOF'
network:
  mode: allowlist
  enforcement: block
  allow: ["pkg.fake.test:80", "pkg.fake.test:443", "private.fake.test:80", "meta.fake.test:80"]
EOF
cat >"$WORK/data/policies/aud.yml" <<'EOF'
network: {mode: allowlist, enforcement: audit, allow: []}
EOF
kilnd_start --config "$WORK/kilnd.yml"
setup_project net || bail "project net"
TOK=$PTOK
setup_project aud || bail "project aud"
ATOK=$PTOK
setup_project closed || bail "project closed"
CTOK=$PTOK

# --- a build with egress -----------------------------------------------------------------
mkdir -p "$WORK/src"
cp "$FAKE/cert.pem" "$WORK/src/ca.pem"
cat >"$WORK/src/dns.py" <<'EOF'
import socket
q = bytes.fromhex("12340100000100000000000005657866696c0466616b65047465737400" + "00010001")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.sendto(q, ("203.0.113.2", 53))
    s.settimeout(3)
    s.recvfrom(512)
    print("dns=answered")
except OSError as e:
    print("dns=failed", e.__class__.__name__)
EOF
mksrc "$WORK/src" "set +e
mkdir -p out
env | grep -i _proxy= | sort > out/env.txt
curl -sS --max-time 10 -o out/http.txt http://pkg.fake.test/hello.txt; echo \"http=\$?\"
curl -sS --max-time 10 --cacert ca.pem -o out/https.txt https://pkg.fake.test/hello.txt; echo \"https=\$?\"
curl -fsS --max-time 10 http://other.fake.test/hello.txt; echo \"other=\$?\"
curl -fsS --max-time 10 http://pkg.fake.test:8080/hello.txt; echo \"port=\$?\"
curl -fsS --max-time 10 http://private.fake.test/; echo \"private=\$?\"
curl -fsS --max-time 10 http://meta.fake.test/latest/meta-data/; echo \"meta=\$?\"
curl -sS --noproxy '*' --max-time 10 http://203.0.113.2/hello.txt; echo \"raw=\$?\"
python3 dns.py
true" "network: egress" "artifacts: [out/]"
submit "$TOK" net "$WORK/src"
S=$(wait_final "$TOK" "$JOB" 120)
check "the egress job ran ($S)" -- test "$S" = succeeded
EJOB=$JOB
k "$TOK" logs "$EJOB"
cp "$WORK/out" "$WORK/elog"
diag_file "$WORK/elog" 60
k "$TOK" fetch "$EJOB" -o "$WORK/fetched"
check "HTTP_PROXY, HTTPS_PROXY, NO_PROXY (and lowercase) are set for the build" -- \
  bash -c "grep -q '^HTTP_PROXY=http://127.0.0.1:3128' '$WORK/fetched/out/env.txt' &&
           grep -q '^https_proxy=http://127.0.0.1:3128' '$WORK/fetched/out/env.txt' &&
           grep -q '^NO_PROXY=' '$WORK/fetched/out/env.txt'"
check "allowlisted host, HTTP: fetched through the proxy" -- grep -q "$MARK" "$WORK/fetched/out/http.txt"
check "allowlisted host, HTTPS (CONNECT, TLS untouched): fetched" -- grep -q "$MARK" "$WORK/fetched/out/https.txt"
check "a host not in the allowlist: curl fails" -- grep -q 'other=[1-9]' "$WORK/elog"
check "an allowlisted host on another port: curl fails" -- grep -q 'port=[1-9]' "$WORK/elog"
check "a name that resolves to a private address: curl fails" -- grep -q 'private=[1-9]' "$WORK/elog"
check "a name that resolves to the metadata address: curl fails" -- grep -q 'meta=[1-9]' "$WORK/elog"
check "a raw TCP connection ignoring the proxy: fails" -- grep -q 'raw=[1-9]' "$WORK/elog"
check "a DNS query from inside: no answer" -- grep -q 'dns=failed' "$WORK/elog"
check "the job's log names each denial and the policy setting" -- \
  bash -c "grep -q 'egress: http other.fake.test:80 denied: .*network.allow' '$WORK/elog' &&
           grep -q 'egress: http pkg.fake.test:8080 denied' '$WORK/elog' &&
           grep -q 'egress: http private.fake.test:80 denied: .*10.9.9.9 (private)' '$WORK/elog' &&
           grep -q 'egress: http meta.fake.test:80 denied: .*169.254.169.254' '$WORK/elog' &&
           grep -q 'egress: tcp 203.0.113.2:80 denied' '$WORK/elog' &&
           grep -q 'egress: dns exfil.fake.test:53 denied' '$WORK/elog'"

# From the fake internet's side: exactly the two allowed requests arrived.
sleep 0.5
diag_file "$FAKE/requests.log" 20
check "the fake internet saw the allowed HTTP request" -- \
  grep -q '^80 pkg.fake.test GET /hello.txt' "$FAKE/requests.log"
check "... and the HTTPS one" -- grep -q '^443 pkg.fake.test GET /hello.txt' "$FAKE/requests.log"
check "... and nothing else: no other host, no port 8080, no raw connection, no DNS" -- \
  test "$(wc -l <"$FAKE/requests.log")" -eq 2

k "$TOK" egress "$EJOB" --json
cp "$WORK/out" "$WORK/attempts.json"
N=$(jget 'attempts.#' "$WORK/attempts.json")
check "kiln egress JOB lists every attempt ($N)" -- test "${N:-0}" -ge 8
python3 - "$WORK/attempts.json" >"$WORK/summary" <<'EOF'
import json, sys
a = json.load(open(sys.argv[1]))["attempts"]
for x in a:
    print(x["kind"], x["host"] or x["addr"], x["port"], "allowed" if x["allowed"] else "denied",
          x["bytes_up"], x["bytes_down"])
EOF
diag_file "$WORK/summary" 20
check "... allowed ones with bytes both ways" -- \
  bash -c "grep -q '^http pkg.fake.test 80 allowed [1-9][0-9]* [1-9]' '$WORK/summary' &&
           grep -q '^connect pkg.fake.test 443 allowed [1-9][0-9]* [1-9]' '$WORK/summary'"
check "... denied ones: other host, other port, private, metadata, raw TCP, DNS" -- \
  bash -c "grep -q '^http other.fake.test 80 denied' '$WORK/summary' &&
           grep -q '^http pkg.fake.test 8080 denied' '$WORK/summary' &&
           grep -q '^http private.fake.test 80 denied' '$WORK/summary' &&
           grep -q '^http meta.fake.test 80 denied' '$WORK/summary' &&
           grep -q '^tcp 203.0.113.2 80 denied' '$WORK/summary' &&
           grep -q '^dns exfil.fake.test 53 denied' '$WORK/summary'"
k "$TOK" egress "$EJOB"
check "kiln egress JOB prints a table" -- grep -q 'other.fake.test:80.*denied' "$WORK/out"

# --- no egress unless policy grants it ------------------------------------------------
mksrc "$WORK/none" "set +e
curl -sS --max-time 5 http://pkg.fake.test/hello.txt; echo \"none=\$?\"; env | grep -ci _proxy= || true"
submit "$TOK" net "$WORK/none"
S=$(wait_final "$TOK" "$JOB" 120)
k "$TOK" logs "$JOB"
check "network: none (the default) in the same project: no proxy, no way out ($S)" -- \
  bash -c "grep -q 'none=[1-9]' '$WORK/out' && ! grep -q 'egress:' '$WORK/out'"
mksrc "$WORK/closed" "echo hi" "network: egress"
k "$CTOK" submit --project closed "$WORK/closed"
check "network: egress under a policy without an allowlist: refused at submit (rc=$RC)" -- \
  bash -c "[ $RC -ne 0 ] && grep -q 'network' '$WORK/err'"

# --- audit mode, and egress suggest --------------------------------------------------------
: >"$FAKE/requests.log"
mksrc "$WORK/aud" "set +e
curl -sS --max-time 10 http://other.fake.test/hello.txt; echo \"aud=\$?\"
curl -sS --max-time 10 --cacert ca.pem https://pkg.fake.test/hello.txt; echo \"aud2=\$?\"" "network: egress"
cp "$FAKE/cert.pem" "$WORK/aud/ca.pem"
submit "$ATOK" aud "$WORK/aud"
S=$(wait_final "$ATOK" "$JOB" 120)
k "$ATOK" logs "$JOB"
check "audit mode: the unlisted hosts are reached ($S)" -- \
  bash -c "grep -q 'aud=0' '$WORK/out' && grep -q 'aud2=0' '$WORK/out' && grep -q \"$MARK\" '$WORK/out'"
check "... and each is recorded in the log as allowed in audit mode" -- \
  grep -q 'egress: http other.fake.test:80 allowed (audit mode)' "$WORK/out"
k "$ATOK" egress suggest aud
cp "$WORK/out" "$WORK/suggest"
diag_file "$WORK/suggest" 12
check "kiln egress suggest proposes exactly what was used" -- \
  bash -c "grep -q '\"other.fake.test:80\"' '$WORK/suggest' && grep -q '\"pkg.fake.test:443\"' '$WORK/suggest' &&
           [ \$(grep -c '^    - ' '$WORK/suggest') -eq 2 ]"
# The suggestion, in block mode, lets the same build through.
sed -n '/^network:/,$p' "$WORK/suggest" >"$WORK/data/policies/aud.yml"
k "$ADMIN_TOKEN" policy reload
check "the suggested policy loads (rc=$RC)" -- test "$RC" -eq 0
submit "$ATOK" aud "$WORK/aud"
S=$(wait_final "$ATOK" "$JOB" 120)
k "$ATOK" logs "$JOB"
check "in block mode with the suggested allowlist, the same build gets through" -- \
  bash -c "grep -q 'aud=0' '$WORK/out' && grep -q 'aud2=0' '$WORK/out' && grep -q 'block mode' '$WORK/out'"

# The audit log (docs/audit.md): refused attempts and policy loads, once
# a checkpoint covers them (one is signed within a second).
wait_audit_caught_up
k "$ADMIN_TOKEN" audit show --json
check "the audit log has a sandbox.violation for the refused egress" -- \
  grep -q '"kind":"sandbox.violation".*"violation":"egress".*"denied":[1-9]' "$WORK/out"
check "the audit log has the policy reload" -- \
  grep -q '"kind":"policy.loaded".*"digest":"sha256:' "$WORK/out"

check "kilnd is still healthy" -- healthy
done_testing
