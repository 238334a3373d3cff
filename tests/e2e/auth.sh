#!/bin/bash
# Authentication and authorisation, judged by the HTTP status and the JSON
# error object: no token, a wrong one, a missing scope, another project's
# jobs and artifacts, an expired and a revoked token; the admin token never
# reaches kilnd's logs.
. "$KILN_TESTS/e2e/lib.sh"

kilnd_start

# err_is STATUS CODE: the last api answer had this status and error.code.
err_is() {
  [ "$HTTP" = "$1" ] && [ "$(jget error.code "$WORK/body")" = "$2" ] &&
    [ -n "$(jget error.message "$WORK/body")" ]
}

# --- 401 --------------------------------------------------------------------------
api "" GET /v1/health
check "GET /v1/health needs no token ($HTTP)" -- test "$HTTP" = 200
api "" GET /v1/jobs
check "no token: 401 with a JSON error unauthorized ($HTTP)" -- err_is 401 unauthorized
api "kiln_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" GET /v1/jobs
check "a well-formed but unknown token: 401 ($HTTP)" -- err_is 401 unauthorized
WRONG="${ADMIN_TOKEN%_*}_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
api "$WRONG" GET /v1/projects
check "the admin token's id with a wrong secret: 401 ($HTTP)" -- err_is 401 unauthorized
api "garbage" GET /v1/jobs
check "a malformed token: 401 ($HTTP)" -- err_is 401 unauthorized
HTTP=$(curl -s -o "$WORK/body" -w '%{http_code}' -H "Authorization: Basic $(printf 'a:b' | base64)" "$KILN_SERVER/v1/jobs")
check "another auth scheme: 401 ($HTTP)" -- err_is 401 unauthorized
k "" jobs
check "kiln without a token: exit 1 saying so (rc=$RC)" -- \
  bash -c "[ $RC -eq 1 ] && grep -q 'no token' '$WORK/err'"
k "$WRONG" jobs
check "kiln with a wrong token: exit 1, the server's message, one line (rc=$RC)" -- \
  bash -c "[ $RC -eq 1 ] && [ \$(wc -l <'$WORK/err') -eq 1 ] && grep -q '^kiln: ' '$WORK/err'"

# --- projects and scoped tokens ------------------------------------------------------
setup_project alpha || bail "cannot set up project alpha"
TOKEN_alpha=$PTOK
setup_project beta || bail "cannot set up project beta"
TOKEN_beta=$PTOK
k "$ADMIN_TOKEN" token create --project alpha --scope read
RO=$(cat "$WORK/out")
check "a read-only token for alpha (rc=$RC)" -- test "$RC" -eq 0 -a -n "$RO"

mksrc "$WORK/src" "echo built-$R; mkdir -p out; echo alpha-secret-$R > out/secret.txt" "artifacts: [out/]"
N0=$(jobs_count "$TOKEN_alpha" alpha)
k "$RO" submit --project alpha "$WORK/src"
check "a read-only token cannot submit: kiln exits 1 (rc=$RC)" -- test "$RC" -eq 1
api "$RO" POST /v1/jobs -F project=alpha -F "spec=<$WORK/src/kiln.yml" -F "source=@/dev/null"
check "... and the API says 403 forbidden ($HTTP)" -- err_is 403 forbidden
check "... and nothing was queued" -- test "$(jobs_count "$TOKEN_alpha" alpha)" = "$N0"

submit "$TOKEN_alpha" alpha "$WORK/src"
AJOB=$JOB
S=$(wait_final "$TOKEN_alpha" "$AJOB" 120)
check "alpha's job ran ($S)" -- test "$S" = succeeded
api "$TOKEN_alpha" GET "/v1/jobs/$AJOB/artifacts"
ASHA=$(jget artifacts.0.sha256 "$WORK/body")
check "alpha's job has an artifact" -- test "${#ASHA}" -eq 64

api "$TOKEN_beta" GET "/v1/jobs/$AJOB"
check "beta's token cannot read alpha's job: 403/404 ($HTTP)" -- \
  bash -c "[ '$HTTP' = 403 ] || [ '$HTTP' = 404 ]"
api "$TOKEN_beta" GET "/v1/jobs/$AJOB/log"
check "... nor its log ($HTTP)" -- bash -c "[ '$HTTP' = 403 ] || [ '$HTTP' = 404 ]"
check "... and the answer does not leak it" -- bash -c "! grep -q 'built-$R' '$WORK/body'"
api "$TOKEN_beta" GET "/v1/jobs/$AJOB/artifacts"
check "... nor its artifact list ($HTTP)" -- bash -c "[ '$HTTP' = 403 ] || [ '$HTTP' = 404 ]"
api "$TOKEN_beta" GET "/v1/artifacts/$ASHA"
check "... nor fetch its artifact by digest ($HTTP)" -- \
  bash -c "([ '$HTTP' = 403 ] || [ '$HTTP' = 404 ]) && ! grep -q 'alpha-secret' '$WORK/body'"
