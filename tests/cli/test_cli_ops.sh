# test_cli_ops.sh - the second half of test_cli.sh (sourced by it, with its
# helpers and the disks it made): clone/convert, compare, grow, shrink,
# defrag, rename, rm, attach, check, meta, bench and the progress bar.
#
# Disks at hand: s1.vmdk (64 MiB sparse, content s1.raw), its child c1.vmdk
# and grandchild g1.vmdk (content c1.raw), f1.vmdk (10 MiB flat, f1.raw),
# p2.vmdk (64 MiB split sparse, p2.vmdk.raw).

# ---- clone / convert ---------------------------------------------------------

# Every type, from a chain of three links; each copy reads as the chain.
for t in monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat vmfs vmfsThin \
         vmfsSparse streamOptimized; do
    expect 0 clone -t $t g1.vmdk "k-$t.vmdk"
    contains out "cloned g1.vmdk to k-$t.vmdk: $t, $((64 * MiB)) bytes (64 MiB)"
    grep -a -q "^createType=\"$( [ $t = vmfsThin ] && echo vmfs || echo $t)\"" "k-$t.vmdk" ||
        die "k-$t.vmdk: wrong createType"
    ok
    same "k-$t.vmdk" c1.raw
done
for t in monolithicFlat vmfsSparse streamOptimized; do
    expect 0 compare g1.vmdk "k-$t.vmdk"
    contains out "g1.vmdk and k-$t.vmdk are identical"
done
# A copy is a standalone disk: one link.
expect 0 info --json k-streamOptimized.vmdk
jcheck out "assert j['num_links'] == 1 and j['links'][0]['parent_hint'] is None, j"
# convert is clone; adapter and hardware version are the source's unless given.
expect 0 convert f1.vmdk k-f1.vmdk
contains out "cloned f1.vmdk to k-f1.vmdk: monolithicSparse"
expect 0 info --json k-f1.vmdk
jcheck out "assert j['adapter'] == 'buslogic' and j['hw_version'] == 7, j"
same k-f1.vmdk f1.vmdk.raw
expect 0 convert -t flat -a ide --hwversion 10 f1.vmdk k-f1b.vmdk
expect 0 info --json k-f1b.vmdk
jcheck out "assert j['adapter'] == 'ide' and j['hw_version'] == 10, j"
# An existing destination: refused, untouched; --overwrite replaces it.
before=$(rawsum k-f1.vmdk)
expect_error 1 "k-f1.vmdk" clone s1.vmdk k-f1.vmdk
[ "$(rawsum k-f1.vmdk)" = "$before" ] || die "a refused clone changed k-f1.vmdk"
ok
expect 0 clone --overwrite -t stream s1.vmdk k-f1.vmdk
same k-f1.vmdk s1.raw
# --single-link: only the child's own data; the rest reads as zeros.
"$PY" - c1.raw s1.raw c1only.raw <<'EOF'
import sys
c, s = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read()
G = 65536
out = bytearray(len(c))
for g in range(0, len(c), G):
    if c[g:g + G] != s[g:g + G]:
        out[g:g + G] = c[g:g + G]
open(sys.argv[3], 'wb').write(out)
EOF
expect 0 clone --single-link c1.vmdk k-c1only.vmdk
contains out "cloned c1.vmdk (this link only) to k-c1only.vmdk"
same k-c1only.vmdk c1only.raw
expect 0 map --json k-c1only.vmdk
mapcheck out $((64 * MiB)) $GRAIN "$W2"
# ... into a stream, and over an existing disk (both through a temporary disk).
expect 0 convert --single-link -t streamOptimized c1.vmdk k-c1s.vmdk
same k-c1s.vmdk c1only.raw
expect 0 clone --single-link --overwrite -t flat c1.vmdk k-f1b.vmdk
same k-f1b.vmdk c1only.raw
ls -a | grep -q '^\.vddk-' && die "a temporary disk was left behind: $(ls -a)"
ok

