// vcsim for openvddk's tests: govmomi's vCenter simulator (VPX model) on
// loopback with TLS.  Prints one JSON line describing the inventory, then
// answers line commands on stdin with one JSON line each:
//
//	snapshot VMMOREF NAME                  -> {"snapshot":"snapshot-N"}
//	setdisk VMMOREF KEY FILE [PARENT ...]  -> {"ok":true}
//	adddisk VMMOREF FILE CAPACITYKB        -> {"key":N}
//	quit                                   -> {"ok":true}, then exit 0
//
// A failing command answers {"error":"text"}.  EOF on stdin, SIGTERM and
// SIGINT stop the server and remove the datastore directories.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type dsInfo struct {
	Name  string `json:"name"`
	Moref string `json:"moref"`
	Dir   string `json:"dir"`
}

type diskInfo struct {
	Key        int32  `json:"key"`
	File       string `json:"file"`
	CapacityKB int64  `json:"capacityKB"`
}

type vmInfo struct {
	Moref string     `json:"moref"`
	Name  string     `json:"name"`
	Host  string     `json:"host"`
	Power string     `json:"power"`
	Disks []diskInfo `json:"disks"`
}

type startInfo struct {
	URL        string   `json:"url"`
	Host       string   `json:"host"`
	Port       int      `json:"port"`
	SHA1       string   `json:"sha1"`
	SHA256     string   `json:"sha256"`
	Datacenter string   `json:"datacenter"`
	Datastores []dsInfo `json:"datastores"`
	VMs        []vmInfo `json:"vms"`
}

var (
	outMu      sync.Mutex
	datastores = map[string]dsInfo{}
	client     *govmomi.Client
	ctx        = context.Background()
)

func emit(v interface{}) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b) // one line, ends in a newline
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		b.Reset()
		enc.Encode(map[string]string{"error": err.Error()})
	}
	outMu.Lock()
	os.Stdout.Write(b.Bytes())
	outMu.Unlock()
}

func thumbprint(sum []byte) string {
	parts := make([]string, len(sum))
	for i, c := range sum {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return strings.Join(parts, ":")
}

// morefLess orders "vm-57" before "vm-60" before "vm-100".
func morefLess(a, b string) bool {
	na, ea := strconv.Atoi(a[strings.LastIndex(a, "-")+1:])
	nb, eb := strconv.Atoi(b[strings.LastIndex(b, "-")+1:])
	if ea == nil && eb == nil && na != nb {
		return na < nb
	}
	return a < b
}

func diskFile(d *types.VirtualDisk) string {
	if b, ok := d.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
		return b.GetVirtualDeviceFileBackingInfo().FileName
	}
	return ""
}

// describeDisks renders the disks of a device list with their parent chains.
func describeDisks(devs []types.BaseVirtualDevice) string {
	var s []string
	for _, d := range object.VirtualDeviceList(devs).SelectByType((*types.VirtualDisk)(nil)) {
		disk := d.(*types.VirtualDisk)
		chain := []string{diskFile(disk)}
		if b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
			for p := b.Parent; p != nil; p = p.Parent {
				chain = append(chain, p.FileName)
			}
		}
		s = append(s, fmt.Sprintf("%d=%s", disk.Key, strings.Join(chain, "<")))
	}
	return strings.Join(s, " ")
}

// splitArgs splits on blanks but keeps a datastore path "[ds] dir/file"
// (one blank after the bracket) as one argument.
func splitArgs(line string) []string {
	var out []string
	f := strings.Fields(line)
	for i := 0; i < len(f); i++ {
		if strings.HasPrefix(f[i], "[") && strings.HasSuffix(f[i], "]") && i+1 < len(f) {
			out = append(out, f[i]+" "+f[i+1])
			i++
			continue
		}
		out = append(out, f[i])
	}
	return out
}

func vmRef(moref string) (*object.VirtualMachine, error) {
	ref := types.ManagedObjectReference{Type: "VirtualMachine", Value: moref}
	if _, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine); !ok {
		return nil, fmt.Errorf("no such VM: %s", moref)
	}
	return object.NewVirtualMachine(client.Client, ref), nil
}

