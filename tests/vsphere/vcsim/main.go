// vcsim for openvddk's tests: govmomi's vCenter simulator (VPX model, or
// with -esx the ESX model: a single host) on loopback with TLS.  Prints one
// JSON line describing the inventory, then answers line commands on stdin
// with one JSON line each:
//
//	snapshot VMMOREF NAME                  -> {"snapshot":"snapshot-N"}
//	setdisk VMMOREF KEY FILE [PARENT ...]  -> {"ok":true}
//	adddisk VMMOREF FILE CAPACITYKB        -> {"key":N}
//	poweron VMMOREF / poweroff VMMOREF     -> {"power":"poweredOn"|"poweredOff"}
//	                                          (no error if already so)
//	nfcstats                               -> {"tickets":N,"last":ID,"ids":[...],
//	                                           "calls":{METHOD:N},"faults":N}
//	nfcversion N|none                      -> {"ok":true}: what
//	                                          NfcGetServerNfcLibVersion answers
//	                                          (default 11; none = InvalidRequest
//	                                          fault, like ESXi 6.0)
//	expire USER                            -> {"expired":N}: TerminateSession
//	                                          of every session of USER (the
//	                                          harness's own excepted)
//	folderauth check|deny                  -> {"ok":true} (-folder-auth only):
//	                                          deny answers every /folder request
//	                                          401, check goes back to checking
//	quit                                   -> {"ok":true}, then exit 0
//
// A failing command answers {"error":"text"}.  EOF on stdin, SIGTERM and
// SIGINT stop the server and remove the datastore directories.
//
// NFC (the nfc* part below): besides vcsim's API the SOAP endpoint
// answers RetrieveInternalContent (nfcService moref) and the NfcService
// methods NfcGetVmFiles, NfcRandomAccessOpenDisk, NfcRandomAccessOpenReadonly
// (HostServiceTicket) and NfcGetServerNfcLibVersion.  Tickets name the NFC
// responder given by -nfc-host / -nfc-port / -nfc-cert; with -nfc-tickets
// DIR every ticket is also written to DIR/<sessionId> for the responder.
//
// -folder-auth (with -user, vCenter model): vcsim's datastore file service
// (/folder) serves anyone; a real vCenter and ESXi answer 401 to a request
// without a live session.  With this flag /folder requests to the listen
// host must carry the vmware_soap_session cookie of a session of -user that
// the SessionManager still knows (SessionIsActive), else they get 401.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	vimxml "github.com/vmware/govmomi/vim25/xml"
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

type nfcInfo struct {
	Service string `json:"service"` // NfcService moref value
	Host    string `json:"host"`    // ticket host ("" in ESX mode: absent)
	Port    int32  `json:"port"`
	SHA1    string `json:"sha1"`    // ticket sslThumbprint ("" without -nfc-cert)
	Tickets string `json:"tickets"` // ticket directory ("" without -nfc-tickets)
}

