"""nfcd_self.py SCENARIO - scenarios of nfcd's own test (nfcd_self.sh).

Environment: NFCD_PORT, NFCD_SHA1, NFCD_LOG (nfcd's), W (work dir holding
raw.img, the raw content of disk.vmdk / disk-rw.vmdk / flat.vmdk, and
disk.vmdk's descriptor fields in desc.txt).  Tickets are written by the
shell script (names below).  Exit status 0 = pass; failures raise.
"""

import os
import random
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nfc_py as n  # noqa: E402

PORT = int(os.environ["NFCD_PORT"])
SHA1 = os.environ["NFCD_SHA1"]
LOG = os.environ["NFCD_LOG"]
W = os.environ["W"]
K64 = 65536


def ds(name):
    p = os.path.join(W, name)
    return "[nfcd] " + p.lstrip("/")


def raw_image():
    with open(os.path.join(W, "raw.img"), "rb") as f:
        return f.read()


def log_lines():
    with open(LOG) as f:
        return f.read().splitlines()


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def connect(session, service="vpxa-nfc", ssl_mode=False, buf_size=K64, buf_count=4,
            lib_version=11, prologue=True, **kw):
    c = n.Conn("127.0.0.1", PORT)
    r = c.authd(session, service, ssl_mode=ssl_mode, sha1=SHA1, **kw)
    c.authd_result = r
    c.classic(lib_version=lib_version)
    if prologue:
        c.aio_prologue(buf_size, buf_count)
    return c


def expect_error(fn, code, what):
    try:
        fn()
    except n.NfcAioError as e:
        check(e.code == code, "%s: AIO error %d, expected %d" % (what, e.code, code))
        return
    raise AssertionError("%s: no AIO error" % what)


def expect_violation(before, fragment, what):
    """A new VIOLATION line containing fragment appeared in the log."""
    for _ in range(50):
        new = [l for l in log_lines()[before:] if "VIOLATION" in l]
        if any(fragment in l for l in new):
            return
        time.sleep(0.1)
    raise AssertionError("%s: no VIOLATION containing %r in the log (new: %r)" %
                         (what, fragment, new))


def expect_dropped(c, what):
    check(c.is_closed(10), "%s: the server did not close the connection" % what)
    c.close()


def descriptor():
    d = {}
    with open(os.path.join(W, "desc.txt"), encoding="latin-1") as f:
        for line in f:
            line = line.strip()
            if line.startswith("ddb.") and "=" in line:
                k, v = line.split("=", 1)
                d[k.strip()[4:]] = v.strip().strip('"')
    return d


# ---- scenarios ----------------------------------------------------------------