// snapshotDisks maps each snapshot of the VM to a description of the disks its
// config names, read over SOAP.
func snapshotDisks(vm *object.VirtualMachine) (map[string]string, error) {
	var o mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"snapshot"}, &o); err != nil {
		return nil, err
	}
	res := map[string]string{}
	var walk func(l []types.VirtualMachineSnapshotTree) error
	walk = func(l []types.VirtualMachineSnapshotTree) error {
		for _, t := range l {
			var snap mo.VirtualMachineSnapshot
			if err := vm.Properties(ctx, t.Snapshot, []string{"config"}, &snap); err != nil {
				return err
			}
			res[t.Snapshot.Value] = describeDisks(snap.Config.Hardware.Device)
			if err := walk(t.ChildSnapshotList); err != nil {
				return err
			}
		}
		return nil
	}
	if o.Snapshot != nil {
		if err := walk(o.Snapshot.RootSnapshotList); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// localPath resolves "[ds] path" to the file behind it.
func localPath(file string) (dsInfo, string, error) {
	var p object.DatastorePath
	if !p.FromString(file) || p.Path == "" {
		return dsInfo{}, "", fmt.Errorf("not a datastore path: %q", file)
	}
	ds, ok := datastores[p.Datastore]
	if !ok {
		return dsInfo{}, "", fmt.Errorf("no such datastore: %q", p.Datastore)
	}
	return ds, filepath.Join(ds.Dir, filepath.FromSlash(p.Path)), nil
}

// reconfigDisk sends ReconfigVM_Task with no file operation.  vcsim then
// insists that FILE's "-flat.vmdk" companion exists (its placeholder
// convention); create it empty for the call if it does not, and remove it
// again afterwards.
func reconfigDisk(vm *object.VirtualMachine, op types.VirtualDeviceConfigSpecOperation,
	disk *types.VirtualDisk) error {
	_, local, err := localPath(diskFile(disk))
	if err != nil {
		return err
	}
	flat := strings.Replace(local, ".vmdk", "-flat.vmdk", 1)
	if _, err := os.Stat(flat); errors.Is(err, os.ErrNotExist) {
		if f, err := os.OpenFile(flat, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0644); err == nil {
			f.Close()
			defer os.Remove(flat)
		}
	}
	// CreateSnapshot_Task copies the VM's config shallowly: the snapshot's
	// device slice shares its array with the VM's, and an edit removes the
	// old device in place.  Give the VM a private copy first.
	obj := simulator.Map.Get(vm.Reference()).(*simulator.VirtualMachine)
	simulator.Map.WithLock(obj, func() {
		obj.Config.Hardware.Device = append([]types.BaseVirtualDevice(nil),
			obj.Config.Hardware.Device...)
	})
	task, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{
		DeviceChange: []types.BaseVirtualDeviceConfigSpec{
			&types.VirtualDeviceConfigSpec{Operation: op, Device: disk},
		},
	})
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}

func cmdSnapshot(args []string) (interface{}, error) {
	if len(args) != 2 {
		return nil, errors.New("usage: snapshot VMMOREF NAME")
	}
	vm, err := vmRef(args[0])
	if err != nil {
		return nil, err
	}
	task, err := vm.CreateSnapshot(ctx, args[1], "", false, false)
	if err != nil {
		return nil, err
	}
	info, err := task.WaitForResult(ctx, nil)
	if err != nil {
		return nil, err
	}
	ref, ok := info.Result.(types.ManagedObjectReference)
	if !ok {
		return nil, fmt.Errorf("unexpected task result %T", info.Result)
	}
	return map[string]string{"snapshot": ref.Value}, nil
}