# ---- compare -----------------------------------------------------------------

expect 0 compare --json s1.vmdk k-f1.vmdk
jcheck out "assert j == {'disk1': 's1.vmdk', 'disk2': 'k-f1.vmdk', 'capacity1': $((64 * MiB)),
  'capacity2': $((64 * MiB)), 'identical': True, 'first_difference': None,
  'capacity_differs': False}, j"
# The first differing byte, exactly: one byte changed in a copy.
expect 0 clone s1.vmdk k-s1.vmdk
expect 0 fill -o $((40 * MiB + 7)) -l 1 -p 0xee k-s1.vmdk
expect 1 compare s1.vmdk k-s1.vmdk
contains out "s1.vmdk and k-s1.vmdk differ at offset $((40 * MiB + 7)) ($(printf 0x%x $((40 * MiB + 7))))"
[ ! -s err ] || die "compare of different disks printed an error: $(cat err)"
expect 1 compare --json k-s1.vmdk c1.vmdk
jcheck out "assert j['identical'] is False and j['first_difference'] == 5001, j"
# Against a flat disk, where the difference is in a hole of the sparse one.
expect 1 compare -q f1.vmdk k-f1b.vmdk
contains out "differ at offset 0 "
# Different capacities: the larger one's tail must read as zeros.
expect 0 create -s 65M k-big.vmdk
expect 0 compare k-big.vmdk k-big.vmdk
expect 0 clone -t flat s2.vmdk k-s2.vmdk
expect 0 compare s3.vmdk s3.vmdk
expect 0 compare --json s2.vmdk k-s2.vmdk
jcheck out "assert j['identical'] is True, j"
# k-tmp: s2's data then 512 KiB of zeros.
expect 0 clone s2.vmdk k-tmp.vmdk
expect 0 grow -s 2M k-tmp.vmdk
expect 0 compare s2.vmdk k-tmp.vmdk
contains out "are identical (the last 512 KiB of k-tmp.vmdk read as zeros)"
expect 1 compare --strict s2.vmdk k-tmp.vmdk
contains out "differ in capacity: $((1536 * KiB)) and $((2 * MiB)) bytes"
expect 1 compare -s --json s2.vmdk k-tmp.vmdk
jcheck out "assert j['identical'] is False and j['capacity_differs'] is True and j['first_difference'] is None, j"
expect 0 fill -o $((2 * MiB - 1)) -l 1 -p 1 k-tmp.vmdk
expect 1 compare k-tmp.vmdk s2.vmdk
contains out "differ at offset $((2 * MiB - 1))"
# Compare reads streams and flat disks alike.
expect 0 compare k-streamOptimized.vmdk k-monolithicFlat.vmdk

# ---- grow --------------------------------------------------------------------

# Sparse, flat, split: the old content stays, the new space reads zeros.
for d in k-monolithicSparse k-monolithicFlat k-twoGbMaxExtentSparse k-vmfs; do
    expect 0 grow -s +3M "$d.vmdk"
    contains out "grew $d.vmdk from $((64 * MiB)) bytes (64 MiB) to $((67 * MiB)) bytes (67 MiB)"
    expect 0 info --json "$d.vmdk"
    jcheck out "assert j['capacity'] == $((67 * MiB)), j"
    same "$d.vmdk" c1.raw 0 $((64 * MiB))
    expect 0 checksum -o 64M "$d.vmdk"
    [ "$(cat out)" = "$(head -c $((3 * MiB)) /dev/zero | sha256sum | cut -d' ' -f1)  $d.vmdk" ] ||
        die "$d.vmdk: the grown space does not read as zeros"
    ok