def sc_ro():
    img = raw_image()
    cap = len(img)
    c = connect("ro-1")
    check("SHA256 supported" in c.authd_result["banner"], "banner lacks SHA256 supported")
    check(c.sockopts == (1675000, 1675000, 1), "SET_SOCK_OPTS reply %r" % (c.sockopts,))
    check(c.server_version == 11, "server version %d" % c.server_version)
    # Refusals keep the connection.
    expect_error(lambda: c.open_file(ds("other.vmdk")), 13, "path not in the ticket")
    expect_error(lambda: c.open_file(ds("busy.vmdk")), 13, "busy file")
    expect_error(lambda: c.open_file(ds("disk.vmdk"), rw=True), 0x0b, "RW open on RO ticket")
    f = c.open_file(ds("disk.vmdk"))
    h = f["handle"]
    check(f["type"] == 2 and f["flags"] == 0x1E and f["sector"] == 512, "OPEN_FILE %r" % f)
    check(f["capacity"] == cap, "capacity %d, expected %d" % (f["capacity"], cap))
    check(h > 0xFFFF, "handle 0x%x looks trivial" % h)
    raw = f["raw"]
    check(not any(raw[0:8]) and not any(raw[24:28]) and not any(raw[52:60]), "reserved bytes")
    # DDB: every ddb key of the descriptor, and absent keys.
    desc = descriptor()
    check(len(desc) >= 3, "descriptor has too few ddb keys: %r" % desc)
    for k, v in desc.items():
        got = c.ddb_get(h, k)
        check(got == v, "DDB %s = %r, expected %r" % (k, got, v))
    for k in ("resumeConsolidateSector", "iofilters", "geometry.biosCylinders"):
        if k not in desc:
            check(c.ddb_get(h, k) is None, "DDB %s should be absent" % k)
    geo = tuple(int(desc["geometry." + x]) for x in ("cylinders", "heads", "sectors"))
    check(f["geometry"] == geo, "physGeo %r, descriptor %r" % (f["geometry"], geo))
    # The whole disk in one raw request.
    check(c.read(h, 0, cap) == img, "whole-disk raw read differs")
    # Pipelined reads with every codec, odd lengths, the last sector.
    reqs = [(0, 4 * K64, 1), (K64 * 3, K64 * 5 + 512, 2), (cap - 512, 512, 3),
            (1 << 20, 2 << 20, 3), (512, 1024, 1), (2 << 20, 3 * K64, 2),
            (cap - 5 * K64, 5 * K64, 1), (4 << 20, 1 << 20, 0), (6 << 20, 16 * K64, 1)]
    ops = [c.send_read(h, o, ln, cd) for o, ln, cd in reqs]
    res = c.collect(ops)
    used = set()
    shuffled = False
    for op, (o, ln, cd) in zip(ops, reqs):
        data, codecs, order = res[op]
        check(data == img[o:o + ln], "read %d+%d codec %d differs" % (o, ln, cd))
        used.update(codecs)
        if order != sorted(order):
            shuffled = True
    check({1, 2, 3} <= used, "codecs used by the server: %r" % used)
    check(shuffled, "fragments never came out of order")
    seq = [op for t, op in c.frames_seen if op in ops]
    interleaved = any(seq[i] != seq[i + 1] and seq[i] in seq[i + 2:] for i in range(len(seq) - 2))
    print("ro: codecs %r, shuffled %s, interleaved %s" % (sorted(used), shuffled, interleaved))
    # Allocation, 64 KiB chunks, whole disk: any non-zero byte = allocated
    # (qemu-img convert leaves all-zero grains unallocated).
    nchunks = (cap + K64 - 1) // K64
    bits = c.qab(h, K64, 0, nchunks)
    want = [any(img[i * K64:(i + 1) * K64]) for i in range(nchunks)]
    check(bits == want, "QAB 64K differs: %r" % [i for i in range(nchunks) if bits[i] != want[i]])
    check(not all(bits) and any(bits), "test image should be partly allocated")
    # 1 MiB chunks from 2 MiB; the last chunk runs past the end of the disk.
    mb = 1 << 20
    cnt = (cap - 2 * mb + mb - 1) // mb
    bits = c.qab(h, mb, 2 * mb, cnt)
    want = [any(img[2 * mb + i * mb:2 * mb + (i + 1) * mb]) for i in range(cnt)]
    check(bits == want, "QAB 1M differs")
    expect_error(lambda: c.qab(h, mb, 2 * mb, cnt + 1), 3, "QAB past the end")
    expect_error(lambda: c.qab(h, K64, 512, 1), 3, "QAB unaligned start")
    expect_error(lambda: c.qab(h, 32768, 0, 1), 3, "QAB chunk 32 KiB")
    expect_error(lambda: c.qab(h, 3 * K64, 0, 1), 3, "QAB chunk not a power of two")
    expect_error(lambda: c.qab(h, K64, 0, 0), 3, "QAB count 0")
    # A second file (flat) in the same session.
    g = c.open_file(ds("flat.vmdk"))
    check(g["capacity"] == cap and g["handle"] != h, "flat open %r" % g)
    check(c.read(g["handle"], K64, 3 * K64, 1) == img[K64:4 * K64], "flat read differs")
    check(all(c.qab(g["handle"], mb, 0, 2)), "flat disk: all allocated")
    c.close_file(g["handle"])
    c.close_file(h)
    c.close_session()
    print("ro: ok")


def model_write(img, off, data):
    img[off:off + len(data)] = data


