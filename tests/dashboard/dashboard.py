#!/usr/bin/python3
# The dashboard in headless Chromium, against a real kilnd (started by
# tests/e2e/dashboard.sh, which also submits the jobs): login sets an
# HttpOnly Secure cookie, the jobs page lists the jobs, a job's live log
# updates while it runs, and build output made of HTML/JS is shown as text
# and runs nothing. Screenshots go to $KILN_SCREENSHOTS. TAP on stdout.
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cdp  # noqa: E402

SERVER = os.environ["KILN_SERVER"]
TOKEN = os.environ["DASH_TOKEN"]
ADMIN = os.environ["DASH_ADMIN"]
J_INJECT = int(os.environ["JOB_INJECT"])
J_LIVE = int(os.environ["JOB_LIVE"])
MARK = os.environ["MARK"]
SHOTS = os.environ["KILN_SCREENSHOTS"]
os.makedirs(SHOTS, exist_ok=True)

n = 0
failed = 0


def ok(cond, desc, diag=None):
    global n, failed
    n += 1
    print(("ok" if cond else "not ok") + f" {n} - {desc}", flush=True)
    if not cond:
        failed += 1
        if diag is not None:
            for line in str(diag).splitlines()[:20]:
                print("#   " + line, flush=True)


binary = cdp.find_chromium()
if binary is None:
    if os.environ.get("CI") == "true":
        print("not ok 1 - chromium missing (Debian package chromium)\n1..1")
        sys.exit(1)
    print("1..0 # SKIP chromium missing (apt install chromium)")
    sys.exit(0)

