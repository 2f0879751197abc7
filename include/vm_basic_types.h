/*
 * vm_basic_types.h - the base types that vixDiskLib.h is written in.
 *
 * openvddk's own version of the small set of definitions VixDiskLib clients
 * rely on: Bool, fixed-width integer names, and printf/constant helpers.
 * Sizes and signedness match VMware's header on Linux x86_64 (LP64).
 */
#ifndef _VM_BASIC_TYPES_H_
#define _VM_BASIC_TYPES_H_

#include <stddef.h>

#ifndef _XTYPEDEF_BOOL
#define _XTYPEDEF_BOOL
typedef char Bool;
#endif

#ifndef FALSE
#define FALSE 0
#endif
#ifndef TRUE
#define TRUE 1
#endif

#if defined(HAVE_STDINT_H) || (defined(__cplusplus) && __cplusplus >= 201103L)
#include <stdint.h>
typedef uint64_t uint64;
typedef int64_t int64;
#else
#if defined(__LP64__) || defined(_LP64)
typedef unsigned long uint64;
typedef long int64;
#else
typedef unsigned long long uint64;
typedef long long int64;
#endif
#endif

typedef unsigned int uint32;
typedef int int32;
typedef unsigned short uint16;
typedef short int16;
typedef unsigned char uint8;
typedef signed char int8;

typedef uint64 SectorType;

/* printf length modifiers for the types above. */
#if defined(__LP64__) || defined(_LP64)
#define FMT64 "l"
#define FMTPD "l"
#else
#define FMT64 "ll"
#define FMTPD ""
#endif
#define FMTSZ "z"

#if defined(__LP64__) || defined(_LP64)
#define CONST64(c) c##L
#define CONST64U(c) c##uL
#else
#define CONST64(c) c##LL
#define CONST64U(c) c##uLL
#endif

#define MIN_INT8 ((int8)0x80)
#define MAX_INT8 ((int8)0x7f)
#define MIN_UINT8 ((uint8)0)
#define MAX_UINT8 ((uint8)0xff)
#define MIN_INT16 ((int16)0x8000)
#define MAX_INT16 ((int16)0x7fff)
#define MIN_UINT16 ((uint16)0)
#define MAX_UINT16 ((uint16)0xffff)
#define MIN_INT32 ((int32)0x80000000)
#define MAX_INT32 ((int32)0x7fffffff)
#define MIN_UINT32 ((uint32)0)
#define MAX_UINT32 ((uint32)0xffffffff)
#define MIN_INT64 (-MAX_INT64 - 1)
#define MAX_INT64 (CONST64(0x7fffffffffffffff))
#define MIN_UINT64 (CONST64U(0))
#define MAX_UINT64 (CONST64U(0xffffffffffffffff))

#endif /* _VM_BASIC_TYPES_H_ */
