#!/usr/bin/env python3
"""Console-socket receiver for tests: listens on SOCKET, receives one pty master over
SCM_RIGHTS, optionally writes INPUT to it, then copies what the container prints to stdout
until the pty closes or TIMEOUT seconds pass. Prints "listening" on stderr when ready."""
import array, os, select, socket, sys, time, fcntl, struct, termios

path = sys.argv[1]
data = sys.argv[2].encode() if len(sys.argv) > 2 else b""
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 20.0
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
sys.stderr.write("listening\n"); sys.stderr.flush()
srv.settimeout(timeout)
conn, _ = srv.accept()
fds = array.array("i")
msg, anc, _flags, _addr = conn.recvmsg(1024, socket.CMSG_SPACE(4 * fds.itemsize))
for level, typ, cdata in anc:
    if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
        fds.frombytes(cdata[: len(cdata) - (len(cdata) % fds.itemsize)])
if not fds:
    sys.stderr.write("no fd received\n"); sys.exit(2)
master = fds[0]
rows, cols = struct.unpack("HHHH", fcntl.ioctl(master, termios.TIOCGWINSZ, b"\0" * 8))[:2]
sys.stderr.write("winsize %d %d\n" % (rows, cols)); sys.stderr.flush()
if data:
    os.write(master, data)
deadline = time.time() + timeout
while time.time() < deadline:
    r, _, _ = select.select([master], [], [], 0.2)
    if not r:
        continue
    try:
        chunk = os.read(master, 4096)
    except OSError:
        break
    if not chunk:
        break
    sys.stdout.buffer.write(chunk); sys.stdout.flush()
