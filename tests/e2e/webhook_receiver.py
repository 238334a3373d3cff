#!/usr/bin/python3
# A local alert webhook receiver for the tests and bench/detect.sh:
# listens on 127.0.0.1 (free port, written to PORTFILE), checks each POST's
# X-Kiln-Signature (HMAC-SHA256 of "<X-Kiln-Timestamp>.<body>" with the key
# in KEYFILE) and appends one JSON line per request to OUT:
#   {"arrived": unix time (float), "valid": bool, "fresh": bool,
#    "status": the status it answered, "alert": the parsed body}
# The first FAIL_FIRST requests are answered 500 (to test retries).
# Usage: webhook_receiver.py KEYFILE PORTFILE OUT [FAIL_FIRST]
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

key = open(sys.argv[1], "rb").read().rstrip(b"\r\n")
portfile, out = sys.argv[2], sys.argv[3]
fail_first = int(sys.argv[4]) if len(sys.argv) > 4 else 0
seen = 0


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global seen
        arrived = time.time()
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        ts = self.headers.get("X-Kiln-Timestamp", "")
        sig = self.headers.get("X-Kiln-Signature", "")
        want = "sha256=" + hmac.new(key, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(sig, want)
        fresh = ts.isdigit() and abs(time.time() - int(ts)) < 300
        seen += 1
        status = 500 if seen <= fail_first else (204 if valid and fresh else 401)
        try:
            alert = json.loads(body)
        except ValueError:
            alert = None
        with open(out, "a") as f:
            f.write(json.dumps({"arrived": arrived, "valid": valid, "fresh": fresh,
                                "status": status, "alert": alert}) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        pass


srv = HTTPServer(("127.0.0.1", 0), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os  # noqa: E402
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