func cmdSetdisk(args []string) (interface{}, error) {
	if len(args) < 3 {
		return nil, errors.New("usage: setdisk VMMOREF KEY FILE [PARENTFILE ...]")
	}
	vm, err := vmRef(args[0])
	if err != nil {
		return nil, err
	}
	key, err := strconv.Atoi(args[1])
	if err != nil {
		return nil, fmt.Errorf("bad key %q", args[1])
	}
	devs, err := vm.Device(ctx)
	if err != nil {
		return nil, err
	}
	disk, ok := devs.FindByKey(int32(key)).(*types.VirtualDisk)
	if !ok {
		return nil, fmt.Errorf("%s has no disk with key %d", args[0], key)
	}
	backing, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	if !ok {
		return nil, fmt.Errorf("disk %d has backing %T", key, disk.Backing)
	}
	chain := make([]*types.VirtualDiskFlatVer2BackingInfo, len(args)-2)
	for i, f := range args[2:] {
		ds, _, err := localPath(f)
		if err != nil {
			return nil, err
		}
		b := *backing
		b.FileName = f
		b.Datastore = &types.ManagedObjectReference{Type: "Datastore", Value: ds.Moref}
		b.Uuid, b.ChangeId, b.ContentId, b.Parent = "", "", "", nil
		chain[i] = &b
	}
	for i := 0; i+1 < len(chain); i++ {
		chain[i].Parent = chain[i+1]
	}
	chain[0].Uuid = backing.Uuid
	disk.Backing = chain[0]
	want := describeDisks([]types.BaseVirtualDevice{disk})

	before, err := snapshotDisks(vm)
	if err != nil {
		return nil, err
	}
	if err := reconfigDisk(vm, types.VirtualDeviceConfigSpecOperationEdit, disk); err != nil {
		return nil, err
	}

	// Check over SOAP: the VM shows the new chain, snapshots kept theirs.
	if devs, err = vm.Device(ctx); err != nil {
		return nil, err
	}
	got, _ := devs.FindByKey(int32(key)).(*types.VirtualDisk)
	if got == nil || describeDisks([]types.BaseVirtualDevice{got}) != want {
		return nil, fmt.Errorf("after ReconfigVM: disk reads %q, want %q",
			describeDisks(devs), want)
	}
	after, err := snapshotDisks(vm)
	if err != nil {
		return nil, err
	}
	for s, d := range before {
		if after[s] != d {
			return nil, fmt.Errorf("snapshot %s changed: %q -> %q", s, d, after[s])
		}
	}
	return map[string]bool{"ok": true}, nil
}

func cmdAdddisk(args []string) (interface{}, error) {
	if len(args) != 3 {
		return nil, errors.New("usage: adddisk VMMOREF FILE CAPACITYKB")
	}
	vm, err := vmRef(args[0])
	if err != nil {
		return nil, err
	}
	capKB, err := strconv.ParseInt(args[2], 10, 64)
	if err != nil || capKB <= 0 {
		return nil, fmt.Errorf("bad capacity %q", args[2])
	}
	ds, _, err := localPath(args[1])
	if err != nil {
		return nil, err
	}
	devs, err := vm.Device(ctx)
	if err != nil {
		return nil, err
	}
	var ctrl types.BaseVirtualController
	if disks := devs.SelectByType((*types.VirtualDisk)(nil)); len(disks) > 0 {
		ctrl, _ = devs.FindByKey(disks[0].GetVirtualDevice().ControllerKey).(types.BaseVirtualController)
	}
	if ctrl == nil {
		if ctrl, err = devs.FindDiskController(""); err != nil {
			return nil, err
		}
	}
	old := map[int32]bool{}
	for _, d := range devs {
		old[d.GetVirtualDevice().Key] = true
	}
	disk := devs.CreateDisk(ctrl, types.ManagedObjectReference{Type: "Datastore", Value: ds.Moref}, args[1])
	disk.CapacityInKB = capKB
	if err := reconfigDisk(vm, types.VirtualDeviceConfigSpecOperationAdd, disk); err != nil {
		return nil, err
	}
	if devs, err = vm.Device(ctx); err != nil {
		return nil, err
	}
	for _, d := range devs.SelectByType((*types.VirtualDisk)(nil)) {
		k := d.GetVirtualDevice().Key
		if !old[k] && diskFile(d.(*types.VirtualDisk)) == args[1] {
			return map[string]int32{"key": k}, nil
		}
	}
	return nil, errors.New("added disk not visible over SOAP")
}

