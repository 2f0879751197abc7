"""nfc_py.py - a small VMware NFC client (authd + classic + AIO NFC) in Python 3.

Written from /work/shared/reference/nfc-protocol.md, independently of the
project's C client, to drive nfcd (tests/nfc/nfcd.c) in its own tests and
in other tests that need a second opinion.  Only the standard library.

    c = Conn("127.0.0.1", port)
    c.authd(session_id, "vpxa-nfc", ssl_mode=False, sha1="AA:BB:...")
    c.classic()                          # C43 C33 S36 C51 S51 C54 C55 C52 S52
    c.aio_prologue(buf_size=65536, buf_count=4)
    f = c.open_file("[ds] vm/disk.vmdk", rw=False)   # dict: handle, capacity...
    data = c.read(f["handle"], 0, 65536, codec=1)
    c.write(f["handle"], 0, b"..." * n, codec=2)
    c.ddb_get(f["handle"], "adapterType"); c.qab(f["handle"], 65536, 0, 16)
    c.close_file(f["handle"]); c.close_session()     # + classic type 4, close

Requests can also be pipelined: send_read() returns the opId, collect()
gathers replies (fragments may come in any order and interleave).

Codecs: 0 raw, 1 zlib (RFC 1950), 2 FastLZ (level 1 below 64 KiB, level 2
from 64 KiB; an encoder with back-references and a strict decoder are
here), 3 SkipZ.  Errors: NfcClosed (the server dropped the connection),
NfcAioError (an AIO ERROR frame: .code, .op), NfcProtoError (the server
broke the protocol).
"""

import hashlib
import re
import socket
import ssl
import struct
import zlib

MAGIC = 0xA100DA7A
CLASSIC_LEN = 264

T_ERROR, T_OPEN_SESSION, T_CLOSE_SESSION, T_OPEN_FILE, T_CLOSE_FILE = 1, 2, 3, 4, 5
T_IO, T_SET_SOCK_OPTS, T_DDB_GET, T_QAB, T_SET_RES_POOL = 7, 9, 11, 13, 22

FLAGS_RO, FLAGS_RW = 0x1E, 0x1A


class NfcClosed(Exception):
    """The server closed the connection."""


class NfcProtoError(Exception):
    """The server sent something the reference does not allow."""


class NfcAioError(Exception):
    def __init__(self, code, op):
        super().__init__("AIO ERROR code %d (0x%x) for opId %d" % (code, code, op))
        self.code = code
        self.op = op


class AuthdRefused(Exception):
    def __init__(self, line):
        super().__init__("authd refused: %r" % line)
        self.line = line


# ---- codecs ---------------------------------------------------------------

def fastlz_decompress(src, outlen):
    """Strict FastLZ (level 1 or 2) block decoder; exactly outlen bytes."""
    if not src:
        raise ValueError("empty FastLZ block")
    level = (src[0] >> 5) + 1
    if level not in (1, 2):
        raise ValueError("FastLZ level %d" % level)
    out = bytearray()
    n = len(src)
    ip = 1
    ctrl = src[0] & 31
    while True:
        if ctrl >= 32:
            ln = (ctrl >> 5) - 1
            ofs = (ctrl & 31) << 8
            ref = len(out) - ofs - 1
            if ln == 6:
                if level == 1:
                    if ip >= n:
                        raise ValueError("truncated match length")
                    ln += src[ip]
                    ip += 1
                else:
                    while True:
                        if ip >= n:
                            raise ValueError("truncated match length")
                        code = src[ip]
                        ip += 1
                        ln += code
                        if code != 255:
                            break
            if ip >= n:
                raise ValueError("truncated match distance")
            code = src[ip]
            ip += 1
            ref -= code
            ln += 3
            if level == 2 and code == 255 and ofs == (31 << 8):
                if ip + 2 > n:
                    raise ValueError("truncated far distance")
                ofs = (src[ip] << 8) | src[ip + 1]
                ip += 2
                ref = len(out) - ofs - 8191 - 1
            if ref < 0:
                raise ValueError("match before the start")
            if len(out) + ln > outlen:
                raise ValueError("match past the output")
            if ref + ln <= len(out):
                out += out[ref:ref + ln]
            else:
                for k in range(ln):
                    out.append(out[ref + k])
        else:
            ctrl += 1
            if ip + ctrl > n:
                raise ValueError("truncated literal run")
            if len(out) + ctrl > outlen:
                raise ValueError("literals past the output")
            out += src[ip:ip + ctrl]
            ip += ctrl
        if ip >= n:
            break
        ctrl = src[ip]
        ip += 1
    if len(out) != outlen:
        raise ValueError("FastLZ decoded %d bytes, expected %d" % (len(out), outlen))
    return bytes(out)