done
expect 0 grow -s 100M --update-geometry k-monolithicSparse.vmdk
expect 0 info --json k-monolithicSparse.vmdk
jcheck out "assert j['capacity'] == $((100 * MiB)) and j['geometry']['cylinders'] == 12, j"
expect 0 grow --size=110000001 -q k-monolithicSparse.vmdk
contains out "to 110000128 bytes"
# Refused: smaller, a stream, a disk with a child (the child is named).
expect_error 1 "k-vmfs.vmdk" grow -s 1M k-vmfs.vmdk
expect_error 1 "k-streamOptimized.vmdk" grow -s +1M k-streamOptimized.vmdk
expect_error 1 "c1.vmdk" grow -s +1M s1.vmdk
same c1.vmdk c1.raw

# ---- shrink, defrag -------------------------------------------------------------

# Zeros written over data are given back; the content stays.
expect 0 clone s1.vmdk k-sh.vmdk
expect 0 fill -o 1M -l 2M -p 0 k-sh.vmdk
cp s1.raw k-sh.raw
rawfill k-sh.raw $MiB $((2 * MiB)) 0
fsize=$(sizeof k-sh.vmdk)
expect 0 shrink k-sh.vmdk
contains out "shrank k-sh.vmdk: data in its link"
[ "$(sizeof k-sh.vmdk)" -lt "$fsize" ] || die "shrink did not make k-sh.vmdk smaller ($fsize bytes)"
ok
same k-sh.vmdk k-sh.raw
expect 0 map --json k-sh.vmdk
mapcheck out $((64 * MiB)) $GRAIN "$(echo "$W1" | sed "s/^$MiB:$((2 * MiB)),//")"
# A child: its zeros over parent data stay zeros.
expect 0 snapshot s1.vmdk k-shc.vmdk
expect 0 fill -o 1M -l 1M -p 0 k-shc.vmdk
cp s1.raw k-shc.raw
rawfill k-shc.raw $MiB $MiB 0
expect 0 shrink k-shc.vmdk
same k-shc.vmdk k-shc.raw
expect_error 1 "k-monolithicFlat.vmdk" shrink k-monolithicFlat.vmdk
# Restores stay thin: zeros written where nothing is stored store nothing.
blocks() { stat -c %b "$1"; }
expect 0 create -s 64M k-z.vmdk
b0=$(blocks k-z.vmdk)
expect 0 fill -p 0 k-z.vmdk
# (The first write rewrites the descriptor with a new CID: a few KiB.)
[ "$(blocks k-z.vmdk)" -lt $((b0 + 128)) ] || die "fill -p 0 allocated grains in k-z.vmdk"
ok
expect 0 create -t vmfsThin -s 64M k-zt.vmdk
expect 0 fill -p 0 k-zt.vmdk
[ "$(blocks k-zt-flat.vmdk)" -eq 0 ] || die "fill -p 0 allocated space in k-zt-flat.vmdk"
ok
# A streamOptimized disk takes writes; shrink drops the replaced grains.
expect 0 create -t streamOptimized -s 8M k-so.vmdk
newraw k-so.raw $((8 * MiB))
fillboth k-so.vmdk k-so.raw 0 $((4 * MiB)) 0x31
fillboth k-so.vmdk k-so.raw $((MiB + 100)) $((2 * MiB)) 0x32
fillboth k-so.vmdk k-so.raw $((6 * MiB)) 4096 0x33
same k-so.vmdk k-so.raw
expect 0 check k-so.vmdk
contains out "older copies of rewritten grains"
contains out "no problems found"
fsize=$(sizeof k-so.vmdk)
expect 0 shrink k-so.vmdk
[ "$(sizeof k-so.vmdk)" -lt "$fsize" ] || die "shrink did not make k-so.vmdk smaller ($fsize bytes)"
ok
same k-so.vmdk k-so.raw
expect 0 check k-so.vmdk
if grep -q "older copies" out; then die "shrink left garbage in k-so.vmdk: $(cat out)"; fi
# Defragment a disk written backwards.
expect 0 create -s 16M k-df.vmdk
newraw k-df.raw $((16 * MiB))
for i in 15 11 7 3 0; do
    fillboth k-df.vmdk k-df.raw $((i * MiB)) $((300 * KiB)) $((i + 1))