api "$TOKEN_beta" POST "/v1/jobs/$AJOB/cancel"
check "... nor cancel it ($HTTP)" -- bash -c "[ '$HTTP' = 403 ] || [ '$HTTP' = 404 ]"
api "$TOKEN_beta" GET "/v1/jobs?project=alpha"
check "... nor list alpha's jobs ($HTTP)" -- bash -c "[ '$HTTP' = 403 ] || [ '$HTTP' = 404 ]"
api "$TOKEN_beta" GET "/v1/jobs"
check "beta's unfiltered job list has none of alpha's jobs" -- \
  bash -c "[ '$HTTP' = 200 ] && [ \"\$(python3 -c 'import json,sys; print(sum(j[\"project\"]!=\"beta\" for j in json.load(open(sys.argv[1]))[\"jobs\"]))' '$WORK/body')\" = 0 ]"
k "$TOKEN_beta" submit --project alpha "$WORK/src"
check "beta's token cannot submit to alpha (rc=$RC)" -- test "$RC" -eq 1
k "$TOKEN_beta" fetch "$AJOB" -o "$WORK/stolen"
check "kiln fetch with beta's token: exit 1, nothing written (rc=$RC)" -- \
  bash -c "[ $RC -eq 1 ] && [ -z \"\$(find '$WORK/stolen' -type f 2>/dev/null)\" ]"
api "$TOKEN_alpha" GET "/v1/artifacts/$ASHA"
check "alpha's own token fetches it ($HTTP)" -- \
  bash -c "[ '$HTTP' = 200 ] && grep -q 'alpha-secret-$R' '$WORK/body'"

# --- admin scope ------------------------------------------------------------------------
api "$TOKEN_alpha" GET /v1/tokens
check "a project token cannot list tokens: 403 ($HTTP)" -- err_is 403 forbidden
api "$TOKEN_alpha" POST /v1/projects -H 'Content-Type: application/json' -d '{"name":"gamma"}'
check "... nor create projects: 403 ($HTTP)" -- err_is 403 forbidden
k "$TOKEN_alpha" token create --project alpha --scope admin
check "kiln token create with a project token: exit 1 (rc=$RC)" -- test "$RC" -eq 1

# --- expiry and revocation ---------------------------------------------------------------
k "$ADMIN_TOKEN" token create --project alpha --scope read --expires 1s
EXP=$(cat "$WORK/out")
check "a token that expires in 1 s (rc=$RC)" -- test "$RC" -eq 0 -a -n "$EXP"
sleep 2.2
api "$EXP" GET "/v1/jobs/$AJOB"
check "after 2 s it is refused: 401 ($HTTP)" -- err_is 401 unauthorized
k "$ADMIN_TOKEN" token create --project alpha --scope read
REV=$(cat "$WORK/out")
api "$REV" GET "/v1/jobs/$AJOB"
check "a fresh token works ($HTTP)" -- test "$HTTP" = 200
REVID=${REV:5:12}
k "$ADMIN_TOKEN" token revoke "$REVID"
check "kiln token revoke: exit 0 (rc=$RC)" -- test "$RC" -eq 0
api "$REV" GET "/v1/jobs/$AJOB"
check "a revoked token: 401 ($HTTP)" -- err_is 401 unauthorized
k "$ADMIN_TOKEN" token list
check "kiln token list shows it revoked" -- grep -Eq "^$REVID .*revoked" "$WORK/out"
k "$ADMIN_TOKEN" token revoke 000000000000
check "revoking an unknown token: exit 1 (rc=$RC)" -- test "$RC" -eq 1

# --- secrets in logs ------------------------------------------------------------------------
kilnd_stop
check "the admin token is not in kilnd's stdout/stderr" -- \
  bash -c "! grep -qF -- '$ADMIN_TOKEN' '$KILND_OUT' '$KILND_ERR' && ! grep -qF -- '${ADMIN_TOKEN#kiln_*_}' '$KILND_OUT' '$KILND_ERR'"
check "no other token's secret is either" -- \
  bash -c "! grep -qF -e '${TOKEN_alpha#kiln_*_}' -e '${RO#kiln_*_}' -e '${REV#kiln_*_}' '$KILND_OUT' '$KILND_ERR'"
check "admin-token is mode 0600" -- test "$(stat -c %a "$DATA/admin-token")" = 600
done_testing
