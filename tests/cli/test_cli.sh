#!/bin/sh
# test_cli.sh - end-to-end test of the vddk tool.
#
#   sh test_cli.sh VDDK
#
# Exercises every subcommand: help, the man page and usage errors (exit 2),
# missing and broken files (exit 1, one line naming the file), create of
# every type checked through `info --json` and the files made, fill +
# checksum against raw reference images hashed with sha256sum, map --json
# against the grains the writes touched, dump against known text (and
# `hexdump -C` when installed), snapshots; then (test_cli_ops.sh) clone and
# convert to every type, compare, grow, shrink, defrag, rename, rm, attach,
# check and repair of a damaged disk, meta, bench, and the progress bar on a
# pseudo-terminal (script(1)) and in a pipe.  Stops at the first failed
# check.  Needs python3, sha256sum and script.
set -eu

VDDK=${1:?usage: test_cli.sh VDDK}
case $VDDK in /*) ;; *) VDDK=$(pwd)/$VDDK ;; esac
[ -x "$VDDK" ] || { echo "cli: $VDDK is not executable" >&2; exit 1; }
# Debian's own interpreter when there is one: a version manager's shim
# first on PATH can take a third of a second to start, and this test starts
# python some 140 times.
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
command -v "$PY" >/dev/null 2>&1 || { echo "cli: python3 is needed" >&2; exit 1; }
command -v sha256sum >/dev/null 2>&1 || { echo "cli: sha256sum is needed" >&2; exit 1; }

HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/openvddk-cli.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT TERM
cd "$W"

KiB=1024
MiB=1048576
GRAIN=65536
CHECKS=0

die() {
    echo "cli: FAIL: $*" >&2
    exit 1
}

ok() {
    CHECKS=$((CHECKS + 1))
}

# expect STATUS ARGS...: run vddk ARGS with stdout in `out`, stderr in `err`;
# the exit status must be STATUS.
expect() {
    want=$1
    shift
    set +e
    "$VDDK" "$@" >out 2>err
    rc=$?
    set -e
    [ "$rc" -eq "$want" ] ||
        die "vddk $*: exit status $rc, expected $want; stderr: $(cat err)"
    ok
}

# expect_error STATUS TEXT ARGS...: as expect, and stderr must be exactly one
# line "vddk: ..." containing TEXT, with nothing on stdout.
expect_error() {
    want=$1
    text=$2
    shift 2
    expect "$want" "$@"
    [ "$(wc -l <err)" -eq 1 ] || die "vddk $*: stderr is not one line: $(cat err)"
    case $(cat err) in
        "vddk: "*"$text"*) ;;
        *) die "vddk $*: stderr lacks '$text': $(cat err)" ;;
    esac
    [ ! -s out ] || die "vddk $*: printed on stdout although it failed: $(cat out)"
    if grep -E '\(error [0-9]+\)|: [0-9]+$' err >/dev/null; then
        die "vddk $*: a raw error number in the message: $(cat err)"
    fi
    ok
}

# contains FILE TEXT: FILE must contain the line fragment TEXT.
contains() {
    grep -F -e "$2" "$1" >/dev/null || die "$1 lacks '$2'; it holds: $(cat "$1")"
    ok
}

# jcheck FILE CODE: run python CODE with j = the JSON in FILE; CODE asserts.
jcheck() {
    "$PY" - "$1" "$2" <<'EOF' || die "JSON check failed on $1: $2 ($(cat "$1"))"
import json, sys
with open(sys.argv[1]) as f:
    j = json.load(f)
exec(sys.argv[2])
EOF
    ok
}

# Raw reference images ---------------------------------------------------

# newraw FILE SIZE: a zero-filled (sparse) raw image.
newraw() {
    rm -f "$1"
    "$PY" -c 'import sys; open(sys.argv[1], "wb").truncate(int(sys.argv[2]))' "$1" "$2"
}

# rawfill FILE OFFSET LENGTH BYTE: what `vddk fill -p BYTE` writes.
rawfill() {
    "$PY" - "$@" <<'EOF'
import sys
path, off, n, byte = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4], 0)
with open(path, "r+b") as f:
    f.seek(off)
    f.write(bytes([byte]) * n)
EOF
}

# rawrandom FILE OFFSET LENGTH SEED: what `vddk fill --random --seed SEED`
# writes: byte X is byte X%8 (little-endian) of splitmix64 output X//8.
rawrandom() {
    "$PY" - "$@" <<'EOF'
import sys
path, off, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4], 0)
M = (1 << 64) - 1
def splitmix64(i):
    z = (seed + (i + 1) * 0x9e3779b97f4a7c15) & M
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return z ^ (z >> 31)
first, last = off // 8, (off + n + 7) // 8
words = b"".join(splitmix64(i).to_bytes(8, "little") for i in range(first, last))
with open(path, "r+b") as f:
    f.seek(off)
    f.write(words[off - first * 8:off - first * 8 + n])
EOF
}

# rawsum FILE [OFFSET LENGTH]: sha256 of (a range of) a raw image.
rawsum() {
    if [ $# -eq 1 ]; then
        s=$(sha256sum "$1")
    else
        s=$("$PY" - "$@" <<'EOF'
import hashlib, sys
with open(sys.argv[1], "rb") as f:
    f.seek(int(sys.argv[2]))
    print(hashlib.sha256(f.read(int(sys.argv[3]))).hexdigest())
EOF
)
    fi
    echo "${s%% *}"
}

# same DISK RAW [OFFSET LENGTH]: vddk checksum must equal the raw image's.
same() {
    disk=$1
    raw=$2
    shift 2
    if [ $# -eq 0 ]; then
        expect 0 checksum "$disk"
    else
        expect 0 checksum -o "$1" -l "$2" "$disk"
    fi
    got=$(cat out)
    want="$(rawsum "$raw" "$@")  $disk"
    [ "$got" = "$want" ] || die "checksum $disk $*: got '$got', expected '$want'"
    ok
}

# fillboth DISK RAW OFFSET LENGTH BYTE: fill -p into the disk and the image.
fillboth() {
    expect 0 fill -o "$3" -l "$4" -p "$5" "$1"
    contains out "wrote $4 bytes"
    rawfill "$2" "$3" "$4" "$5"
}

# mapcheck JSON CAPACITY GRAIN RANGES: the map must be exactly: data on every
# grain that one of RANGES ("off:len,off:len,...") touches, hole elsewhere,
# adjacent runs merged.
mapcheck() {
    "$PY" - "$@" <<'EOF' || die "map $1 differs from the expected grains ($4): $(cat "$1")"
import json, sys
path, cap, grain, ranges = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
got = json.load(open(path))
grains = set()
for r in filter(None, ranges.split(",")):
    off, n = (int(x) for x in r.split(":"))
    grains.update(range(off // grain, (off + n + grain - 1) // grain))
want = []
for g in range((cap + grain - 1) // grain):
    t = "data" if g in grains else "hole"
    start, length = g * grain, min(grain, cap - g * grain)
    if want and want[-1]["type"] == t:
        want[-1]["length"] += length
    else:
        want.append({"start": start, "length": length, "type": t})
if got != want:
    print("got: ", got, "\nwant:", want, file=sys.stderr)
    sys.exit(1)
EOF
    ok
}

# ---- help and usage errors ------------------------------------------------

SUBS="info create snapshot clone convert grow shrink defrag rename rm attach check meta map dump fill checksum compare bench"

expect 0 --help
for s in $SUBS; do contains out "  $s "; done
expect 0 help
contains out "usage: vddk"
expect 0 --version
contains out "openvddk"
grep -Eq '^vddk \(openvddk\) [0-9]+\.[0-9]+\.[0-9]+, revision [^ ]+$' out ||
    die "vddk --version: $(cat out)"
for s in $SUBS; do
    expect 0 help "$s"
    head -n 1 out | grep -q "^usage: vddk $s" || die "vddk help $s: bad first line: $(head -n 1 out)"
    cp out help.txt
    expect 0 "$s" --help
    cmp -s out help.txt || die "vddk $s --help differs from vddk help $s"
    expect 0 "$s" -h
    cmp -s out help.txt || die "vddk $s -h differs from vddk help $s"
done

# The man page covers every subcommand and is valid roff.
MAN=$HERE/../../docs/vddk.1
[ -f "$MAN" ] || die "no man page at $MAN"
for s in $SUBS; do
    grep -q "^\.SS \"*$s\b" "$MAN" || die "the man page has no section for $s"
    ok
done
if command -v groff >/dev/null 2>&1; then
    groff -man -ww -z -t "$MAN" >groff.err 2>&1 || die "groff failed on the man page: $(cat groff.err)"
    [ ! -s groff.err ] || die "groff warns about the man page: $(cat groff.err)"
    ok
fi

expect 2
expect_error 2 "unknown subcommand 'frob'" frob
expect_error 2 "unknown subcommand 'frob'" help frob
expect_error 2 "unknown option '--frob'" --frob
expect_error 2 "missing DISK" info
expect_error 2 "too many arguments" info a.vmdk b.vmdk
expect_error 2 "unknown option '--bogus'" info --bogus a.vmdk
expect_error 2 "unknown option '-x'" info -x a.vmdk
expect_error 2 "missing -s SIZE" create u.vmdk
expect_error 2 "invalid size '12Q'" create -s 12Q u.vmdk
expect_error 2 "invalid size '-5'" create -s -5 u.vmdk
expect_error 2 "invalid size '99999999999999999999'" create -s 99999999999999999999 u.vmdk
expect_error 2 "invalid size '17179869184T'" create -s 17179869184T u.vmdk
expect_error 2 "greater than zero" create -s 0 u.vmdk
expect_error 2 "option '-s' needs an argument" create -s
expect_error 2 "option '--size' needs an argument" create u.vmdk --size
expect_error 2 "unknown disk type 'bogus'" create -t bogus -s 1M u.vmdk
expect_error 2 "unknown adapter 'scsi'" create -a scsi -s 1M u.vmdk
expect_error 2 "invalid hardware version 'x'" create --hwversion x -s 1M u.vmdk
expect_error 2 "too many arguments" create -s 1M u.vmdk v.vmdk
expect_error 2 "missing DISK" create -s 1M
[ ! -e u.vmdk ] || die "a create that failed with a usage error left u.vmdk behind"
expect_error 2 "missing PARENT and CHILD" snapshot a.vmdk
expect_error 2 "too many arguments" snapshot a.vmdk b.vmdk c.vmdk
expect_error 2 "child type must be" snapshot -t flat a.vmdk b.vmdk
expect_error 2 "missing SOURCE and DEST" clone a.vmdk
expect_error 2 "missing SOURCE and DEST" convert a.vmdk
expect_error 2 "unknown disk type 'qcow2'" convert -t qcow2 a.vmdk b.vmdk
expect_error 2 "unknown adapter 'nvme'" clone -a nvme a.vmdk b.vmdk
expect_error 2 "the same file" clone a.vmdk a.vmdk
expect_error 2 "missing -s SIZE" grow a.vmdk
expect_error 2 "invalid size '+x'" grow -s +x a.vmdk
expect_error 2 "greater than zero" grow -s +0 a.vmdk
expect_error 2 "missing DISK" grow -s 1G
expect_error 2 "missing DISK" shrink
expect_error 2 "unknown option '--all'" shrink --all a.vmdk
expect_error 2 "too many arguments" defrag a.vmdk b.vmdk
expect_error 2 "missing OLD and NEW" rename a.vmdk
expect_error 2 "missing DISK" rm
expect_error 2 "missing PARENT and CHILD" attach a.vmdk
expect_error 2 "unknown option '--fix'" check --fix a.vmdk
expect_error 2 "missing DISK" check --repair
expect_error 2 "missing list, get or set" meta
expect_error 2 "unknown action 'del'" meta del a.vmdk k
expect_error 2 "missing DISK after 'list'" meta list
expect_error 2 "missing DISK and KEY after 'get'" meta get a.vmdk
expect_error 2 "missing DISK, KEY and VALUE after 'set'" meta set a.vmdk k
expect_error 2 "too many arguments" meta get a.vmdk k v
expect_error 2 "--json goes with 'list' only" meta get --json a.vmdk k
expect_error 2 "missing DISK" map
expect_error 2 "option '--json' takes no argument" map --json=yes a.vmdk
expect_error 2 "invalid offset 'abc'" dump -o abc a.vmdk
expect_error 2 "invalid length '1X'" dump -l 1X a.vmdk
expect_error 2 "invalid pattern byte '256'" fill -p 256 a.vmdk
expect_error 2 "invalid pattern byte 'zz'" fill -p zz a.vmdk
expect_error 2 "exclude each other" fill -p 1 --random a.vmdk
expect_error 2 "--seed needs --random" fill --seed 1 a.vmdk
expect_error 2 "invalid seed" fill --random --seed x a.vmdk
expect_error 2 "missing DISK" checksum
expect_error 2 "invalid offset '-5'" checksum -o -5 a.vmdk
expect_error 2 "invalid block size '0'" checksum -b 0 a.vmdk
expect_error 2 "unknown option '-x'" checksum -x a.vmdk
expect_error 2 "missing DISK1 and DISK2" compare a.vmdk
expect_error 2 "too many arguments" compare a.vmdk b.vmdk c.vmdk
expect_error 2 "invalid test list 'seq'" bench -t seq a.vmdk
expect_error 2 "invalid block size '1000'" bench -b 1000 a.vmdk
expect_error 2 "invalid block size '32M'" bench -b 32M a.vmdk
expect_error 2 "invalid queue depth '0'" bench -d 0 a.vmdk
expect_error 2 "invalid queue depth '257'" bench --queue-depth 257 a.vmdk
expect_error 2 "missing DISK" bench

# ---- missing files: exit 1, the file named ----------------------------------

for s in info map dump checksum fill shrink defrag check bench rm; do
    expect_error 1 "missing.vmdk" "$s" "$W/missing.vmdk"
done
expect_error 1 "missing.vmdk" grow -s 1G "$W/missing.vmdk"
expect_error 1 "missing.vmdk" meta list "$W/missing.vmdk"
expect_error 1 "missing.vmdk" rename "$W/missing.vmdk" other.vmdk
expect_error 1 "missing.vmdk" clone "$W/missing.vmdk" clone-of-missing.vmdk
[ ! -e clone-of-missing.vmdk ] || die "a failed clone left clone-of-missing.vmdk behind"
expect_error 1 "missing.vmdk" compare "$W/missing.vmdk" "$W/missing2.vmdk"
expect_error 1 "missing.vmdk" snapshot "$W/missing.vmdk" child-of-missing.vmdk
[ ! -e child-of-missing.vmdk ] || die "a failed snapshot left child-of-missing.vmdk behind"
expect_error 1 "missing.vmdk" attach "$W/missing.vmdk" child.vmdk
expect_error 1 "nodir" create -s 1M "$W/nodir/x.vmdk"
# Not a disk: the library's reason, with the file named.
printf 'hello\nworld\n' >text.vmdk
expect_error 1 "text.vmdk" info text.vmdk
expect_error 1 "text.vmdk" checksum text.vmdk
expect_error 1 "text.vmdk" check text.vmdk

# ---- create every type; check info --json and the files ---------------------

# made NAME TYPEARG SIZEARG CAPACITY TYPE CTYPE [OPTIONS...]: create (it
# says it made TYPE), check info --json and that the descriptor says
# createType CTYPE.
made() {
    name=$1 typearg=$2 sizearg=$3 cap=$4 tname=$5 ctype=$6
    shift 6
    expect 0 create -t "$typearg" -s "$sizearg" "$@" "$name"
    contains out "created $name: $tname, $cap bytes"
    expect 0 info --json "$name"
    cp out "$name.json"
    jcheck "$name.json" "
assert j['path'] == '$name', j['path']
assert j['capacity'] == $cap, j['capacity']
assert isinstance(j['capacity_human'], str) and j['capacity_human']
assert j['logical_sector_size'] == 512 and j['physical_sector_size'] == 512, j
for k in ('geometry', 'bios_geometry'):
    g = j[k]
    assert all(isinstance(g[x], int) for x in ('cylinders', 'heads', 'sectors')), g
    assert g['heads'] > 0 and g['sectors'] > 0, g
    assert g['cylinders'] > 0 or $cap < g['heads'] * g['sectors'] * 512, g
assert j['adapter'] in ('ide', 'buslogic', 'lsilogic'), j
assert j['uuid'] is None or isinstance(j['uuid'], str)
assert j['num_links'] == 1 and len(j['links']) == 1, j
l = j['links'][0]
assert l['path'] == '$name' and l['parent_hint'] is None, l
assert len(l['cid']) == 8 and int(l['cid'], 16) != 0xffffffff, l['cid']
assert j['type'] == '$ctype' and l['type'] == '$ctype', (j['type'], l['type'])
assert l['parent_cid'] == 'ffffffff', l['parent_cid']
assert isinstance(l['file_bytes'], int) and l['file_bytes'] >= 0, l
assert l['capacity'] == $cap, l
assert 0 <= l['allocated_bytes'] <= $cap and l['allocated_bytes'] == j['allocated_bytes'], l
"
    grep -a -q "^createType=\"$ctype\"" "$name" || die "$name: the descriptor does not say createType=$ctype"
    ok
    expect 0 info "$name"
    contains out "disk:          $name"
    contains out "capacity:      $cap bytes"
    contains out "chain:         1 link"
}

# sizeof FILE: its size in bytes.
sizeof() {
    wc -c <"$1" | tr -d ' '
}

made s1.vmdk monolithicSparse 64M $((64 * MiB)) monolithicSparse monolithicSparse
jcheck s1.vmdk.json "assert j['adapter'] == 'lsilogic' and j['hw_version'] == 4, j
assert j['geometry']['heads'] == 255 and j['geometry']['sectors'] == 63, j['geometry']
assert j['capacity_human'] == '64 MiB', j['capacity_human']
assert j['allocated_bytes'] == 0, j"
contains out "capacity:      67108864 bytes (64 MiB)"
contains out "adapter:       lsilogic"
contains out "hw version:    4"
made s2.vmdk sparse 1536K $((1536 * KiB)) monolithicSparse monolithicSparse -a ide
jcheck s2.vmdk.json "assert j['adapter'] == 'ide' and j['geometry']['heads'] == 16, j"
made s3.vmdk SPARSE 1000 1024 monolithicSparse monolithicSparse
made f1.vmdk monolithicFlat 10M $((10 * MiB)) monolithicFlat monolithicFlat -a buslogic --hwversion 7
jcheck f1.vmdk.json "assert j['adapter'] == 'buslogic' and j['hw_version'] == 7, j
assert j['allocated_bytes'] == $((10 * MiB)), j"
[ "$(sizeof f1-flat.vmdk)" -eq $((10 * MiB)) ] || die "f1-flat.vmdk is not 10 MiB"
made f2.vmdk flat 3M $((3 * MiB)) monolithicFlat monolithicFlat
made p1.vmdk twoGbMaxExtentSparse 3G $((3072 * MiB)) twoGbMaxExtentSparse twoGbMaxExtentSparse
[ -f p1-s001.vmdk ] && [ -f p1-s002.vmdk ] && [ ! -e p1-s003.vmdk ] || die "p1.vmdk: not two extents"
made p2.vmdk split-sparse 64M $((64 * MiB)) twoGbMaxExtentSparse twoGbMaxExtentSparse
made q1.vmdk twoGbMaxExtentFlat 5M $((5 * MiB)) twoGbMaxExtentFlat twoGbMaxExtentFlat
[ "$(sizeof q1-f001.vmdk)" -eq $((5 * MiB)) ] || die "q1-f001.vmdk is not 5 MiB"
made q2.vmdk split-flat 2M $((2 * MiB)) twoGbMaxExtentFlat twoGbMaxExtentFlat
made v1.vmdk vmfs 8M $((8 * MiB)) vmfs vmfs --adapter=lsilogic
[ "$(sizeof v1-flat.vmdk)" -eq $((8 * MiB)) ] || die "v1-flat.vmdk is not 8 MiB"
made t1.vmdk vmfsThin 8M $((8 * MiB)) vmfsThin vmfs
grep -a -q '^ddb.thinProvisioned = "1"' t1.vmdk || die "t1.vmdk is not thin provisioned"
ok
made t2.vmdk thin 1G $((1024 * MiB)) vmfsThin vmfs
made e1.vmdk stream 4M $((4 * MiB)) streamOptimized streamOptimized
made x1.vmdk vmfsSparse 2M $((2 * MiB)) vmfsSparse vmfsSparse
# Creating over an existing disk fails and leaves it intact.
expect_error 1 "s1.vmdk" create -s 1M s1.vmdk
expect 0 info --json s1.vmdk
cmp -s out s1.vmdk.json || die "a failed create changed s1.vmdk"
ok
# A stream takes writes and metadata changes (grains are appended).
expect 0 fill -l 1K -p 0x44 e1.vmdk
expect 0 dump -l 16 e1.vmdk
contains out "44 44 44 44"
expect 0 meta set e1.vmdk foo bar
expect 0 meta get e1.vmdk foo
contains out "bar"
expect 0 check e1.vmdk

# ---- fill, checksum, map, dump on a sparse disk -----------------------------

newraw s1.raw $((64 * MiB))
same s1.vmdk s1.raw
expect 0 map --json s1.vmdk
mapcheck out $((64 * MiB)) $GRAIN ""
W1="$MiB:$((2 * MiB))"
fillboth s1.vmdk s1.raw $MiB $((2 * MiB)) 0xab
W1="$W1,5000:3000"
fillboth s1.vmdk s1.raw 5000 3000 7
W1="$W1,4096:20"
fillboth s1.vmdk s1.raw 4096 20 0x41
# Random data, unaligned on both ends.
R=$((20 * MiB + 123))
expect 0 fill -o $R -l 100000 --random --seed 42 s1.vmdk
contains out "random data, seed 42"
rawrandom s1.raw $R 100000 42
W1="$W1,$R:100000"
# Default length: to the end of the disk.  Default pattern: 0xcd.
expect 0 fill -o $((64 * MiB - 100)) -p 0x5a s1.vmdk
contains out "wrote 100 bytes"
rawfill s1.raw $((64 * MiB - 100)) 100 0x5a
W1="$W1,$((64 * MiB - 100)):100"
expect 0 fill -o 40M -l 10 s1.vmdk
contains out "pattern 0xcd"
rawfill s1.raw $((40 * MiB)) 10 0xcd
W1="$W1,$((40 * MiB)):10"

same s1.vmdk s1.raw
same s1.vmdk s1.raw 5000 3000
same s1.vmdk s1.raw $((20 * MiB)) $MiB
same s1.vmdk s1.raw 0 1
same s1.vmdk s1.raw $((64 * MiB - 1)) 1
same s1.vmdk s1.raw $((64 * MiB)) 0
# Hex offsets and suffixed lengths.
expect 0 checksum -o 0x5000 -l 1K s1.vmdk
[ "$(cat out)" = "$(rawsum s1.raw 20480 1024)  s1.vmdk" ] || die "checksum -o 0x5000 -l 1K: $(cat out)"
expect 0 checksum --offset=1M --length 2MiB s1.vmdk
[ "$(cat out)" = "$(rawsum s1.raw $MiB $((2 * MiB)))  s1.vmdk" ] || die "checksum --offset=1M --length 2MiB: $(cat out)"
expect 0 checksum -l 0 s1.vmdk
[ "$(cat out)" = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  s1.vmdk" ] ||
    die "checksum of an empty range is not the SHA-256 of nothing: $(cat out)"
# Splitting a random fill gives the same bytes as one fill.
newraw r.raw $((8 * MiB))
expect 0 create -s 8M r1.vmdk
expect 0 create -s 8M r2.vmdk
expect 0 fill --random --seed 0x1234 r1.vmdk
expect 0 fill --random --seed 4660 -o 0 -l 3333333 r2.vmdk
expect 0 fill --random --seed 4660 -o 3333333 r2.vmdk
rawrandom r.raw 0 $((8 * MiB)) 4660
same r1.vmdk r.raw
same r2.vmdk r.raw
expect 0 fill --random --seed 1 -o 0 -l 4096 r2.vmdk
expect 0 checksum r2.vmdk
[ "$(cat out)" != "$(rawsum r.raw)  r2.vmdk" ] || die "a different seed wrote the same data"

# Range errors: exit 1, the file named, nothing written.
expect_error 1 "s1.vmdk" fill -o 64M -l 1 s1.vmdk
expect_error 1 "s1.vmdk" fill -o 65M s1.vmdk
expect_error 1 "s1.vmdk" dump -o 63M -l 2M s1.vmdk
expect_error 1 "s1.vmdk" checksum -l 65M s1.vmdk
same s1.vmdk s1.raw

# The read-only subcommands leave the file untouched.
before=$(rawsum s1.vmdk)
expect 0 info s1.vmdk
expect 0 map s1.vmdk
expect 0 dump -l 1M s1.vmdk
expect 0 checksum s1.vmdk
[ "$(rawsum s1.vmdk)" = "$before" ] || die "a read-only subcommand modified s1.vmdk"

# map: data exactly on the grains the fills touched.
expect 0 map --json s1.vmdk
mapcheck out $((64 * MiB)) $GRAIN "$W1"
cp out s1.map.json
expect 0 map s1.vmdk
head -n 1 out | grep -q "^start  *length  *status" || die "map: no table header: $(head -n 1 out)"
"$PY" - s1.map.json out <<'EOF' || die "map table differs from map --json: $(cat out)"
import json, sys
runs = json.load(open(sys.argv[1]))
rows = [l.split() for l in open(sys.argv[2]).read().splitlines()[1:-1]]
assert [(int(r[0]), int(r[1]), r[2]) for r in rows] == \
       [(r["start"], r["length"], r["type"]) for r in runs], rows
EOF
contains out "s1.vmdk: 67108864 bytes (64 MiB): data "

# dump: exact hexdump -C text.
expect 0 dump -o 4096 -l 48 s1.vmdk
cat >want <<'EOF'
00001000  41 41 41 41 41 41 41 41  41 41 41 41 41 41 41 41  |AAAAAAAAAAAAAAAA|
00001010  41 41 41 41 00 00 00 00  00 00 00 00 00 00 00 00  |AAAA............|
00001020  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|
00001030
EOF
cmp -s out want || die "dump -o 4096 -l 48: got:
$(cat out)"
ok
expect 0 dump -o 1M -l 64 s1.vmdk
cat >want <<'EOF'
00100000  ab ab ab ab ab ab ab ab  ab ab ab ab ab ab ab ab  |................|
*
00100040
EOF
cmp -s out want || die "dump -o 1M -l 64: got:
$(cat out)"
ok
expect 0 dump -o 0xffff8 -l 21 s1.vmdk
cat >want <<'EOF'
000ffff8  00 00 00 00 00 00 00 00  ab ab ab ab ab ab ab ab  |................|
00100008  ab ab ab ab ab                                    |.....|
0010000d
EOF
cmp -s out want || die "dump -o 0xffff8 -l 21: got:
$(cat out)"
ok
expect 0 dump -o 4999 -l 3 s1.vmdk
printf '%s\n' "00001387  00 07 07                                          |...|" 0000138a >want
cmp -s out want || die "dump -o 4999 -l 3: got:
$(cat out)"
ok
if command -v hexdump >/dev/null 2>&1; then
    for r in "0 $((64 * MiB))" "5 100" "$((20 * MiB)) $((1 * MiB))" "$((64 * MiB - 333)) 333" "4000 200000"; do
        # shellcheck disable=SC2086 # split "OFFSET LENGTH"
        set -- $r
        expect 0 dump -o "$1" -l "$2" s1.vmdk
        hexdump -C -s "$1" -n "$2" s1.raw >want
        cmp -s out want || die "dump -o $1 -l $2 differs from hexdump -C of the raw image"
        ok
    done
    expect 0 dump s1.vmdk
    hexdump -C s1.raw >want
    cmp -s out want || die "dump of the whole disk differs from hexdump -C of the raw image"
    ok
fi

# ---- data on the other types ----------------------------------------------

# datacheck DISK CAPACITY: fills at the start, the middle and the end,
# random data, then checksums of the whole disk and of ranges.
datacheck() {
    newraw "$1.raw" "$2"
    fillboth "$1" "$1.raw" 0 4097 0x31
    fillboth "$1" "$1.raw" $(($2 / 2 - 700)) 1400 0x32
    fillboth "$1" "$1.raw" $(($2 - 513)) 513 0x33
    expect 0 fill --random --seed 9 -o $(($2 / 4 + 3)) -l 70001 "$1"
    rawrandom "$1.raw" $(($2 / 4 + 3)) 70001 9
    same "$1" "$1.raw"
    same "$1" "$1.raw" 4000 200
    same "$1" "$1.raw" $(($2 / 4)) 80000
}
datacheck f1.vmdk $((10 * MiB))
datacheck p2.vmdk $((64 * MiB))
datacheck q1.vmdk $((5 * MiB))
datacheck v1.vmdk $((8 * MiB))
datacheck t1.vmdk $((8 * MiB))
datacheck s2.vmdk $((1536 * KiB))
# The 1000-byte disk (one sector rounded up to two).
newraw s3.raw 1024
expect 0 fill --random --seed 3 s3.vmdk
contains out "wrote 1024 bytes"
rawrandom s3.raw 0 1024 3
same s3.vmdk s3.raw
expect 0 map --json s3.vmdk
mapcheck out 1024 $GRAIN "0:1024"
# A flat disk stores every byte: one data run.
expect 0 map --json f1.vmdk
jcheck out "assert j == [{'start': 0, 'length': $((10 * MiB)), 'type': 'data'}], j"

# Across the boundary of the two extents of a split sparse disk.
B=$((2047 * MiB))
expect 0 fill -o $((B - 100)) -l 200 -p 0x99 p1.vmdk
expect 0 fill -o $((3072 * MiB - 10)) -p 0x98 p1.vmdk
newraw p1.raw $((3072 * MiB))
rawfill p1.raw $((B - 100)) 200 0x99
rawfill p1.raw $((3072 * MiB - 10)) 10 0x98
same p1.vmdk p1.raw $((B - MiB)) $((2 * MiB))
same p1.vmdk p1.raw $((3071 * MiB)) $MiB
expect 0 map --json p1.vmdk
mapcheck out $((3072 * MiB)) $GRAIN "$((B - 100)):200,$((3072 * MiB - 10)):10"
expect 0 dump -o $((B - 4)) -l 8 p1.vmdk
printf '%08x  99 99 99 99 99 99 99 99                           |........|\n%08x\n' \
    $((B - 4)) $((B + 4)) >want
cmp -s out want || die "dump across the extent boundary: got:
$(cat out)"
ok

# ---- snapshots --------------------------------------------------------------

expect 0 snapshot s1.vmdk c1.vmdk
contains out "created c1.vmdk"
expect 0 info --json c1.vmdk
cp out c1.json
jcheck c1.json "
assert j['capacity'] == $((64 * MiB)) and j['num_links'] == 2, j
assert len(j['links']) == 2, j['links']
c, p = j['links']
assert c['path'] == 'c1.vmdk' and p['path'] == 's1.vmdk', (c, p)
assert c['cid'] != p['cid'] and len(c['cid']) == 8 and len(p['cid']) == 8, (c, p)
assert c['parent_hint'] == 's1.vmdk' and p['parent_hint'] is None, (c, p)
assert c['capacity'] == p['capacity'] == $((64 * MiB))
assert c['allocated_bytes'] == 0 and p['allocated_bytes'] == j['allocated_bytes'] > 0, j
"
# The CIDs info shows are the descriptors' own (CID=, parentCID=).
ccid=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["links"][0]["cid"])' c1.json)
pcid=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["links"][1]["cid"])' c1.json)
grep -a -q "^CID=$ccid" c1.vmdk || die "c1.vmdk: info's CID $ccid is not the descriptor's"
grep -a -q "^parentCID=$pcid" c1.vmdk || die "c1.vmdk: its parentCID is not s1's CID $pcid"
grep -a -q "^CID=$pcid" s1.vmdk || die "s1.vmdk: info's CID $pcid is not the descriptor's"
ok
expect 0 info c1.vmdk
contains out "chain:         2 links"
contains out "  parent:      s1.vmdk"
contains out "  CID:         $ccid"
same c1.vmdk s1.raw
expect 0 map --single-link --json c1.vmdk
mapcheck out $((64 * MiB)) $GRAIN ""
expect 0 map --json c1.vmdk
mapcheck out $((64 * MiB)) $GRAIN "$W1"

cp s1.raw c1.raw
W2="$((MiB + 512 * KiB)):$MiB"
fillboth c1.vmdk c1.raw $((MiB + 512 * KiB)) $MiB 0x44
W2="$W2,$((30 * MiB + 100)):200"
fillboth c1.vmdk c1.raw $((30 * MiB + 100)) 200 0x66
W2="$W2,5001:10"
fillboth c1.vmdk c1.raw 5001 10 0x67
expect 0 fill --random --seed 7 -o $((62 * MiB)) -l 70000 c1.vmdk
rawrandom c1.raw $((62 * MiB)) 70000 7
W2="$W2,$((62 * MiB)):70000"

same c1.vmdk c1.raw
same c1.vmdk c1.raw 4990 40
same s1.vmdk s1.raw
expect 0 map --single-link --json c1.vmdk
mapcheck out $((64 * MiB)) $GRAIN "$W2"
expect 0 map --json c1.vmdk
mapcheck out $((64 * MiB)) $GRAIN "$W1,$W2"
expect 0 map --single-link c1.vmdk
contains out "c1.vmdk (this link only): 67108864 bytes (64 MiB): data "
expect 0 dump -o 4992 -l 32 c1.vmdk
cat >want <<'EOF'
00001380  00 00 00 00 00 00 00 00  07 67 67 67 67 67 67 67  |.........ggggggg|
00001390  67 67 67 07 07 07 07 07  07 07 07 07 07 07 07 07  |ggg.............|
000013a0
EOF
cmp -s out want || die "dump of the child over its parent: got:
$(cat out)"
ok

# A grandchild, split sparse.
expect 0 snapshot -t split-sparse c1.vmdk g1.vmdk
expect 0 info --json g1.vmdk
jcheck out "
assert len(j['links']) == 3 and j['num_links'] == 3, j
assert [l['path'] for l in j['links']] == ['g1.vmdk', 'c1.vmdk', 's1.vmdk'], j
assert [l['parent_hint'] for l in j['links']] == ['c1.vmdk', 's1.vmdk', None], j"
[ -f g1-s001.vmdk ] || die "snapshot -t split-sparse made no g1-s001.vmdk"
ok
same g1.vmdk c1.raw
expect_error 1 "g1.vmdk" snapshot c1.vmdk g1.vmdk

# A missing parent: the chain cannot open and the message names the parent,
# but the child alone still can.
mv s1.vmdk s1-moved.vmdk
expect_error 1 "s1.vmdk" info c1.vmdk
expect_error 1 "s1.vmdk" checksum c1.vmdk
expect 0 map --single-link --json c1.vmdk
mapcheck out $((64 * MiB)) $GRAIN "$W2"
mv s1-moved.vmdk s1.vmdk
same c1.vmdk c1.raw

. "$HERE/test_cli_ops.sh"

echo "cli: all $CHECKS checks passed"