def fastlz_compress(data, level):
    """A greedy FastLZ encoder (hash of 3 bytes, distances <= 8190)."""
    data = bytes(data)
    n = len(data)
    out = bytearray()
    table = {}
    i = lit = 0
    maxlen = 264 if level == 1 else 65535

    def literals(start, end):
        while start < end:
            k = min(32, end - start)
            out.append(k - 1)
            out.extend(data[start:start + k])
            start += k

    while i + 3 <= n:
        key = data[i:i + 3]
        ref = table.get(key)
        table[key] = i
        if ref is not None and 0 <= i - ref - 1 <= 8190:
            ln = 3
            while i + ln < n and ln < maxlen and data[ref + ln] == data[i + ln]:
                ln += 1
            literals(lit, i)
            d = i - ref - 1
            if ln - 2 < 7:
                out.append(((ln - 2) << 5) | (d >> 8))
            else:
                out.append((7 << 5) | (d >> 8))
                rest = ln - 9
                if level == 1:
                    out.append(rest)
                else:
                    while rest >= 255:
                        out.append(255)
                        rest -= 255
                    out.append(rest)
            out.append(d & 255)
            i += ln
            lit = i
        else:
            i += 1
    literals(lit, n)
    if out:
        out[0] |= (level - 1) << 5
    return bytes(out)


def skipz_encode(data):
    out = bytearray(struct.pack("<II", len(data), 0))
    runs = []
    for m in re.finditer(rb"[^\x00]+", data):
        s, e = m.start(), m.end()
        if runs and s - runs[-1][1] < 8:
            runs[-1][1] = e
        else:
            runs.append([s, e])
    for s, e in runs:
        out += struct.pack("<II", s, e - s) + data[s:e]
    return bytes(out)


def skipz_decode(src, outlen):
    if len(src) < 8:
        raise ValueError("SkipZ header truncated")
    flen, zero = struct.unpack_from("<II", src, 0)
    if flen != outlen or zero != 0:
        raise ValueError("SkipZ header %d/%d for %d bytes" % (flen, zero, outlen))
    out = bytearray(outlen)
    ip, pos = 8, 0
    while ip < len(src):
        if ip + 8 > len(src):
            raise ValueError("SkipZ run header truncated")
        off, ln = struct.unpack_from("<II", src, ip)
        ip += 8
        if off < pos or ln == 0 or off + ln > outlen or ip + ln > len(src):
            raise ValueError("SkipZ run %d+%d out of order or out of range" % (off, ln))
        out[off:off + ln] = src[ip:ip + ln]
        ip += ln
        pos = off + ln
    return bytes(out)


def encode(codec, data):
    """Encoded bytes, or None when the codec does not make data smaller."""
    if codec == 0:
        return None
    if codec == 1:
        e = zlib.compress(data, 1)
    elif codec == 2:
        if len(data) < 16:
            return None
        e = fastlz_compress(data, 2 if len(data) >= 65536 else 1)
    elif codec == 3:
        e = skipz_encode(data)
    else:
        raise ValueError("codec %d" % codec)
    return e if len(e) < len(data) else None


def decode(codec, src, outlen):
    if codec == 0:
        if len(src) != outlen:
            raise ValueError("raw fragment of %d bytes for %d" % (len(src), outlen))
        return bytes(src)
    if codec == 1:
        d = zlib.decompressobj()
        out = d.decompress(src, outlen + 1)
        if not d.eof or d.unused_data or len(out) != outlen:
            raise ValueError("bad zlib fragment")
        return out
    if codec == 2:
        return fastlz_decompress(src, outlen)
    if codec == 3:
        return skipz_decode(src, outlen)
    raise ValueError("codec %d" % codec)