done
expect 0 defrag k-df.vmdk
contains out "defragmented k-df.vmdk"
same k-df.vmdk k-df.raw
expect 0 check k-df.vmdk
expect 0 defrag k-monolithicFlat.vmdk

# ---- rename, rm ---------------------------------------------------------------------

expect 0 rename k-f1b.vmdk k-renamed.vmdk
contains out "renamed k-f1b.vmdk to k-renamed.vmdk"
[ ! -e k-f1b.vmdk ] && [ ! -e k-f1b-flat.vmdk ] && [ -f k-renamed-flat.vmdk ] ||
    die "rename left the files wrong: $(ls k-f1b* k-renamed* 2>&1)"
ok
same k-renamed.vmdk c1only.raw
expect_error 1 "k-renamed.vmdk" rename k-renamed.vmdk k-s1.vmdk
same k-renamed.vmdk c1only.raw
expect 0 rm k-renamed.vmdk k-twoGbMaxExtentFlat.vmdk
contains out "removed k-renamed.vmdk"
contains out "removed k-twoGbMaxExtentFlat.vmdk"
ls k-renamed* k-twoGbMaxExtentFlat* >/dev/null 2>&1 && die "rm left files behind"
ok
expect_error 1 "k-renamed.vmdk" rm k-renamed.vmdk

# ---- attach --------------------------------------------------------------------------

# A delta whose parent was restored elsewhere: same content, new file and CID.
expect 0 clone s1.vmdk k-s1copy.vmdk
expect 0 snapshot s1.vmdk k-d.vmdk
expect 0 fill -o 7M -l 5000 -p 0x70 k-d.vmdk
cp s1.raw k-d.raw
rawfill k-d.raw $((7 * MiB)) 5000 0x70
expect 0 attach k-s1copy.vmdk k-d.vmdk
contains out "attached k-d.vmdk to k-s1copy.vmdk"
expect 0 info --json k-d.vmdk
jcheck out "assert [l['path'] for l in j['links']] == ['k-d.vmdk', 'k-s1copy.vmdk'], j
assert j['links'][0]['parent_hint'] == 'k-s1copy.vmdk', j"
same k-d.vmdk k-d.raw
# Refused: a base disk as the child, different capacities.
expect_error 1 "k-s1.vmdk" attach s1.vmdk k-s1.vmdk
expect_error 1 "k-d.vmdk" attach s2.vmdk k-d.vmdk
same k-d.vmdk k-d.raw

# ---- check -------------------------------------------------------------------------

expect 0 check s1.vmdk
contains out "s1.vmdk: no problems found"
expect 0 check --json f1.vmdk
jcheck out "assert j == {'path': 'f1.vmdk', 'repair': False, 'status': 'clean', 'findings': [], 'journal': [], 'notes': []}, j"
# Damage a copy: a grain table entry past the end of the file and the
# unclean-shutdown flag.
expect 0 clone s1.vmdk k-bad.vmdk
"$PY" - k-bad.vmdk <<'EOF'
import struct, sys
with open(sys.argv[1], 'r+b') as f:
    h = f.read(512)
    assert h[:4] == b'KDMV'
    gd = struct.unpack_from('<Q', h, 56)[0]          # gdOffset
    f.seek(gd * 512)
    gt = struct.unpack('<I', f.read(4))[0]
    f.seek(gt * 512 + 4 * 16)                          # grain 16: 1 MiB
    f.write(struct.pack('<I', 0x7fffff00))
    f.seek(72)                                          # uncleanShutdown
    f.write(b'\x01')