type startInfo struct {
	URL            string   `json:"url"`
	Host           string   `json:"host"`
	Port           int      `json:"port"`
	SHA1           string   `json:"sha1"`
	SHA256         string   `json:"sha256"`
	ESX            bool     `json:"esx"`
	SessionManager string   `json:"sessionManager"`
	Datacenter     string   `json:"datacenter"`
	Datastores     []dsInfo `json:"datastores"`
	VMs            []vmInfo `json:"vms"`
	NFC            nfcInfo  `json:"nfc"`
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
	// An optional last argument capkb=N also sets the disk's capacity.
	capKB := int64(0)
	if n := len(args); n > 0 && strings.HasPrefix(args[n-1], "capkb=") {
		v, err := strconv.ParseInt(strings.TrimPrefix(args[n-1], "capkb="), 10, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("bad capacity %q", args[n-1])
		}
		capKB = v
		args = args[:n-1]
	}
	if len(args) < 3 {
		return nil, errors.New("usage: setdisk VMMOREF KEY FILE [PARENTFILE ...] [capkb=N]")
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
	if capKB > 0 {
		disk.CapacityInKB = capKB
		disk.CapacityInBytes = capKB * 1024
	}
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

// ---- NFC: the SOAP side of NFC tickets --------------------------------
//
// vcsim has no NfcService (and its own RetrieveInternalContent names a
// non-existent "NfcService:NfcService").  The methods below are registered
// with the simulator rather than intercepted: request types are added to the
// vim25 type registry (types.Add), the NfcService is an object in
// simulator.Map, and vcsim's dispatcher then does the session check
// (NotAuthenticated), the _this lookup (ManagedObjectNotFound) and the SOAP
// envelope / fault encoding exactly as for its own methods.
// RetrieveInternalContent on ServiceInstance cannot be overridden on vcsim's
// ServiceInstance, so its request type redirects _this=ServiceInstance to a
// private object (internalSI) while decoding.

type nfcConf struct {
	esx     bool
	ref     types.ManagedObjectReference // the NfcService
	host    string                       // ticket host, vCenter mode only
	port    int32
	sha1    string // of the responder's certificate; "" without -nfc-cert
	tickets string // directory for ticket files; "" writes none
}

type nfcStatsT struct {
	Tickets int            `json:"tickets"`
	Last    string         `json:"last"`
	IDs     []string       `json:"ids"`
	Calls   map[string]int `json:"calls"`
	Faults  int            `json:"faults"`
}

var (
	nfc           nfcConf
	nfcMu         sync.Mutex // guards nfcStats, nfcLibVersion
	nfcStats      = nfcStatsT{IDs: []string{}, Calls: map[string]int{}}
	nfcLibVersion = int32(11) // < 0: NfcGetServerNfcLibVersion faults
	internalSI    = types.ManagedObjectReference{Type: "InternalServiceInstance", Value: "ServiceInstance"}
)

// nfcRequest is the request of every NfcService method (the element name,
// not the Go type, selects the method).
type nfcRequest struct {
	This          types.ManagedObjectReference  `xml:"_this"`
	Vm            *types.ManagedObjectReference `xml:"vm,omitempty"`
	DiskDeviceKey *int32                        `xml:"diskDeviceKey,omitempty"`
	HostForAccess *types.ManagedObjectReference `xml:"hostForAccess,omitempty"`
}

// nfcBody is a method's soap.HasFault; vcsim names the response element
// after R's type name.
type nfcBody[R any] struct {
	Res    *R          `xml:",omitempty"`
	Fault_ *soap.Fault `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault,omitempty"`
}

func (b *nfcBody[R]) Fault() *soap.Fault { return b.Fault_ }

// hostServiceTicket has the field order of a real ticket (govmomi's
// types.HostServiceTicket orders them differently) and an xsi:type.
type hostServiceTicket struct {
	XsiType        string `xml:"xsi:type,attr"`
	Host           string `xml:"host,omitempty"`
	Port           int32  `xml:"port"`
	Service        string `xml:"service"`
	ServiceVersion string `xml:"serviceVersion"`
	SessionId      string `xml:"sessionId"`
	SslThumbprint  string `xml:"sslThumbprint"`
}

type NfcGetVmFilesResponse struct {
	Returnval hostServiceTicket `xml:"returnval"`
}

type NfcRandomAccessOpenDiskResponse struct {
	Returnval hostServiceTicket `xml:"returnval"`
}

type NfcRandomAccessOpenReadonlyResponse struct {
	Returnval hostServiceTicket `xml:"returnval"`
}

type NfcGetServerNfcLibVersionResponse struct {
	Returnval int32 `xml:"returnval"`
}

// internalContent: a few of the ~20 internal morefs, nfcService among
// them, so that a client has to pick it by element name.
type internalContent struct {
	XsiType                string                       `xml:"xsi:type,attr"`
	InternalStatsCollector types.ManagedObjectReference `xml:"internalStatsCollector"`
	DynamicTypeManager     types.ManagedObjectReference `xml:"dynamicTypeManager"`
	NfcService             types.ManagedObjectReference `xml:"nfcService"`
	LlProvisioningManager  types.ManagedObjectReference `xml:"llProvisioningManager"`
}

type RetrieveInternalContentResponse struct {
	Returnval internalContent `xml:"returnval"`
}

type retrieveInternalContentRequest struct {
	This types.ManagedObjectReference
}

func (r *retrieveInternalContentRequest) UnmarshalXML(d *vimxml.Decoder, start vimxml.StartElement) error {
	var raw struct {
		This types.ManagedObjectReference `xml:"_this"`
	}
	if err := d.DecodeElement(&raw, &start); err != nil {
		return err
	}
	r.This = raw.This
	if r.This == vim25.ServiceInstance {
		r.This = internalSI
	}
	return nil
}

type internalServiceInstance struct {
	Self types.ManagedObjectReference
}

func (o *internalServiceInstance) Reference() types.ManagedObjectReference { return o.Self }

func (o *internalServiceInstance) RetrieveInternalContent(*retrieveInternalContentRequest) soap.HasFault {
	ref := func(t, v string) types.ManagedObjectReference {
		return types.ManagedObjectReference{Type: t, Value: v}
	}
	c := internalContent{
		XsiType:                "InternalServiceInstanceContent",
		InternalStatsCollector: ref("InternalStatsCollector", "InternalStatsCollector"),
		DynamicTypeManager:     ref("InternalDynamicTypeManager", "DynamicTypeManager"),
		NfcService:             nfc.ref,
		LlProvisioningManager:  ref("LLProvisioningManager", "LLProvisioningManager"),
	}
	if nfc.esx {
		c.InternalStatsCollector.Value = "ha-internalsvc-statscollector"
		c.DynamicTypeManager.Value = "ha-dynamic-type-manager"
		c.LlProvisioningManager.Value = "ha-llprovisioning-manager"
	}
	return &nfcBody[RetrieveInternalContentResponse]{
		Res: &RetrieveInternalContentResponse{Returnval: c},
	}
}

type nfcService struct {
	Self types.ManagedObjectReference
}

func (s *nfcService) Reference() types.ManagedObjectReference { return s.Self }

func nfcCount(method string) {
	nfcMu.Lock()
	nfcStats.Calls[method]++
	nfcMu.Unlock()
}

func nfcFault(msg string, f types.BaseMethodFault) *soap.Fault {
	nfcMu.Lock()
	nfcStats.Faults++
	nfcMu.Unlock()
	return simulator.Fault(msg, f)
}

func notFound(ref types.ManagedObjectReference) *soap.Fault {
	return nfcFault(fmt.Sprintf("managed object not found: %s", ref),
		&types.ManagedObjectNotFound{Obj: ref})
}

func missing(name string) *soap.Fault {
	return nfcFault("missing parameter: "+name, &types.InvalidRequest{})
}

// checkHost validates an optional hostForAccess.
func checkHost(h *types.ManagedObjectReference) *soap.Fault {
	if h == nil {
		return nil
	}
	if _, ok := simulator.Map.Get(*h).(*simulator.HostSystem); !ok {
		return notFound(*h)
	}
	return nil
}

// diskChain: "[ds] path" of a disk's leaf and its parents.
func diskChain(d *types.VirtualDisk) []string {
	var chain []string
	switch b := d.Backing.(type) {
	case *types.VirtualDiskFlatVer2BackingInfo:
		for ; b != nil; b = b.Parent {
			chain = append(chain, b.FileName)
		}
	case *types.VirtualDiskSeSparseBackingInfo:
		for ; b != nil; b = b.Parent {
			chain = append(chain, b.FileName)
		}
	case *types.VirtualDiskSparseVer2BackingInfo:
		for ; b != nil; b = b.Parent {
			chain = append(chain, b.FileName)
		}
	default:
		if f := diskFile(d); f != "" {
			chain = append(chain, f)
		}
	}
	return chain
}

func vmDisks(devs []types.BaseVirtualDevice) []*types.VirtualDisk {
	var out []*types.VirtualDisk
	for _, d := range devs {
		if disk, ok := d.(*types.VirtualDisk); ok {
			out = append(out, disk)
		}
	}
	return out
}

func snapshotRefs(l []types.VirtualMachineSnapshotTree, out []types.ManagedObjectReference) []types.ManagedObjectReference {
	for _, t := range l {
		out = append(out, t.Snapshot)
		out = snapshotRefs(t.ChildSnapshotList, out)
	}
	return out
}

// vmDatastores lists "NAME DIR" of the datastores of the VM's datacenter.
func vmDatastores(vm *simulator.VirtualMachine) []string {
	var dc *simulator.Datacenter
	p := vm.Parent
	for i := 0; p != nil && i < 100; i++ {
		obj := simulator.Map.Get(*p)
		if d, ok := obj.(*simulator.Datacenter); ok {
			dc = d
			break
		}
		e, ok := obj.(mo.Entity)
		if !ok {
			break
		}
		p = e.Entity().Parent
	}
	var refs []types.ManagedObjectReference
	if dc != nil {
		simulator.Map.WithLock(dc, func() {
			refs = append(refs, dc.Datastore...)
		})
	} else {
		for _, e := range simulator.Map.All("Datastore") {
			refs = append(refs, e.Reference())
		}
	}
	sort.Slice(refs, func(i, j int) bool { return morefLess(refs[i].Value, refs[j].Value) })
	var out []string
	for _, r := range refs {
		if ds, ok := simulator.Map.Get(r).(*simulator.Datastore); ok {
			out = append(out, ds.Name+" "+ds.Info.GetDatastoreInfo().Url)
		}
	}
	return out
}

// issue checks a ticket request and issues the ticket: answer and file.
// scoped: the disk diskDeviceKey names (else the whole VM, NfcGetVmFiles);
// rw: a read-write ticket.
func (s *nfcService) issue(req *nfcRequest, scoped, rw bool) (*hostServiceTicket, *soap.Fault) {
	if req.Vm == nil {
		return nil, missing("vm")
	}
	vm, ok := simulator.Map.Get(*req.Vm).(*simulator.VirtualMachine)
	if !ok {
		return nil, notFound(*req.Vm)
	}
	if f := checkHost(req.HostForAccess); f != nil {
		return nil, f
	}
	if scoped && req.DiskDeviceKey == nil {
		return nil, missing("diskDeviceKey")
	}

	var disks []*types.VirtualDisk
	var snaps []types.ManagedObjectReference
	var power types.VirtualMachinePowerState
	simulator.Map.WithLock(vm, func() {
		disks = vmDisks(vm.Config.Hardware.Device)
		power = vm.Runtime.PowerState
		if vm.Snapshot != nil {
			snaps = snapshotRefs(vm.Snapshot.RootSnapshotList, nil)
		}
	})

	var files []string
	seen := map[string]bool{}
	add := func(chain []string) {
		for _, f := range chain {
			if !seen[f] {
				seen[f] = true
				files = append(files, f)
			}
		}
	}
	if scoped {
		for _, d := range disks {
			if d.Key == *req.DiskDeviceKey {
				add(diskChain(d))
			}
		}
		if len(files) == 0 {
			return nil, nfcFault(fmt.Sprintf("%s has no virtual disk with key %d", vm.Self, *req.DiskDeviceKey),
				&types.InvalidArgument{InvalidProperty: "diskDeviceKey"})
		}
	} else {
		for _, d := range disks {
			add(diskChain(d))
		}
		for _, r := range snaps {
			snap, ok := simulator.Map.Get(r).(*simulator.VirtualMachineSnapshot)
			if !ok {
				continue
			}
			simulator.Map.WithLock(snap, func() {
				for _, d := range vmDisks(snap.Config.Hardware.Device) {
					add(diskChain(d))
				}
			})
		}
	}
	if nfc.sha1 == "" {
		return nil, nfcFault("vcsim was started without -nfc-cert: no NFC service",
			&types.NotSupported{})
	}

	t := &hostServiceTicket{
		XsiType:        "HostServiceTicket",
		Port:           nfc.port,
		Service:        "vpxa-nfc",
		ServiceVersion: "1.1",
		SessionId:      nfcSessionID(),
		SslThumbprint:  nfc.sha1,
	}
	if nfc.esx {
		t.Service = "nfc"
	} else {
		t.Host = nfc.host
	}

	var b strings.Builder
	mode := "ro"
	if rw {
		mode = "rw"
	}
	fmt.Fprintf(&b, "service %s\nmode %s\nvm %s\n", t.Service, mode, vm.Self.Value)
	for _, f := range files {
		fmt.Fprintf(&b, "file %s\n", f)
	}
	for _, d := range vmDatastores(vm) {
		fmt.Fprintf(&b, "ds %s\n", d)
	}
	if power == types.VirtualMachinePowerStatePoweredOn {
		for _, d := range disks {
			if f := diskFile(d); f != "" {
				fmt.Fprintf(&b, "busy %s\n", f)
			}
		}
	}
	if nfc.tickets != "" {
		if err := writeTicket(t.SessionId, b.String()); err != nil {
			return nil, nfcFault(err.Error(), &types.SystemError{Reason: err.Error()})
		}
	}

	nfcMu.Lock()
	nfcStats.Tickets++
	nfcStats.Last = t.SessionId
	nfcStats.IDs = append(nfcStats.IDs, t.SessionId)
	nfcMu.Unlock()
	return t, nil
}

// nfcSessionID looks like a real one: "52" and 30 hex digits, UUID style.
func nfcSessionID() string {
	var r [16]byte
	if _, err := rand.Read(r[:]); err != nil {
		panic(err)
	}
	r[0] = 0x52
	h := hex.EncodeToString(r[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// writeTicket writes DIR/ID atomically: DIR/.tmp-ID, then rename.
func writeTicket(id, text string) error {
	tmp := filepath.Join(nfc.tickets, ".tmp-"+id)
	if err := os.WriteFile(tmp, []byte(text), 0644); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(nfc.tickets, id)); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func (s *nfcService) NfcGetVmFiles(req *nfcRequest) soap.HasFault {
	nfcCount("NfcGetVmFiles")
	t, f := s.issue(req, false, false)
	if f != nil {
		return &nfcBody[NfcGetVmFilesResponse]{Fault_: f}
	}
	return &nfcBody[NfcGetVmFilesResponse]{Res: &NfcGetVmFilesResponse{Returnval: *t}}
}

func (s *nfcService) NfcRandomAccessOpenDisk(req *nfcRequest) soap.HasFault {
	nfcCount("NfcRandomAccessOpenDisk")
	t, f := s.issue(req, true, true)
	if f != nil {
		return &nfcBody[NfcRandomAccessOpenDiskResponse]{Fault_: f}
	}
	return &nfcBody[NfcRandomAccessOpenDiskResponse]{Res: &NfcRandomAccessOpenDiskResponse{Returnval: *t}}
}

func (s *nfcService) NfcRandomAccessOpenReadonly(req *nfcRequest) soap.HasFault {
	nfcCount("NfcRandomAccessOpenReadonly")
	t, f := s.issue(req, true, false)
	if f != nil {
		return &nfcBody[NfcRandomAccessOpenReadonlyResponse]{Fault_: f}
	}
	return &nfcBody[NfcRandomAccessOpenReadonlyResponse]{Res: &NfcRandomAccessOpenReadonlyResponse{Returnval: *t}}
}

func (s *nfcService) NfcGetServerNfcLibVersion(req *nfcRequest) soap.HasFault {
	type body = nfcBody[NfcGetServerNfcLibVersionResponse]
	nfcCount("NfcGetServerNfcLibVersion")
	if req.HostForAccess == nil {
		return &body{Fault_: missing("hostForAccess")}
	}
	if f := checkHost(req.HostForAccess); f != nil {
		return &body{Fault_: f}
	}
	nfcMu.Lock()
	v := nfcLibVersion
	nfcMu.Unlock()
	if v < 0 {
		return &body{Fault_: nfcFault("NfcGetServerNfcLibVersion is not supported by this host",
			&types.InvalidRequest{})}
	}
	return &body{Res: &NfcGetServerNfcLibVersionResponse{Returnval: v}}
}

// nfcSetup registers the types and objects; call after model.Create().
func nfcSetup(esx bool, host string, port int, certFile, ticketDir string) error {
	nfc = nfcConf{esx: esx, host: host, port: int32(port), tickets: ticketDir}
	nfc.ref = types.ManagedObjectReference{Type: "NfcService", Value: "nfcService"}
	if esx {
		nfc.ref.Value = "ha-nfc-service"
	}
	if certFile != "" {
		data, err := os.ReadFile(certFile)
		if err != nil {
			return err
		}
		var der []byte
		for rest := data; der == nil; {
			var blk *pem.Block
			if blk, rest = pem.Decode(rest); blk == nil {
				return fmt.Errorf("%s: no PEM certificate", certFile)
			}
			if blk.Type == "CERTIFICATE" {
				der = blk.Bytes
			}
		}
		if _, err := x509.ParseCertificate(der); err != nil {
			return fmt.Errorf("%s: %v", certFile, err)
		}
		sum := sha1.Sum(der)
		nfc.sha1 = thumbprint(sum[:])
	}
	if ticketDir != "" {
		if err := os.MkdirAll(ticketDir, 0755); err != nil {
			return err
		}
	}
	req := reflect.TypeOf((*nfcRequest)(nil)).Elem()
	for _, m := range []string{"NfcGetVmFiles", "NfcRandomAccessOpenDisk",
		"NfcRandomAccessOpenReadonly", "NfcGetServerNfcLibVersion"} {
		types.Add(m, req)
	}
	// Replaces vcsim's own (simulator/internal) registration.
	types.Add("RetrieveInternalContent", reflect.TypeOf((*retrieveInternalContentRequest)(nil)).Elem())
	simulator.Map.Put(&nfcService{Self: nfc.ref})
	simulator.Map.Put(&internalServiceInstance{Self: internalSI})
	return nil
}

func cmdNfcstats(args []string) (interface{}, error) {
	if len(args) != 0 {
		return nil, errors.New("usage: nfcstats")
	}
	nfcMu.Lock()
	defer nfcMu.Unlock()
	st := nfcStats
	st.IDs = append([]string{}, nfcStats.IDs...)
	st.Calls = map[string]int{}
	for k, v := range nfcStats.Calls {
		st.Calls[k] = v
	}
	return st, nil
}

func cmdNfcversion(args []string) (interface{}, error) {
	if len(args) != 1 {
		return nil, errors.New("usage: nfcversion N|none")
	}
	v := int64(-1)
	if args[0] != "none" {
		var err error
		if v, err = strconv.ParseInt(args[0], 10, 32); err != nil || v < 0 {
			return nil, fmt.Errorf("bad version %q", args[0])
		}
	}
	nfcMu.Lock()
	nfcLibVersion = int32(v)
	nfcMu.Unlock()
	return map[string]bool{"ok": true}, nil
}

func cmdPower(on bool) func([]string) (interface{}, error) {
	return func(args []string) (interface{}, error) {
		want := types.VirtualMachinePowerStatePoweredOff
		if on {
			want = types.VirtualMachinePowerStatePoweredOn
		}
		if len(args) != 1 {
			return nil, errors.New("usage: power{on,off} VMMOREF")
		}
		vm, err := vmRef(args[0])
		if err != nil {
			return nil, err
		}
		state, err := vm.PowerState(ctx)
		if err != nil {
			return nil, err
		}
		if state != want {
			var task *object.Task
			if on {
				task, err = vm.PowerOn(ctx)
			} else {
				task, err = vm.PowerOff(ctx)
			}
			if err != nil {
				return nil, err
			}
			if err := task.Wait(ctx); err != nil {
				return nil, err
			}
			if state, err = vm.PowerState(ctx); err != nil {
				return nil, err
			}
			if state != want {
				return nil, fmt.Errorf("%s is %s after the power task", args[0], state)
			}
		}
		return map[string]string{"power": string(state)}, nil
	}
}

// ---- /folder sessions and expiry -------------------------------------------

var (
	folderUser string      // -folder-auth: the only user there is
	folderDeny atomic.Bool // folderauth deny
)

// folderAuth wraps vcsim's /folder handler with a session check.
func folderAuth(next func(http.ResponseWriter, *http.Request)) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		ok := !folderDeny.Load()
		if ok {
			c, err := r.Cookie(soap.SessionCookieName)
			ok = err == nil && c.Value != ""
			if ok {
				sctx := &simulator.Context{Map: simulator.Map}
				res := simulator.Map.SessionManager().SessionIsActive(sctx,
					&types.SessionIsActive{SessionID: c.Value, UserName: folderUser})
				body, isBody := res.(*methods.SessionIsActiveBody)
				ok = isBody && body.Fault_ == nil && body.Res != nil && body.Res.Returnval
			}
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="VMware HTTP server"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next(w, r)
	}
}

func cmdFolderauth(args []string) (interface{}, error) {
	if folderUser == "" {
		return nil, errors.New("folderauth needs -folder-auth")
	}
	if len(args) != 1 || (args[0] != "check" && args[0] != "deny") {
		return nil, errors.New("usage: folderauth check|deny")
	}
	folderDeny.Store(args[0] == "deny")
	return map[string]bool{"ok": true}, nil
}

// cmdExpire ends every session of a user, as an administrator's
// TerminateSession (or the server's idle timeout) would.
func cmdExpire(args []string) (interface{}, error) {
	if len(args) != 1 {
		return nil, errors.New("usage: expire USER")
	}
	var sm mo.SessionManager
	pc := client.ServiceContent.SessionManager
	if err := client.RetrieveOne(ctx, *pc, []string{"sessionList", "currentSession"}, &sm); err != nil {
		return nil, err
	}
	var keys []string
	for _, us := range sm.SessionList {
		if us.UserName == args[0] && (sm.CurrentSession == nil || us.Key != sm.CurrentSession.Key) {
			keys = append(keys, us.Key)
		}
	}
	if len(keys) > 0 {
		req := types.TerminateSession{This: *pc, SessionId: keys}
		if _, err := methods.TerminateSession(ctx, client.Client, &req); err != nil {
			return nil, err
		}
	}
	return map[string]int{"expired": len(keys)}, nil
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
	info.ESX = nfc.esx
	if sm := client.ServiceContent.SessionManager; sm != nil {
		info.SessionManager = sm.Value
	}
	info.NFC = nfcInfo{Service: nfc.ref.Value, Port: nfc.port, SHA1: nfc.sha1, Tickets: nfc.tickets}
	if !nfc.esx {
		info.NFC.Host = nfc.host
	}
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
	esx := flag.Bool("esx", false, "ESX model (a single host) instead of vCenter")
	nfcHost := flag.String("nfc-host", "127.0.0.1", "NFC ticket host (vCenter mode)")
	nfcPort := flag.Int("nfc-port", 902, "NFC ticket port")
	nfcCert := flag.String("nfc-cert", "", "PEM certificate of the NFC responder (ticket sslThumbprint); without it ticket methods fault")
	nfcTickets := flag.String("nfc-tickets", "", "write each NFC ticket to DIR/<sessionId>")
	folderAuthOn := flag.Bool("folder-auth", false, "/folder needs a live session of -user (vCenter model)")
	flag.Parse()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "vcsim:", err)
		os.Exit(1)
	}
	if (*user == "") != (*password == "") || (*certFile == "") != (*keyFile == "") {
		fail(errors.New("-user needs -password, -cert needs -key"))
	}
	if *folderAuthOn && (*user == "" || *esx) {
		fail(errors.New("-folder-auth needs -user and the vCenter model"))
	}
	if *nfcPort <= 0 || *nfcPort > 65535 {
		fail(fmt.Errorf("bad -nfc-port %d", *nfcPort))
	}

	model := simulator.VPX()
	if *esx {
		model = simulator.ESX()
	}
	if err := model.Create(); err != nil {
		fail(err)
	}
	if err := nfcSetup(*esx, *nfcHost, *nfcPort, *nfcCert, *nfcTickets); err != nil {
		model.Remove()
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
	if *folderAuthOn {
		// A pattern with a host name wins over vcsim's own "/folder/"
		// (net/http ServeMux); requests name the listen host.
		host, _, err := net.SplitHostPort(*listen)
		if err != nil {
			model.Remove()
			fail(err)
		}
		folderUser = *user
		model.Service.HandleFunc(host+"/folder/", folderAuth(model.Service.ServeDatastore))
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
		"poweron": cmdPower(true), "poweroff": cmdPower(false),
		"nfcstats": cmdNfcstats, "nfcversion": cmdNfcversion,
		"expire": cmdExpire, "folderauth": cmdFolderauth,
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