func inventory(s *simulator.Server) startInfo {
	cert := s.Certificate().Raw
	s1, s256 := sha1.Sum(cert), sha256.Sum256(cert)
	host, port, _ := net.SplitHostPort(s.URL.Host)
	info := startInfo{
		URL:    (&url.URL{Scheme: "https", Host: s.URL.Host, Path: s.URL.Path}).String(),
		Host:   host,
		SHA1:   thumbprint(s1[:]),
		SHA256: thumbprint(s256[:]),
	}
	info.Port, _ = strconv.Atoi(port)
	if dcs := simulator.Map.All("Datacenter"); len(dcs) > 0 {
		info.Datacenter = dcs[0].Entity().Name
	}
	for _, e := range simulator.Map.All("Datastore") {
		ds := e.(*simulator.Datastore)
		d := dsInfo{Name: ds.Name, Moref: ds.Self.Value, Dir: ds.Info.GetDatastoreInfo().Url}
		datastores[d.Name] = d
		info.Datastores = append(info.Datastores, d)
	}
	sort.Slice(info.Datastores, func(i, j int) bool {
		return morefLess(info.Datastores[i].Moref, info.Datastores[j].Moref)
	})
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		v := vmInfo{Moref: vm.Self.Value, Name: vm.Name, Power: string(vm.Runtime.PowerState),
			Disks: []diskInfo{}}
		if vm.Runtime.Host != nil {
			v.Host = vm.Runtime.Host.Value
		}
		for _, d := range object.VirtualDeviceList(vm.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil)) {
			disk := d.(*types.VirtualDisk)
			v.Disks = append(v.Disks, diskInfo{Key: disk.Key, File: diskFile(disk), CapacityKB: disk.CapacityInKB})
		}
		info.VMs = append(info.VMs, v)
	}
	sort.Slice(info.VMs, func(i, j int) bool { return morefLess(info.VMs[i].Moref, info.VMs[j].Moref) })
	return info
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	user := flag.String("user", "", "require this user name (with -password)")
	password := flag.String("password", "", "require this password (with -user)")
	certFile := flag.String("cert", "", "PEM certificate (with -key); default: built-in")
	keyFile := flag.String("key", "", "PEM private key (with -cert)")
	flag.Parse()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "vcsim:", err)
		os.Exit(1)
	}
	if (*user == "") != (*password == "") || (*certFile == "") != (*keyFile == "") {
		fail(errors.New("-user needs -password, -cert needs -key"))
	}

	model := simulator.VPX()
	if err := model.Create(); err != nil {
		fail(err)
	}
	model.Service.TLS = new(tls.Config)
	if *certFile != "" {
		kp, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			model.Remove()
			fail(err)
		}
		model.Service.TLS.Certificates = []tls.Certificate{kp}
	}
	model.Service.Listen = &url.URL{Host: *listen}
	if *user != "" {
		model.Service.Listen.User = url.UserPassword(*user, *password)
	}
	s := model.Service.NewServer()

	var once sync.Once
	shutdown := func(code int) {
		once.Do(func() {
			s.Close()
			model.Remove()
			os.Exit(code)
		})
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sigs; shutdown(0) }()

	var err error
	if client, err = govmomi.NewClient(ctx, s.URL, true); err != nil {
		s.Close()
		model.Remove()
		fail(err)
	}
	emit(inventory(s))

	handlers := map[string]func([]string) (interface{}, error){
		"snapshot": cmdSnapshot, "setdisk": cmdSetdisk, "adddisk": cmdAdddisk,
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		f := splitArgs(sc.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "quit" {
			emit(map[string]bool{"ok": true})
			shutdown(0)
		}
		h, ok := handlers[f[0]]
		if !ok {
			emit(map[string]string{"error": "unknown command: " + f[0]})
			continue
		}
		res, err := h(f[1:])
		if err != nil {
			emit(map[string]string{"error": err.Error()})
			continue
		}
		emit(res)
	}
	shutdown(0)
}
