/* vixerr.c - openvddk's own English text for VixError codes.
 *
 * One entry per code of the VixError enum in vixDiskLib.h.  The texts are
 * written for openvddk; they say what went wrong from the point of view of a
 * program using the disk library.  The table is sorted by code so that
 * vix_error_text() can use a binary search; keep it that way. */
#include "vixerr.h"

#include <stddef.h>

struct vix_errtext {
    VixError code;
    const char *text;
};

static const struct vix_errtext errtext[] = {
    /* General */
    { VIX_OK, "The operation completed successfully" },
    { VIX_E_FAIL, "The operation failed for an unspecified reason" },
    { VIX_E_OUT_OF_MEMORY, "There was not enough memory to complete the operation" },
    { VIX_E_INVALID_ARG, "One of the arguments passed to the function is not valid" },
    { VIX_E_FILE_NOT_FOUND, "The disk or file does not exist at the given path" },
    { VIX_E_OBJECT_IS_BUSY, "The object is busy with another operation; try again later" },
    { VIX_E_NOT_SUPPORTED, "This operation is not supported" },
    { VIX_E_FILE_ERROR, "A file could not be read or written" },
    { VIX_E_DISK_FULL, "There is not enough free space on the storage that holds the disk" },
    { VIX_E_INCORRECT_FILE_TYPE, "The file is not of the type the operation expects" },
    { VIX_E_CANCELLED, "The operation was cancelled before it finished" },
    { VIX_E_FILE_READ_ONLY, "The file or disk is read-only and cannot be written" },
    { VIX_E_FILE_ALREADY_EXISTS, "A file already exists at the path where a new one was to be created" },
    { VIX_E_FILE_ACCESS_ERROR, "Permission to access the file was denied" },
    { VIX_E_REQUIRES_LARGE_FILES, "The file system that holds the disk does not support files this large" },
    { VIX_E_FILE_ALREADY_LOCKED, "The disk is already open for writing by another program or handle" },
    { VIX_E_VMDB, "The host's internal configuration database reported an error" },
    { VIX_E_NOT_SUPPORTED_ON_REMOTE_OBJECT, "This operation cannot be performed on a remote object" },
    { VIX_E_FILE_TOO_BIG, "The file is too large for the file system that holds it" },
    { VIX_E_FILE_NAME_INVALID, "The file name is not valid" },
    { VIX_E_ALREADY_EXISTS, "The object being created already exists" },
    { VIX_E_BUFFER_TOOSMALL, "The buffer supplied by the caller is too small for the result" },
    { VIX_E_OBJECT_NOT_FOUND, "The requested object could not be found" },
    { VIX_E_HOST_NOT_CONNECTED, "There is no connection to the host" },
    { VIX_E_INVALID_UTF8_STRING, "A string argument is not valid UTF-8" },
    { VIX_E_UNFINISHED_JOB, "A job that had to be finished first is still running" },
    { VIX_E_NEED_KEY, "An encryption key or password is required to open this object" },
    { VIX_E_OPERATION_ALREADY_IN_PROGRESS, "The same operation is already in progress" },
    { VIX_E_LICENSE, "The product license does not allow this operation" },
    { VIX_E_VM_HOST_DISCONNECTED, "The host running the virtual machine has been disconnected" },
    { VIX_E_AUTHENTICATION_FAIL, "Authentication failed: the user name, password or credentials were rejected" },
    { VIX_E_HOST_CONNECTION_LOST, "The connection to the host was lost" },
    { VIX_E_DUPLICATE_NAME, "Another object already uses this name" },
    { VIX_E_ARGUMENT_TOO_BIG, "An argument is larger than the operation allows" },

    /* Handles */
    { VIX_E_INVALID_HANDLE, "The handle is not valid, or has already been closed" },
    { VIX_E_NOT_SUPPORTED_ON_HANDLE_TYPE, "This operation cannot be applied to this kind of handle" },
    { VIX_E_TOO_MANY_HANDLES, "Too many handles are open at the same time" },

    /* XML */
    { VIX_E_NOT_FOUND, "The requested item was not found" },
    { VIX_E_TYPE_MISMATCH, "A value has a different type than the one expected" },
    { VIX_E_INVALID_XML, "An XML document could not be parsed" },

    /* VM control */
    { VIX_E_TIMEOUT_WAITING_FOR_TOOLS, "Timed out waiting for VMware Tools to start in the guest" },
    { VIX_E_UNRECOGNIZED_COMMAND, "The command sent to the virtual machine was not recognized" },
    { VIX_E_OP_NOT_SUPPORTED_ON_GUEST, "The guest operating system does not support this operation" },
    { VIX_E_PROGRAM_NOT_STARTED, "The program could not be started in the guest" },
    { VIX_E_CANNOT_START_READ_ONLY_VM, "A virtual machine whose configuration is read-only cannot be powered on" },
    { VIX_E_VM_NOT_RUNNING, "The virtual machine must be powered on for this operation" },
    { VIX_E_VM_IS_RUNNING, "The virtual machine must be powered off for this operation" },
    { VIX_E_CANNOT_CONNECT_TO_VM, "A connection to the virtual machine could not be made" },
    { VIX_E_POWEROP_SCRIPTS_NOT_AVAILABLE, "The guest's power-operation scripts are not available" },
    { VIX_E_NO_GUEST_OS_INSTALLED, "No operating system is installed in the virtual machine" },
    { VIX_E_VM_INSUFFICIENT_HOST_MEMORY, "The host does not have enough memory to power on the virtual machine" },
    { VIX_E_SUSPEND_ERROR, "The virtual machine could not be suspended" },
    { VIX_E_VM_NOT_ENOUGH_CPUS, "The virtual machine has more virtual CPUs than the host can provide" },
    { VIX_E_HOST_USER_PERMISSIONS, "The user on the host lacks permission for this operation" },
    { VIX_E_GUEST_USER_PERMISSIONS, "The guest account lacks permission for this operation" },
    { VIX_E_TOOLS_NOT_RUNNING, "VMware Tools is not running in the guest" },
    { VIX_E_GUEST_OPERATIONS_PROHIBITED, "Operations inside the guest are disabled for this virtual machine" },
    { VIX_E_ANON_GUEST_OPERATIONS_PROHIBITED, "Guest operations by the anonymous account are disabled" },
    { VIX_E_ROOT_GUEST_OPERATIONS_PROHIBITED, "Guest operations as the administrator or root account are disabled" },
    { VIX_E_MISSING_ANON_GUEST_ACCOUNT, "The guest has no anonymous account to run the operation under" },
    { VIX_E_CANNOT_AUTHENTICATE_WITH_GUEST, "The guest rejected the supplied user name or password" },
    { VIX_E_UNRECOGNIZED_COMMAND_IN_GUEST, "VMware Tools in the guest did not recognize the command" },
    { VIX_E_CONSOLE_GUEST_OPERATIONS_PROHIBITED, "Guest operations by the console user are disabled" },
    { VIX_E_MUST_BE_CONSOLE_USER, "Only the user logged in at the guest console may do this" },
    { VIX_E_VMX_MSG_DIALOG_AND_NO_UI, "The virtual machine is waiting on a question that needs a user interface to answer" },
    { VIX_E_OPERATION_NOT_ALLOWED_FOR_LOGIN_TYPE, "This operation is not allowed for the way the guest session was logged in" },
    { VIX_E_LOGIN_TYPE_NOT_SUPPORTED, "The guest does not support this kind of login" },
    { VIX_E_EMPTY_PASSWORD_NOT_ALLOWED_IN_GUEST, "The guest does not accept an empty password" },
    { VIX_E_INTERACTIVE_SESSION_NOT_PRESENT, "No user is logged in interactively in the guest" },
    { VIX_E_INTERACTIVE_SESSION_USER_MISMATCH, "The interactive guest session belongs to a different user" },
    { VIX_E_CANNOT_POWER_ON_VM, "The virtual machine could not be powered on" },
    { VIX_E_NO_DISPLAY_SERVER, "No display server is available to start a graphical program" },
    { VIX_E_TOO_MANY_LOGONS, "The guest has too many sessions logged on already" },
    { VIX_E_INVALID_AUTHENTICATION_SESSION, "The authentication session is not valid or has expired" },

    /* VM */
    { VIX_E_VM_NOT_FOUND, "The virtual machine could not be found" },
    { VIX_E_NOT_SUPPORTED_FOR_VM_VERSION, "The virtual machine's hardware version does not support this operation" },
    { VIX_E_CANNOT_READ_VM_CONFIG, "The virtual machine's configuration file could not be read" },
    { VIX_E_TEMPLATE_VM, "This cannot be done to a template virtual machine" },
    { VIX_E_VM_ALREADY_LOADED, "The virtual machine is already loaded" },
    { VIX_E_VM_ALREADY_UP_TO_DATE, "The virtual machine is already up to date" },
    { VIX_E_VM_UNSUPPORTED_GUEST, "The guest operating system is not supported for this operation" },

    /* Properties */
    { VIX_E_UNRECOGNIZED_PROPERTY, "The property name is not recognized" },
    { VIX_E_INVALID_PROPERTY_VALUE, "The value given for the property is not valid" },
    { VIX_E_READ_ONLY_PROPERTY, "The property is read-only and cannot be changed" },
    { VIX_E_MISSING_REQUIRED_PROPERTY, "A required property was not supplied" },
    { VIX_E_INVALID_SERIALIZED_DATA, "Serialized data is malformed and could not be decoded" },
    { VIX_E_PROPERTY_TYPE_MISMATCH, "The value has a different type than the property" },

    /* Completion */
    { VIX_E_BAD_VM_INDEX, "The index is outside the range of available results" },

    /* Messages */
    { VIX_E_INVALID_MESSAGE_HEADER, "A protocol message arrived with a malformed header" },
    { VIX_E_INVALID_MESSAGE_BODY, "A protocol message arrived with a malformed body" },

    /* Snapshots */
    { VIX_E_SNAPSHOT_INVAL, "The snapshot request contains an invalid argument" },
    { VIX_E_SNAPSHOT_DUMPER, "The virtual machine's memory state for the snapshot could not be saved or restored" },
    { VIX_E_SNAPSHOT_DISKLIB, "A disk error occurred while taking or reverting a snapshot" },
    { VIX_E_SNAPSHOT_NOTFOUND, "The snapshot does not exist" },
    { VIX_E_SNAPSHOT_EXISTS, "A snapshot with this identity already exists" },
    { VIX_E_SNAPSHOT_VERSION, "The snapshot was made by an incompatible product version" },
    { VIX_E_SNAPSHOT_NOPERM, "Permission to work with the snapshot was denied" },
    { VIX_E_SNAPSHOT_CONFIG, "The virtual machine's snapshot configuration is invalid" },
    { VIX_E_SNAPSHOT_NOCHANGE, "Nothing has changed since the last snapshot" },
    { VIX_E_SNAPSHOT_CHECKPOINT, "The running virtual machine's state could not be captured for the snapshot" },
    { VIX_E_SNAPSHOT_LOCKED, "Another snapshot operation is already in progress on this virtual machine" },
    { VIX_E_SNAPSHOT_INCONSISTENT, "The snapshot information on disk is inconsistent" },
    { VIX_E_SNAPSHOT_NAMETOOLONG, "The snapshot name is too long" },
    { VIX_E_SNAPSHOT_VIXFILE, "A snapshot cannot be taken because of the virtual machine's file layout" },
    { VIX_E_SNAPSHOT_DISKLOCKED, "A disk of the virtual machine is locked, so the snapshot could not be taken" },
    { VIX_E_SNAPSHOT_DUPLICATEDDISK, "The same disk is attached to the virtual machine more than once" },
    { VIX_E_SNAPSHOT_INDEPENDENTDISK, "Independent disks are not captured by snapshots" },
    { VIX_E_SNAPSHOT_NONUNIQUE_NAME, "More than one snapshot has this name" },
    { VIX_E_SNAPSHOT_MEMORY_ON_INDEPENDENT_DISK, "The memory state cannot be captured while independent disks are attached" },
    { VIX_E_SNAPSHOT_MAXSNAPSHOTS, "The virtual machine already has the largest number of snapshots allowed" },
    { VIX_E_SNAPSHOT_MIN_FREE_SPACE, "There is not enough free space left to take a snapshot" },
    { VIX_E_SNAPSHOT_HIERARCHY_TOODEEP, "The snapshot tree is too deep to add another level" },
    { VIX_E_SNAPSHOT_RRSUSPEND, "Snapshots cannot be taken while a record/replay session is suspended" },
    { VIX_E_SNAPSHOT_NOT_REVERTABLE, "The virtual machine cannot be reverted to this snapshot" },

    /* Host */
    { VIX_E_HOST_DISK_INVALID_VALUE, "The host reported an invalid value for a physical disk" },
    { VIX_E_HOST_DISK_SECTORSIZE, "The host disk's sector size is not supported" },
    { VIX_E_HOST_FILE_ERROR_EOF, "An unexpected end of file was reached on the host" },
    { VIX_E_HOST_NETBLKDEV_HANDSHAKE, "The handshake with the network block device server failed" },
    { VIX_E_HOST_SOCKET_CREATION_ERROR, "A network socket could not be created" },
    { VIX_E_HOST_SERVER_NOT_FOUND, "The server could not be found on the network" },
    { VIX_E_HOST_NETWORK_CONN_REFUSED, "The server refused the network connection" },
    { VIX_E_HOST_TCP_SOCKET_ERROR, "A TCP socket error occurred while talking to the server" },
    { VIX_E_HOST_TCP_CONN_LOST, "The TCP connection to the server was lost" },
    { VIX_E_HOST_NBD_HASHFILE_VOLUME, "The volume for the network block device hash file is not usable" },
    { VIX_E_HOST_NBD_HASHFILE_INIT, "The network block device hash file could not be set up" },
    { VIX_E_HOST_SERVER_SHUTDOWN, "The server is shutting down" },
    { VIX_E_HOST_SERVER_NOT_AVAILABLE, "The server is not available right now" },

    /* Disk library */
    { VIX_E_DISK_INVAL, "The disk request contains an invalid argument" },
    { VIX_E_DISK_NOINIT, "The disk library has not been initialized" },
    { VIX_E_DISK_NOIO, "The disk could not be read or written" },
    { VIX_E_DISK_PARTIALCHAIN, "Part of the disk's parent chain is missing, so the disk cannot be opened" },
    { VIX_E_DISK_NEEDSREPAIR, "The disk's metadata is damaged and must be repaired before use" },
    { VIX_E_DISK_OUTOFRANGE, "The requested sectors lie beyond the end of the disk" },
    { VIX_E_DISK_CID_MISMATCH, "The parent disk was changed after the child disk was created from it" },
    { VIX_E_DISK_CANTSHRINK, "The disk cannot be shrunk" },
    { VIX_E_DISK_PARTMISMATCH, "The disk's partition table does not match the host disk's partitions" },
    { VIX_E_DISK_UNSUPPORTEDDISKVERSION, "The disk format version is newer than this library supports" },
    { VIX_E_DISK_OPENPARENT, "A parent disk in the chain could not be opened" },
    { VIX_E_DISK_NOTSUPPORTED, "This disk library does not support that feature" },
    { VIX_E_DISK_NEEDKEY, "The disk is encrypted and needs a key to open it" },
    { VIX_E_DISK_NOKEYOVERRIDE, "The disk is encrypted and its key cannot be replaced" },
    { VIX_E_DISK_NOTENCRYPTED, "The disk is not encrypted" },
    { VIX_E_DISK_NOKEY, "No key is available for the encrypted disk" },
    { VIX_E_DISK_INVALIDPARTITIONTABLE, "The disk's partition table is not valid" },
    { VIX_E_DISK_NOTNORMAL, "Only a normal (non-physical) disk can be used for this" },
    { VIX_E_DISK_NOTENCDESC, "The disk's descriptor is not encrypted" },
    { VIX_E_DISK_NEEDVMFS, "This kind of disk can only be stored on a VMFS datastore" },
    { VIX_E_DISK_RAWTOOBIG, "The physical disk or partition is too large to use" },
    { VIX_E_DISK_TOOMANYOPENFILES, "The disk chain needs more open files than the host allows" },
    { VIX_E_DISK_TOOMANYREDO, "The disk chain has too many child (redo) disks" },
    { VIX_E_DISK_RAWTOOSMALL, "The physical disk or partition is too small to use" },
    { VIX_E_DISK_INVALIDCHAIN, "The disk chain is malformed" },
    { VIX_E_DISK_KEY_NOTFOUND, "The metadata key does not exist in the disk database" },
    { VIX_E_DISK_SUBSYSTEM_INIT_FAIL, "A component the disk library depends on failed to start" },
    { VIX_E_DISK_INVALID_CONNECTION, "The connection handle is not valid" },
    { VIX_E_DISK_ENCODING, "A string could not be converted between character encodings" },
    { VIX_E_DISK_CANTREPAIR, "The disk is damaged beyond repair" },
    { VIX_E_DISK_INVALIDDISK, "The file is not a valid virtual disk" },
    { VIX_E_DISK_NOLICENSE, "The license does not permit access to this disk" },
    { VIX_E_DISK_NODEVICE, "The physical device behind the disk is missing" },
    { VIX_E_DISK_UNSUPPORTEDDEVICE, "The device behind the disk is not supported" },
    { VIX_E_DISK_CAPACITY_MISMATCH, "The parent and child disks have different capacities" },
    { VIX_E_DISK_PARENT_NOTALLOWED, "This kind of disk may not have a parent" },
    { VIX_E_DISK_ATTACH_ROOTLINK, "The disk to attach is the base of its own chain and cannot be attached" },

    /* Crypto */
    { VIX_E_CRYPTO_UNKNOWN_ALGORITHM, "The encryption algorithm is not known" },
    { VIX_E_CRYPTO_BAD_BUFFER_SIZE, "A buffer given to the encryption layer has the wrong size" },
    { VIX_E_CRYPTO_INVALID_OPERATION, "The encryption layer was asked to do something it cannot do" },
    { VIX_E_CRYPTO_RANDOM_DEVICE, "The system source of random numbers could not be used" },
    { VIX_E_CRYPTO_NEED_PASSWORD, "A password is needed to unlock the encrypted data" },
    { VIX_E_CRYPTO_BAD_PASSWORD, "The password for the encrypted data is wrong" },
    { VIX_E_CRYPTO_NOT_IN_DICTIONARY, "The encryption key was not found in the key store" },
    { VIX_E_CRYPTO_NO_CRYPTO, "Encryption support is not available" },
    { VIX_E_CRYPTO_ERROR, "The encryption layer reported an error" },
    { VIX_E_CRYPTO_BAD_FORMAT, "The encrypted data or key is in an unrecognized format" },
    { VIX_E_CRYPTO_LOCKED, "The encrypted data is locked" },
    { VIX_E_CRYPTO_EMPTY, "The key store contains no keys" },
    { VIX_E_CRYPTO_KEYSAFE_LOCATOR, "The locator of the key store is not valid" },

    /* Remoting */
    { VIX_E_CANNOT_CONNECT_TO_HOST, "A connection to the host could not be made" },
    { VIX_E_NOT_FOR_REMOTE_HOST, "This operation only works on the local host" },
    { VIX_E_INVALID_HOSTNAME_SPECIFICATION, "The host name is not written in a valid form" },

    /* Screen capture */
    { VIX_E_SCREEN_CAPTURE_ERROR, "The screen could not be captured" },
    { VIX_E_SCREEN_CAPTURE_BAD_FORMAT, "The screen capture is in an unsupported format" },
    { VIX_E_SCREEN_CAPTURE_COMPRESSION_FAIL, "The screen capture could not be compressed" },
    { VIX_E_SCREEN_CAPTURE_LARGE_DATA, "The screen capture is too large" },

    /* Guest */
    { VIX_E_GUEST_VOLUMES_NOT_FROZEN, "The guest's file systems could not be quiesced" },
    { VIX_E_NOT_A_FILE, "The path names something that is not a regular file" },
    { VIX_E_NOT_A_DIRECTORY, "The path names something that is not a directory" },
    { VIX_E_NO_SUCH_PROCESS, "No process with that identifier exists in the guest" },
    { VIX_E_FILE_NAME_TOO_LONG, "The file name or path is too long" },
    { VIX_E_OPERATION_DISABLED, "This operation has been disabled by configuration" },

    /* Tools install */
    { VIX_E_TOOLS_INSTALL_NO_IMAGE, "The VMware Tools installation image could not be found" },
    { VIX_E_TOOLS_INSTALL_IMAGE_INACCESIBLE, "The VMware Tools installation image cannot be accessed" },
    { VIX_E_TOOLS_INSTALL_NO_DEVICE, "The guest has no CD/DVD drive to mount the VMware Tools image on" },
    { VIX_E_TOOLS_INSTALL_DEVICE_NOT_CONNECTED, "The guest CD/DVD drive for the VMware Tools image is not connected" },
    { VIX_E_TOOLS_INSTALL_CANCELLED, "The VMware Tools installation was cancelled" },
    { VIX_E_TOOLS_INSTALL_INIT_FAILED, "The VMware Tools installation could not be started" },
    { VIX_E_TOOLS_INSTALL_AUTO_NOT_SUPPORTED, "Automatic VMware Tools installation is not supported for this guest" },
    { VIX_E_TOOLS_INSTALL_GUEST_NOT_READY, "The guest is not ready for a VMware Tools installation" },
    { VIX_E_TOOLS_INSTALL_SIG_CHECK_FAILED, "The signature of the VMware Tools image could not be verified" },
    { VIX_E_TOOLS_INSTALL_ERROR, "The VMware Tools installation failed" },
    { VIX_E_TOOLS_INSTALL_ALREADY_UP_TO_DATE, "VMware Tools in the guest is already current" },
    { VIX_E_TOOLS_INSTALL_IN_PROGRESS, "A VMware Tools installation is already running" },
    { VIX_E_TOOLS_INSTALL_IMAGE_COPY_FAILED, "The VMware Tools image could not be copied" },

    /* Wrapper */
    { VIX_E_WRAPPER_WORKSTATION_NOT_INSTALLED, "VMware Workstation is not installed on this host" },
    { VIX_E_WRAPPER_VERSION_NOT_FOUND, "The requested version of the VIX library is not installed" },
    { VIX_E_WRAPPER_SERVICEPROVIDER_NOT_FOUND, "The requested VIX service provider is not installed" },
    { VIX_E_WRAPPER_PLAYER_NOT_INSTALLED, "VMware Player is not installed on this host" },
    { VIX_E_WRAPPER_RUNTIME_NOT_INSTALLED, "The VIX runtime components are not installed" },
    { VIX_E_WRAPPER_MULTIPLE_SERVICEPROVIDERS, "More than one VIX service provider matches; choose one explicitly" },

    /* FuseMnt */
    { VIX_E_MNTAPI_MOUNTPT_NOT_FOUND, "The mount point does not exist" },
    { VIX_E_MNTAPI_MOUNTPT_IN_USE, "Something is already mounted on the mount point" },
    { VIX_E_MNTAPI_DISK_NOT_FOUND, "The disk to be mounted could not be found" },
    { VIX_E_MNTAPI_DISK_NOT_MOUNTED, "The disk is not mounted" },
    { VIX_E_MNTAPI_DISK_IS_MOUNTED, "The disk is already mounted" },
    { VIX_E_MNTAPI_DISK_NOT_SAFE, "The disk is not safe to mount, for example because a running virtual machine uses it" },
    { VIX_E_MNTAPI_DISK_CANT_OPEN, "The disk to be mounted could not be opened" },
    { VIX_E_MNTAPI_CANT_READ_PARTS, "The disk's partitions could not be read" },
    { VIX_E_MNTAPI_UMOUNT_APP_NOT_FOUND, "The program used to unmount file systems could not be found" },
    { VIX_E_MNTAPI_UMOUNT, "The file system could not be unmounted" },
    { VIX_E_MNTAPI_NO_MOUNTABLE_PARTITONS, "The disk has no partitions that can be mounted" },
    { VIX_E_MNTAPI_PARTITION_RANGE, "The partition number is out of range" },
    { VIX_E_MNTAPI_PERM, "Permission to mount or unmount was denied" },
    { VIX_E_MNTAPI_DICT, "The mount bookkeeping file could not be read or written" },
    { VIX_E_MNTAPI_DICT_LOCKED, "The mount bookkeeping file is locked by another process" },
    { VIX_E_MNTAPI_OPEN_HANDLES, "Files on the mounted disk are still open" },
    { VIX_E_MNTAPI_CANT_MAKE_VAR_DIR, "The directory for mount state could not be created" },
    { VIX_E_MNTAPI_NO_ROOT, "Mounting a disk requires root privileges" },
    { VIX_E_MNTAPI_LOOP_FAILED, "A loop device could not be set up for the disk" },
    { VIX_E_MNTAPI_DAEMON, "The mount helper daemon reported an error" },
    { VIX_E_MNTAPI_INTERNAL, "An internal error occurred in the mount library" },
    { VIX_E_MNTAPI_SYSTEM, "A system call failed in the mount library" },
    { VIX_E_MNTAPI_NO_CONNECTION_DETAILS, "The connection details needed to mount the disk are missing" },

    /* VixMntapi */
    { VIX_E_MNTAPI_INCOMPATIBLE_VERSION, "The mount library version does not match" },
    { VIX_E_MNTAPI_OS_ERROR, "The operating system reported an error while mounting" },
    { VIX_E_MNTAPI_DRIVE_LETTER_IN_USE, "The drive letter is already in use" },
    { VIX_E_MNTAPI_DRIVE_LETTER_ALREADY_ASSIGNED, "The volume already has a drive letter" },
    { VIX_E_MNTAPI_VOLUME_NOT_MOUNTED, "The volume is not mounted" },
    { VIX_E_MNTAPI_VOLUME_ALREADY_MOUNTED, "The volume is already mounted" },
    { VIX_E_MNTAPI_FORMAT_FAILURE, "The volume could not be formatted" },
    { VIX_E_MNTAPI_NO_DRIVER, "The driver needed for mounting is not installed" },
    { VIX_E_MNTAPI_ALREADY_OPENED, "The disk set or volume is already open" },
    { VIX_E_MNTAPI_ITEM_NOT_FOUND, "The requested item was not found on the mounted volume" },
    { VIX_E_MNTAPI_UNSUPPROTED_BOOT_LOADER, "The disk's boot loader is not supported" },
    { VIX_E_MNTAPI_UNSUPPROTED_OS, "The operating system on the disk is not supported" },
    { VIX_E_MNTAPI_CODECONVERSION, "A name on the volume could not be converted to another character encoding" },
    { VIX_E_MNTAPI_REGWRITE_ERROR, "The registry of the mounted system could not be written" },
    { VIX_E_MNTAPI_UNSUPPORTED_FT_VOLUME, "Fault-tolerant (spanned, striped or mirrored) volumes are not supported" },
    { VIX_E_MNTAPI_PARTITION_NOT_FOUND, "The partition was not found" },
    { VIX_E_MNTAPI_PUTFILE_ERROR, "The file could not be copied onto the mounted volume" },
    { VIX_E_MNTAPI_GETFILE_ERROR, "The file could not be copied from the mounted volume" },
    { VIX_E_MNTAPI_REG_NOT_OPENED, "The registry of the mounted system has not been opened" },
    { VIX_E_MNTAPI_REGDELKEY_ERROR, "The registry key could not be deleted" },
    { VIX_E_MNTAPI_CREATE_PARTITIONTABLE_ERROR, "A partition table could not be created on the disk" },
    { VIX_E_MNTAPI_OPEN_FAILURE, "The volume could not be opened" },
    { VIX_E_MNTAPI_VOLUME_NOT_WRITABLE, "The mounted volume cannot be written" },

    /* Asynchronous I/O */
    { VIX_ASYNC, "The operation was queued and will complete asynchronously" },
    { VIX_E_ASYNC_MIXEDMODE_UNSUPPORTED, "Synchronous and asynchronous I/O cannot be mixed on the same disk handle" },

    /* Network */
    { VIX_E_NET_HTTP_UNSUPPORTED_PROTOCOL, "The URL uses a protocol that is not supported" },
    { VIX_E_NET_HTTP_URL_MALFORMAT, "The URL is malformed" },
    { VIX_E_NET_HTTP_COULDNT_RESOLVE_PROXY, "The proxy server's name could not be resolved" },
    { VIX_E_NET_HTTP_COULDNT_RESOLVE_HOST, "The server's host name could not be resolved" },
    { VIX_E_NET_HTTP_COULDNT_CONNECT, "The HTTP connection to the server could not be made" },
    { VIX_E_NET_HTTP_HTTP_RETURNED_ERROR, "The HTTP server answered with an error status" },
    { VIX_E_NET_HTTP_OPERATION_TIMEDOUT, "The HTTP request timed out" },
    { VIX_E_NET_HTTP_SSL_CONNECT_ERROR, "The TLS/SSL handshake with the server failed" },
    { VIX_E_NET_HTTP_TOO_MANY_REDIRECTS, "The HTTP server redirected the request too many times" },
    { VIX_E_NET_HTTP_TRANSFER, "The HTTP transfer failed part way through" },
    { VIX_E_NET_HTTP_SSL_SECURITY, "The server's TLS/SSL certificate could not be verified" },
    { VIX_E_NET_HTTP_GENERIC, "An HTTP error occurred" },
};

const char *vix_error_text(VixError err)
{
    VixError code = VIX_ERROR_CODE(err);
    size_t lo = 0;
    size_t hi = sizeof errtext / sizeof errtext[0];

    /* Binary search over [lo, hi); the table is sorted by code. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (errtext[mid].code == code)
            return errtext[mid].text;
        if (errtext[mid].code < code)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
