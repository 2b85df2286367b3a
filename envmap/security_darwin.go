//go:build darwin

package envmap

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// The few CoreFoundation and Security.framework calls the Keychain cache
// makes, bound at run time with purego (dlopen/dlsym, no cgo), so that the
// macOS binary builds from any machine with CGO_ENABLED=0. purego does the
// part we should not write ourselves: calling a C function by the platform
// ABI from Go without cgo (assembly trampolines, the runtime's system stack,
// the fake cgo runtime that makes such calls safe). What is here is only the
// declarations: each Go signature below mirrors the C prototype in the
// macOS SDK (CFBase.h, CFDictionary.h, CFString.h, CFData.h, CFArray.h,
// SecItem.h, SecBase.h); CFIndex is a C long, 64 bits on both Mac ABIs.

const (
	coreFoundationPath = "/System/Library/Frameworks/CoreFoundation.framework/CoreFoundation"
	securityPath       = "/System/Library/Frameworks/Security.framework/Security"

	kCFStringEncodingUTF8 = 0x08000100

	errSecSuccess      = 0
	errSecItemNotFound = -25300
)

type security struct {
	// CoreFoundation.
	CFRelease                         func(cf uintptr)
	CFGetTypeID                       func(cf uintptr) uint
	CFDictionaryGetTypeID             func() uint
	CFArrayGetTypeID                  func() uint
	CFDataGetTypeID                   func() uint
	CFStringGetTypeID                 func() uint
	CFDictionaryCreate                func(alloc uintptr, keys, values []uintptr, n int, keyCB, valueCB uintptr) uintptr
	CFDictionaryGetValue              func(dict, key uintptr) uintptr
	CFArrayGetCount                   func(arr uintptr) int
	CFArrayGetValueAtIndex            func(arr uintptr, i int) uintptr
	CFDataCreate                      func(alloc uintptr, b []byte, n int) uintptr
	CFDataGetLength                   func(data uintptr) int
	CFDataGetBytePtr                  func(data uintptr) *byte
	CFStringCreateWithBytes           func(alloc uintptr, b []byte, n int, enc uint32, bom bool) uintptr
	CFStringGetLength                 func(s uintptr) int
	CFStringGetMaximumSizeForEncoding func(n int, enc uint32) int
	CFStringGetCString                func(s uintptr, buf []byte, n int, enc uint32) bool
	// Security.
	SecItemAdd                func(attrs uintptr, result *uintptr) int32
	SecItemCopyMatching       func(query uintptr, result *uintptr) int32
	SecItemDelete             func(query uintptr) int32
	SecCopyErrorMessageString func(status int32, reserved uintptr) uintptr

	// The addresses of kCFTypeDictionaryKeyCallBacks and …ValueCallBacks
	// (structs passed by pointer) and the values of the CFStringRef /
	// CFBooleanRef constants.
	keyCallBacks, valueCallBacks                         uintptr
	kCFBooleanTrue                                       uintptr
	kSecClass, kSecClassGenericPassword                  uintptr
	kSecAttrService, kSecAttrAccount                     uintptr
	kSecAttrLabel, kSecAttrComment, kSecValueData        uintptr
	kSecReturnData, kSecReturnAttributes                 uintptr
	kSecMatchLimit, kSecMatchLimitOne, kSecMatchLimitAll uintptr
	dictionaryType, arrayType, dataType, stringType      uint
}

var (
	secOnce sync.Once
	secLib  *security
	secErr  error
)

// loadSecurity binds the functions once per process. A missing symbol or a
// framework that does not load is an error, never a panic.
func loadSecurity() (*security, error) {
	secOnce.Do(func() { secLib, secErr = bindSecurity() })
	return secLib, secErr
}