EOF
before=$(rawsum k-bad.vmdk)
expect 1 check k-bad.vmdk
[ "$(wc -l <out)" -eq 2 ] || die "check k-bad.vmdk: expected two findings: $(cat out)"
contains out "k-bad.vmdk: grain 16"
contains out "uncleanShutdown"
contains err "vddk: k-bad.vmdk: 2 problems found"
[ "$(rawsum k-bad.vmdk)" = "$before" ] || die "check without --repair changed k-bad.vmdk"
ok
expect 1 check --json k-bad.vmdk
jcheck out "assert j['status'] == 'needs-repair' and j['repair'] is False and len(j['findings']) == 2, j
assert all(f.startswith('k-bad.vmdk: ') for f in j['findings']), j"
expect 0 check --repair k-bad.vmdk
contains out "k-bad.vmdk: 2 problems repaired"
contains err "k-bad.vmdk.repair-undo removed (the repair is complete)"
expect 0 check --json k-bad.vmdk
jcheck out "assert j['status'] == 'clean', j"
same k-bad.vmdk s1.raw
expect 0 check -q --repair --json k-sh.vmdk
jcheck out "assert j['status'] == 'clean' and j['repair'] is True, j"

# ---- meta ------------------------------------------------------------------------------

expect 0 meta list s1.vmdk
contains out "adapterType = lsilogic"
contains out "virtualHWVersion = 4"
expect 0 meta list --json f1.vmdk
jcheck out "assert j['adapterType'] == 'buslogic' and j['virtualHWVersion'] == '7', j
assert 'uuid' in j and 'longContentID' in j, j"
expect 0 meta set k-s1.vmdk tool.note "made by the CLI test"
[ ! -s out ] || die "meta set printed something: $(cat out)"
expect 0 meta get k-s1.vmdk tool.note
[ "$(cat out)" = "made by the CLI test" ] || die "meta get: $(cat out)"
grep -a -q '^ddb.tool.note = "made by the CLI test"' k-s1.vmdk || die "meta set did not write the descriptor"
ok
expect 0 meta set k-s1.vmdk tool.note ""
expect 0 meta get k-s1.vmdk tool.note
[ "$(cat out)" = "" ] || die "meta get of an empty value: $(cat out)"
# get looks through the parents; list shows the link's own keys.
expect 0 meta get c1.vmdk virtualHWVersion
[ "$(cat out)" = 4 ] || die "meta get through the chain: $(cat out)"
expect_error 1 "no metadata key nosuchkey" meta get s1.vmdk nosuchkey
expect_error 1 "k-s1.vmdk" meta set k-s1.vmdk "bad key" v

# ---- bench --------------------------------------------------------------------------

before=$(rawsum k-s1.vmdk)
expect 0 bench -b 16K -d 4 -l 4M --json k-s1.vmdk
jcheck out "assert j['path'] == 'k-s1.vmdk' and j['block_size'] == 16384 and j['queue_depth'] == 4, j
assert j['length'] == $((4 * MiB)), j
assert [t['test'] for t in j['tests']] == ['seq-read', 'rand-read'], j
for t in j['tests']:
    assert t['ops'] == 256 and t['bytes'] == $((4 * MiB)), t
    assert t['seconds'] >= 0 and t['bytes_per_second'] > 0 and t['iops'] > 0, t"
[ "$(rawsum k-s1.vmdk)" = "$before" ] || die "a read-only bench changed the disk"
ok
expect 0 bench k-s1.vmdk
contains out "k-s1.vmdk: 64 KiB blocks, queue depth 8, 64 MiB per test"
contains out "seq-read    64 MiB in "
contains out "rand-read   64 MiB in "
contains out " IOPS"
# Writes: every block of the range is rewritten (seq-write), the disk stays sound.
expect 0 bench -t seq-write,rand-write,seq-read -b 64K -d 16 -l 2M --seed 5 --json k-s1.vmdk
jcheck out "assert [t['test'] for t in j['tests']] == ['seq-read', 'seq-write', 'rand-write'], j
assert all(t['ops'] == 32 for t in j['tests']), j"
expect 0 map --json k-s1.vmdk
jcheck out "assert j[0]['type'] == 'data' and j[0]['start'] == 0 and j[0]['length'] >= $((2 * MiB)), j"
expect 1 compare -q k-s1.vmdk s1.vmdk
contains out "differ at offset 0 "
same k-s1.vmdk s1.raw $((2 * MiB)) $((38 * MiB))
expect 0 check k-s1.vmdk
expect 0 bench -t all -b 512 -d 1 -l 64K k-s1.vmdk
expect_error 1 "k-s1.vmdk" bench -l 65M k-s1.vmdk
# A write benchmark on a stream appends compressed grains; the disk stays valid.
expect 0 bench -t seq-write -l 1M k-streamOptimized.vmdk
expect 0 check k-streamOptimized.vmdk

