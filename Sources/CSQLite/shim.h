#include <sqlite3.h>

// sqlite3_db_config and sqlite3_config are variadic; Swift cannot call them directly.
// SQLITE_TRANSIENT is a macro casting -1 to a function pointer, which Swift cannot import.
static inline sqlite3_destructor_type csqlite_transient(void) { return SQLITE_TRANSIENT; }