func bindSecurity() (s *security, err error) {
	defer func() {
		if r := recover(); r != nil { // purego.RegisterFunc panics on a bad signature
			s, err = nil, fmt.Errorf("binding Security.framework: %v", r)
		}
	}()
	cf, err := purego.Dlopen(coreFoundationPath, purego.RTLD_LAZY|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("loading CoreFoundation: %w", err)
	}
	sec, err := purego.Dlopen(securityPath, purego.RTLD_LAZY|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("loading Security.framework: %w", err)
	}
	s = new(security)
	fns := []struct {
		lib  uintptr
		name string
		fptr any
	}{
		{cf, "CFRelease", &s.CFRelease},
		{cf, "CFGetTypeID", &s.CFGetTypeID},
		{cf, "CFDictionaryGetTypeID", &s.CFDictionaryGetTypeID},
		{cf, "CFArrayGetTypeID", &s.CFArrayGetTypeID},
		{cf, "CFDataGetTypeID", &s.CFDataGetTypeID},
		{cf, "CFStringGetTypeID", &s.CFStringGetTypeID},
		{cf, "CFDictionaryCreate", &s.CFDictionaryCreate},
		{cf, "CFDictionaryGetValue", &s.CFDictionaryGetValue},
		{cf, "CFArrayGetCount", &s.CFArrayGetCount},
		{cf, "CFArrayGetValueAtIndex", &s.CFArrayGetValueAtIndex},
		{cf, "CFDataCreate", &s.CFDataCreate},
		{cf, "CFDataGetLength", &s.CFDataGetLength},
		{cf, "CFDataGetBytePtr", &s.CFDataGetBytePtr},
		{cf, "CFStringCreateWithBytes", &s.CFStringCreateWithBytes},
		{cf, "CFStringGetLength", &s.CFStringGetLength},
		{cf, "CFStringGetMaximumSizeForEncoding", &s.CFStringGetMaximumSizeForEncoding},
		{cf, "CFStringGetCString", &s.CFStringGetCString},
		{sec, "SecItemAdd", &s.SecItemAdd},
		{sec, "SecItemCopyMatching", &s.SecItemCopyMatching},
		{sec, "SecItemDelete", &s.SecItemDelete},
		{sec, "SecCopyErrorMessageString", &s.SecCopyErrorMessageString},
	}
	for _, f := range fns {
		p, err := purego.Dlsym(f.lib, f.name)
		if err != nil {
			return nil, fmt.Errorf("finding %s: %w", f.name, err)
		}
		purego.RegisterFunc(f.fptr, p)
	}
	// Structs: their address is what the API takes.
	for _, c := range []struct {
		name string
		dst  *uintptr
	}{
		{"kCFTypeDictionaryKeyCallBacks", &s.keyCallBacks},
		{"kCFTypeDictionaryValueCallBacks", &s.valueCallBacks},
	} {
		if *c.dst, err = purego.Dlsym(cf, c.name); err != nil {
			return nil, fmt.Errorf("finding %s: %w", c.name, err)
		}
	}
	// Pointer constants: the API takes the pointer stored at the address.
	for _, c := range []struct {
		lib  uintptr
		name string
		dst  *uintptr
	}{
		{cf, "kCFBooleanTrue", &s.kCFBooleanTrue},
		{sec, "kSecClass", &s.kSecClass},
		{sec, "kSecClassGenericPassword", &s.kSecClassGenericPassword},
		{sec, "kSecAttrService", &s.kSecAttrService},
		{sec, "kSecAttrAccount", &s.kSecAttrAccount},
		{sec, "kSecAttrLabel", &s.kSecAttrLabel},
		{sec, "kSecAttrComment", &s.kSecAttrComment},
		{sec, "kSecValueData", &s.kSecValueData},
		{sec, "kSecReturnData", &s.kSecReturnData},
		{sec, "kSecReturnAttributes", &s.kSecReturnAttributes},
		{sec, "kSecMatchLimit", &s.kSecMatchLimit},
		{sec, "kSecMatchLimitOne", &s.kSecMatchLimitOne},
		{sec, "kSecMatchLimitAll", &s.kSecMatchLimitAll},
	} {
		p, err := purego.Dlsym(c.lib, c.name)
		if err != nil {
			return nil, fmt.Errorf("finding %s: %w", c.name, err)
		}
		if *c.dst = deref(p); *c.dst == 0 {
			return nil, fmt.Errorf("finding %s: it is NULL", c.name)
		}
	}
	s.dictionaryType = s.CFDictionaryGetTypeID()
	s.arrayType = s.CFArrayGetTypeID()
	s.dataType = s.CFDataGetTypeID()
	s.stringType = s.CFStringGetTypeID()
	return s, nil
}

