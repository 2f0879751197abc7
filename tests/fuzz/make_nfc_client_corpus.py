#!/usr/bin/env python3
"""Seed for fuzz_nfc_client: a well-formed server byte stream for the
fuzz target's fixed script (see fuzz_nfc_client.c), raw fragments.

    python3 tests/fuzz/make_nfc_client_corpus.py tests/fuzz/corpus/nfc_client
"""
import os
import struct
import sys

MAGIC = 0xA100DA7A


def classic(t, fields=()):
    f = bytearray(264)
    struct.pack_into("<I", f, 0, t)
    for off, v in fields:
        struct.pack_into("<I", f, off, v)
    return bytes(f)


def hdr(t, size, op):
    return struct.pack("<IIII", MAGIC, t, size, op)


def io(handle, dirw, codec, off, total, foff, flen, extra):
    return struct.pack("<QIIQIIIII", handle, dirw, codec, off, total, foff, flen, extra, 0)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    cap = 1 << 20
    s = bytearray([0])                      # first byte: codec 0 (raw)
    s += classic(36, [(16, 1)]) + classic(51, [(4, 11)]) + classic(52)
    s += hdr(2, 16, 0) + bytes(16)
    s += hdr(9, 12, 1) + struct.pack("<III", 1675000, 1675000, 1)
    s += hdr(22, 4, 2) + struct.pack("<I", 1)
    o = bytearray(60)
    struct.pack_into("<QII", o, 8, 0x12345678, 2, 0x1A)
    struct.pack_into("<QIIII", o, 28, cap, 512, 2, 255, 63)
    s += hdr(4, 60, 3) + o
    val = b"lsilogic"
    s += hdr(11, 16, 4) + bytes(12) + struct.pack("<I", len(val)) + val
    # two read requests: 131072 bytes at 0 (op 5), 68928 at 131072 (op 6)
    for op, off, total in ((5, 0, 131072), (6, 131072, 200000 - 131072)):
        for foff in range(0, total, 65536):
            n = min(65536, total - foff)
            s += hdr(7, 44, op) + io(0, 1, 0, off, total, foff, n, n) + bytes([op]) * n
    q = bytearray(48)
    struct.pack_into("<Q", q, 32, 100)
    s += hdr(13, 48, 7) + q + bytes([0x0f]) + bytes(15)
    s += hdr(7, 44, 8) + io(0, 0, 0, 0, 4096, 0, 4096, 0)
    s += hdr(5, 8, 9) + struct.pack("<Q", 0x12345678)
    s += hdr(3, 4, 10) + bytes(4)
    with open(os.path.join(out, "session-raw"), "wb") as f:
        f.write(s)


if __name__ == "__main__":
    main()
