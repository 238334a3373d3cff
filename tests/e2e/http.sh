#!/bin/bash
# The HTTP front: HEAD answers as GET does without a body, a wrong method
# gets 405 with an Allow header, kilnd refuses plain HTTP on a non-loopback
# address, serves TLS when given a certificate and key, and the kiln CLI
# talks to it over https:// trusting a private CA (KILN_CA_CERT) while
# refusing to send its token over plain http:// to a non-loopback host.
. "$KILN_TESTS/e2e/lib.sh"

command -v openssl >/dev/null || bail "openssl is needed to make the test certificate"

# --- methods ---------------------------------------------------------------------
kilnd_start
HDRS=$WORK/headers
HTTP=$(curl -s -I -o "$HDRS" -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" \
  "$KILN_SERVER/v1/projects")
check "HEAD on a GET endpoint: 200 ($HTTP)" -- test "$HTTP" = 200
check "... with the GET's content type" -- grep -qi '^content-type: application/json' "$HDRS"
HTTP=$(curl -s -I -o "$HDRS" -w '%{http_code}' "$KILN_SERVER/v1/projects")
check "HEAD still needs the token: 401 ($HTTP)" -- test "$HTTP" = 401
HTTP=$(curl -s -D "$HDRS" -o "$WORK/body" -w '%{http_code}' -X PUT "$KILN_SERVER/v1/projects")
CODE=$(jget error.code "$WORK/body")
check "PUT /v1/projects: 405 method_not_allowed ($HTTP $CODE)" -- \
  test "$HTTP" = 405 -a "$CODE" = method_not_allowed
check "... with 'Allow: POST, GET, HEAD'" -- \
  grep -qi '^allow: POST, GET, HEAD' "$HDRS"
kilnd_stop

# --- no plain HTTP off loopback --------------------------------------------------
"$KILND" --data "$WORK/data-x" --listen 192.0.2.1:8420 >"$WORK/out" 2>"$WORK/err" </dev/null
RC=$?
check "kilnd refuses a non-loopback listener without TLS (rc=$RC)" -- \
  bash -c "[ $RC -ne 0 ] && grep -q 'refusing plain HTTP' '$WORK/err'"
check "... before binding or creating anything" -- test ! -e "$WORK/data-x/kiln.db"

# --- TLS ---------------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=kiln-test -addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1 ||
  bail "openssl could not make a certificate"
chmod 600 "$WORK/key.pem"
cat >"$WORK/kilnd.yml" <<EOT
tls:
  cert: $WORK/cert.pem
  key: $WORK/key.pem
EOT
KILND_SCHEME=https KILND_CACERT=$WORK/cert.pem kilnd_start --config "$WORK/kilnd.yml"
check "kilnd serves https:// ($KILN_SERVER)" -- \
  curl -sf -o /dev/null --cacert "$WORK/cert.pem" "$KILN_SERVER/v1/health"
HTTP=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://${KILN_SERVER#https://}/v1/health")
check "plain HTTP to the TLS port gets no API answer ($HTTP)" -- test "$HTTP" != 200
k "$ADMIN_TOKEN" project list
check "kiln without the CA: fails, naming the certificate problem (rc=$RC)" -- \
  bash -c "[ $RC -ne 0 ] && grep -qi 'certificate\|SSL\|TLS' '$WORK/err'"
KILN_CA_CERT=$WORK/cert.pem k "$ADMIN_TOKEN" project create tls-$R
check "kiln with KILN_CA_CERT talks https (rc=$RC)" -- test "$RC" -eq 0
mkdir -p "$XDG_CONFIG_HOME/kiln"
printf 'ca_cert = %s\n' "$WORK/cert.pem" >"$XDG_CONFIG_HOME/kiln/config"
chmod 600 "$XDG_CONFIG_HOME/kiln/config"
k "$ADMIN_TOKEN" project list --json
check "... or with 'ca_cert = FILE' in its config file (rc=$RC)" -- \
  bash -c "[ $RC -eq 0 ] && grep -q 'tls-$R' '$WORK/out'"
rm -f "$XDG_CONFIG_HOME/kiln/config"
kilnd_stop

# --- the CLI keeps its token off clear-text networks ------------------------------
KILN_SERVER=http://192.0.2.1:8420 k "$ADMIN_TOKEN" jobs
check "kiln refuses http:// to a non-loopback host (rc=$RC)" -- \
  bash -c "[ $RC -ne 0 ] && grep -q 'refusing to send the token over plain http' '$WORK/err'"
KILN_SERVER=http://localhost:1 k "$ADMIN_TOKEN" jobs
check "... but not to localhost (it tries, and fails to connect)" -- \
  bash -c "! grep -q 'refusing' '$WORK/err'"
KILN_SERVER=http://127.0.0.1.example:1 k "$ADMIN_TOKEN" jobs
check "... a name that only starts like 127. is not loopback" -- \
  grep -q 'refusing to send the token' "$WORK/err"

done_testing
