#!/usr/bin/env python3
"""Use openvddk's libvixDiskLib from Python with ctypes, as with VMware's VDDK.

    python3 vixdisklib_ctypes.py LIBDIR WORKDIR

LIBDIR is the VDDK directory, the one that holds lib64/ (for the Debian
packages: /usr/lib/openvddk; for a build tree: build/dist).  In WORKDIR the
example creates a 64 MiB monolithicSparse disk, writes 1 MiB into it,
reads it back, clones the disk to streamOptimized, reads the clone, and
prints what it did and the library's log lines.  The exit status is 0 when
every step worked, 1 otherwise (with VixDiskLib's error text).

Only the public API is used, with the structures and constants of
vixDiskLib.h written out below; the same code loads VMware's library.
"""
import ctypes
import os
import platform
import sys

# ---- types and constants of vixDiskLib.h ------------------------------------------

VixError = ctypes.c_uint64
SectorType = ctypes.c_uint64
SECTOR_SIZE = 512

VIXDISKLIB_DISK_MONOLITHIC_SPARSE = 1
VIXDISKLIB_DISK_STREAM_OPTIMIZED = 6
VIXDISKLIB_ADAPTER_SCSI_LSILOGIC = 3
VIXDISKLIB_HWVERSION_WORKSTATION_5 = 4
VIXDISKLIB_FLAG_OPEN_READ_ONLY = 1 << 2


class Geometry(ctypes.Structure):
    _fields_ = [("cylinders", ctypes.c_uint32), ("heads", ctypes.c_uint32),
                ("sectors", ctypes.c_uint32)]


class CreateParams(ctypes.Structure):
    _fields_ = [("diskType", ctypes.c_int), ("adapterType", ctypes.c_int),
                ("hwVersion", ctypes.c_uint16), ("capacity", SectorType),
                ("logicalSectorSize", ctypes.c_uint32),
                ("physicalSectorSize", ctypes.c_uint32)]


class Info(ctypes.Structure):
    """The leading members of VixDiskLibInfo (the library allocates it)."""
    _fields_ = [("biosGeo", Geometry), ("physGeo", Geometry), ("capacity", SectorType),
                ("adapterType", ctypes.c_int), ("numLinks", ctypes.c_int),
                ("parentFileNameHint", ctypes.c_char_p), ("uuid", ctypes.c_char_p)]


class VixDiskLibError(Exception):
    pass


# ---- loading ------------------------------------------------------------------------

def load(libdir):
    """dlopen LIBDIR/lib64/libvixDiskLib.so.8 and declare the functions used."""
    lib = ctypes.CDLL(os.path.join(libdir, "lib64", "libvixDiskLib.so.8"))
    P = ctypes.c_void_p
    sig = {
        "VixDiskLib_InitEx": (VixError, [ctypes.c_uint32, ctypes.c_uint32, P, P, P,
                                         ctypes.c_char_p, ctypes.c_char_p]),
        "VixDiskLib_Exit": (None, []),
        "VixDiskLib_ConnectEx": (VixError, [P, ctypes.c_char, ctypes.c_char_p,
                                            ctypes.c_char_p, ctypes.POINTER(P)]),
        "VixDiskLib_Disconnect": (VixError, [P]),
        "VixDiskLib_Create": (VixError, [P, ctypes.c_char_p, ctypes.POINTER(CreateParams),
                                         P, P]),
        "VixDiskLib_Open": (VixError, [P, ctypes.c_char_p, ctypes.c_uint32,
                                       ctypes.POINTER(P)]),
        "VixDiskLib_Close": (VixError, [P]),
        "VixDiskLib_GetInfo": (VixError, [P, ctypes.POINTER(ctypes.POINTER(Info))]),
        "VixDiskLib_FreeInfo": (None, [ctypes.POINTER(Info)]),
        "VixDiskLib_Read": (VixError, [P, SectorType, SectorType, ctypes.c_char_p]),
        "VixDiskLib_Write": (VixError, [P, SectorType, SectorType, ctypes.c_char_p]),
        "VixDiskLib_Clone": (VixError, [P, ctypes.c_char_p, P, ctypes.c_char_p,
                                        ctypes.POINTER(CreateParams), P, P, ctypes.c_char]),
        "VixDiskLib_GetErrorText": (P, [VixError, ctypes.c_char_p]),
        "VixDiskLib_FreeErrorText": (None, [P]),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    return lib


def check(lib, err, what):
    """Raise with VixDiskLib's own text for a non-zero VixError."""
    if err:
        p = lib.VixDiskLib_GetErrorText(err, None)
        text = ctypes.string_at(p).decode(errors="replace") if p else "?"
        lib.VixDiskLib_FreeErrorText(p)
        raise VixDiskLibError("%s: error %d: %s" % (what, err & 0xffff, text))


# ---- log callbacks ------------------------------------------------------------------
#
# The callbacks get (fmt, va_list).  On x86-64 a va_list argument is passed
# as a pointer, which libc's vsnprintf takes as it is; other ABIs differ,
# and there the example passes no callbacks (the library is then silent).

LOG = []
_libc = ctypes.CDLL(None)
LogFunc = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_void_p)


