//go:build cgo && linux

// Package libpq loads a real libpq (the client library the server packages
// ship) at run time, for tests that compare pgaegis's connection behaviour
// with libpq's own on real servers. Only tests import it.
package libpq

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>

typedef void *(*connectdb_fn)(const char *);
typedef int (*status_fn)(const void *);
typedef char *(*errmsg_fn)(const void *);
typedef void (*finish_fn)(void *);
typedef int (*version_fn)(void);

static void *lp_open(const char *path) { return dlopen(path, RTLD_NOW | RTLD_LOCAL); }
static const char *lp_dlerror(void) { const char *e = dlerror(); return e ? e : "unknown dlopen error"; }
static void *lp_sym(void *h, const char *name) { return dlsym(h, name); }
static void *lp_connect(void *f, const char *ci) { return ((connectdb_fn)f)(ci); }
static int lp_status(void *f, void *c) { return ((status_fn)f)(c); }
static const char *lp_errmsg(void *f, void *c) { return ((errmsg_fn)f)(c); }
static void lp_finish(void *f, void *c) { ((finish_fn)f)(c); }
static int lp_version(void *f) { return ((version_fn)f)(); }
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// Lib is one loaded libpq.
type Lib struct {
	connect, status, errmsg, finish unsafe.Pointer
	Version                         int // PQlibVersion: 180004 for 18.4
}

// Open loads the libpq at path (its own dependencies resolve through its
// RUNPATH).
func Open(path string) (*Lib, error) {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	h := C.lp_open(cp)
	if h == nil {
		return nil, errors.New(C.GoString(C.lp_dlerror()))
	}
	l := &Lib{}
	for name, dst := range map[string]*unsafe.Pointer{"PQconnectdb": &l.connect, "PQstatus": &l.status, "PQerrorMessage": &l.errmsg, "PQfinish": &l.finish} {
		cn := C.CString(name)
		*dst = C.lp_sym(h, cn)
		C.free(unsafe.Pointer(cn))
		if *dst == nil {
			return nil, fmt.Errorf("%s: no %s", path, name)
		}
	}
	cn := C.CString("PQlibVersion")
	defer C.free(unsafe.Pointer(cn))
	if v := C.lp_sym(h, cn); v != nil {
		l.Version = int(C.lp_version(v))
	}
	return l, nil
}

// Connect runs PQconnectdb(conninfo) and reports whether the connection
// was made, and libpq's error message when not.
func (l *Lib) Connect(conninfo string) (bool, string) {
	ci := C.CString(conninfo)
	defer C.free(unsafe.Pointer(ci))
	c := C.lp_connect(l.connect, ci)
	if c == nil {
		return false, "out of memory"
	}
	defer C.lp_finish(l.finish, c)
	if C.lp_status(l.status, c) == 0 { // CONNECTION_OK
		return true, ""
	}
	return false, C.GoString(C.lp_errmsg(l.errmsg, c))
}
