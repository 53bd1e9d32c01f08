/* PKCS#11 modules are loaded with dlopen; p11-kit provides the standard header only. */
#include <p11-kit/pkcs11.h>
#include <dlfcn.h>