def _log(fmt, args):
    buf = ctypes.create_string_buffer(2048)
    _libc.vsnprintf(buf, ctypes.c_size_t(len(buf)), fmt, ctypes.c_void_p(args))
    LOG.append(buf.value.decode(errors="replace").rstrip("\n"))


_log_cb = LogFunc(_log)


def log_callback():
    if platform.machine() in ("x86_64", "AMD64"):
        return ctypes.cast(_log_cb, ctypes.c_void_p)
    return None


# ---- the example --------------------------------------------------------------------

def main(argv):
    if len(argv) != 3:
        print("usage: vixdisklib_ctypes.py LIBDIR WORKDIR", file=sys.stderr)
        return 2
    libdir, work = argv[1], argv[2]
    lib = load(libdir)
    cb = log_callback()
    check(lib, lib.VixDiskLib_InitEx(8, 0, cb, cb, cb, libdir.encode(), None), "InitEx")
    conn = ctypes.c_void_p()
    try:
        # A local connection: no ConnectParams.
        check(lib, lib.VixDiskLib_ConnectEx(None, 0, None, None, ctypes.byref(conn)),
              "ConnectEx")
        disk = os.path.join(work, "example.vmdk").encode()
        clone = os.path.join(work, "example-stream.vmdk").encode()
        cp = CreateParams(VIXDISKLIB_DISK_MONOLITHIC_SPARSE, VIXDISKLIB_ADAPTER_SCSI_LSILOGIC,
                          VIXDISKLIB_HWVERSION_WORKSTATION_5, 64 * 2048, 0, 0)
        check(lib, lib.VixDiskLib_Create(conn, disk, ctypes.byref(cp), None, None), "Create")
        print("created %s: %d sectors" % (disk.decode(), cp.capacity))

        data = bytes((i * 7 + 3) & 0xff for i in range(SECTOR_SIZE)) * 2048   # 1 MiB
        start = 4096
        h = ctypes.c_void_p()
        check(lib, lib.VixDiskLib_Open(conn, disk, 0, ctypes.byref(h)), "Open")
        try:
            check(lib, lib.VixDiskLib_Write(h, start, 2048, data), "Write")
            buf = ctypes.create_string_buffer(len(data))
            check(lib, lib.VixDiskLib_Read(h, start, 2048, buf), "Read")
            if buf.raw != data:
                raise VixDiskLibError("Read returned other bytes than were written")
            info = ctypes.POINTER(Info)()
            check(lib, lib.VixDiskLib_GetInfo(h, ctypes.byref(info)), "GetInfo")
            capacity, links = info.contents.capacity, info.contents.numLinks
            lib.VixDiskLib_FreeInfo(info)
            if capacity != cp.capacity or links != 1:
                raise VixDiskLibError("GetInfo: %d sectors, %d links" % (capacity, links))
        finally:
            check(lib, lib.VixDiskLib_Close(h), "Close")
        print("wrote and read back %d bytes at sector %d" % (len(data), start))

        cp.diskType = VIXDISKLIB_DISK_STREAM_OPTIMIZED
        check(lib, lib.VixDiskLib_Clone(conn, clone, conn, disk, ctypes.byref(cp), None, None,
                                        1), "Clone")
        check(lib, lib.VixDiskLib_Open(conn, clone, VIXDISKLIB_FLAG_OPEN_READ_ONLY,
                                       ctypes.byref(h)), "Open (clone)")
        try:
            buf = ctypes.create_string_buffer(len(data) + SECTOR_SIZE)
            check(lib, lib.VixDiskLib_Read(h, start, 2049, buf), "Read (clone)")
            if buf.raw != data + bytes(SECTOR_SIZE):
                raise VixDiskLibError("the streamOptimized clone reads other bytes")
        finally:
            check(lib, lib.VixDiskLib_Close(h), "Close (clone)")
        print("cloned to %s (streamOptimized): same content" % clone.decode())
    except VixDiskLibError as e:
        print("vixdisklib_ctypes: %s" % e, file=sys.stderr)
        return 1
    finally:
        if conn:
            lib.VixDiskLib_Disconnect(conn)
        lib.VixDiskLib_Exit()
        for line in LOG:
            print("log: %s" % line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
