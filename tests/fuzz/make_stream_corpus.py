#!/usr/bin/python3
"""Regenerate tests/fuzz/corpus/stream/: small streamOptimized files (each
under 64 KiB) for fuzz_stream.

    tests/fuzz/make_stream_corpus.py BUILD_DIR [OUT_DIR]

Real producers (files whose grains start at sector 128 are "compacted":
everything from sector 128 on is moved down to the first free sector and
every pointer to it adjusted, so the file fits 64 KiB; the result still
reads the same):
  qemu-*.vmdk       qemu-img convert -O vmdk -o subformat=streamOptimized
  vmdkstream-*.vmdk /usr/bin/python3 VMDKstream.convert_to_stream
  ours-*.vmdk       BUILD_DIR/tests/tools/vixclone (VixDiskLib_Clone) and
                    vdtest create streamOptimized (an empty disk)
Hand-made layouts (reference section 3), compact from the start:
  craft-*.vmdk      VMware GD_AT_END + footer + EOS, no EOS, no markers
                    (4-byte size prefix), raw deflate, partial last grain
                    compressed short, Xen one-GT-blob, version 1 with a
                    type-4 marker, 8 KiB grains with 128-entry tables
Sources are small and compressible (text-like lines, a few patterned
bytes), so each grain compresses to well under a sector or two.
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

GD_AT_END = 0xFFFFFFFFFFFFFFFF


def content(size, seed):
    """Text-like lines at a few places, zeros elsewhere, data at the end."""
    b = bytearray(size)
    for k, start in enumerate((0, 70000, 200000, size - 3000)):
        if start < 0 or start >= size:
            continue
        line = ("line %d of disk %d: the quick brown fox\n" % (k, seed)).encode()
        n = min(3000 if k else 5000, size - start)
        chunk = (line * (n // len(line) + 1))[:n]
        b[start:start + n] = chunk
    return bytes(b)


def header(version, flags, cap, grain, desc_off, desc_size, ngtes, rgd, gd, overhead):
    h = struct.pack("<IIIQQQQIQQQB4sH", 0x564D444B, version, flags, cap, grain, desc_off,
                    desc_size, ngtes, rgd, gd, overhead, 0, b"\n \r\n", 1)
    return h + bytes(512 - len(h))


def marker(val, size, typ):
    return struct.pack("<QII", val, size, typ) + bytes(496)


def pad(b):
    return b + bytes(-len(b) % 512)


def descriptor(cap, name):
    return ('# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n'
            'createType="streamOptimized"\n\n# Extent description\n'
            'RW %d SPARSE "%s"\n\n# The Disk Data Base\n#DDB\n\n'
            'ddb.adapterType = "lsilogic"\nddb.virtualHWVersion = "4"\n' % (cap, name)).encode()


def craft(data, grain=128, ngtes=512, version=3, markers=True, footer=True, eos=True,
          raw=False, short_last=False, xen=False, progress=False, name="x.vmdk"):
    cap = (len(data) + 511) // 512
    gbytes = grain * 512
    ngr = (cap + grain - 1) // grain
    ngt = (ngr + ngtes - 1) // ngtes
    gt_sectors = (ngtes * 4 + 511) // 512
    gd_sectors = (ngt * 4 + 511) // 512
    flags = 0x10001 | (0x20000 if markers else 0)
    desc = pad(descriptor(cap, name))
    out = bytearray(512) + desc
    overhead = len(out) // 512
    gts = [[0] * ngtes for _ in range(ngt)]
    gd = [0] * ngt
    done_progress = False
    for t in range(ngt):
        used = False
        for k in range(ngtes):
            g = t * ngtes + k
            if g >= ngr:
                break
            chunk = data[g * gbytes:(g + 1) * gbytes]
            if not any(chunk):
                continue
            if not short_last:
                chunk = chunk + bytes(gbytes - len(chunk))
            if raw:
                c = zlib.compressobj(6, zlib.DEFLATED, -15)
                z = c.compress(chunk) + c.flush()
            else:
                z = zlib.compress(chunk, 6)
            gts[t][k] = len(out) // 512
            hdr = struct.pack("<QI", g * grain, len(z)) if markers else struct.pack("<I", len(z))
            out += pad(hdr + z)
            used = True
            if progress and not done_progress:
                out += marker(0, 0, 4)
                done_progress = True
        if used and not xen:
            if markers:
                out += marker(gt_sectors, 0, 1)
            gd[t] = len(out) // 512
            out += pad(struct.pack("<%dI" % ngtes, *gts[t]))
    if xen:
        out += marker(ngt * gt_sectors, 0, 1)
        for t in range(ngt):
            gd[t] = len(out) // 512
            out += pad(struct.pack("<%dI" % ngtes, *gts[t]))
    if markers:
        out += marker(gd_sectors, 0, 2)
    gd_at = len(out) // 512
    out += pad(struct.pack("<%dI" % ngt, *gd))
    hdr_gd = gd_at
    if markers and footer:
        out += marker(1, 0, 3)
        out += header(version, flags, cap, grain, 1, len(desc) // 512, ngtes, 0, gd_at,
                      overhead)
        hdr_gd = GD_AT_END
    if eos:
        out += bytes(512)
    out[0:512] = header(version, flags, cap, grain, 1, len(desc) // 512, ngtes, 0, hdr_gd,
                        overhead)
    return bytes(out)


def compact(path):
    """Move sectors >= 128 down to the first free sector (after the
    descriptor, or after the GD and GTs when they are at the front) and
    fix every pointer."""
    b = bytearray(open(path, "rb").read())
    (magic, version, flags, cap, grain, desc_off, desc_size, ngtes, rgd, gd,
     overhead) = struct.unpack_from("<IIIQQQQIQQQ", b, 0)
    ngt = ((cap + grain - 1) // grain + ngtes - 1) // ngtes
    first_free = desc_off + desc_size
    if gd != GD_AT_END and gd < 128:
        first_free = max(first_free, gd + (ngt * 4 + 511) // 512 + ngt * ((ngtes * 4 + 511) // 512))
    shift = 128 - first_free
    fix = lambda s: s - shift if s >= 128 else s
    hdrs = [0]
    if gd == GD_AT_END:   # footer: third sector from the end
        hdrs.append(len(b) - 1024)
        gd = struct.unpack_from("<Q", b, len(b) - 1024 + 56)[0]
    tables = set()
    for base in ([gd, rgd] if flags & 2 else [gd]):
        for i in range(ngt):
            s = struct.unpack_from("<I", b, base * 512 + 4 * i)[0]
            if s:
                tables.add(s)
                struct.pack_into("<I", b, base * 512 + 4 * i, fix(s))
    for s in tables:
        for k in range(ngtes):
            e = struct.unpack_from("<I", b, s * 512 + 4 * k)[0]
            if e > 1:
                struct.pack_into("<I", b, s * 512 + 4 * k, fix(e))
    for h in hdrs:
        for off in (48, 56):      # rgdOffset, gdOffset
            v = struct.unpack_from("<Q", b, h + off)[0]
            if v != GD_AT_END and v:
                struct.pack_into("<Q", b, h + off, fix(v))
        struct.pack_into("<Q", b, h + 64, first_free)
    out = b[:first_free * 512] + b[128 * 512:]
    if hdrs == [0] and flags & 0x20000:
        # GD at the front with markers (QEMU): drop the zero padding after
        # the last grain (the entries in the tables are already moved)
        last = max([struct.unpack_from("<I", b, fix(t) * 512 + 4 * k)[0]
                    for t in tables for k in range(ngtes)] + [0])
        if last > 1:
            size = struct.unpack_from("<I", out, last * 512 + 8)[0]
            out = out[:last * 512 + (12 + size + 511) // 512 * 512]
    open(path, "wb").write(out)


def main():
    build = sys.argv[1]
    outdir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "stream")
    os.makedirs(outdir, exist_ok=True)
    tmp = tempfile.mkdtemp()
    try:
        vixclone = os.path.join(build, "tests", "tools", "vixclone")
        vdtest = os.path.join(build, "tests", "tools", "vdtest")
        files = {}
        for size, tag in ((1 << 20, "1M"), (300 * 1024 + 37 * 512, "partial")):
            raw = os.path.join(tmp, "src-%s.raw" % tag)
            open(raw, "wb").write(content(size, size))
            q = os.path.join(tmp, "q.vmdk")
            subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o",
                            "subformat=streamOptimized", raw, q], check=True)
            compact(q)
            files["qemu-%s.vmdk" % tag] = q
            p = os.path.join(tmp, "p-%s.vmdk" % tag)
            subprocess.run(["/usr/bin/python3", "-c",
                            "import VMDKstream; VMDKstream.convert_to_stream(%r, %r)"
                            % (raw, p)], check=True)
            compact(p)
            files["vmdkstream-%s.vmdk" % tag] = p
            desc = raw[:-4] + ".vmdk"
            open(desc, "w").write(
                '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
                'createType="monolithicFlat"\n\nRW %d FLAT "%s" 0\n\n'
                'ddb.adapterType = "lsilogic"\n' % (size // 512, os.path.basename(raw)))
            o = os.path.join(tmp, "o-%s.vmdk" % tag)
            subprocess.run([vixclone, desc, o, "streamOptimized"], check=True)
            compact(o)
            files["ours-%s.vmdk" % tag] = o
        e = os.path.join(tmp, "e.vmdk")
        subprocess.run([vdtest, "create", "streamOptimized", "2M", e], check=True)
        compact(e)
        files["ours-empty-2M.vmdk"] = e
        d = content(1 << 20, 1)
        dp = content(300 * 1024 + 37 * 512, 2)
        crafted = {
            "craft-vmware.vmdk": craft(d),
            "craft-no-eos.vmdk": craft(d, eos=False),
            "craft-no-markers.vmdk": craft(d, markers=False),
            "craft-raw-deflate.vmdk": craft(d, raw=True),
            "craft-short-last.vmdk": craft(dp, short_last=True),
            "craft-xen-blob.vmdk": craft(dp, xen=True),
            "craft-v1-progress.vmdk": craft(d, version=1, progress=True),
            "craft-grain16-gt128.vmdk": craft(content(3 << 20, 3), grain=16, ngtes=128),
        }
        for name, data in crafted.items():
            path = os.path.join(tmp, name)
            open(path, "wb").write(data)
            files[name] = path
        for name, path in sorted(files.items()):
            size = os.path.getsize(path)
            if size > 65536:
                sys.exit("%s is %d bytes (> 64 KiB)" % (name, size))
            shutil.copy(path, os.path.join(outdir, name))
            print("%-28s %6d bytes" % (name, size))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
