/* The standard PKCS#11 header as p11-kit ships it, and p11-kit's module loader (modules
 * registered in /usr/share/p11-kit/modules, or one loaded by path). */
#include <p11-kit/pkcs11.h>
#include <p11-kit/p11-kit.h>