def sc_rw_ssl():
    """nbdssl against a direct-ESXi ticket (service nfc), 128 KiB buffers."""
    img = bytearray(raw_image())
    cap = len(img)
    c = connect("rw-1", service="nfc", ssl_mode=True, buf_size=2 * K64, buf_count=2)
    check(c.authd_result["proxy"] == "200 Connect ha-nfcssl", "proxy %r" % c.authd_result)
    f = c.open_file(ds("disk-rw.vmdk"), rw=True)
    h = f["handle"]
    check(f["flags"] == 0x1A, "flags 0x%x" % f["flags"])
    rnd = random.Random(7)
    text = b"".join(b"line %06d of the NFC write test\n" % i for i in range(20000))
    writes = [
        (1 << 20, rnd.randbytes(300 * 1024), 0, None),
        (3 * (1 << 20) + 512, text[:200 * 1024], 1, None),
        (5 * (1 << 20), text[1000:1000 + 256 * 1024], 2, None),
        (100 * 1024, text[:4096], 2, None),
        (6 * (1 << 20), bytes(100 * 1024) + b"x" * 5000 + bytes(279 * 1024) + b"tail", 3, None),
        (7 * (1 << 20), text[:512 * 1024], 0, [1, 2, 3, 0]),
        (cap - 1024, b"E" * 1024, 3, None),
    ]
    # Write into chunks that were holes: find two all-zero 64 KiB chunks.
    holes = [i for i in range(cap // K64) if not any(img[i * K64:(i + 1) * K64])]
    check(len(holes) >= 2, "test image needs holes")
    writes.append((holes[0] * K64 + 4096, b"hole data" * 100, 1, None))
    writes.append((holes[1] * K64, text[:K64], 2, None))
    for off, data, codec, codecs in writes:
        c.write(h, off, data, codec, codecs)
        model_write(img, off, data)
    # Pipelined writes (acks in order of completion).
    ops = []
    for i in range(4):
        data = text[i * 7000:i * 7000 + 150 * 1024]
        off = (2 << 20) + i * 160 * 1024
        ops.append((c.send_write(h, off, data, codec=i % 4), off, len(data)))
        model_write(img, off, data)
    for op, off, ln in ops:
        pl, _ = c.wait(op)
        check(struct.unpack("<QQQIIIII", pl) == (0, 0, off, ln, 0, ln, 0, 0), "pipelined ack")
    for codec in (0, 1, 2, 3):
        check(c.read(h, 0, cap, codec) == bytes(img), "read back with codec %d differs" % codec)
    bits = c.qab(h, K64, 0, (cap + K64 - 1) // K64)
    check(bits[holes[0]] and bits[holes[1]], "written holes are not reported allocated")
    c.close_file(h)
    c.close_session()
    with open(os.path.join(W, "rw-expected.img"), "wb") as fo:
        fo.write(img)
    # Persistence: a new session (ro ticket, nbd).
    c = connect("rw-2")
    f = c.open_file(ds("disk-rw.vmdk"))
    check(c.read(f["handle"], 0, cap, 1) == bytes(img), "data did not persist")
    c.close_file(f["handle"])
    c.close_session()
    print("rw-ssl: ok (%d writes)" % (len(writes) + 4))


def sc_parallel():
    """Two sessions at once on the same disk."""
    import threading
    img = raw_image()
    errors = []

    def one(sess):
        try:
            c = connect(sess)
            f = c.open_file(ds("disk.vmdk"))
            for codec in (1, 3):
                check(c.read(f["handle"], 0, len(img), codec) == img, "parallel read")
            c.close_file(f["handle"])
            c.close_session()
        except Exception as e:  # noqa: BLE001
            errors.append("%s: %r" % (sess, e))

    ts = [threading.Thread(target=one, args=(s,)) for s in ("par-1", "par-2")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, "; ".join(errors))
    print("parallel: ok")


def sc_negative():
    # A used ticket (ro-1 was used by sc_ro) and an unknown one: 530, no violation.
    for sess in ("ro-1", "no-such-session"):
        before = len(log_lines())
        c = n.Conn("127.0.0.1", PORT)
        try:
            c.authd(sess, "vpxa-nfc", sha1=SHA1)
            raise AssertionError("session %s accepted" % sess)
        except n.AuthdRefused as e:
            check(e.line == "530 Please login with USER and PASS", "refusal %r" % e.line)
        expect_dropped(c, "used ticket")
        check(not [l for l in log_lines()[before:] if "VIOLATION" in l], "violation logged for 530")
    cases = []

    def case(name, fragment, fn):
        cases.append((name, fragment, fn))

    def open_flags(c):
        c.open_file(ds("disk.vmdk"), flags=0x1F)

    def bad_magic(c):
        c.send(struct.pack("<IIII", 0xA100DA7B, 5, 8, c.op) + bytes(8))
        c.wait(c.op)

    def bad_opid(c):
        c.op += 1
        c.open_file(ds("disk.vmdk"))

    def nonzero_pad(c):
        p = ds("disk.vmdk").encode()
        pl = bytearray(60)
        struct.pack_into("<III", pl, 16, 2, 0x1E, 0)
        struct.pack_into("<I", pl, 0, len(p))
        pl[40] = 1
        c.wait(c.send_req(n.T_OPEN_FILE, bytes(pl), p))

    def unknown_type(c):
        c.wait(c.send_req(10, bytes(8)))

    def bad_size(c):
        c.wait(c.send_req(n.T_CLOSE_FILE, bytes(12)))

    def closed_handle(c):
        f = c.open_file(ds("disk.vmdk"))
        c.close_file(f["handle"])
        c.read(f["handle"], 0, 512)

    def read_past_end(c):
        f = c.open_file(ds("disk.vmdk"))
        c.read(f["handle"], f["capacity"] - 512, 1024)

    def read_bad_fields(c):
        f = c.open_file(ds("disk.vmdk"))
        pl = struct.pack("<QQQIIIII", f["handle"], 1, 0, 4096, 0, 4096, 0, 0)  # @36 0
        c.wait(c.send_req(n.T_IO, pl))

    def ddb_prefix(c):
        f = c.open_file(ds("disk.vmdk"))
        c.ddb_get(f["handle"], "ddb.adapterType")

    def close_with_open_file(c):
        c.open_file(ds("disk.vmdk"))
        c.close_session()

    def qab_nonzero(c):
        f = c.open_file(ds("disk.vmdk"))
        c.wait(c.send_req(n.T_QAB, struct.pack("<QQQQQQ", f["handle"], 1, K64, 0, 1, 0),
                          expect={"type": n.T_QAB, "count": 1}))

    case("OPEN_FILE flags 0x1F", "flags 0x1f", open_flags)
    case("bad magic", "bad AIO magic", bad_magic)
    case("skipped opId", "opId", bad_opid)
    case("OPEN_FILE non-zero byte 40", "byte @40", nonzero_pad)
    case("unknown type 10", "AIO type 10", unknown_type)
    case("CLOSE_FILE size 12", "size 12", bad_size)
    case("closed handle", "is not open", closed_handle)
    case("read past the end", "pass the capacity", read_past_end)
    case("read @36 0", "@36", read_bad_fields)
    case("DDB key with ddb.", "ddb.", ddb_prefix)
    case("CLOSE_SESSION with an open file", "still open", close_with_open_file)
    case("QAB @8 non-zero", "@8=1", qab_nonzero)

    for i, (name, fragment, fn) in enumerate(cases):
        before = len(log_lines())
        c = connect("neg-%d" % i)
        try:
            fn(c)
            raise AssertionError("%s: the server answered" % name)
        except n.NfcClosed:
            pass
        expect_violation(before, fragment, name)
        expect_dropped(c, name)

    # Write fragment problems, at bufSize 64 KiB on the rw ticket neg-w*.
    def write_frames(c, h, frags):
        op = c.op
        c.op += 1
        c.pending[op] = {"type": n.T_IO}
        msg = b""
        for codec, fo, total, raw, enc in frags:
            pl = struct.pack("<QQQIIIII", h, codec << 32, 0, total, fo, raw, len(enc), 0)
            msg += struct.pack("<IIII", n.MAGIC, n.T_IO, 44, op) + pl + enc
        c.send(msg)
        c.wait(op)

    wcases = [
        ("write out of order", "expected 65536",
         [(0, 0, 3 * K64, K64, bytes(K64)), (0, 2 * K64, 3 * K64, K64, bytes(K64))]),
        ("write short fragment", "raw length",
         [(0, 0, 2 * K64, 4096, bytes(4096))]),
        ("corrupt zlib", "invalid zlib",
         [(1, 0, K64, K64, b"\x78\x01garbage-garbage")]),
        ("corrupt SkipZ", "invalid skipz",
         [(3, 0, K64, K64, struct.pack("<IIII", K64, 0, 100, 8) + b"12345678" +
           struct.pack("<II", 50, 4) + b"abcd")]),
        ("raw fragment with wrong extra", "extra bytes",
         [(0, 0, 4096, 4096, bytes(4000))]),
    ]
    for i, (name, fragment, frags) in enumerate(wcases):
        before = len(log_lines())
        c = connect("negw-%d" % i)
        f = c.open_file(ds("disk-rw.vmdk"), rw=True)
        try:
            write_frames(c, f["handle"], frags)
            raise AssertionError("%s: the server answered" % name)
        except n.NfcClosed:
            pass
        expect_violation(before, fragment, name)
        expect_dropped(c, name)

    # authd and classic violations.
    before = len(log_lines())
    c = n.Conn("127.0.0.1", PORT)
    c._clear_line()
    c.sock.sendall(b"SESSION neg-clear\r\n")
    expect_violation(before, "ClientHello", "cleartext command")
    expect_dropped(c, "cleartext command")

    before = len(log_lines())
    c = n.Conn("127.0.0.1", PORT)
    try:
        c.authd("neg-svc", "vpxa-nfc", sha1=SHA1)   # ticket says service nfc
        raise AssertionError("wrong service accepted")
    except n.AuthdRefused as e:
        check(e.line.startswith("530 "), "wrong service reply %r" % e.line)
    expect_violation(before, "PROXY 'vpxa-nfc'", "wrong service")
    expect_dropped(c, "wrong service")

    before = len(log_lines())
    c = n.Conn("127.0.0.1", PORT)
    c.authd("neg-c43", "vpxa-nfc", sha1=SHA1)
    try:
        c.classic(lib_version=7)     # no C43 against lib version 11
        raise AssertionError("missing C43 accepted")
    except n.NfcProtoError as e:
        check("NFC_ERROR" in str(e), "expected an NFC_ERROR frame, got %s" % e)
    expect_violation(before, "C43", "missing C43")
    expect_dropped(c, "missing C43")

    before = len(log_lines())
    c = n.Conn("127.0.0.1", PORT)
    c._clear_line()
    c._tls1_start()
    c._tls1_send(b"SESSION neg-thumb\r\nBANNER \r\n")
    c._tls1_line()
    c._tls1_send(b"THUMBPRINT_SHA2 AA:BB\r\n")
    check(c._tls1_line() == "501 Invalid arguments", "THUMBPRINT_SHA2 bad arg reply")
    expect_violation(before, "THUMBPRINT_SHA2 AA:BB", "bad THUMBPRINT_SHA2")
    c.close()

    # Oversized buffer: ERROR 3 then a close (refused, not a violation).
    before = len(log_lines())
    c = connect("neg-buf", prologue=False)
    try:
        c.aio_prologue(3 << 20, 4)
        raise AssertionError("3 MiB buffers accepted")
    except n.NfcAioError as e:
        check(e.code == 3, "bufSize error code %d" % e.code)
    expect_dropped(c, "3 MiB buffers")
    check(not [l for l in log_lines()[before:] if "VIOLATION" in l], "violation for bufSize")
    print("negative: ok (%d violation cases)" % (len(cases) + len(wcases) + 4))


def sc_lib7():
    """Server at lib version 7 with --no-shuffle: no C43, no THUMBPRINT_SHA2."""
    img = raw_image()
    c = n.Conn("127.0.0.1", PORT)
    r = c.authd("lib7-1", "vpxa-nfc", sha1=SHA1, thumbprint_sha2=False)
    check("SHA256" not in r["banner"], "lib 7 banner %r" % r["banner"])
    check(c.classic(lib_version=7) == 7, "server version")
    c.aio_prologue(K64, 1)
    f = c.open_file(ds("disk.vmdk"))
    ops = [c.send_read(f["handle"], 0, 8 * K64, 1), c.send_read(f["handle"], K64, 4 * K64, 2)]
    res = c.collect(ops)
    for op, (o, ln) in zip(ops, [(0, 8 * K64), (K64, 4 * K64)]):
        data, codecs, order = res[op]
        check(data == img[o:o + ln], "lib7 read")
        check(order == sorted(order), "--no-shuffle: fragments out of order")
    seq = [op for t, op in c.frames_seen if op in ops]
    check(seq == sorted(seq), "--no-shuffle: replies interleaved")
    c.close_file(f["handle"])
    c.close_session()
    print("lib7: ok")


def sc_inject_close():
    """--fail once --fail close-at=read:2."""
    c = connect("inj-1")
    f = c.open_file(ds("disk.vmdk"))
    c.read(f["handle"], 0, 4 * K64)
    op = c.send_read(f["handle"], 0, 4 * K64)
    got = 0
    try:
        while True:
            c.recv_frame()
            got += 1
    except n.NfcClosed:
        pass
    check(got == 1, "close-at=read:2: %d fragment(s) before the close" % got)
    del op
    c.close()
    c = connect("inj-2")     # once: the second connection is clean
    f = c.open_file(ds("disk.vmdk"))
    for _ in range(3):
        c.read(f["handle"], 0, 4 * K64, 1)
    c.close_file(f["handle"])
    c.close_session()
    print("inject-close: ok")


def sc_inject_errors():
    """--fail error-at=read:2:7 --fail stall-at=read:3 --fail error-at=write:1:8."""
    img = raw_image()
    c = connect("inj-3")
    f = c.open_file(ds("disk-rw.vmdk"), rw=True)
    h = f["handle"]
    before = c.read(h, 0, K64)
    expect_error(lambda: c.read(h, 0, K64), 7, "error-at=read:2")
    op = c.send_read(h, 0, K64)
    c.sock.settimeout(1.5)
    try:
        c.recv_frame()
        raise AssertionError("stall-at=read:3 answered")
    except (socket.timeout, TimeoutError):
        pass
    c.sock.settimeout(c.timeout)
    del c.pending[op]
    expect_error(lambda: c.write(h, 0, b"Z" * 4096), 8, "error-at=write:1")
    check(c.read(h, 0, K64) == before, "error-at=write wrote data")
    c.write(h, 0, before[:4096])   # write 2 is fine
    c.close_file(h)
    c.close_session()
    del img
    print("inject-errors: ok")


def sc_inject_open():
    c = connect("inj-4")
    expect_error(lambda: c.open_file(ds("disk.vmdk")), 13, "error-at=open:13")
    c.close_session()
    print("inject-open: ok")


def sc_close_at(step):
    """--fail close-at=STEP: the connection ends at the right place."""
    phase = "authd"
    c = n.Conn("127.0.0.1", PORT)
    try:
        c.authd("close-1", "vpxa-nfc", sha1=SHA1)
        phase = "classic"
        c.classic()
        phase = "prologue"
        c.aio_prologue(K64, 4)
        phase = "open"
        f = c.open_file(ds("disk-rw.vmdk"), rw=True)
        phase = "write"
        c.write(f["handle"], 0, bytes(3 * K64))
        phase = "done"
    except n.NfcClosed:
        pass
    want = {"tls1": "authd", "session": "authd", "banner": "authd", "proxy": "authd",
            "tls2": "classic", "classic": "classic", "aio": "prologue", "open": "open",
            "write:1": "write"}[step]
    check(phase == want, "close-at=%s: closed during %s, expected %s" % (step, phase, want))
    c.close()
    print("close-at=%s: ok" % step)


SCENARIOS = {
    "ro": sc_ro, "rw-ssl": sc_rw_ssl, "parallel": sc_parallel, "negative": sc_negative,
    "lib7": sc_lib7, "inject-close": sc_inject_close, "inject-errors": sc_inject_errors,
    "inject-open": sc_inject_open,
}

if __name__ == "__main__":
    for name in sys.argv[1:]:
        if name.startswith("close-at="):
            sc_close_at(name[9:])
        else:
            SCENARIOS[name]()
