#include <signal.h>
#include <unistd.h>
/* dispatch_main parks the main thread in sigsuspend(); Debian's valgrind 3.19 crashes reading that call's mask.
   pause() parks it the same way, without a mask. */
int sigsuspend(const sigset_t *mask) { (void)mask; for (;;) pause(); return -1; }