// deref reads the pointer-sized value at addr, the address of a C global in
// a framework's memory (never Go's), which dlsym returned. The double
// indirection keeps vet's uintptr→unsafe.Pointer check quiet on a
// conversion that is sound here: the memory is not Go-managed.
func deref(addr uintptr) uintptr { return **(**uintptr)(unsafe.Pointer(&addr)) }

// release is CFRelease that accepts NULL.
func (s *security) release(cf uintptr) {
	if cf != 0 {
		s.CFRelease(cf)
	}
}

// query makes the dictionary that every call starts from: a generic
// password of rssh's service, one account if account is not "", plus extra.
// The caller releases it.
func (s *security) query(extra map[uintptr]uintptr, account string) uintptr {
	svc := s.cfString(keychainService)
	defer s.release(svc)
	keys := []uintptr{s.kSecClass, s.kSecAttrService}
	vals := []uintptr{s.kSecClassGenericPassword, svc}
	if account != "" {
		acct := s.cfString(account)
		defer s.release(acct)
		keys, vals = append(keys, s.kSecAttrAccount), append(vals, acct)
	}
	for k, v := range extra {
		keys, vals = append(keys, k), append(vals, v)
	}
	// The type callbacks make the dictionary retain its keys and values.
	return s.CFDictionaryCreate(0, keys, vals, len(keys), s.keyCallBacks, s.valueCallBacks)
}

// cfString makes a CFString (the caller releases it).
func (s *security) cfString(v string) uintptr {
	b := []byte(v)
	return s.CFStringCreateWithBytes(0, b, len(b), kCFStringEncodingUTF8, false)
}

// data copies b into a new CFData (the caller releases it).
func (s *security) data(b []byte) uintptr { return s.CFDataCreate(0, b, len(b)) }

// goBytes copies a CFData's contents; nil for NULL or another type.
func (s *security) goBytes(d uintptr) []byte {
	if d == 0 || s.CFGetTypeID(d) != s.dataType {
		return nil
	}
	n := s.CFDataGetLength(d)
	p := s.CFDataGetBytePtr(d)
	if n <= 0 || p == nil {
		return nil
	}
	return append([]byte(nil), unsafe.Slice(p, n)...)
}

// goString converts a CFString; "" for NULL or another type.
func (s *security) goString(str uintptr) string {
	if str == 0 || s.CFGetTypeID(str) != s.stringType {
		return ""
	}
	n := s.CFStringGetMaximumSizeForEncoding(s.CFStringGetLength(str), kCFStringEncodingUTF8) + 1
	if n <= 1 || n > 1<<20 {
		return ""
	}
	buf := make([]byte, n)
	if !s.CFStringGetCString(str, buf, n, kCFStringEncodingUTF8) {
		return ""
	}
	for i, c := range buf {
		if c == 0 {
			return string(buf[:i])
		}
	}
	return ""
}

// err turns an OSStatus into an error that says what macOS says it means.
func (s *security) err(st int32) error {
	e := &osStatusError{code: st}
	if m := s.SecCopyErrorMessageString(st, 0); m != 0 {
		e.msg = s.goString(m)
		s.release(m)
	}
	return e
}

// osStatusError is a Security.framework result code and its message.
type osStatusError struct {
	code int32
	msg  string
}

func (e *osStatusError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("OSStatus %d", e.code)
	}
	return fmt.Sprintf("%s (OSStatus %d)", e.msg, e.code)
}