b = cdp.Browser(binary)
try:
    b.send("Page.enable")
    b.send("Runtime.enable")
    b.send("Network.enable")
    b.send("Log.enable")

    # ---- login ----
    b.navigate(SERVER + "/")
    ok(b.wait_for("!!document.getElementById('token')"), "the login form is shown")
    b.screenshot(os.path.join(SHOTS, "01-login.png"))
    b.eval("document.getElementById('token').value = 'kiln_000000000000_" + "A" * 43 + "';"
           "document.getElementById('login-button').click(); true")
    ok(b.wait_for("document.getElementById('login-error') && "
                  "document.getElementById('login-error').textContent.includes('refused')"),
       "a wrong token is refused")
    b.eval(f"document.getElementById('token').value = {json.dumps(TOKEN)};"
           "document.getElementById('login-button').click(); true")
    ok(b.wait_for("!!document.getElementById('jobs-body')"), "login leads to the jobs page")
    cookies = b.send("Network.getCookies", urls=[SERVER + "/"]).get("cookies", [])
    sess = [c for c in cookies if c["name"] == "kiln_session"]
    ok(len(sess) == 1, "the session cookie is kept (loopback http counts as secure)", cookies)
    if sess:
        c = sess[0]
        ok(c.get("httpOnly") and c.get("secure") and c.get("sameSite") == "Strict",
           "the cookie is HttpOnly, Secure, SameSite=Strict", c)
    ok("kiln_session" not in (b.eval("document.cookie") or ""),
       "scripts on the page cannot read the session cookie")
    ok(TOKEN not in (b.eval("document.documentElement.outerHTML") or ""),
       "the token is not left in the page")

    # ---- jobs ----
    ok(b.wait_for(f"!!document.querySelector('tr[data-job=\"{J_INJECT}\"]')"),
       "the jobs page lists the job")
    b.screenshot(os.path.join(SHOTS, "02-jobs.png"))
    ok(b.wait_for(f"(document.querySelector('tr[data-job=\"{J_INJECT}\"]') || "
                  "{textContent: ''}).textContent.includes('⚑')"),
       "the jobs list flags the job that raised an alert")
    b.navigate(SERVER + "/#/jobs?state=running")
    ok(b.wait_for("document.getElementById('jobs-status') && "
                  "/job\\(s\\)/.test(document.getElementById('jobs-status').textContent)"),
       "the jobs page filters by state")
    ok(not b.eval(f"!!document.querySelector('tr[data-job=\"{J_INJECT}\"]')"),
       "a finished job is not listed under state=running")

    # ---- the injection job ----
    b.events.clear()
    b.navigate(SERVER + f"/#/job/{J_INJECT}")
    ok(b.wait_for(f"document.getElementById('log') && "
                  f"document.getElementById('log').textContent.includes('END-{MARK}')", 30),
       "the hostile job's log is shown to the end")
    b.wait_for("!!document.getElementById('artifacts-body')", 10)
    b.pump(1.5)
    b.screenshot(os.path.join(SHOTS, "03-injection.png"))
    log_text = b.eval("document.getElementById('log').textContent") or ""
    ok(f'<script>window.__pwned=2;fetch("/pwned-script-{MARK}")</script>' in log_text,
       "a <script> line of the log appears literally")
    ok(f"<img src=/pwned-img-{MARK}" in log_text, "an <img onerror> line appears literally")
    arts = b.eval("document.getElementById('artifacts-body').textContent") or ""
    ok(f"<img src=pwned-file-{MARK} onerror=window.__pwned=4>.txt" in arts,
       "an artifact named with HTML appears literally", arts)
    script = b.eval("(document.getElementById('job-script') || {}).textContent") or ""
    ok("<svg onload=" in script, "the spec's script field appears literally")
    ok(b.eval("typeof window.__pwned") == "undefined", "no payload set window.__pwned")
    ok(b.eval("document.querySelectorAll('main img, main script, main svg, main iframe').length")
       == 0, "no element was created from build output")
    urls = [e["params"]["request"]["url"] for e in b.events
            if e["method"] == "Network.requestWillBeSent"]
    ok(not [u for u in urls if "pwned" in u],
       "no request to a payload URL was made", [u for u in urls if "pwned" in u])
    dialogs = [e for e in b.events if e["method"] == "Page.javascriptDialogOpening"]
    ok(not dialogs, "no dialog was opened")
    ok(b.eval("document.getElementById('job-violations').textContent.includes('denied syscall')"),
       "the denied syscall is listed among the violations")
    ok(b.eval("document.getElementById('job-violations').textContent.includes("
              "'first_denied_syscall')"),
       "the job's first denied syscall is flagged as an alert on its page")
    ok(b.eval("document.getElementById('job-network').textContent.length > 0"),
       "the network section renders")
    ok(b.eval("document.getElementById('job-provenance').textContent.length > 0"),
       "the provenance section renders (or says it is not available)")

    # ---- the live log ----
    b.navigate(SERVER + f"/#/job/{J_LIVE}")
    ok(b.wait_for("document.getElementById('log') && "
                  f"document.getElementById('log').textContent.includes('tick-{MARK}')", 40),
       "the running job's log starts to show")
    state1 = b.eval("(document.getElementById('job-state') || {}).textContent")
    n1 = b.eval(f"document.getElementById('log').textContent.split('tick-{MARK}').length - 1")
    b.pump(2.5)
    n2 = b.eval(f"document.getElementById('log').textContent.split('tick-{MARK}').length - 1")
    b.screenshot(os.path.join(SHOTS, "04-live-log.png"))
    ok(state1 == "running" and n2 > n1,
       f"the log grows while the job runs (state {state1}, {n1} -> {n2} lines)")
    ok(b.wait_for("document.getElementById('log').textContent.includes('done-" + MARK + "')", 60),
       "the log reaches the job's last line")
    ok(b.wait_for("(document.getElementById('job-state') || {}).textContent === 'succeeded'", 20),
       "the state updates to succeeded at the end")
    final_log = b.eval("document.getElementById('log').textContent")
    ok(final_log.count(f"tick-{MARK} 1\n") == 1, "no line is shown twice (no replay)")

    # ---- a job that printed a granted secret ----
    if os.environ.get("JOB_SECRET"):
        import base64
        secret = os.environ["SECRET_VALUE"]
        b.navigate(SERVER + f"/#/job/{os.environ['JOB_SECRET']}")
        ok(b.wait_for(f"document.getElementById('log') && "
                      f"document.getElementById('log').textContent.includes('SEC-END-{MARK}')", 30),
           "the secret job's log is shown to the end")
        b.pump(1.0)
        page = b.eval("document.body.innerText") or ""
        b64 = base64.b64encode(secret.encode()).decode()
        ok(secret not in page and b64 not in page and b64[:-4] not in page,
           "the granted secret appears nowhere on the page, raw or base64")
        ok("***" in (b.eval("document.getElementById('log').textContent") or ""),
           "the log shows the mask where the secret was")

    # ---- security and policy ----
    b.navigate(SERVER + "/#/security")
    ok(b.wait_for("document.getElementById('sec-events') && "
                  "document.getElementById('sec-events').textContent.length > 0"),
       "the security page loads")
    b.pump(0.5)
    ok(b.wait_for("document.getElementById('sec-alerts').textContent.includes("
                  "'first_denied_syscall')"),
       "the security page lists the alert")
    b.screenshot(os.path.join(SHOTS, "05-security.png"))
    b.navigate(SERVER + "/#/policy")
    ok(b.wait_for("document.getElementById('policy') && "
                  "document.getElementById('policy').textContent.length > 0"),
       "the policy page loads (or says it is not available)")
    ok(b.wait_for("document.getElementById('policy').textContent.includes('Digest')"),
       "the policy page shows the project's effective policy and its digest")
    b.screenshot(os.path.join(SHOTS, "06-policy.png"))

    # ---- CSP violations and console errors from our own code ----
    errs = [e for e in b.events if e["method"] == "Runtime.exceptionThrown"]
    ok(not errs, "no uncaught exception in the dashboard", errs[:3])

    # ---- logout ----
    b.eval("document.getElementById('logout').click(); true")
    ok(b.wait_for("!!document.getElementById('token')"), "logout shows the login form")
    b.navigate(SERVER + "/#/jobs")
    ok(b.wait_for("!!document.getElementById('token')"), "after logout the jobs page needs a login")

    # ---- an operator's security page (a token for all projects) ----
    b.eval(f"document.getElementById('token').value = {json.dumps(ADMIN)};"
           "document.getElementById('login-button').click(); true")
    ok(b.wait_for("!!document.getElementById('jobs-body')"), "the admin token logs in")
    b.navigate(SERVER + "/#/security")
    ok(b.wait_for("document.getElementById('sec-events').textContent.includes('login')"),
       "the security page lists the refused login among the authentication failures")
    ok(b.wait_for("document.getElementById('sec-violations').textContent.includes("
                  "'denied_syscall')"),
       "the security page lists the job's denied syscall among the recent violations")
    b.screenshot(os.path.join(SHOTS, "07-security-admin.png"))
finally:
    b.close()

print(f"1..{n}")
sys.exit(1 if failed else 0)
