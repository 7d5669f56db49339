// Argon2, the reference implementation, from Debian's libargon2-dev.
#include <argon2.h>