# ---- the progress bar --------------------------------------------------------------

# On a terminal (a pseudo-terminal through script(1)) the long operations
# draw a bar on stderr; in a pipe they do not, unless --progress.
command -v script >/dev/null 2>&1 || die "script(1) (bsdutils) is needed for the progress tests"
# onpty NAME ARGS...: run vddk ARGS on a pseudo-terminal; its screen in NAME.
onpty() {
    name=$1
    shift
    cmd=$VDDK
    for a in "$@"; do cmd="$cmd '$a'"; done
    script -qfec "$cmd" /dev/null >"$name" 2>&1 </dev/null ||
        die "vddk $* on a terminal failed: $(cat "$name")"
    ok
}
# hasbar FILE LABEL: FILE shows LABEL's bar at 100% with a rate.
hasbar() {
    tr '\r' '\n' <"$1" | grep -E "^$2 100% \[#+\] [0-9.]+ [KMGT]?i?B/s, [0-9:]+ elapsed" >/dev/null ||
        die "no progress bar for $2 on the terminal: $(tr '\r' '\n' <"$1")"
    ok
}
expect 0 create -s 32M k-pg.vmdk
onpty pty.out fill --random -o 0 -l 32M k-pg.vmdk
hasbar pty.out fill
contains pty.out "wrote 33554432 bytes"
onpty pty.out checksum k-pg.vmdk
hasbar pty.out checksum
onpty pty.out clone -t stream k-pg.vmdk k-pg2.vmdk
hasbar pty.out clone
onpty pty.out compare k-pg.vmdk k-pg2.vmdk
hasbar pty.out compare
onpty pty.out grow -s +8M k-pg.vmdk
hasbar pty.out grow
onpty pty.out shrink k-pg.vmdk
hasbar pty.out shrink
onpty pty.out defrag k-pg.vmdk
hasbar pty.out defrag
onpty pty.out bench -l 8M k-pg.vmdk
hasbar pty.out seq-read
hasbar pty.out rand-read
onpty pty.out check k-pg.vmdk
tr '\r' '\n' <pty.out | grep -E '^check \[#+\] [0-9:]+ elapsed, done' >/dev/null ||
    die "no progress indicator for check on the terminal: $(cat pty.out)"
ok
# -q: none on the terminal.
onpty pty.out checksum -q k-pg.vmdk
grep -q '%' pty.out && die "checksum -q drew a bar: $(cat pty.out)"
ok
# In a pipe: none; with --progress: one, on stderr only.
for args in "fill -l 1M k-pg.vmdk" "checksum k-pg.vmdk" "clone --overwrite k-pg.vmdk k-pg3.vmdk" \
            "check k-pg.vmdk" "bench -l 1M k-pg.vmdk"; do
    # shellcheck disable=SC2086 # split the arguments
    expect 0 $args
    if grep -q -e '%' -e elapsed err out; then die "vddk $args drew a bar in a pipe"; fi
    ok
done
expect 0 checksum --progress k-pg.vmdk
hasbar err checksum
grep -q '%' out && die "the progress bar went to stdout"
ok
expect 0 clone --progress --overwrite k-pg.vmdk k-pg3.vmdk
hasbar err clone
