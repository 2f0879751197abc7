/* main.c - the vddk command: dispatch to the subcommands, then end the
 * session with libvixDiskLib if a subcommand started one.
 *
 *   vddk [--help | --version]
 *   vddk help [SUBCOMMAND]
 *   vddk SUBCOMMAND [OPTIONS] ARGS...
 */
#include "vddk.h"

#include <string.h>

#ifndef OPENVDDK_VERSION
#define OPENVDDK_VERSION "unknown"
#endif
#ifndef OPENVDDK_REVISION
#define OPENVDDK_REVISION "unknown"
#endif

static const struct vddk_cmd *const commands[] = {
    &vddk_cmd_info,
    &vddk_cmd_create,
    &vddk_cmd_snapshot,
    &vddk_cmd_clone,
    &vddk_cmd_convert,
    &vddk_cmd_grow,
    &vddk_cmd_shrink,
    &vddk_cmd_defrag,
    &vddk_cmd_rename,
    &vddk_cmd_rm,
    &vddk_cmd_attach,
    &vddk_cmd_check,
    &vddk_cmd_meta,
    &vddk_cmd_map,
    &vddk_cmd_dump,
    &vddk_cmd_fill,
    &vddk_cmd_checksum,
    &vddk_cmd_compare,
    &vddk_cmd_bench,
    &vddk_cmd_serve,
    &vddk_cmd_vsphere,
    &vddk_cmd_thumbprint,
    &vddk_cmd_backup,
    &vddk_cmd_verify,
    &vddk_cmd_restore,
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const struct vddk_cmd *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

static void usage(FILE *f)
{
    fputs("usage: vddk SUBCOMMAND [OPTIONS] ARGS...\n"
          "       vddk help [SUBCOMMAND]\n"
          "       vddk --version\n"
          "\n"
          "Inspect, create, copy and modify VMware virtual disks (VMDK) through\n"
          "openvddk's libvixDiskLib.\n"
          "\n"
          "Subcommands:\n", f);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fputs("\n"
          "Sizes and offsets are bytes (decimal or 0x hex), or a number with a\n"
          "K, M, G or T suffix (powers of 1024): 4096, 0x1000, 64M, 2G.\n"
          "Long operations show a progress bar on stderr when it is a terminal\n"
          "(--progress forces it, -q turns it off).\n"
          "Disks of a vSphere VM: add --server HOST --user USER --vm MOREF\n"
          "[--snapshot MOREF] [--thumbprint TP] (password: --password-file or\n"
          "VDDK_PASSWORD) and name the disk \"[datastore] dir/disk.vmdk\".\n"
          "Exit status: 0 success, 1 failure, 2 usage error.\n"
          "Run 'vddk help SUBCOMMAND' for the options of one subcommand;\n"
          "man vddk for everything, with the JSON formats.\n", f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return VDDK_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        usage(stdout);
        return VDDK_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0) {
        printf("vddk (openvddk) %s, revision %s\n", OPENVDDK_VERSION, OPENVDDK_REVISION);
        return VDDK_EXIT_OK;
    }
    if (strcmp(name, "help") == 0) {
        if (argc == 2) {
            usage(stdout);
            return VDDK_EXIT_OK;
        }
        if (argc > 3) {
            fprintf(stderr, "vddk: help: too many arguments (see 'vddk --help')\n");
            return VDDK_EXIT_USAGE;
        }
        const struct vddk_cmd *c = find_command(argv[2]);
        if (c == NULL) {
            fprintf(stderr, "vddk: help: unknown subcommand '%s' (see 'vddk --help')\n", argv[2]);
            return VDDK_EXIT_USAGE;
        }
        return vddk_print_help(c, stdout);
    }
    if (name[0] == '-') {
        fprintf(stderr, "vddk: unknown option '%s' (see 'vddk --help')\n", name);
        return VDDK_EXIT_USAGE;
    }
    const struct vddk_cmd *c = find_command(name);
    if (c == NULL) {
        fprintf(stderr, "vddk: unknown subcommand '%s' (see 'vddk --help')\n", name);
        return VDDK_EXIT_USAGE;
    }
    int rc = vddk_remote_options(&argc, argv);
    if (rc != 0)
        return rc;
    rc = c->run(argc - 1, argv + 1);
    vddk_remote_exit();
    vddk_lib_exit();
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "vddk: error writing to standard output\n");
        if (rc == VDDK_EXIT_OK)
            rc = VDDK_EXIT_FAIL;
    }
    return rc;
}