def colon_hex(digest):
    return ":".join("%02X" % b for b in digest)


# ---- the connection ---------------------------------------------------------

class Conn:
    def __init__(self, host, port, timeout=30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.tls1 = None        # SSLObject while authd runs
        self.tls2 = None        # SSLSocket for nbdssl
        self.op = 0
        self.pending = {}       # opId -> request description
        self.stash = []         # frames received for other opIds than awaited
        self.buf_size = 65536
        self.peer_der = None
        self.frames_seen = []   # (type, op) of every reply frame, in order

    # -- raw transport --
    def _recv_sock(self, n):
        b = bytearray()
        while len(b) < n:
            try:
                chunk = self.sock.recv(n - len(b))
            except (ConnectionResetError, BrokenPipeError) as e:
                raise NfcClosed(str(e))
            if not chunk:
                raise NfcClosed("connection closed by the server (%d of %d bytes)" % (len(b), n))
            b += chunk
        return bytes(b)

    def recv(self, n):
        if self.tls2 is not None:
            b = bytearray()
            while len(b) < n:
                try:
                    chunk = self.tls2.recv(n - len(b))
                except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError,
                        ssl.SSLZeroReturnError) as e:
                    raise NfcClosed(str(e))
                if not chunk:
                    raise NfcClosed("TLS #2 closed (%d of %d bytes)" % (len(b), n))
                b += chunk
            return bytes(b)
        return self._recv_sock(n)

    def send(self, data):
        try:
            if self.tls2 is not None:
                self.tls2.sendall(data)
            else:
                self.sock.sendall(data)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError) as e:
            raise NfcClosed(str(e))

    def is_closed(self, wait=5.0):
        """True when the server has closed (EOF or reset) within wait seconds."""
        s = self.tls2 if self.tls2 is not None else self.sock
        s.settimeout(wait)
        try:
            return s.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return True
        except (socket.timeout, TimeoutError):
            return False
        finally:
            s.settimeout(self.timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- TLS #1 over a MemoryBIO: it can be dropped without close_notify --
    def _tls1_feed(self):
        hdr = self._recv_sock(5)
        body = self._recv_sock(struct.unpack(">H", hdr[3:5])[0])
        self._in.write(hdr + body)

    def _tls1_flush(self):
        data = self._out.read()
        if data:
            try:
                self.sock.sendall(data)
            except (ConnectionResetError, BrokenPipeError) as e:
                raise NfcClosed(str(e))

    def _tls1_start(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls1 = ctx.wrap_bio(self._in, self._out, server_side=False)
        while True:
            try:
                self.tls1.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._tls1_flush()
                self._tls1_feed()
            except ssl.SSLError as e:
                raise NfcClosed("TLS #1 handshake: %s" % e)
        self._tls1_flush()
        self.peer_der = self.tls1.getpeercert(binary_form=True)

    def _tls1_send(self, data):
        self.tls1.write(data)
        self._tls1_flush()

    def _tls1_line(self):
        b = bytearray()
        while not b.endswith(b"\r\n"):
            try:
                b += self.tls1.read(1)
            except ssl.SSLWantReadError:
                self._tls1_flush()
                self._tls1_feed()
            except ssl.SSLZeroReturnError:
                raise NfcClosed("TLS #1 closed")
            if len(b) > 1024:
                raise NfcProtoError("authd line too long")
        return b[:-2].decode("ascii")

    def _clear_line(self):
        b = bytearray()
        while not b.endswith(b"\r\n"):
            b += self._recv_sock(1)
            if len(b) > 1024:
                raise NfcProtoError("banner too long")
        return b[:-2].decode("ascii")

    def authd(self, session, service, ssl_mode=False, sha1=None, banner=True,
              thumbprint_sha2=True):
        """authd dialogue; returns {'banner', 'sha256', 'proxy'}.  sha1 (colon hex)
        is checked against the certificate of TLS #1 (and TLS #2)."""
        res = {}
        res["banner"] = self._clear_line()
        if not res["banner"].startswith("220 "):
            raise NfcProtoError("banner %r" % res["banner"])
        self._tls1_start()
        fp1 = colon_hex(hashlib.sha1(self.peer_der).digest())
        if sha1 is not None and fp1.upper() != sha1.upper():
            raise NfcProtoError("TLS #1 thumbprint %s, expected %s" % (fp1, sha1))
        self._tls1_send(("SESSION %s\r\n" % session).encode())
        if banner:
            self._tls1_send(b"BANNER \r\n")
            line = self._tls1_line()
            if not line.startswith("220 "):
                raise NfcProtoError("BANNER reply %r" % line)
        if thumbprint_sha2:
            self._tls1_send(b"THUMBPRINT_SHA2 PlainText\r\n")
            line = self._tls1_line()
            want = colon_hex(hashlib.sha256(self.peer_der).digest())
            if line != "200 " + want:
                raise NfcProtoError("THUMBPRINT_SHA2 reply %r, expected 200 %s" % (line, want))
            res["sha256"] = want
        svc = service + ("ssl" if ssl_mode else "")
        self._tls1_send(("PROXY %s\r\n" % svc).encode())
        line = self._tls1_line()
        res["proxy"] = line
        want = "200 Connect ha-nfcssl" if ssl_mode else "200 Connect ha-nfc"
        if line != want:
            if line.startswith("5"):
                raise AuthdRefused(line)
            raise NfcProtoError("PROXY reply %r" % line)
        # Abandon TLS #1 (no close_notify).
        self.tls1 = None
        if ssl_mode:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.tls2 = ctx.wrap_socket(self.sock, do_handshake_on_connect=True)
            der = self.tls2.getpeercert(binary_form=True)
            if sha1 is not None and colon_hex(hashlib.sha1(der).digest()).upper() != sha1.upper():
                raise NfcProtoError("TLS #2 thumbprint differs")
        return res

    # -- classic --
    @staticmethod
    def frame(ftype, fields=b"", at=4):
        f = bytearray(CLASSIC_LEN)
        struct.pack_into("<I", f, 0, ftype)
        f[at:at + len(fields)] = fields
        return bytes(f)

    def recv_classic(self):
        f = self.recv(CLASSIC_LEN)
        t = struct.unpack_from("<I", f)[0]
        if t == 20:
            ln = struct.unpack_from("<I", f, 12)[0]
            raise NfcProtoError("NFC_ERROR: %r" % f[16:16 + ln])
        return t, f

    def classic(self, lib_version=11, name=b"vddk", opid=b"nbdmode", version=11):
        if lib_version >= 11:
            self.send(self.frame(43, b"PlainText"))
        self.send(self.frame(33))
        t, f = self.recv_classic()
        if t != 36 or struct.unpack_from("<I", f, 16)[0] != 1 or any(f[4:16]) or any(f[20:]):
            raise NfcProtoError("S36 %r" % f[:24])
        self.send(self.frame(51, struct.pack("<I", version)))
        t, f = self.recv_classic()
        if t != 51 or any(f[8:]):
            raise NfcProtoError("S51 %r" % f[:12])
        self.server_version = struct.unpack_from("<I", f, 4)[0]
        self.send(self.frame(54, struct.pack("<II", len(name), len(opid))) + name + opid)
        self.send(self.frame(55, struct.pack("<I", 3)))
        self.send(self.frame(52))
        t, f = self.recv_classic()
        if t != 52 or any(f[4:]):
            raise NfcProtoError("S52 %r" % f[:8])
        return self.server_version

    # -- AIO framing --
    def send_req(self, rtype, payload, extra=b"", op=None, expect=None):
        if op is None:
            op = self.op
            self.op += 1
        self.pending[op] = expect or {"type": rtype}
        self.send(struct.pack("<IIII", MAGIC, rtype, len(payload), op) + payload + extra)
        return op

    def recv_frame(self):
        hdr = self.recv(16)
        magic, t, size, op = struct.unpack("<IIII", hdr)
        if magic != MAGIC:
            raise NfcProtoError("bad magic 0x%08x" % magic)
        if op not in self.pending:
            raise NfcProtoError("reply type %d for opId %d, not pending" % (t, op))
        want = self.pending[op]
        sizes = {T_ERROR: 16, T_OPEN_SESSION: 16, T_CLOSE_SESSION: 4, T_OPEN_FILE: 60,
                 T_CLOSE_FILE: 8, T_IO: 44, T_SET_SOCK_OPTS: 12, T_DDB_GET: 16, T_QAB: 48,
                 T_SET_RES_POOL: 4}
        if t != T_ERROR and t != want["type"]:
            raise NfcProtoError("reply type %d for opId %d (request type %d)" % (t, op, want["type"]))
        if sizes.get(t) != size:
            raise NfcProtoError("reply type %d size %d" % (t, size))
        pl = self.recv(size)
        extra = b""
        if t == T_IO and want.get("read"):
            extra = self.recv(struct.unpack_from("<I", pl, 36)[0])
        elif t == T_DDB_GET:
            extra = self.recv(struct.unpack_from("<I", pl, 12)[0])
        elif t == T_QAB:
            n = (want["count"] + 7) // 8
            extra = self.recv((n + 3) // 4 * 4)
        self.frames_seen.append((t, op))
        return t, op, pl, extra

    def _frames_for(self, ops):
        """Next frame for one of ops: stashed ones first, then the socket
        (frames for other opIds are stashed)."""
        for i, fr in enumerate(self.stash):
            if fr[1] in ops:
                return self.stash.pop(i)
        while True:
            fr = self.recv_frame()
            if fr[1] in ops:
                return fr
            self.stash.append(fr)

    def wait(self, op):
        """Frames until opId op's reply; returns (payload, extra)."""
        t, rop, pl, extra = self._frames_for({op})
        del self.pending[op]
        if t == T_ERROR:
            raise NfcAioError(struct.unpack_from("<I", pl)[0], rop)
        return pl, extra

    def aio_prologue(self, buf_size=65536, buf_count=4, raw_payload=None):
        self.buf_size = buf_size or 65536
        op = self.send_req(T_OPEN_SESSION, raw_payload if raw_payload is not None else
                           struct.pack("<IIII", 0, buf_size, buf_count, 0))
        pl, _ = self.wait(op)
        if pl != bytes(16):
            raise NfcProtoError("OPEN_SESSION reply %r" % pl)
        op = self.send_req(T_SET_SOCK_OPTS, bytes(12))
        pl, _ = self.wait(op)
        self.sockopts = struct.unpack("<III", pl)
        op = self.send_req(T_SET_RES_POOL, struct.pack("<I", 1))
        pl, _ = self.wait(op)
        if pl != struct.pack("<I", 1):
            raise NfcProtoError("SET_RES_POOL reply %r" % pl)

    def open_file(self, path, rw=False, flags=None):
        p = path.encode("utf-8")
        payload = bytearray(60)
        struct.pack_into("<I", payload, 0, len(p))
        struct.pack_into("<II", payload, 16, 2, flags if flags is not None else
                         (FLAGS_RW if rw else FLAGS_RO))
        op = self.send_req(T_OPEN_FILE, bytes(payload), p)
        pl, _ = self.wait(op)
        r = {"handle": struct.unpack_from("<Q", pl, 8)[0],
             "type": struct.unpack_from("<I", pl, 16)[0],
             "flags": struct.unpack_from("<I", pl, 20)[0],
             "capacity": struct.unpack_from("<Q", pl, 28)[0],
             "sector": struct.unpack_from("<I", pl, 36)[0],
             "geometry": struct.unpack_from("<III", pl, 40),
             "raw": pl}
        return r

    # -- reads --
    def send_read(self, handle, off, length, codec=0):
        payload = struct.pack("<QQQIIIII", handle, 1 | codec << 32, off, length, 0, length,
                              length, 0)
        return self.send_req(T_IO, payload, expect={"type": T_IO, "read": True, "off": off,
                                                    "len": length, "codec": codec, "got": {}})

    def collect(self, ops):
        """Wait for every read in ops; returns {op: (data, [fragment codecs])}.
        Fragment fields, coverage and decoding are checked strictly."""
        result = {}
        ops = set(ops)
        while ops:
            t, op, pl, extra = self._frames_for(ops)
            want = self.pending[op]
            if t == T_ERROR:
                del self.pending[op]
                raise NfcAioError(struct.unpack_from("<I", pl)[0], op)
            z0, dirw, off, total, fo, rawlen, elen, z40 = struct.unpack("<QQQIIIII", pl)
            codec = dirw >> 32
            if z0 or z40 or (dirw & 0xFFFFFFFF) != 1 or off != want["off"] or \
                    total != want["len"] or codec not in (0, want["codec"]) or \
                    fo % self.buf_size or fo in want["got"] or \
                    rawlen != min(self.buf_size, total - fo) or elen != len(extra):
                raise NfcProtoError("bad read fragment for op %d: %r" %
                                    (op, struct.unpack("<QQQIIIII", pl)))
            want["got"][fo] = (codec, decode(codec, extra, rawlen))
            if sum(len(v[1]) for v in want["got"].values()) == total:
                del self.pending[op]
                ops.discard(op)
                got = want["got"]
                result[op] = (b"".join(got[k][1] for k in sorted(got)),
                              [got[k][0] for k in sorted(got)], list(got))
        return result

    def read(self, handle, off, length, codec=0):
        op = self.send_read(handle, off, length, codec)
        return self.collect([op])[op][0]

    # -- writes --
    def send_write(self, handle, off, data, codec=0, codecs=None):
        """One write: fragments of buf_size, each encoded with codec (or
        codecs[i]), raw when encoding does not shrink it."""
        op = self.op
        self.op += 1
        self.pending[op] = {"type": T_IO, "write": True, "off": off, "len": len(data)}
        fo = 0
        i = 0
        msg = bytearray()
        while fo < len(data):
            frag = data[fo:fo + self.buf_size]
            c = codecs[i % len(codecs)] if codecs else codec
            e = encode(c, frag) if c else None
            if e is None:
                c, e = 0, frag
            payload = struct.pack("<QQQIIIII", handle, c << 32, off, len(data), fo, len(frag),
                                  len(e), 0)
            msg += struct.pack("<IIII", MAGIC, T_IO, 44, op) + payload + e
            fo += len(frag)
            i += 1
        self.send(bytes(msg))
        return op

    def write(self, handle, off, data, codec=0, codecs=None):
        op = self.send_write(handle, off, data, codec, codecs)
        pl, _ = self.wait(op)
        want = struct.pack("<QQQIIIII", 0, 0, off, len(data), 0, len(data), 0, 0)
        if pl != want:
            raise NfcProtoError("write ACK %r" % (struct.unpack("<QQQIIIII", pl),))

    # -- the rest --
    def ddb_get(self, handle, key):
        k = key.encode()
        op = self.send_req(T_DDB_GET, struct.pack("<QII", handle, len(k), 0), k)
        pl, extra = self.wait(op)
        if any(pl[:12]):
            raise NfcProtoError("DDB_GET reply %r" % pl)
        return extra.decode() if extra else None

    def qab(self, handle, chunk, start, count):
        op = self.send_req(T_QAB, struct.pack("<QQQQQQ", handle, 0, chunk, start, count, 0),
                           expect={"type": T_QAB, "count": count})
        pl, bm = self.wait(op)
        if struct.unpack_from("<Q", pl, 32)[0] != count or any(pl[:32]) or any(pl[40:]):
            raise NfcProtoError("QAB reply %r" % pl)
        bits = [bool(bm[k // 8] >> (k % 8) & 1) for k in range(count)]
        if any(bm[k // 8] >> (k % 8) & 1 for k in range(count, len(bm) * 8)):
            raise NfcProtoError("QAB padding bits set")
        return bits

    def close_file(self, handle):
        op = self.send_req(T_CLOSE_FILE, struct.pack("<Q", handle))
        pl, _ = self.wait(op)
        if struct.unpack("<Q", pl)[0] != handle:
            raise NfcProtoError("CLOSE_FILE reply %r" % pl)

    def close_session(self):
        op = self.send_req(T_CLOSE_SESSION, struct.pack("<I", 0))
        pl, _ = self.wait(op)
        if pl != bytes(4):
            raise NfcProtoError("CLOSE_SESSION reply %r" % pl)
        self.send(self.frame(4))
        self.close()
