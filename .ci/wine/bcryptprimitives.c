#include <windows.h>
#include <ntsecapi.h>
/* Wine 8.0 lacks bcryptprimitives.dll, whose ProcessPrng Rust's std calls for randomness. */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, n)) return FALSE;
        data += n; len -= n;
    }
    return TRUE;
}
