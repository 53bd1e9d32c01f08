/* The standard PKCS#11 header as p11-kit ships it, p11-kit's module loader (modules
 * registered in /usr/share/p11-kit/modules, or one loaded by path), and its RFC 7512 URI
 * parser, which the tests hold ours to. */
#include <p11-kit/pkcs11.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>
